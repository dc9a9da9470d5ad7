//! The pipelining a design gets for a clock depends on where its weights live: a second
//! register after the weight read only where a block RAM is read.

use compiler::blocks::Family;
use compiler::passes::folding::{FoldFile, FoldSpec, LayerFold};
use compiler::passes::pipelining::{slow_weight_read, Pipelining, MAX_STAGE_LEVELS};
use compiler::passes::Pass;
use compiler::random::{random_model, Rng};
use flip::encoding::Encoding;

fn design(inputs: usize, widths: &[usize], folds: &[(usize, usize)]) -> compiler::ir::Design {
    let mut rng = Rng(7);
    let model = random_model(&mut rng, inputs, 8, Encoding::Threshold(100), widths);
    let layers: Vec<LayerFold> = folds
        .iter()
        .map(|&(pe, simd)| LayerFold { pe, simd })
        .collect();
    let mut d = compiler::compile(&model, &FoldSpec::Manual(FoldFile::from(layers))).unwrap();
    d.family = Family::Ecp5;
    d
}

#[test]
fn a_second_read_register_only_behind_block_ram() {
    // 1024 x 16 weight words: a block RAM on ECP5.
    let mut deep = design(1024, &[16, 4], &[(1, 16), (1, 16)]);
    assert!(slow_weight_read(deep.mvtus().next().unwrap(), Family::Ecp5));
    let p = Pipelining::for_design(&deep, 125.0);
    assert_eq!(p.read_registers, 2);
    assert!(p.activation_stage);
    p.run(&mut deep).unwrap();
    assert!(deep.mvtus().all(|l| l.read_registers == 2));

    // Four words per layer: LUTs.
    let mut shallow = design(64, &[16, 4], &[(4, 64), (4, 16)]);
    assert!(shallow.mvtus().all(|l| !slow_weight_read(l, Family::Ecp5)));
    let p = Pipelining::for_design(&shallow, 125.0);
    assert_eq!(p.read_registers, 1);
    p.run(&mut shallow).unwrap();
    // The recorded pipelining replays the same design, and its Verilog has no second
    // weight register.
    let rec = Pipelining::of(&shallow).unwrap();
    assert_eq!(rec.read_registers, 1);
    let dir = std::env::temp_dir().join(format!("flipchip-pipelining-{}", std::process::id()));
    compiler::write_build(&shallow, &dir).unwrap();
    let v = std::fs::read_to_string(dir.join("l1_mvtu.v")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        v.contains("l1_mvtu_wr <= l1_mvtu_w;"),
        "one register after the ROM"
    );
    assert!(
        !v.contains("l1_mvtu_wq"),
        "no second register after a LUT ROM"
    );
}

#[test]
fn group_constants_are_read_ahead_into_two_registers_with_the_weights() {
    let verilog = |d: &compiler::ir::Design, file: &str| {
        let dir = std::env::temp_dir().join(format!(
            "flipchip-constants-{}-{}",
            std::process::id(),
            d.mvtus().next().unwrap().read_registers
        ));
        compiler::write_build(d, &dir).unwrap();
        let v = std::fs::read_to_string(dir.join(file)).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        v
    };
    // Layer 1: 16 neuron groups of thresholds; layer 2: 4 groups of score offsets.
    let mut deep = design(1024, &[16, 4], &[(1, 16), (1, 16)]);
    Pipelining::for_design(&deep, 125.0).run(&mut deep).unwrap();
    let first = deep.mvtus().next().unwrap();
    assert!(first.early_constants());
    let depth = first.depth();
    let v = verilog(&deep, "l1_mvtu.v");
    // Addressed by the group two stages before the compare's, so that the first register
    // (a block RAM's read register) and a fabric one bring the constants in step with it.
    assert!(
        v.contains(&format!("l1_mvtu_enf = l1_mvtu_t{}[", depth - 2)),
        "{v}"
    );
    for c in ["thr", "inv"] {
        assert!(
            v.contains(&format!("l1_mvtu_{c}_q <= l1_mvtu_{c}_rom;")),
            "{c}"
        );
        assert!(v.contains(&format!("l1_mvtu_{c} <= l1_mvtu_{c}_q;")), "{c}");
    }
    let v2 = verilog(&deep, "l2_mvtu.v");
    assert!(v2.contains("l2_mvtu_bias <= l2_mvtu_bias_q;"));

    // One read register: the ROMs are read at stage C's own group, into the compare.
    let mut slow = design(1024, &[16, 4], &[(1, 16), (1, 16)]);
    Pipelining::for_design(&slow, 25.0).run(&mut slow).unwrap();
    assert!(slow.mvtus().all(|l| !l.early_constants()));
    let v = verilog(&slow, "l1_mvtu.v");
    assert!(
        v.contains("case (l1_mvtu_cnf)") && !v.contains("_rom"),
        "{v}"
    );
}

