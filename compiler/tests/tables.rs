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
        dual_port_tables: None,
        block_rom_layers: Vec::new(),
        mmv: Vec::new(),
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

/// Two tables to a block RAM, each through a port of its own: at PE 8 x SIMD 392 (64 steps) the
/// SFC first layer's 131 tables (130 of three inputs, the last of two) take 66 DP16KD instead of
/// 131, the same counts read.
#[test]
fn tables_pair_in_two_port_block_rams() {
    let at = |simd: usize, tables: usize, dual: Option<bool>| {
        let mut f = fold(vec![tables, 0]);
        f.layers[0].simd = simd;
        f.layers[0].pe = if simd == 784 { 4 } else { 8 };
        f.dual_port_tables = dual;
        let mut d = compile(f).unwrap();
        d.family = Family::Ecp5;
        d
    };
    let (single, paired) = (at(392, 3, None), at(392, 3, Some(true)));
    let (s, p) = (
        single.mvtus().next().unwrap(),
        paired.mvtus().next().unwrap(),
    );
    assert!(!s.dual_port_tables && p.dual_port_tables);
    assert_eq!(s.weight_blocks(Family::Ecp5).0, 131);
    assert_eq!(p.weight_blocks(Family::Ecp5).0, 66);
    assert_eq!(
        p.estimate_for(Family::Ecp5).brams + 65,
        s.estimate_for(Family::Ecp5).brams
    );
    let memories = p.table_memories();
    assert_eq!(memories.len(), 66);
    // 64 steps x 8 patterns per table, two tables: 1024 words of 16 bits.
    assert!(memories[..65]
        .iter()
        .all(|(g, shape)| g.len() == 2 && *shape == (1024, 16)));
    assert_eq!(memories[65].0, vec![130]);
    let v = p.emit_verilog("");
    assert!(
        v.contains("reg  [15:0] l1_mvtu_tm64 [0:1023];"),
        "one memory per pair"
    );
    assert!(v.contains("l1_mvtu_ta129 = {1'b1, l1_mvtu_waddr, l1_mvtu_x[389:387]}"));
    assert!(v.contains("l1_mvtu_tab130"), "the last table alone");
    assert!(!v.contains("l1_mvtu_tab0"));
    // A chunk's last, shorter group pairs with the one before, its pattern padded: at PE 4 x
    // SIMD 784, 784 bits in 261 groups of three and one of one, 64 steps.
    let short = at(784, 3, Some(true));
    let l = short.mvtus().next().unwrap();
    let memories = l.table_memories();
    assert_eq!(memories.len(), 131);
    assert_eq!(memories.last().unwrap().0, vec![260, 261]);
    assert!(l
        .emit_verilog("")
        .contains("l1_mvtu_ta261 = {1'b1, l1_mvtu_waddr, 2'b0, l1_mvtu_x[783]}"));
    // Only the words an address reaches are listed: the short group's 2 patterns x 64 steps.
    let v = l.emit_verilog("");
    let listed = |m: usize| v.matches(&format!("l1_mvtu_tm{m}[")).count();
    assert_eq!(
        listed(130),
        512 + 128 + 2,
        "two tables' words and the two reads"
    );
    // A layer pairs up to PAIRED_WORDS_MAX words: at PE 1, 512 steps, a pair is 8192 x 2,
    // so 32 pairs, and the other 67 tables stay ROMs of their own.
    let mut f = fold(vec![3, 0]);
    f.layers[0].pe = 1;
    f.layers[0].simd = 392;
    f.dual_port_tables = Some(true);
    let mut deep = compile(f).unwrap();
    deep.family = Family::Ecp5;
    let l = deep.mvtus().next().unwrap();
    let memories = l.table_memories();
    let pairs: Vec<_> = memories.iter().filter(|(g, _)| g.len() == 2).collect();
    assert_eq!(
        pairs.len() as u64,
        compiler::blocks::mvtu::PAIRED_WORDS_MAX / 8192
    );
    assert!(pairs.iter().all(|(_, shape)| *shape == (8192, 2)));
    assert_eq!(memories.len(), 32 + 67);
    assert_eq!(
        memories[32].0,
        vec![64],
        "pairs first, then single tables in order"
    );
    // Tables too deep (128 steps x 8 patterns fill a port) or too wide (tables of four inputs:
    // 8 PEs x 3 bits) for two to share a block keep one each.
    for (simd, k) in [(196, 3), (392, 4)] {
        let d = at(simd, k, Some(true));
        let l = d.mvtus().next().unwrap();
        assert!(
            l.table_memories().iter().all(|(g, _)| g.len() == 1),
            "{simd} {k}"
        );
    }
    // The fold file records the choice, and rebuilds it.
    let file = compiler::fold_file(&paired);
    assert_eq!(file.dual_port_tables, Some(true));
    let mut again = compile(file).unwrap();
    again.family = Family::Ecp5;
    assert_eq!(again, paired);
    assert_eq!(compiler::fold_file(&single).dual_port_tables, Some(false));
    assert_eq!(
        compiler::fold_file(&compile(fold(Vec::new())).unwrap()).dual_port_tables,
        None
    );
}
