//! Runs one block's generated Verilog in Icarus Verilog next to its cycle model and compares the
//! two cycle by cycle (tests only).
//!
//! A generated testbench drives the module from files: the input beats, a pattern of input
//! bubbles (the source offers its next beat only where the pattern says so, and then keeps it
//! offered until taken, as a stream source must) and a pattern of output back-pressure. Every
//! cycle it prints `in_valid in_ready out_valid out_data` (the data only while valid); the
//! cycle model, driven by the same patterns, prints the same lines, and the first line that
//! differs fails the test. The tools are required: a missing `iverilog` fails the test rather
//! than skipping it, so a green run always means the Verilog was simulated.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use flip::featuremap::copy_bits;
use flip::train::rng::splitmix;

use super::{hex, Beat, Block, CycleModel};

/// The flat Verilog value of a beat of `planes` planes of `plane_bits` bits each (plane `k` at
/// bits `k * plane_bits ..`), as hex digits.
pub(crate) fn bits_hex(beat: &Beat, planes: usize, plane_bits: usize) -> String {
    let Beat::Bits(words) = beat else {
        panic!("expected a bit beat, got {beat:?}")
    };
    let w = flip::bits::words_for(plane_bits);
    let mut flat = vec![0u64; flip::bits::words_for(planes * plane_bits) + 1];
    for k in 0..planes {
        copy_bits(&words[k * w..], 0, &mut flat, k * plane_bits, plane_bits);
    }
    hex(&flat, planes * plane_bits)
}

/// A pattern of `n` cycles, each high with probability `percent`%, from `seed`.
pub(crate) fn pattern(seed: u64, n: usize, percent: u64) -> Vec<bool> {
    let mut s = seed;
    (0..n).map(|_| splitmix(&mut s) % 100 < percent).collect()
}

/// What one run of a block drives.
pub(crate) struct Run<'a> {
    /// Short tag for the run's directory and messages.
    pub tag: String,
    /// The input beats, in order.
    pub beats: &'a [Beat],
    /// Hex of each input beat (the same length as `beats`).
    pub beats_hex: Vec<String>,
    /// Source offers a new beat in cycle `t` only if `offer[t]`.
    pub offer: Vec<bool>,
    /// `out_ready` in cycle `t`.
    pub ready: Vec<bool>,
}

/// The per-cycle trace of the cycle model under `run`, and the output beats it delivered.
pub(crate) fn model_trace(
    block: &dyn Block,
    run: &Run,
    out_hex: &dyn Fn(&Beat) -> String,
) -> (Vec<String>, Vec<Beat>) {
    let mut m = block.cycle_model();
    let (mut idx, mut stuck) = (0, false);
    let mut lines = Vec::with_capacity(run.offer.len());
    let mut outs = Vec::new();
    for (&offer, &ready) in run.offer.iter().zip(&run.ready) {
        let in_valid = idx < run.beats.len() && (stuck || offer);
        let in_ready = m.in_ready(ready);
        let out_valid = m.out_valid();
        let data = if out_valid {
            out_hex(m.out_data())
        } else {
            "-".into()
        };
        lines.push(format!(
            "{} {} {} {data}",
            in_valid as u8, in_ready as u8, out_valid as u8
        ));
        if out_valid && ready {
            outs.push(m.out_data().clone());
        }
        let fire = in_valid && in_ready;
        m.clock(fire.then(|| &run.beats[idx]), ready);
        if fire {
            idx += 1;
        }
        stuck = in_valid && !fire;
    }
    (lines, outs)
}

