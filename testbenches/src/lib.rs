//! Verilator and Icarus harnesses for generated designs.
//!
//! [`run`] simulates a build directory (a `ports.json` plus the Verilog files it lists) under an
//! RTL simulator with exactly the per-cycle stimulus of [`sim::stimulus`] and returns the
//! [`sim::trace::Trace`] it observed, so the result compares with `==` against the Rust
//! simulator and against the other RTL simulator.
//!
//! # Top-level ports
//!
//! `clk`, `rst` (active high, synchronous), `s_valid`, `s_ready`, `s_data[input_width]`,
//! `m_valid`, `m_ready`, `m_class[class_width]`, `m_scores[classes * score_width]`,
//! `dbg_fire[stages.len()]`. Only the rising edge of `clk` may be used.
//!
//! # Stimulus (both simulators)
//!
//! - [`RESET_CYCLES`] cycles with `rst = 1`, `s_valid = 0`, `m_ready = 0`, `s_data = 0`.
//! - Cycle `t` (from 0): `s_valid = have_beat && !bubble`, `m_ready = !stall` with
//!   `Stimulus::at(t)`; `s_data` is the next unsent beat whenever one is left, even in a bubble,
//!   and 0 once every beat was sent. The design settles, then `s_ready`, `m_valid`, `m_class`,
//!   `m_scores` and `dbg_fire` are sampled (the handshake of cycle `t`), then the rising edge.
//! - The run stops after the cycle of the `n_beats / beats_per_frame`-th output beat
//!   ([`Trace::cycles`] is that cycle + 1), or fails with [`HarnessError::Timeout`] after
//!   `max_cycles` cycles.
//!
//! # Beats
//!
//! One beat is `ceil(input_width / 8)` bytes of `beats`, little-endian (one byte per beat for
//! `input_width <= 8`); `input_width` may be 1..=512 (Verilator drives ports wider than 64
//! bits as arrays of 32-bit words). Bits above `input_width` must be zero. The bytes are the
//! same whatever `input_format` says: the stream a design takes (see
//! `compiler::ir::InputAdapter::stream_bytes`).
//!
//! # Trace file
//!
//! Both testbenches write the same line-oriented text file, all numbers in lower-case hex
//! without `0x` (any number of digits; Icarus pads to the signal width):
//!
//! ```text
//! F <cycle> <fire>                every cycle with a handshake: dbg_fire, and above its
//!                                 stages.len() bits the input handshake s_valid && s_ready
//! O <cycle> <m_class> <m_scores>  every cycle with m_valid && m_ready; m_scores is the raw port
//! X <cycle> <signal>              Icarus only: s_ready or m_valid was X/Z (the run stops)
//! E <cycles> <outputs> [<ns>]     end: cycles simulated, output beats seen, and (Verilator)
//!                                 nanoseconds spent in the simulation loop
//! ```
//!
//! `x`/`z` digits (Icarus) in `dbg_fire`, `m_class` or `m_scores` are reported as
//! [`HarnessError::Unknown`].
//!
//! # Cache
//!
//! Compiled testbenches live in `<build_dir>/obj_verilator/<hash>/` (binary `Vtb`) and
//! `<build_dir>/obj_icarus/<hash>/` (`tb.vvp`), where `<hash>` (FNV-1a 64) covers the names and
//! contents of the Verilog files in `ports.json`, the generated testbench (which encodes the port
//! widths), the top name, the tool version and the flags. Files pulled in with `` `include `` are
//! not hashed. A lock file (`obj_<tool>/.lock`, `flock`) serialises building across threads and
//! processes, so a second caller waits and then finds the build; builds go to a staging
//! directory renamed into place, and older hashes are removed after a new build. Each run uses a
//! fresh `obj_<tool>/run-<pid>-<n>/` for its beats and trace files, removed afterwards.
//!
//! Verilator builds run `verilator --cc --exe` and then `make` themselves, so that the
//! Verilator runtime objects (`verilated.o`, `verilated_threads.o`: most of the C++ compile
//! time) can be shared between build directories: they are kept in
//! `$FLIPCHIP_VERILATOR_RUNTIME` (default `<temp dir>/flipchip-verilator-runtime/<key>/`),
//! keyed by the exact compile commands (`make -n`), the C++ compiler's and Verilator's versions.
//! If linking with a shared copy fails, the build is redone from scratch and the copy replaced.

mod cache;
mod icarus;
mod tracefile;
mod verilator;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sim::stimulus::Stimulus;
use sim::trace::{Ports, Trace, MAX_INPUT_BITS};

pub use cache::Key;
pub use sim::stimulus::RESET_CYCLES;

