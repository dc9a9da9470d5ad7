//! Helpers the command-line test files share: running the `flipchip` binary, reading its JSON,
//! scratch directories.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn flipchip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flipchip"))
        .args(args)
        .output()
        .expect("the flipchip binary runs")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `flipchip` and checks that it succeeded (showing its stderr if not).
pub fn flipchip_ok(args: &[&str]) -> Output {
    let out = flipchip(args);
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// The JSON object on the last line of stdout.
pub fn last_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "last line is not JSON ({e}): {line:?}\nstderr: {}",
            stderr(out)
        )
    })
}

/// An empty directory of this name under the tests' scratch directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `verify --rtl` for the RTL leg: Verilator, or none where it is missing (which fails the test
/// under `FLIPCHIP_REQUIRE_TOOLS=1`).
pub fn verilator_or_none() -> &'static str {
    match testbenches::available(testbenches::Rtl::Verilator) {
        Ok(()) => "verilator",
        Err(e) => {
            testbenches::tool_missing(&format!("{e}: checking reference against simulator only"));
            "none"
        }
    }
}

/// Breaks a compiled design's handshake in its `argmax.v`: the argmax drops its result whether
/// or not the sink takes it (the mutation the proof, replay and regression tests must catch).
pub fn break_argmax_handshake(argmax: &Path) {
    let text = std::fs::read_to_string(argmax).unwrap();
    let keep = "if (out_valid && out_ready) out_valid <= 1'b0;";
    assert!(text.contains(keep), "{text}");
    std::fs::write(
        argmax,
        text.replace(keep, "if (out_valid) out_valid <= 1'b0;"),
    )
    .unwrap();
}

/// `flipchip prove` of the handshake group of the design in `build` (20 cycles deep, at most
/// `timeout` seconds), with its JSON report.
pub fn prove_handshake(build: &Path, timeout: u32) -> Output {
    flipchip(&[
        "prove",
        "--build",
        s(build),
        "--depth",
        "20",
        "--timeout",
        &timeout.to_string(),
        "--group",
        "handshake",
        "--json",
    ])
}