/// A fresh directory for one run; the counter keeps apart the runs of tests side by side in
/// one process (two tests may lint the same module at once).
fn dir_for(name: &str, tag: &str) -> PathBuf {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!(
        "flipchip-rtl-{name}-{tag}-{}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&d).expect("create the test directory");
    d
}

fn run_tool(dir: &Path, prog: &str, args: &[&str]) -> String {
    let path = tools::require(&[prog], tools::INSTALL).unwrap_or_else(|e| panic!("{e}"));
    tools::Run::new(prog, path, format!("{prog}.log"))
        .args(args)
        .current_dir(dir)
        .run()
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
}

/// Checks a cycle model's [`CycleModel::quiet_inputs`]: whenever it promises `q > 0` beats,
/// one is fed with the output held back and `in_ready` and `out_valid` must not change and the
/// promise must drop to `q - 1`; otherwise the model steps with `out_ready = ready[t]`.
/// Returns how many beats were fed under a promise (so a caller can see the check bit).
pub(crate) fn check_quiet_inputs(block: &dyn Block, beats: &[Beat], ready: &[bool]) -> usize {
    let mut m = block.cycle_model();
    let (mut idx, mut promised) = (0, 0);
    for (t, &r) in ready.iter().enumerate() {
        if idx == beats.len() {
            break;
        }
        let q = m.quiet_inputs();
        if q > 0 {
            let before = (m.in_ready(false), m.out_valid());
            assert!(
                before.0,
                "{}: cycle {t}: {q} quiet inputs but not ready",
                block.name()
            );
            m.clock(Some(&beats[idx]), false);
            idx += 1;
            promised += 1;
            assert_eq!(
                (m.in_ready(false), m.out_valid()),
                before,
                "{}: cycle {t}: a quiet input changed the handshake",
                block.name()
            );
            assert_eq!(m.quiet_inputs(), q - 1, "{}: cycle {t}", block.name());
        } else {
            let fire = m.in_ready(r);
            m.clock(fire.then(|| &beats[idx]), r);
            idx += usize::from(fire);
        }
    }
    assert_eq!(idx, beats.len(), "{}: every beat fed", block.name());
    promised
}

/// `verilator --lint-only -Wall` on the block's module alone.
pub(crate) fn lint(block: &dyn Block) {
    let name = block.name();
    let dir = dir_for(&name, "lint");
    let file = format!("{name}.v");
    std::fs::write(dir.join(&file), block.emit_verilog("// lint\n")).expect("write the module");
    run_tool(&dir, "verilator", &["--lint-only", "-Wall", &file]);
    std::fs::remove_dir_all(&dir).ok();
}

/// The testbench: reads the beats and patterns, drives the module, prints one line per cycle.
fn testbench(block: &dyn Block, run: &Run) -> String {
    let (n, iw, ow) = (block.name(), block.in_width(), block.out_width());
    let (cycles, beats) = (run.offer.len(), run.beats.len().max(1));
    let mut v = String::new();
    let _ = write!(
        v,
        "`timescale 1ns/1ps\nmodule tb;\n\
         reg clk = 1'b0;\nreg rst = 1'b1;\nreg in_valid = 1'b0;\nwire in_ready;\n\
         reg [{im}:0] in_data;\nwire out_valid;\nreg out_ready = 1'b0;\nwire [{om}:0] out_data;\n\
         reg [{im}:0] beats [0:{bm}];\nreg offer [0:{cm}];\nreg ready [0:{cm}];\n\
         integer t, idx, f;\nreg stuck, fire;\n\
         {n} dut (.clk(clk), .rst(rst), .in_valid(in_valid), .in_ready(in_ready), \
         .in_data(in_data), .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data));\n\
         always #5 clk = ~clk;\n\
         initial begin\n\
         \x20   $readmemh(\"beats.hex\", beats);\n\
         \x20   $readmemh(\"offer.hex\", offer);\n\
         \x20   $readmemh(\"ready.hex\", ready);\n\
         \x20   f = $fopen(\"trace.txt\", \"w\");\n\
         \x20   idx = 0; stuck = 1'b0; in_data = beats[0];\n\
         \x20   @(posedge clk); @(posedge clk); #1 rst = 1'b0;\n\
         \x20   for (t = 0; t < {cycles}; t = t + 1) begin\n\
         \x20       in_valid = (idx < {nb}) && (stuck || offer[t]);\n\
         \x20       in_data = beats[idx < {nb} ? idx : 0];\n\
         \x20       out_ready = ready[t];\n\
         \x20       #2;\n\
         \x20       if (out_valid) $fwrite(f, \"%0d %0d %0d %h\\n\", in_valid, in_ready, out_valid, out_data);\n\
         \x20       else $fwrite(f, \"%0d %0d %0d -\\n\", in_valid, in_ready, out_valid);\n\
         \x20       fire = in_valid && in_ready;\n\
         \x20       @(posedge clk); #1;\n\
         \x20       if (fire) idx = idx + 1;\n\
         \x20       stuck = in_valid && !fire;\n\
         \x20   end\n\
         \x20   $fclose(f);\n\
         \x20   $finish;\n\
         end\nendmodule\n",
        im = iw - 1,
        om = ow - 1,
        bm = beats - 1,
        cm = cycles - 1,
        nb = run.beats.len(),
    );
    v
}

/// Simulates the block's Verilog under `run` in Icarus and compares every cycle with its cycle
/// model; returns the output beats delivered (taken with `out_ready`).
pub(crate) fn check(block: &dyn Block, run: &Run, out_hex: &dyn Fn(&Beat) -> String) -> Vec<Beat> {
    assert_eq!(run.beats.len(), run.beats_hex.len());
    assert_eq!(run.offer.len(), run.ready.len());
    let name = block.name();
    let dir = dir_for(&name, &run.tag);
    let file = format!("{name}.v");
    std::fs::write(dir.join(&file), block.emit_verilog("// test\n")).expect("write the module");
    std::fs::write(dir.join("tb.v"), testbench(block, run)).expect("write the testbench");
    let lines = |v: &[String]| v.join("\n") + "\n";
    let bits = |p: &[bool]| {
        p.iter()
            .map(|&b| if b { "1\n" } else { "0\n" })
            .collect::<String>()
    };
    let beats = if run.beats_hex.is_empty() {
        "0\n".to_string()
    } else {
        lines(&run.beats_hex)
    };
    std::fs::write(dir.join("beats.hex"), beats).expect("write the beats");
    std::fs::write(dir.join("offer.hex"), bits(&run.offer)).expect("write the pattern");
    std::fs::write(dir.join("ready.hex"), bits(&run.ready)).expect("write the pattern");
    run_tool(
        &dir,
        "iverilog",
        &["-g2005", "-o", "sim.vvp", "tb.v", &file],
    );
    run_tool(&dir, "vvp", &["-n", "sim.vvp"]);
    let rtl = std::fs::read_to_string(dir.join("trace.txt")).expect("the testbench wrote a trace");
    let (model, outs) = model_trace(block, run, out_hex);
    for (t, (r, m)) in rtl.lines().zip(&model).enumerate() {
        // Icarus prints hex digits of a wide value in lower case, as `hex` does.
        assert_eq!(
            r,
            m,
            "{name} ({}): cycle {t} differs (RTL vs model, `in_valid in_ready out_valid \
             out_data`); files in {}",
            run.tag,
            dir.display()
        );
    }
    assert_eq!(rtl.lines().count(), model.len(), "{name}: trace length");
    std::fs::remove_dir_all(&dir).ok();
    outs
}