/// An RTL simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rtl {
    /// Verilator (C++ model compiled with `-O3`, our own C++ testbench).
    Verilator,
    /// Icarus Verilog (`iverilog` + `vvp`, Verilog testbench).
    Icarus,
}

impl Rtl {
    /// Name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Rtl::Verilator => "verilator",
            Rtl::Icarus => "icarus",
        }
    }
}

impl std::fmt::Display for Rtl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// A finished RTL run.
#[derive(Clone, Debug)]
pub struct RtlRun {
    /// What the design did.
    pub trace: Trace,
    /// Seconds of simulation only (no compilation). Verilator: the testbench's own clock around
    /// its cycle loop (including trace writing). Icarus: wall time of the `vvp` process.
    pub seconds: f64,
    /// `trace.cycles / seconds`.
    pub cycles_per_second: f64,
    /// Seconds spent compiling the testbench in this call (0 when the cache was used).
    pub compile_seconds: f64,
}

/// Everything that can go wrong in a harness run.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A program the simulator needs is missing, failed, or ran past its limit.
    #[error("{rtl}: {source}")]
    Tool {
        rtl: Rtl,
        #[source]
        source: tools::ToolError,
    },
    /// `ports.json` describes something the harness cannot drive.
    #[error("unsupported ports: {0}")]
    Ports(String),
    /// The input beats do not fit the ports.
    #[error("bad input beats: {0}")]
    Beats(String),
    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The testbench or design compiled without producing its binary.
    #[error("{tool} compilation failed: {detail}")]
    Compile { tool: Rtl, detail: String },
    /// The simulation reported an error of its own (a testbench check).
    #[error("{tool} simulation failed; see {}:\n{tail}", log.display())]
    Simulation {
        tool: Rtl,
        log: PathBuf,
        tail: String,
    },
    /// `max_cycles` passed before every output beat arrived. `trace` holds what was observed.
    #[error("{tool}: only {outputs} of {expected} output beats after {cycles} cycles (max_cycles reached)")]
    Timeout {
        tool: Rtl,
        outputs: usize,
        expected: usize,
        cycles: u64,
        trace: Box<Trace>,
    },
    /// A signal was X or Z (Icarus).
    #[error("{tool}: {signal} is X/Z in cycle {cycle}{detail}")]
    Unknown {
        tool: Rtl,
        cycle: u64,
        signal: String,
        detail: String,
    },
    /// The trace file could not be understood (a harness bug).
    #[error("{tool} trace line {line}: {msg}")]
    TraceFormat { tool: Rtl, line: usize, msg: String },
}

pub(crate) fn io_err(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> HarnessError {
    let path = path.to_path_buf();
    move |source| HarnessError::Io {
        action,
        path,
        source,
    }
}

impl HarnessError {
    /// True when a program the simulator needs is not installed.
    pub fn is_tool_missing(&self) -> bool {
        matches!(self, HarnessError::Tool { source, .. } if source.is_missing())
    }
}

pub use tools::{tool_missing, tools_required, REQUIRE_TOOLS};

/// `name` on PATH (or in the project's venv), for `rtl`.
pub(crate) fn program(rtl: Rtl, name: &str) -> Result<PathBuf, HarnessError> {
    tools::require(&[name], tools::INSTALL).map_err(|source| HarnessError::Tool { rtl, source })
}

/// The version line of `name` (see [`tools::version`]).
pub(crate) fn version(rtl: Rtl, name: &str, flag: &str) -> Result<String, HarnessError> {
    let path = program(rtl, name)?;
    tools::version(&path, flag).map_err(|source| HarnessError::Tool { rtl, source })
}

/// Runs `run`, turning failure into [`HarnessError::Tool`].
pub(crate) fn run_tool(rtl: Rtl, run: &tools::Run) -> Result<tools::Ran, HarnessError> {
    run.run()
        .map_err(|source| HarnessError::Tool { rtl, source })
}

/// Checks that `rtl`'s programs are installed and runnable.
pub fn available(rtl: Rtl) -> Result<(), HarnessError> {
    let progs: &[(&str, &str)] = match rtl {
        // The verilated model is built with make and the C++ compiler verilated.mk uses.
        Rtl::Verilator => &[
            ("verilator", "--version"),
            ("make", "--version"),
            ("g++", "--version"),
        ],
        Rtl::Icarus => &[("iverilog", "-V"), ("vvp", "-V")],
    };
    for &(prog, flag) in progs {
        version(rtl, prog, flag)?;
    }
    Ok(())
}

/// Reads `<build_dir>/ports.json`.
pub fn read_ports(build_dir: &Path) -> Result<Ports, HarnessError> {
    let path = build_dir.join("ports.json");
    let text = std::fs::read_to_string(&path).map_err(io_err("reading", &path))?;
    serde_json::from_str(&text).map_err(|e| HarnessError::Ports(format!("{}: {e}", path.display())))
}

/// Bytes of `beats` per input beat.
pub fn bytes_per_beat(ports: &Ports) -> usize {
    (ports.input_width as usize).div_ceil(8).max(1)
}

/// u64 words per decoded input beat (see [`decode_beats`]).
pub fn words_per_beat(ports: &Ports) -> usize {
    (ports.input_width as usize).div_ceil(64).max(1)
}

/// The run parameters shared by both testbenches.
pub(crate) struct Job<'a> {
    pub build_dir: &'a Path,
    pub ports: &'a Ports,
    /// Beats as [`words_per_beat`] words each, the lowest first, flat.
    pub beats: Vec<u64>,
    /// Output beats to wait for.
    pub expected: usize,
    pub stim: Stimulus,
    pub max_cycles: u64,
    /// A fresh directory for this run's files.
    pub run_dir: PathBuf,
}

