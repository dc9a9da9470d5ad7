//! End to end: the Rust cycle model and the generated Verilog under Verilator (and Icarus)
//! produce identical traces, output beats and stage handshakes on the same cycles, on small
//! random networks under random bubbles and stalls. Skips with a message when a simulator is
//! missing, and fails instead under `FLIPCHIP_REQUIRE_TOOLS=1` (as `scripts/test.sh` runs it).

use compiler::ir::Design;
use compiler::passes::fifos::Fifos;
use compiler::passes::folding::{FoldFile, FoldSpec};
use compiler::passes::Pass;
use compiler::random::{random_encoding, random_folding, random_model, random_pixels, Rng};
use flip::model::Model;
use sim::stimulus::Stimulus;
use std::path::Path;
use testbenches::Rtl;

/// A small random dense network.
fn dense_model(rng: &mut Rng) -> Model {
    let pixel_bits = rng.range(4, 8) as u8;
    let enc = random_encoding(rng, pixel_bits);
    let pixels = rng.range(2, 16) as usize;
    let widths: Vec<usize> = (0..rng.range(1, 3))
        .map(|_| rng.range(1, 13) as usize)
        .collect();
    random_model(rng, pixels, pixel_bits, enc, &widths)
}

fn check(rtl: Rtl, cases: usize, seed: u64) {
    check_models(rtl, cases, seed, dense_model)
}

/// A dense network with a wide first layer (65 to 400 input bits).
fn wide_model(rng: &mut Rng) -> Model {
    let (enc, pixel_bits) = match rng.range(0, 2) {
        0 => (flip::encoding::Encoding::Threshold(100), 8),
        1 => (flip::encoding::Encoding::BitPlanes(2), 2),
        _ => (flip::encoding::Encoding::Thermometer(vec![60, 120, 180]), 8),
    };
    let bits = enc.bits_per_pixel();
    let pixels = (rng.range(65, 400) as usize).div_ceil(bits) / 8 * 8;
    let widths = [rng.range(4, 24) as usize, rng.range(2, 10) as usize];
    random_model(rng, pixels.max(72), pixel_bits, enc, &widths)
}

/// A random folding of `model` whose first layer takes more than 64 bits per neuron and
/// cycle (a lane wider than a word, a deep popcount tree) on several PEs where it can.
fn wide_folding(rng: &mut Rng, model: &Model) -> FoldFile {
    let mut fold = random_folding(rng, model);
    let Some(flip::model::Layer::Binary(l)) = model.layers.first() else {
        unreachable!("wide models start with a dense layer")
    };
    let divs = |n: usize| (1..=n).filter(move |d| n.is_multiple_of(*d));
    let wide: Vec<usize> = divs(l.inputs).filter(|&d| d > 64).collect();
    fold.layers[0].simd = *rng.pick(&wide);
    let pes: Vec<usize> = divs(l.outputs).filter(|&d| d > 1).collect();
    if !pes.is_empty() {
        fold.layers[0].pe = *rng.pick(&pes);
    }
    // Weights of one word (fully parallel now) have nothing to load into RAM.
    let f = fold.layers[0];
    if (l.outputs / f.pe) * (l.inputs / f.simd) == 1 {
        fold.load_weights.retain(|&i| i != 1);
    }
    if !compiler::random::input_ram_allowed(model, &fold) {
        fold.input_ram = None;
    }
    fold
}

/// `cases` random networks from `make` at random foldings, the simulator against `rtl`.
fn check_models(rtl: Rtl, cases: usize, seed: u64, make: fn(&mut Rng) -> Model) {
    check_folded(rtl, cases, seed, make, random_folding)
}

/// `cases` random networks from `make` folded by `fold`, the simulator against `rtl`.
fn check_folded(
    rtl: Rtl,
    cases: usize,
    seed: u64,
    make: fn(&mut Rng) -> Model,
    fold: fn(&mut Rng, &Model) -> FoldFile,
) {
    check_cases(rtl, cases, seed, &|rng| {
        let model = make(rng);
        let fold = fold(rng, &model);
        (model, fold)
    })
}

