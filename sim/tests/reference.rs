//! The cycle models of compiled designs reproduce the software reference bit for bit, on random
//! networks, foldings, encodings and inputs, under random bubbles and stalls.

use compiler::passes::fifos::Fifos;
use compiler::passes::folding::FoldSpec;
use compiler::passes::Pass;
use compiler::random::{random_encoding, random_folding, random_model, random_pixels, Rng};
use sim::stimulus::Stimulus;

#[test]
fn sim_matches_reference_on_random_networks() {
    let mut rng = Rng(0xF11C);
    for case in 0..1000 {
        let pixel_bits = rng.range(1, 8) as u8;
        let enc = random_encoding(&mut rng, pixel_bits);
        let pixels = rng.range(1, 40) as usize;
        let depth = rng.range(1, 3) as usize;
        // Mostly small layers, sometimes wider than a u64 word per lane.
        let widths: Vec<usize> = (0..depth)
            .map(|_| {
                let max = if rng.range(0, 4) == 0 { 150 } else { 40 };
                rng.range(1, max) as usize
            })
            .collect();
        let model = random_model(&mut rng, pixels, pixel_bits, enc, &widths);
        let fold = random_folding(&mut rng, &model);
        let design = compiler::compile(&model, &FoldSpec::Manual(fold.clone()))
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
        let frames = rng.range(1, 6) as usize;
        let pixels_in = random_pixels(&mut rng, &model, frames);
        let stim = Stimulus {
            seed: rng.next_u64(),
            bubble_pct: rng.range(0, 60) as u32,
            stall_pct: rng.range(0, 60) as u32,
        };
        let run = sim::run(&design, &pixels_in, stim, 10_000_000, None)
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert_eq!(run.trace.outputs.len(), frames);
        // Dumping a VCD turns off the skipping of quiet stretches: both must agree exactly.
        let slow = sim::run(
            &design,
            &pixels_in,
            stim,
            10_000_000,
            Some(&mut std::io::sink()),
        )
        .unwrap();
        assert_eq!(
            run.trace, slow.trace,
            "case {case}: quiet-stretch skipping is exact"
        );
        assert_eq!(run.stages, slow.stages, "case {case}");
        assert_eq!(run.input_waits, slow.input_waits, "case {case}");
        assert_eq!(run.frame_starts, slow.frame_starts, "case {case}");
        for (f, out) in run.trace.outputs.iter().enumerate() {
            let img = &pixels_in[f * model.input.pixels()..][..model.input.pixels()];
            let want: Vec<i64> = flip::reference::binary_scores(&model, img)
                .into_iter()
                .map(i64::from)
                .collect();
            assert_eq!(
                out.scores, want,
                "case {case} frame {f}: {} {:?} {:?}",
                design.model, fold, stim
            );
            assert_eq!(out.class as usize, flip::reference::argmax(&want));
        }
    }
}

/// Later layers with their input vector in RAM, fed in chunks by the layer before: the
/// designs compute the reference's scores, and the quiet-stretch path gives the plain loop's
/// trace, under bubbles and stalls.
#[test]
fn sim_matches_reference_with_vector_ram() {
    let mut rng = Rng(0x7EA);
    for case in 0..60 {
        let (model, fold) = compiler::random::random_vector_ram(&mut rng);
        let design = compiler::compile(&model, &FoldSpec::Manual(fold.clone()))
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert!(design.mvtus().any(|l| l.input_ram() && l.index > 1));
        check_random_frames(&mut rng, case, &model, &design, 5, 50);
    }
}

/// Hidden layers folded by PEs (and read at SIMDs) that do not divide their widths, padded
/// with idle neurons: the designs compute the unpadded model's classes and scores.
#[test]
fn sim_matches_reference_with_idle_neurons() {
    let mut rng = Rng(0x1D1E);
    let mut padded = 0;
    for case in 0..150 {
        let (model, fold) = compiler::random::random_idle_neurons(&mut rng);
        let design = compiler::compile(&model, &FoldSpec::Manual(fold.clone()))
            .unwrap_or_else(|e| panic!("case {case}: {e} {fold:?}"));
        padded += usize::from(design.mvtus().any(|l| l.idle_outputs > 0));
        check_random_frames(&mut rng, case, &model, &design, 4, 50);
    }
    assert!(padded >= 75, "{padded} of 150 cases padded");
}