/// What a testbench process reported.
pub(crate) struct Finished {
    pub trace_path: PathBuf,
    /// Simulation seconds measured outside the trace (Icarus), if any.
    pub wall_seconds: f64,
    pub compile_seconds: f64,
}

/// Runs `build_dir`'s design under `rtl` with `beats` and `stim`; see the crate documentation for
/// the exact protocol.
pub fn run(
    build_dir: &Path,
    ports: &Ports,
    rtl: Rtl,
    beats: &[u8],
    stim: Stimulus,
    max_cycles: u64,
) -> Result<RtlRun, HarnessError> {
    available(rtl)?;
    check_ports(ports)?;
    let beats = decode_beats(ports, beats)?;
    let expected = beats.len() / words_per_beat(ports) / ports.beats_per_frame as usize;
    let run_dir = fresh_run_dir(build_dir, rtl)?;
    let job = Job {
        build_dir,
        ports,
        beats,
        expected,
        stim,
        max_cycles,
        run_dir: run_dir.clone(),
    };
    let result = (|| {
        let fin = match rtl {
            Rtl::Verilator => verilator::run(&job)?,
            Rtl::Icarus => icarus::run(&job)?,
        };
        let parsed = tracefile::parse(rtl, &fin.trace_path, ports)?;
        if parsed.trace.outputs.len() < expected {
            return Err(HarnessError::Timeout {
                tool: rtl,
                outputs: parsed.trace.outputs.len(),
                expected,
                cycles: parsed.trace.cycles,
                trace: Box::new(parsed.trace),
            });
        }
        let seconds = parsed.loop_seconds.unwrap_or(fin.wall_seconds).max(1e-9);
        Ok(RtlRun {
            cycles_per_second: parsed.trace.cycles as f64 / seconds,
            trace: parsed.trace,
            seconds,
            compile_seconds: fin.compile_seconds,
        })
    })();
    // A failed tool's log stays for its error message to point at.
    if !matches!(
        result,
        Err(HarnessError::Tool { .. } | HarnessError::Simulation { .. })
    ) {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    result
}

/// Rejects port shapes the harnesses cannot drive.
pub fn check_ports(p: &Ports) -> Result<(), HarnessError> {
    let bad = |m: String| Err(HarnessError::Ports(m));
    let ident = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !ident(&p.top) {
        return bad(format!("top {:?} is not a plain identifier", p.top));
    }
    if p.files.is_empty() {
        return bad("no Verilog files".into());
    }
    if !(1..=MAX_INPUT_BITS as u32).contains(&p.input_width) {
        return bad(format!(
            "input_width {} not in 1..={MAX_INPUT_BITS}",
            p.input_width
        ));
    }
    if p.beats_per_frame == 0 {
        return bad("beats_per_frame is 0".into());
    }
    if !(1..=32).contains(&p.class_width) {
        return bad(format!("class_width {} not in 1..=32", p.class_width));
    }
    if p.classes == 0 {
        return bad("classes is 0".into());
    }
    if !(1..=64).contains(&p.score_width) {
        return bad(format!("score_width {} not in 1..=64", p.score_width));
    }
    // The trace's fire word holds every stage's bit and the input handshake's.
    if !(1..=63).contains(&p.stages.len()) {
        return bad(format!(
            "{} stages, the trace records at most 63 (and the input handshake)",
            p.stages.len()
        ));
    }
    Ok(())
}

/// Splits `bytes` into beats of [`bytes_per_beat`] little-endian bytes, each as
/// [`words_per_beat`] u64 words (the lowest first), flat.
pub fn decode_beats(ports: &Ports, bytes: &[u8]) -> Result<Vec<u64>, HarnessError> {
    let n = bytes_per_beat(ports);
    if !bytes.len().is_multiple_of(n) {
        return Err(HarnessError::Beats(format!(
            "{} bytes is not a whole number of {n}-byte beats (input_width {})",
            bytes.len(),
            ports.input_width
        )));
    }
    let w = ports.input_width as usize;
    let words = words_per_beat(ports);
    let mut out = vec![0u64; bytes.len() / n * words];
    for (i, (c, beat)) in bytes.chunks(n).zip(out.chunks_mut(words)).enumerate() {
        for (b, &v) in c.iter().enumerate() {
            beat[b / 8] |= u64::from(v) << (8 * (b % 8));
        }
        let top = beat[words - 1];
        if !w.is_multiple_of(64) && top >> (w % 64) != 0 {
            return Err(HarnessError::Beats(format!(
                "beat {i} = {} does not fit input_width {w}",
                hex_words(beat)
            )));
        }
    }
    Ok(out)
}

/// Lower-case hex of a beat's words (the lowest first), without leading zeros.
pub(crate) fn hex_words(words: &[u64]) -> String {
    let mut s = String::new();
    for (i, w) in words.iter().enumerate().rev() {
        if s.is_empty() {
            if *w != 0 || i == 0 {
                s = format!("{w:x}");
            }
        } else {
            s.push_str(&format!("{w:016x}"));
        }
    }
    s
}

fn fresh_run_dir(build_dir: &Path, rtl: Rtl) -> Result<PathBuf, HarnessError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = cache::tool_dir(build_dir, rtl).join(format!("run-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(input_width: u32) -> Ports {
        Ports {
            top: "t".into(),
            files: vec!["t.v".into()],
            input_width,
            input_format: Default::default(),
            beats_per_frame: 1,
            class_width: 2,
            classes: 3,
            score_width: 8,
            stages: vec!["a".into()],
            load_words: 0,
        }
    }

    #[test]
    fn beats_are_little_endian_and_checked() {
        assert_eq!(decode_beats(&ports(8), &[1, 255]).unwrap(), vec![1, 255]);
        assert_eq!(
            decode_beats(&ports(12), &[0x34, 0x02, 0xff, 0x0f]).unwrap(),
            vec![0x234, 0xfff]
        );
        assert!(decode_beats(&ports(12), &[0x34, 0x12]).is_err());
        assert!(decode_beats(&ports(12), &[0x34]).is_err());
        assert!(decode_beats(&ports(1), &[2]).is_err());
        let b = 0x0123_4567_89ab_cdefu64.to_le_bytes();
        assert_eq!(
            decode_beats(&ports(64), &b).unwrap(),
            vec![0x0123_4567_89ab_cdef]
        );
        // Wider than a word: 9 bytes of a 65-bit beat, two words; bit 65 does not fit.
        let mut b = vec![0u8; 9];
        b[0] = 0x21;
        b[8] = 0x01;
        assert_eq!(decode_beats(&ports(65), &b).unwrap(), vec![0x21, 1]);
        b[8] = 0x02;
        assert!(decode_beats(&ports(65), &b).is_err());
        let b: Vec<u8> = (0..64).collect();
        let w = decode_beats(&ports(512), &b).unwrap();
        assert_eq!(w.len(), 8);
        assert_eq!(w[7], 0x3f3e_3d3c_3b3a_3938);
        assert_eq!(hex_words(&[0x5, 0x1, 0]), "10000000000000005");
        assert_eq!(hex_words(&[0, 0]), "0");
    }

    #[test]
    fn missing_tool_message_says_how_to_install() {
        let e = program(Rtl::Verilator, "flipchip-no-such-tool").unwrap_err();
        let m = e.to_string();
        assert!(e.is_tool_missing(), "{m}");
        assert!(
            m.starts_with("verilator: flipchip-no-such-tool not found")
                && m.contains("scripts/setup.sh"),
            "{m}"
        );
    }

    #[test]
    fn port_checks() {
        assert!(check_ports(&ports(8)).is_ok());
        assert!(check_ports(&ports(512)).is_ok());
        assert!(check_ports(&ports(513)).is_err());
        let mut p = ports(8);
        p.top = "a b".into();
        assert!(check_ports(&p).is_err());
        let mut p = ports(8);
        p.stages.clear();
        assert!(check_ports(&p).is_err());
    }
}