/// `cases` random networks and foldings from `make`, the simulator against `rtl`.
fn check_cases(rtl: Rtl, cases: usize, seed: u64, make: &dyn Fn(&mut Rng) -> (Model, FoldFile)) {
    if let Err(e) = testbenches::available(rtl) {
        testbenches::tool_missing(&e.to_string());
        return;
    }
    let mut rng = Rng(seed);
    for case in 0..cases {
        let (model, fold) = make(&mut rng);
        let mut design = compiler::compile(&model, &FoldSpec::Manual(fold)).unwrap();
        // FIFOs, anywhere and shallow, in half the cases.
        if rng.range(0, 1) == 0 {
            let fifos = compiler::random::random_fifos(&mut rng, &design);
            Fifos(fifos).run(&mut design).unwrap();
        }
        // The seed tells apart the directories of tests running side by side.
        let dir = std::env::temp_dir().join(format!(
            "flipchip-sim-rtl-{}-{}-{seed:x}-{case}",
            rtl.name(),
            std::process::id()
        ));
        let frames = rng.range(2, 6) as usize;
        let px = random_pixels(&mut rng, &model, frames);
        let stim = Stimulus {
            seed: rng.next_u64(),
            bubble_pct: rng.range(0, 50) as u32,
            stall_pct: rng.range(0, 50) as u32,
        };
        compare(rtl, &design, &dir, &px, stim, &format!("case {case}"));
    }
}

/// `design` written to `dir` and run on `px` under `stim` in the simulator and in `rtl`:
/// panics (naming `label`) where the traces differ, else returns the (common) trace.
fn compare(
    rtl: Rtl,
    design: &Design,
    dir: &Path,
    px: &[u8],
    stim: Stimulus,
    label: &str,
) -> sim::trace::Trace {
    let _ = std::fs::remove_dir_all(dir);
    compiler::write_build(design, dir).unwrap();
    let ports = sim::ports(design);
    println!(
        "{label}: {}, {}-bit {} input",
        design.model, ports.input_width, ports.input_format
    );
    let ours = sim::run(design, px, stim, 1_000_000, None).unwrap();
    let stream = design.input().stream_bytes(px);
    let theirs = testbenches::run(dir, &ports, rtl, &stream, stim, 1_000_000)
        .unwrap_or_else(|e| panic!("{label} ({}): {e}", dir.display()));
    if let Some(d) = ours.trace.first_divergence(&theirs.trace, &ports) {
        let wrong = ours
            .trace
            .outputs
            .iter()
            .zip(&theirs.trace.outputs)
            .filter(|(a, b)| a.scores != b.scores)
            .count();
        panic!(
            "{label} {} ({}), {stim:?}: sim and {rtl} diverge at cycle {} in {:?}: {}; \
             other scores on {wrong} of {} frames",
            design.model,
            dir.display(),
            d.cycle,
            d.stages,
            d.detail,
            ours.trace.outputs.len()
        );
    }
    assert_eq!(ours.trace, theirs.trace);
    let _ = std::fs::remove_dir_all(dir);
    ours.trace
}

#[test]
fn sim_matches_verilator_under_bubbles_and_stalls() {
    check(Rtl::Verilator, 4, 0xBEEF);
}

#[test]
fn sim_matches_icarus_under_bubbles_and_stalls() {
    check(Rtl::Icarus, 3, 0xCAFE);
}

/// Lanes wider than a u64 word with deep popcount trees, several PEs, wide input beats and
/// (in about a third of the layers) weights loaded into RAM after reset.
#[test]
fn wide_lanes_match_verilator_under_bubbles_and_stalls() {
    check_folded(Rtl::Verilator, 3, 0x51DE, wide_model, wide_folding);
}

#[test]
fn wide_lanes_match_icarus_under_bubbles_and_stalls() {
    check_folded(Rtl::Icarus, 2, 0x1DE5, wide_model, wide_folding);
}

/// Input beats wider than a word: 16, 49 and 64 pixel bytes per beat (up to a 512-bit
/// `s_data`, which Verilator drives as 32-bit words) and packed one-bit pixels, 8 to 512 per
/// beat (see [`compiler::random::random_wide_input`]).
#[test]
fn wide_and_packed_input_match_verilator_under_bubbles_and_stalls() {
    check_cases(
        Rtl::Verilator,
        4,
        0x1DEA,
        &compiler::random::random_wide_input,
    );
}

#[test]
fn wide_and_packed_input_match_icarus_under_bubbles_and_stalls() {
    check_cases(Rtl::Icarus, 4, 0x9ACC, &compiler::random::random_wide_input);
}