/// Layers working on several frames per weight read: the designs compute the reference's
/// classes and scores, whether a batch fills its slots or not.
#[test]
fn sim_matches_reference_with_frames_per_weight_read() {
    let mut rng = Rng(0x33A0);
    for case in 0..120 {
        let (model, fold) = compiler::random::random_mmv(&mut rng);
        let design = compiler::compile(&model, &FoldSpec::Manual(fold.clone()))
            .unwrap_or_else(|e| panic!("case {case}: {e} {fold:?}"));
        assert!(design.mvtus().any(|l| l.mmv > 1), "case {case}");
        check_random_frames(&mut rng, case, &model, &design, 4, 50);
    }
}

/// Wide input beats (16 to 64 pixel bytes) and packed one-bit input (8 to 512 pixels per beat):
/// the designs compute the reference's classes and scores on the pixel values (packed input is
/// binarised with the model's threshold before it is sent), with and without skipping.
#[test]
fn sim_matches_reference_with_wide_and_packed_input() {
    let mut rng = Rng(0x3DE);
    let mut packed = 0;
    for case in 0..120 {
        let (model, fold) = compiler::random::random_wide_input(&mut rng);
        packed += usize::from(fold.input == compiler::ir::InputFormat::Packed);
        let design = compiler::compile(&model, &FoldSpec::Manual(fold.clone()))
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert_eq!(design.input().pixels_per_beat, fold.pixels_per_beat);
        check_random_frames(&mut rng, case, &model, &design, 4, 50);
    }
    assert!((30..90).contains(&packed), "{packed} packed cases");
}

#[test]
fn free_running_latency_and_interval_match_the_formulas() {
    let mut rng = Rng(77);
    for case in 0..80 {
        let (model, fold) = if case < 40 {
            let enc = random_encoding(&mut rng, 8);
            let pixels = rng.range(2, 30) as usize;
            let widths: Vec<usize> = (0..rng.range(1, 3))
                .map(|_| rng.range(1, 30) as usize)
                .collect();
            let model = random_model(&mut rng, pixels, 8, enc, &widths);
            let fold = random_folding(&mut rng, &model);
            (model, fold)
        } else if case < 60 {
            // A first layer with its input in RAM starts once a frame's last chunk is in.
            compiler::random::random_input_ram(&mut rng)
        } else {
            // So does a later layer with its input vector in RAM, fed in chunks.
            compiler::random::random_vector_ram(&mut rng)
        };
        let design = compiler::compile(&model, &FoldSpec::Manual(fold)).unwrap();
        let frames = 8;
        let px = random_pixels(&mut rng, &model, frames);
        let run = sim::run(&design, &px, Stimulus::free(0), 1_000_000, None).unwrap();
        assert_eq!(run.first_latency(), Some(design.latency_cycles()));
        let o = &run.trace.outputs;
        // Once the pipeline is full, results come every `cycles_per_frame` cycles: over the
        // last six frames, not only the last two (a stage that keeps the rate only on average,
        // such as two frames in three cycles, can give one interval of either length).
        assert_eq!(
            o[frames - 1].cycle - o[1].cycle,
            (frames as u64 - 2) * design.cycles_per_frame(),
            "{}",
            design.model
        );
    }
}

#[test]
fn a_two_class_design_at_one_cycle_per_frame_keeps_that_rate() {
    // The design of the proof tests: 4-4-2 on four one-bit pixels, one frame per cycle. Its
    // argmax once took a frame only while its output register was empty: two in three cycles.
    let mut rng = Rng(7);
    let encoding = "threshold:128".parse().unwrap();
    let model = random_model(&mut rng, 4, 8, encoding, &[4, 2]);
    let design = compiler::compile(&model, &FoldSpec::auto(Some(1))).unwrap();
    assert_eq!(design.cycles_per_frame(), 1);
    let frames = 12;
    let px = random_pixels(&mut rng, &model, frames);
    let run = sim::run(&design, &px, Stimulus::free(0), 10_000, None).unwrap();
    let o = &run.trace.outputs;
    assert_eq!(o.len(), frames);
    assert_eq!(o[frames - 1].cycle - o[0].cycle, frames as u64 - 1);
}

