//! Weight ROMs forced into block RAM (`block_rom_layers`): the Verilog asks Yosys for it, the
//! estimate counts it so, the fold file records it, bad layers are named, and (with YoWASP's
//! Yosys) the ECP5 synthesis uses the block RAMs the estimate counts.

mod common;

use compiler::blocks::Family;
use compiler::passes::folding::{FoldFile, FoldSpec, LayerFold};
use compiler::random::{random_model, Rng};
use flip::encoding::Encoding;
use flip::model::Model;

/// 64 one-bit pixels, 128 hidden neurons, 10 classes.
fn model() -> Model {
    random_model(&mut Rng(5), 64, 8, Encoding::Threshold(128), &[128, 10])
}

/// Layer 1 at PE 4, SIMD 64: a 32 x 256 weight ROM, which Yosys's cost rule leaves in LUTs on
/// the ECP5 (8,192 bits at 1/16 each against 8 DP16KD at 128).
fn fold(block_rom_layers: Vec<usize>, l1: (usize, usize)) -> FoldFile {
    let mut f = FoldFile::from(vec![
        LayerFold {
            pe: l1.0,
            simd: l1.1,
        },
        LayerFold { pe: 1, simd: 16 },
    ]);
    f.block_rom_layers = block_rom_layers;
    f
}

fn compile(f: FoldFile) -> Result<compiler::ir::Design, compiler::CompileError> {
    let mut d = compiler::compile(&model(), &FoldSpec::Manual(f))?;
    d.family = Family::Ecp5;
    Ok(d)
}

#[test]
fn a_listed_weight_rom_goes_to_block_ram() {
    let plain = compile(fold(vec![], (4, 64))).unwrap();
    let block = compile(fold(vec![1], (4, 64))).unwrap();
    let l1 = |d: &compiler::ir::Design| d.mvtus().next().unwrap().clone();
    assert_eq!(l1(&plain).weight_blocks(Family::Ecp5).0, 0);
    assert_eq!(l1(&block).weight_blocks(Family::Ecp5).0, 8);
    let (p, b) = (
        plain.estimate_for(Family::Ecp5),
        block.estimate_for(Family::Ecp5),
    );
    assert_eq!(b.brams, p.brams + 8);
    assert!(
        b.luts < p.luts,
        "{} LUTs in block RAM, {} in logic",
        b.luts,
        p.luts
    );

    let v = compiler::verilog::emit(&block);
    let text = &v.iter().find(|(name, _)| name == "l1_mvtu.v").unwrap().1;
    assert!(
        text.contains("(* rom_style = \"block\" *) case (l1_mvtu_waddr)"),
        "{text}"
    );
    let plain_v = compiler::verilog::emit(&plain);
    assert!(plain_v.iter().all(|(_, t)| !t.contains("rom_style")));

    // The fold file records it, and rebuilds the same design.
    let f = compiler::fold_file(&block);
    assert_eq!(f.block_rom_layers, vec![1]);
    assert_eq!(compile(f).unwrap().estimate_for(Family::Ecp5), b);
}

#[test]
fn layers_without_a_weight_rom_for_block_ram_are_named() {
    let err = |f: FoldFile| compile(f).unwrap_err().to_string();
    let e = err(fold(vec![3], (4, 64)));
    assert!(e.contains("block_rom_layers: layer 3 is not"), "{e}");
    // PE 128 x SIMD 64: the whole layer in one word, constants in logic.
    let e = err(fold(vec![1], (128, 64)));
    assert!(e.contains("layer 1") && e.contains("single word"), "{e}");
    let mut t = fold(vec![1], (4, 64));
    t.table_inputs = vec![3, 0];
    let e = err(t);
    assert!(e.contains("layer 1") && e.contains("tables"), "{e}");
}

#[test]
fn ecp5_synthesis_uses_the_block_rams_counted() {
    let mut counts = Vec::new();
    for (layers, tag) in [(vec![], "logic"), (vec![1], "block")] {
        let d = compile(fold(layers, (4, 64))).unwrap();
        let Some((_, brams)) = common::yosys_counts(&d, Family::Ecp5, tag) else {
            return;
        };
        counts.push((brams, d.estimate_for(Family::Ecp5).brams));
    }
    // The weight ROM's 8 DP16KD on top of what the design takes otherwise, as estimated.
    let (plain, block) = (counts[0], counts[1]);
    assert_eq!(block.1 - plain.1, 8);
    assert_eq!(
        block.0 - plain.0,
        8,
        "Yosys: {} and {} DP16KD",
        plain.0,
        block.0
    );
}