/// Convolutional networks (see [`compiler::random::random_conv_model`]): sliding windows,
/// convolution MVTUs, pools and collect units in Verilog against their cycle models.
/// A first layer that buffers its input in a RAM of two frames, fed in chunks by the adapter:
/// every encoding, several pixels per beat, one and two read registers.
#[test]
fn input_ram_matches_verilator_under_bubbles_and_stalls() {
    check_cases(
        Rtl::Verilator,
        4,
        0x4A3,
        &compiler::random::random_input_ram,
    );
}

#[test]
fn input_ram_matches_icarus_under_bubbles_and_stalls() {
    check_cases(Rtl::Icarus, 3, 0x4A4, &compiler::random::random_input_ram);
}

/// Later layers that keep their input vector in a RAM of two vectors, fed in chunks by the
/// layer before (see [`compiler::random::random_vector_ram`]): chunks of 1 to 12 bits,
/// producers with output queues, one and two read registers.
#[test]
fn vector_ram_matches_verilator_under_bubbles_and_stalls() {
    check_cases(
        Rtl::Verilator,
        3,
        0x7EC,
        &compiler::random::random_vector_ram,
    );
}

#[test]
fn vector_ram_matches_icarus_under_bubbles_and_stalls() {
    check_cases(Rtl::Icarus, 4, 0x7ED, &compiler::random::random_vector_ram);
}

/// Layers working on several frames per weight read (see [`compiler::random::random_mmv`]):
/// batches of 2 to 8 slots, full and partial, under bubbles and stalls.
#[test]
fn frames_per_weight_read_match_verilator_under_bubbles_and_stalls() {
    check_cases(Rtl::Verilator, 5, 0x33A1, &compiler::random::random_mmv);
}

#[test]
fn frames_per_weight_read_match_icarus_under_bubbles_and_stalls() {
    check_cases(Rtl::Icarus, 4, 0x33A2, &compiler::random::random_mmv);
}

/// A design of [`compiler::random::random_mmv`] with a layer for which `wanted` holds.
fn random_mmv_with(rng: &mut Rng, wanted: fn(&compiler::ir::Mvtu) -> bool) -> (Model, FoldFile) {
    loop {
        let (model, fold) = compiler::random::random_mmv(rng);
        let design = compiler::compile(&model, &FoldSpec::Manual(fold.clone())).unwrap();
        if design.mvtus().any(wanted) {
            return (model, fold);
        }
    }
}

/// Layers with frames per weight read whose PEs read their input chunk from several copies of
/// its register (see `Mvtu::input_copies`).
fn random_mmv_copies(rng: &mut Rng) -> (Model, FoldFile) {
    random_mmv_with(rng, |l| l.input_copies() > 1)
}

#[test]
fn input_chunk_copies_match_verilator_under_bubbles_and_stalls() {
    check_cases(Rtl::Verilator, 2, 0xC0B1, &random_mmv_copies);
}

#[test]
fn input_chunk_copies_match_icarus_under_bubbles_and_stalls() {
    check_cases(Rtl::Icarus, 2, 0xC0B2, &random_mmv_copies);
}

/// Layers with frames per weight read whose frames are wider than one slice, so they are
/// collected in several (see `Mvtu::frame_slices`).
fn random_mmv_slices(rng: &mut Rng) -> (Model, FoldFile) {
    random_mmv_with(rng, |l| l.frame_slices() > 1)
}

#[test]
fn frame_slices_match_verilator_under_bubbles_and_stalls() {
    check_cases(Rtl::Verilator, 2, 0x511C, &random_mmv_slices);
}

#[test]
fn frame_slices_match_icarus_under_bubbles_and_stalls() {
    check_cases(Rtl::Icarus, 2, 0x511D, &random_mmv_slices);
}

/// Hidden layers padded with idle neurons (see [`compiler::random::random_idle_neurons`]).
#[test]
fn idle_neurons_match_verilator_under_bubbles_and_stalls() {
    check_cases(
        Rtl::Verilator,
        3,
        0x1D1F,
        &compiler::random::random_idle_neurons,
    );
}

#[test]
fn idle_neurons_match_icarus_under_bubbles_and_stalls() {
    check_cases(
        Rtl::Icarus,
        3,
        0x1D20,
        &compiler::random::random_idle_neurons,
    );
}

