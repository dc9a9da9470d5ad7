//! The input buffer pass: which first layers keep their frame in RAM, what it costs, and what
//! the fold file records.

use compiler::passes::folding::{FoldFile, FoldSpec, LayerFold};
use compiler::passes::input_buffer::MIN_RAM_BITS;
use compiler::random::{random_model, Rng};
use flip::encoding::Encoding;
use flip::model::Model;

fn model(pixels: usize, enc: Encoding) -> Model {
    random_model(&mut Rng(3), pixels, 8, enc, &[32, 10])
}

fn fold(simd: usize, k: usize, input_ram: Option<bool>) -> FoldSpec {
    FoldSpec::Manual(FoldFile {
        pixels_per_beat: k,
        input_ram,
        ..FoldFile::from(vec![
            LayerFold { pe: 8, simd },
            LayerFold { pe: 1, simd: 4 },
        ])
    })
}

#[test]
fn large_frames_go_to_ram_and_small_ones_stay_in_registers() {
    // 784 pixels in 4 bit planes: 3,136 bits.
    let big = model(784, Encoding::BitPlanes(4));
    const { assert!(784 * 4 >= MIN_RAM_BITS) };
    let d = compiler::compile(&big, &fold(16, 1, None)).unwrap();
    let l1 = d.mvtus().next().unwrap();
    assert!(l1.input_ram());
    assert_eq!(d.input().chunk, Some(16));
    // The layer takes one chunk of every plane per beat, not the frame.
    let ports: Vec<usize> = d.blocks().map(|b| b.in_width()).collect();
    assert_eq!(ports[1], 4 * 16);
    assert_eq!(compiler::fold_file(&d).input_ram, Some(true));

    // The same frame in registers: the frame's flip-flops twice over.
    let regs = compiler::compile(&big, &fold(16, 1, Some(false))).unwrap();
    assert!(!regs.mvtus().next().unwrap().input_ram());
    assert_eq!(compiler::fold_file(&regs).input_ram, Some(false));
    let ffs = |d: &compiler::ir::Design| {
        d.blocks()
            .map(|b| b.estimate_for(d.family).ffs)
            .sum::<u64>()
    };
    assert!(
        ffs(&regs) > ffs(&d) + 2 * 3000,
        "{} vs {}",
        ffs(&regs),
        ffs(&d)
    );

    // 64 pixels in 4 planes (256 bits) stay in registers unless asked.
    let small = model(64, Encoding::BitPlanes(4));
    let d = compiler::compile(&small, &fold(16, 1, None)).unwrap();
    assert!(!d.mvtus().next().unwrap().input_ram());
    let d = compiler::compile(&small, &fold(16, 2, Some(true))).unwrap();
    let l1 = d.mvtus().next().unwrap();
    assert!(l1.input_ram());
    // Two beats of two pixels make a chunk of 16 bits per plane, and the frame starts once
    // its last chunk is in.
    assert_eq!(l1.chunk_interval, 8);
}

#[test]
fn a_ram_the_folding_cannot_feed_is_a_clear_error() {
    let m = model(64, Encoding::Thermometer(vec![50, 100, 150]));
    let err = |simd, k| {
        compiler::compile(&m, &fold(simd, k, Some(true)))
            .unwrap_err()
            .to_string()
    };
    // 16 bits are not a whole number of 3-bit pixels.
    let e = err(16, 1);
    assert!(e.contains("input_ram") && e.contains("SIMD 16"), "{e}");
    // 4 pixels per beat do not divide a chunk of 2 pixels.
    let e = err(6, 4);
    assert!(e.contains("pixels_per_beat 4"), "{e}");
    // The whole input in one step leaves nothing to buffer.
    let e = err(192, 1);
    assert!(e.contains("one step"), "{e}");
    // Without being asked, such foldings simply keep registers.
    let d = compiler::compile(&m, &fold(16, 1, None)).unwrap();
    assert!(!d.mvtus().next().unwrap().input_ram());
    assert_eq!(compiler::fold_file(&d).input_ram, None);
}
