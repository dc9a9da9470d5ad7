//! FIFO sizing by simulation: on random convolutional networks and foldings, the sized design
//! runs at the interval sizing reports (checked over a longer run than sizing's own), never
//! slower than without FIFOs, reaches the slowest stage's cycles where buffering can, and no
//! sized FIFO could be shallower.

use compiler::passes::fifos::Fifos;
use compiler::passes::folding::FoldSpec;
use compiler::passes::Pass;
use compiler::random::{random_conv_model, random_folding, random_pixels, Rng};
use sim::fifo_sizing;
use sim::stimulus::Stimulus;

/// Steady-state interval of `design` over `frames` back-to-back frames: the largest of the
/// last four intervals.
fn interval(design: &compiler::ir::Design, px: &[u8]) -> u64 {
    let run = sim::run(design, px, Stimulus::free(3), 50_000_000, None).unwrap();
    let o = &run.trace.outputs;
    o[o.len() - 5..]
        .windows(2)
        .map(|w| w[1].cycle - w[0].cycle)
        .max()
        .unwrap()
}

#[test]
fn sized_fifos_reach_the_slowest_stage_and_are_minimal() {
    let mut rng = Rng(0xF1F0);
    let (mut reached, mut needed, cases) = (0, 0, 60);
    for case in 0..cases {
        let model = random_conv_model(&mut rng);
        let fold = random_folding(&mut rng, &model);
        let design = compiler::compile(&model, &FoldSpec::Manual(fold)).unwrap();
        let s = fifo_sizing::size(&design).unwrap();
        let tag = format!("case {case} {} {:?}", design.model, s);
        let mut sized = design.clone();
        fifo_sizing::apply(&mut sized, &s);
        compiler::check::check(&sized).unwrap();
        let px = random_pixels(&mut rng, &model, 16);
        let long = interval(&sized, &px);
        assert_eq!(long, s.cycles_per_frame, "{tag}: interval over 16 frames");
        assert!(s.cycles_per_frame <= s.unbuffered, "{tag}");
        assert!(s.cycles_per_frame >= s.target, "{tag}");
        if s.cycles_per_frame == s.target {
            reached += 1;
        }
        if !s.fifos.is_empty() {
            needed += 1;
        }
        // Minimal: one entry less in any FIFO (or the FIFO gone, from two entries) is slower.
        for k in 0..s.fifos.len() {
            let mut fewer = s.fifos.clone();
            if fewer[k].depth <= 2 {
                fewer.remove(k);
            } else {
                fewer[k].depth -= 1;
            }
            let mut d = design.clone();
            Fifos(fewer).run(&mut d).unwrap();
            assert!(
                interval(&d, &px) > s.cycles_per_frame,
                "{tag}: FIFO {k} could be shallower"
            );
        }
    }
    // Enough designs needed buffering for the checks above to mean something (a random
    // folding often makes a burst-free stage the slowest).
    assert!(
        needed >= cases / 8,
        "only {needed} of {cases} designs needed a FIFO"
    );
    assert!(
        reached * 10 >= cases * 9,
        "only {reached} of {cases} designs reach the slowest stage's cycles"
    );
}

/// On the ECP5 every window unit hands its windows to the convolution after it through a FIFO
/// of at least 2 entries (a timing rule, see `fifo_sizing`), at no cost in interval; on the
/// iCE40 (no LUT RAM: such a FIFO would be flip-flops) only throughput decides.
#[test]
fn ecp5_window_units_hand_on_through_a_fifo() {
    use compiler::blocks::{Family, Stage};
    let mut rng = Rng(0xECB5);
    let mut checked = 0;
    for case in 0..12 {
        let model = random_conv_model(&mut rng);
        let fold = random_folding(&mut rng, &model);
        let ice = compiler::compile(&model, &FoldSpec::Manual(fold)).unwrap();
        let mut ecp = ice.clone();
        ecp.family = Family::Ecp5;
        let (si, se) = (
            fifo_sizing::size(&ice).unwrap(),
            fifo_sizing::size(&ecp).unwrap(),
        );
        let windows: Vec<String> = ecp
            .stages
            .windows(2)
            .filter(|w| matches!((&w[0], &w[1]), (Stage::Window(_), Stage::Mvtu(_))))
            .map(|w| w[0].block().name())
            .collect();
        let tag = format!("case {case} {}: {:?} / {:?}", ecp.model, si.fifos, se.fifos);
        for name in &windows {
            let f = se.fifos.iter().find(|f| &f.after == name);
            assert!(f.is_some_and(|f| f.depth >= 2), "{tag}: none after {name}");
            // Where throughput needs none, exactly the two entries.
            if !si.fifos.iter().any(|f| &f.after == name) {
                assert_eq!(f.unwrap().depth, 2, "{tag}");
            }
        }
        // Everything else as on the iCE40, and no slower.
        for f in &si.fifos {
            assert!(
                se.fifos
                    .iter()
                    .any(|g| g.after == f.after && g.depth >= f.depth),
                "{tag}"
            );
        }
        assert_eq!(se.cycles_per_frame, si.cycles_per_frame, "{tag}");
        let mut sized = ecp.clone();
        fifo_sizing::apply(&mut sized, &se);
        compiler::check::check(&sized).unwrap();
        let px = random_pixels(&mut rng, &model, 16);
        assert_eq!(interval(&sized, &px), se.cycles_per_frame, "{tag}");
        checked += windows.len();
    }
    assert!(checked >= 6, "only {checked} window units met");
}