/// Layers that read their popcounts from tables of 2 to 4 inputs (dense and convolutional,
/// every SIMD, so that the last group of a chunk is often shorter).
#[test]
fn table_layers_match_verilator_under_bubbles_and_stalls() {
    check_cases(Rtl::Verilator, 4, 0x7AB1, &compiler::random::random_tables);
}

#[test]
fn table_layers_match_icarus_under_bubbles_and_stalls() {
    check_cases(Rtl::Icarus, 4, 0x7AB2, &compiler::random::random_tables);
}

/// Tables read in pairs through the two ports of one memory, a shorter group beside a longer.
#[test]
fn paired_tables_match_verilator_under_bubbles_and_stalls() {
    check_cases(
        Rtl::Verilator,
        3,
        0xDA1,
        &compiler::random::random_paired_tables,
    );
}

#[test]
fn paired_tables_match_icarus_under_bubbles_and_stalls() {
    check_cases(
        Rtl::Icarus,
        3,
        0xDA2,
        &compiler::random::random_paired_tables,
    );
}

#[test]
fn conv_sim_matches_verilator_under_bubbles_and_stalls() {
    check_models(
        Rtl::Verilator,
        3,
        0xC0A7,
        compiler::random::random_conv_model,
    );
}

#[test]
fn conv_sim_matches_icarus_under_bubbles_and_stalls() {
    check_models(Rtl::Icarus, 3, 0x1CA7, compiler::random::random_conv_model);
}

/// A fully unrolled first convolution with a ternary first tree level: 32 channels of a 3x3
/// window on one input channel at PE 32 x SIMD 9 (the trained CNN's `32x9` first layer), so
/// that the weights are constants in the XNORs, and two adder levels per stage (the ECP5 at
/// 125 MHz). Verilator 5.006 (Debian's) miscompiles the full adders' gate form,
/// `p = a ^ b; {(a & b) | (p & c), p ^ c}`, once constant weights fold into the XNORs: with it
/// every one of these frames scored differently from the simulator, while Icarus agreed; the
/// random networks above did not catch it.
#[test]
fn constant_weight_ternary_layer_matches_rtl() {
    use compiler::passes::folding::LayerFold;
    use flip::model::arch::LayerSpec;
    let input = flip::model::InputSpec {
        width: 8,
        height: 8,
        channels: 1,
        pixel_bits: 8,
        encoding: flip::encoding::Encoding::Threshold(128),
    };
    let specs = [
        LayerSpec::Conv {
            channels: 32,
            kernel: 3,
        },
        LayerSpec::Pool,
        LayerSpec::Dense(4),
    ];
    let model = flip::model::random::binary(0x3209, input, &specs, 4);
    let mut fold = FoldFile::from(vec![
        LayerFold { pe: 32, simd: 9 },
        LayerFold { pe: 1, simd: 32 },
    ]);
    fold.stage_levels = Some(2);
    let design = compiler::compile(&model, &FoldSpec::Manual(fold)).unwrap();
    let first = design.mvtus().next().unwrap();
    assert_eq!(
        first.neuron_folds() * first.synapse_folds(),
        1,
        "one weight word"
    );
    assert!(
        !first.is_loaded() && first.ternary_tree(),
        "constant, ternary"
    );
    for rtl in [Rtl::Verilator, Rtl::Icarus] {
        if let Err(e) = testbenches::available(rtl) {
            testbenches::tool_missing(&e.to_string());
            continue;
        }
        let mut rng = Rng(0x3209);
        let px = random_pixels(&mut rng, &model, 20);
        let stim = Stimulus {
            seed: rng.next_u64(),
            bubble_pct: 20,
            stall_pct: 20,
        };
        let dir = std::env::temp_dir().join(format!(
            "flipchip-sim-rtl-constant-{}-{}",
            rtl.name(),
            std::process::id()
        ));
        compare(rtl, &design, &dir, &px, stim, "32x9 unrolled");
    }
}

