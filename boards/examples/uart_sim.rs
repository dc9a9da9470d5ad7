//! Sends a model's test images through the whole board top under Verilator, over its UART
//! pins, and compares every class byte with the software reference.
//!
//! `cargo run --release -p boards --example uart_sim -- MODEL.fcm [--data DIR] [--frames N]
//!  [--board NAME] [--target-cycles N] [--packed-input] [--out DIR]`
//!
//! The design is compiled as `flipchip build` compiles it for the board: `--fold auto` with the
//! target, weights that overflow the device's block RAMs in SPRAM, read from the modelled flash.

use std::path::PathBuf;

use boards::uart_sim::{self, Send};
use boards::Board;
use compiler::passes::folding::FoldSpec;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut model_path = None;
    let (mut data, mut frames, mut board, mut out, mut target_cycles) =
        (None, 20usize, "icebreaker".to_string(), None, None);
    let mut input = compiler::ir::InputFormat::Pixels;
    while let Some(a) = args.next() {
        let mut value = || args.next().expect("option needs a value");
        match a.as_str() {
            "--data" => data = Some(PathBuf::from(value())),
            "--frames" => frames = value().parse().expect("--frames N"),
            "--board" => board = value(),
            "--out" => out = Some(PathBuf::from(value())),
            "--packed-input" => input = compiler::ir::InputFormat::Packed,
            "--target-cycles" => {
                target_cycles = Some(value().parse().expect("--target-cycles N"));
            }
            _ => model_path = Some(PathBuf::from(a)),
        }
    }
    let model_path = model_path.expect("usage: uart_sim MODEL.fcm [--data DIR] [--frames N]");
    let model = flip::model::format::load(&model_path).expect("loading the model");
    let data = flip::data::load(data.as_deref()).expect("loading the dataset");
    let board = Board::load(&board).expect("loading the board");
    let out = out.unwrap_or_else(|| std::env::temp_dir().join("flipchip_uart_sim"));
    let design_dir = out.join("design");
    let placement = match (&board.flash, compiler::dse::device(&board.device)) {
        (Some(_), Some(d)) => d.placement(),
        _ => compiler::passes::memory::Placement::Rom,
    };
    let design = compiler::compile_with(
        &model,
        &FoldSpec::Auto {
            target_cycles,
            input,
        },
        &placement,
    )
    .expect("compiling");
    compiler::write_build(&design, &design_dir).expect("writing the design");

    let frames = frames.min(data.test.len());
    let pixels = data.pixels();
    let mut schedule = Vec::new();
    let mut expected = Vec::new();
    for i in 0..frames {
        let im = data.test.image(i, pixels);
        expected.push(flip::reference::classify(&model, im) as u8);
        // The pixel bytes, or with packed input the pixels binarised, 8 to a byte.
        let bytes = design.input().stream_bytes(im);
        schedule.extend(bytes.iter().map(|&byte| Send { byte, gap_bits: 0 }));
    }
    let cpb = 8;
    let opts = uart_sim::Options {
        clks_per_bit: cpb,
        idle_reset_clks: cpb * 10 * 40,
        max_cycles: (frames * pixels + 100) as u64 * cpb * 12
            + 1_000_000
            + boards::wrapper::load_cycles(board.clock.mhz, design.load_words() as u64),
    };
    let t = std::time::Instant::now();
    let got = uart_sim::simulate(
        &board,
        &design_dir,
        &out.join("sim"),
        &schedule,
        frames,
        &opts,
    )
    .expect("simulating");
    let classes: Vec<u8> = got.bytes.iter().map(|b| b.0).collect();
    let agree = classes
        .iter()
        .zip(&expected)
        .filter(|(a, b)| a == b)
        .count();
    let labels = &data.test.labels[..frames];
    let correct = classes.iter().zip(labels).filter(|(a, b)| a == b).count();
    println!(
        "{}: {frames} frames over the UART of {} ({} cycles, {:.1} s): {agree}/{frames} agree \
         with the reference, {correct}/{frames} correct labels",
        model_path.display(),
        board.name,
        got.cycles,
        t.elapsed().as_secs_f64()
    );
    if classes != expected {
        eprintln!("board: {classes:?}\nreference: {expected:?}");
        std::process::exit(1);
    }
}