#[test]
fn vcd_holds_every_stage_handshake() {
    let mut rng = Rng(3);
    let model = random_model(
        &mut rng,
        5,
        8,
        flip::encoding::Encoding::Threshold(128),
        &[4, 3],
    );
    let design = compiler::compile(&model, &FoldSpec::auto(None)).unwrap();
    let px = random_pixels(&mut rng, &model, 3);
    let stim = Stimulus {
        seed: 9,
        bubble_pct: 20,
        stall_pct: 20,
    };
    let mut vcd = Vec::new();
    let run = sim::run(&design, &px, stim, 100_000, Some(&mut vcd)).unwrap();
    let plain = sim::run(&design, &px, stim, 100_000, None).unwrap();
    assert_eq!(run.trace, plain.trace, "dumping does not change the run");
    let text = String::from_utf8(vcd).unwrap();
    assert!(text.contains("$enddefinitions $end"));
    for name in design.stage_names() {
        assert!(text.contains(&format!(" {name}_out_valid $end")), "{name}");
        assert!(text.contains(&format!(" {name}_out_ready $end")), "{name}");
    }
    assert!(text.contains(&format!("#{}", (run.trace.cycles - 1) * 10)));
}

/// Convolutional networks (odd image sizes, kernels 1, 3 and 5, pools, channel counts on both
/// sides of a u64 word) through the sliding window, MVTU, pool and collect models: the same
/// scores as the reference, under random foldings, bubbles and stalls, with and without the
/// skipping of quiet stretches.
#[test]
fn sim_matches_reference_on_random_conv_networks() {
    let mut rng = Rng(0xC0DE);
    for case in 0..400 {
        let model = compiler::random::random_conv_model(&mut rng);
        let spec = if rng.range(0, 3) == 0 {
            FoldSpec::auto(Some(rng.range(1, 400)))
        } else {
            FoldSpec::Manual(random_folding(&mut rng, &model))
        };
        let mut design = compiler::compile(&model, &spec)
            .unwrap_or_else(|e| panic!("case {case} {}: {e}", model.arch()));
        if rng.range(0, 1) == 0 {
            let fifos = compiler::random::random_fifos(&mut rng, &design);
            Fifos(fifos).run(&mut design).unwrap();
        }
        check_random_frames(&mut rng, case, &model, &design, 4, 60);
    }
}

/// Streams 1 to `max_frames - 1` random frames through `design` under up to `max_pct`% bubbles
/// and stalls, once skipping quiet stretches and once writing a waveform (which turns the
/// skipping off): both runs must agree exactly, and every result must carry the reference's
/// scores and class.
fn check_random_frames(
    rng: &mut Rng,
    case: usize,
    model: &flip::model::Model,
    design: &compiler::ir::Design,
    max_frames: u64,
    max_pct: u64,
) {
    let frames = rng.range(1, max_frames) as usize;
    let pixels_in = random_pixels(rng, model, frames);
    let stim = Stimulus {
        seed: rng.next_u64(),
        bubble_pct: rng.range(0, max_pct) as u32,
        stall_pct: rng.range(0, max_pct) as u32,
    };
    let run = sim::run(design, &pixels_in, stim, 10_000_000, None)
        .unwrap_or_else(|e| panic!("case {case} {}: {e}", design.model));
    let slow = sim::run(
        design,
        &pixels_in,
        stim,
        10_000_000,
        Some(&mut std::io::sink()),
    )
    .unwrap();
    assert_eq!(run.trace, slow.trace, "case {case}: skipping is exact");
    assert_eq!(run.stages, slow.stages, "case {case}");
    assert_eq!(run.input_waits, slow.input_waits, "case {case}");
    assert_eq!(run.frame_starts, slow.frame_starts, "case {case}");
    assert_eq!(run.trace.outputs.len(), frames, "case {case}");
    let n = model.input.pixels();
    for (f, out) in run.trace.outputs.iter().enumerate() {
        let want: Vec<i64> = flip::reference::binary_scores(model, &pixels_in[f * n..][..n])
            .into_iter()
            .map(i64::from)
            .collect();
        assert_eq!(
            out.scores, want,
            "case {case} frame {f}: {} {stim:?}",
            design.model
        );
        assert_eq!(out.class as usize, flip::reference::argmax(&want));
    }
}
