//! The tables pass: which layers may look their popcounts up in block RAM tables, what such a
//! layer costs and is built of, and what the fold file records. Simulator and RTL agree on
//! table layers in `sim/tests/rtl.rs`.

use compiler::blocks::{Block, Family};
use compiler::passes::folding::{FoldFile, FoldSpec, LayerFold};
use compiler::random::{random_model, Rng};
use flip::encoding::Encoding;
use flip::model::Model;

/// The SFC topology's first layers on a one-bit input: 784-256-10.
fn model() -> Model {
    random_model(&mut Rng(7), 784, 8, Encoding::Threshold(128), &[256, 10])
}

/// Layer 1 at PE 8 x SIMD 196 with `tables` per layer, its input in registers.
fn fold(tables: Vec<usize>) -> FoldFile {
    FoldFile {
        pixels_per_beat: 7,
        input_ram: Some(false),
        input_ram_layers: Some(Vec::new()),
        table_inputs: tables,
        ..FoldFile::from(vec![
            LayerFold { pe: 8, simd: 196 },
            LayerFold { pe: 1, simd: 64 },
        ])
    }
}

fn compile(f: FoldFile) -> Result<compiler::ir::Design, String> {
    compiler::compile(&model(), &FoldSpec::Manual(f)).map_err(|e| e.to_string())
}

#[test]
fn a_table_layer_starts_its_trees_from_counts_and_saves_luts() {
    let mut plain = compile(fold(Vec::new())).unwrap();
    let mut table = compile(fold(vec![3, 0])).unwrap();
    for d in [&mut plain, &mut table] {
        d.family = Family::Ecp5;
    }
    let (p, t) = (plain.mvtus().next().unwrap(), table.mvtus().next().unwrap());
    assert_eq!((p.table, t.table), (0, 3));
    assert!(t.report_fields().contains(&("table_inputs", 3.into())));
    // 196 bits in 65 groups of three and one of one.
    let groups = t.table_groups();
    assert_eq!(groups.len(), 66);
    assert_eq!(groups.iter().sum::<usize>(), 196);
    assert_eq!(groups.last(), Some(&1));
    // Same cycles; the XNORs and first levels move from LUTs to block RAM.
    assert_eq!(p.cycles(), t.cycles());
    let (pe, te) = (p.estimate_for(Family::Ecp5), t.estimate_for(Family::Ecp5));
    assert!(te.luts < pe.luts * 85 / 100, "{} vs {}", te.luts, pe.luts);
    assert!(te.brams > pe.brams, "{} vs {}", te.brams, pe.brams);
    // A table of 128 steps x 8 patterns of 8 two-bit counts per group.
    assert_eq!(
        te.memory_bits - pe.memory_bits,
        65 * 1024 * 16 + 256 * 8 - 256 * 784
    );
    let v = t.emit_verilog("");
    assert!(v.contains("l1_mvtu_tab65"), "one ROM per group");
    assert!(!v.contains("l1_mvtu_tab66"));
    assert!(!v.contains("wire [195:0] xn"), "no XNOR lanes");
    assert!(p.emit_verilog("").contains("wire [195:0] xn"));
}

#[test]
fn the_fold_file_records_table_layers_and_rebuilds_them() {
    let d = compile(fold(vec![3, 2])).unwrap();
    let file = compiler::fold_file(&d);
    assert_eq!(file.table_inputs, vec![3, 2]);
    let json = serde_json::to_string(&file).unwrap();
    assert!(json.contains("\"table_inputs\":[3,2]"), "{json}");
    assert_eq!(compile(file).unwrap(), d);
    // A design without tables writes no key.
    let plain = compiler::fold_file(&compile(fold(Vec::new())).unwrap());
    assert!(!serde_json::to_string(&plain)
        .unwrap()
        .contains("table_inputs"));
}

#[test]
fn table_layers_keep_their_input_in_registers_when_the_passes_choose() {
    // Without tables the vector RAM pass puts layer 2's vector in RAM (layer 1's 784-bit frame
    // is below the input buffer's threshold either way).
    let free = |tables| FoldFile {
        input_ram: None,
        input_ram_layers: None,
        ..fold(tables)
    };
    let ram = |d: &compiler::ir::Design| d.mvtus().map(|l| l.input_ram()).collect::<Vec<_>>();
    assert_eq!(ram(&compile(free(Vec::new())).unwrap()), [false, true]);
    assert_eq!(ram(&compile(free(vec![3, 0])).unwrap()), [false, true]);
    assert_eq!(ram(&compile(free(vec![3, 2])).unwrap()), [false, false]);
}

#[test]
fn layers_that_cannot_use_tables_are_refused_with_the_reason() {
    let refused = |f: FoldFile, why: &str| {
        let e = compile(f).unwrap_err();
        assert!(e.contains("table_inputs") && e.contains(why), "{e}");
    };
    refused(fold(vec![5, 0]), "2 to 4");
    refused(fold(vec![1, 0]), "2 to 4");
    refused(fold(vec![3, 0, 3]), "lists 3 layers but the model has 2");
    let refused_by = |f: FoldFile, why: &[&str]| {
        let e = compile(f).unwrap_err();
        assert!(why.iter().all(|w| e.contains(w)), "{e}");
    };
    refused_by(
        FoldFile {
            input_ram: Some(true),
            ..fold(vec![3, 0])
        },
        &["input_ram", "layer 1 reads tables"],
    );
    refused_by(
        FoldFile {
            input_ram_layers: Some(vec![2]),
            ..fold(vec![3, 2])
        },
        &["input_ram_layers", "layer 2", "it reads tables"],
    );
    refused_by(
        FoldFile {
            load_weights: vec![1],
            ..fold(vec![3, 0])
        },
        &["load_weights: layer 1 reads tables"],
    );
    refused(
        FoldFile {
            layers: vec![
                LayerFold { pe: 256, simd: 784 },
                LayerFold { pe: 1, simd: 64 },
            ],
            ..fold(vec![3, 0])
        },
        "fully unrolled",
    );
}