#[test]
fn shallow_stages_start_the_trees_with_full_adders() {
    let verilog = |mhz: f64| {
        let mut d = design(64, &[16, 4], &[(4, 64), (4, 16)]);
        Pipelining::for_design(&d, mhz).run(&mut d).unwrap();
        let dir =
            std::env::temp_dir().join(format!("flipchip-ternary-{}-{mhz}", std::process::id()));
        compiler::write_build(&d, &dir).unwrap();
        let v = std::fs::read_to_string(dir.join("l1_mvtu.v")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let l = d.mvtus().next().unwrap();
        (v, l.stage_levels, l.tree_stages())
    };
    // 125 MHz on ECP5: 2 levels per stage; 64 XNORs in 21 full adders and a bit, then
    // 22 -> 11 -> 6 -> 3 -> 2 -> 1: 6 levels in 3 stages.
    let (fast, levels, stages) = verilog(125.0);
    assert_eq!((levels, stages), (2, 3));
    assert!(fast.contains("wire p1_20 = xn[60] ^ xn[61];"), "{fast}");
    assert!(!fast.contains("p1_21"));
    assert!(
        fast.contains("wire [1:0] t1_20 = {(xn[60] & xn[61]) | (p1_20 & xn[62]), p1_20 ^ xn[62]};")
    );
    // 40 MHz: 8 levels per stage, pairs throughout (64 -> 32 -> ... -> 1 in one stage).
    let (slow, levels, stages) = verilog(40.0);
    assert_eq!((levels, stages), (MAX_STAGE_LEVELS, 1));
    assert!(
        !slow.contains("p1_0")
            && slow.contains("wire [1:0] t1_31 = {{1{1'b0}}, xn[62]} + {{1{1'b0}}, xn[63]};")
    );
}

#[test]
fn in_ready_starts_from_flags_registered_with_the_counters() {
    // Layer 1: 4 neuron groups of 4 synapse folds, so a neuron-fold and a synapse-fold
    // counter.
    let mut d = design(64, &[16, 4], &[(4, 16), (4, 16)]);
    Pipelining::for_design(&d, 125.0).run(&mut d).unwrap();
    let dir = std::env::temp_dir().join(format!("flipchip-flags-{}", std::process::id()));
    compiler::write_build(&d, &dir).unwrap();
    let v = std::fs::read_to_string(dir.join("l1_mvtu.v")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for c in ["sf", "nf"] {
        assert!(v.contains(&format!("reg  l1_mvtu_last_{c};")), "{c}: {v}");
        assert!(
            v.contains(&format!(
                "l1_mvtu_last_{c} <= !l1_mvtu_last_{c} && (l1_mvtu_{c} == 2'd2);"
            )),
            "{c}: {v}"
        );
    }
    assert!(!v.contains("wire l1_mvtu_last_sf ="));
    // The layer holds its input in flip-flops: `in_ready` is itself a register, computed a
    // cycle ahead from the flags' next values.
    assert!(v.contains("assign in_ready = l1_mvtu_rdy_q;"), "{v}");
    assert!(
        v.contains("wire l1_mvtu_last_sf_d = (l1_mvtu_advance) ?"),
        "{v}"
    );
}