/// The comparison has teeth: a layer that ignores back-pressure (and so overwrites a result
/// the next stage has not taken) is caught, at the first cycle where the traces part.
#[test]
fn a_layer_that_ignores_back_pressure_is_caught() {
    let rtl = Rtl::Verilator;
    if let Err(e) = testbenches::available(rtl) {
        testbenches::tool_missing(&e.to_string());
        return;
    }
    let mut rng = Rng(21);
    let model = random_model(
        &mut rng,
        4,
        8,
        flip::encoding::Encoding::Threshold(100),
        &[6, 5, 3],
    );
    // Fully parallel layers: results pile up behind a stalled sink.
    let design = compiler::compile(&model, &FoldSpec::auto(Some(1))).unwrap();
    let dir = std::env::temp_dir().join(format!("flipchip-sim-rtl-broken-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    compiler::write_build(&design, &dir).unwrap();
    let file = dir.join("l2_mvtu.v");
    // Stage A issues frames whatever the output side holds, so results overwrite each other
    // (the credit check now and, where `advance` is a register, a cycle ahead).
    let text = std::fs::read_to_string(&file).unwrap();
    let checks: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let name = ["wire l2_mvtu_room = ", "wire l2_mvtu_room_d = "]
                .into_iter()
                .find(|p| l.starts_with(p))?;
            Some((l.to_string(), format!("{name}1'b1;")))
        })
        .collect();
    assert!(!checks.is_empty(), "the layer's credit check");
    let broken = checks
        .iter()
        .fold(text.clone(), |t, (good, bad)| t.replace(good, bad));
    std::fs::write(&file, broken).unwrap();
    let px = random_pixels(&mut rng, &model, 20);
    let stim = Stimulus {
        seed: 5,
        bubble_pct: 0,
        stall_pct: 90,
    };
    let ports = sim::ports(&design);
    let ours = sim::run(&design, &px, stim, 100_000, None).unwrap();
    let theirs = match testbenches::run(&dir, &ports, rtl, &px, stim, 20_000) {
        Ok(r) => r.trace,
        Err(testbenches::HarnessError::Timeout { trace, .. }) => *trace,
        Err(e) => panic!("{e}"),
    };
    let d = ours
        .trace
        .first_divergence(&theirs, &ports)
        .expect("the broken layer is caught");
    println!(
        "caught at cycle {} in {:?}: {}",
        d.cycle, d.stages, d.detail
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The argmax scan against both simulators: 1, 2, 3 and 12 classes behind a fully parallel
/// layer (so that with many classes the argmax is the slowest stage and back-pressure reaches
/// it from both sides), scores that tie often and go negative, under bubbles and heavy stalls.
#[test]
fn argmax_scan_matches_rtl_with_ties_and_stalls() {
    use flip::model::{Activation, Layer};
    for rtl in [Rtl::Verilator, Rtl::Icarus] {
        if let Err(e) = testbenches::available(rtl) {
            testbenches::tool_missing(&e.to_string());
            continue;
        }
        let mut rng = Rng(0xA59);
        let mut ties = 0;
        for classes in [1, 2, 3, 12] {
            let mut model = random_model(
                &mut rng,
                3,
                4,
                flip::encoding::Encoding::Threshold(8),
                &[classes],
            );
            // Scores `popcount(0..=3) - 3..=-2`: few values, so ties are common.
            let Layer::Binary(l) = &mut model.layers[0] else {
                unreachable!("random models are binary")
            };
            let Activation::Scores { bias, .. } = &mut l.activation else {
                unreachable!("the last layer gives scores")
            };
            for b in bias.iter_mut() {
                *b = rng.irange(-3, -2) as i32;
            }
            let design = compiler::compile(&model, &FoldSpec::auto(Some(1))).unwrap();
            let dir = std::env::temp_dir().join(format!(
                "flipchip-sim-rtl-argmax-{}-{}-{classes}",
                rtl.name(),
                std::process::id()
            ));
            let frames = 24;
            let px = random_pixels(&mut rng, &model, frames);
            let stim = Stimulus {
                seed: rng.next_u64(),
                bubble_pct: 20,
                stall_pct: 60,
            };
            let trace = compare(rtl, &design, &dir, &px, stim, &format!("{classes} classes"));
            assert_eq!(trace.outputs.len(), frames);
            for o in &trace.outputs {
                assert_eq!(o.class as usize, flip::reference::argmax(&o.scores));
                let max = o.scores.iter().max().unwrap();
                ties += usize::from(o.scores.iter().filter(|&s| s == max).count() > 1);
            }
        }
        assert!(ties > 0, "no tied scores to break");
    }
}
