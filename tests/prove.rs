//! `flipchip prove` end to end: the checker beside a compiled design, a proof, a mutated
//! design whose proof fails with a counterexample waveform, and the errors for a directory
//! that holds no design and for a missing prover.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A random 4-4-2 model on 4 one-bit pixels, compiled to one frame per cycle (latency 13
/// cycles): small enough for a proof test on one core.
fn small_design(dir: &Path) -> PathBuf {
    let mut rng = compiler::random::Rng(7);
    let encoding: flip::encoding::Encoding = "threshold:128".parse().unwrap();
    let model = compiler::random::random_model(&mut rng, 4, 8, encoding, &[4, 2]);
    let path = dir.join("small.fcm");
    flip::model::format::save(&model, &path).unwrap();
    let build = dir.join("build");
    let out = flipchip(&[
        "compile",
        s(&path),
        "--out",
        s(&build),
        "--target-cycles",
        "1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    build
}

/// The tools `prove` runs, or `false` after saying which is missing (a failure under
/// FLIPCHIP_REQUIRE_TOOLS=1).
fn provers_present() -> bool {
    let install = "scripts/setup.sh --formal";
    tools::for_test(&["yowasp-sby"], install).is_some()
        && tools::for_test(&["yices-smt2"], install).is_some()
        && tools::for_test(&["z3"], install).is_some()
        && tools::for_test(&["berkeley-abc", "yosys-abc"], install).is_some()
}

fn group<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {report}"))
}

#[test]
fn the_checker_sits_beside_the_design_and_a_dropped_handshake_fails_its_proof() {
    let dir = scratch("prove-mutation");
    let build = small_design(&dir);
    let props = std::fs::read_to_string(build.join("flipchip_top_props.sv")).unwrap();
    assert!(props.contains("module flipchip_top_formal ("), "{props}");
    // The top holds no formal constructs: it stays Verilog-2005 (a block's own invariants
    // are under `ifdef FORMAL`, see below).
    let top = std::fs::read_to_string(build.join("flipchip_top.v")).unwrap();
    assert!(!top.contains("assert") && !top.contains("flipchip_top_props"));
    if !provers_present() {
        return;
    }

    let out = flipchip(&[
        "prove",
        "--build",
        s(&build),
        "--depth",
        "4",
        "--timeout",
        "40",
        "--group",
        "handshake",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = last_json(&out);
    assert_eq!(group(&report, "handshake")["status"], "proven", "{report}");
    // The frame counting group is not proven in seconds (see the README's "Formal proofs"):
    // it ends as not finished, saying how deep the bounded check from reset got.
    let out = flipchip(&[
        "prove",
        "--build",
        s(&build),
        "--depth",
        "8",
        "--timeout",
        "8",
        "--group",
        "frames",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = last_json(&out);
    let frames = group(&report, "frames");
    assert_ne!(frames["status"], "failed", "{report}");
    if frames["status"] == "timeout" {
        assert!(frames["depth"].as_u64().unwrap() > 0, "{report}");
    }

    // The argmax drops its result whether or not the sink takes it.
    break_argmax_handshake(&build.join("argmax.v"));
    // The counterexample takes seconds on an idle machine; the margin is for a loaded one,
    // where a timeout (not a failure) would end the run first.
    let out = prove_handshake(&build, 180);
    assert!(
        !out.status.success(),
        "the broken design was not refuted: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("handshake: failed") && !err.contains("panicked"),
        "{err}"
    );
    let report = last_json(&out);
    let handshake = group(&report, "handshake");
    assert_eq!(handshake["status"], "failed", "{report}");
    assert!(
        handshake["assertion"].as_str().unwrap().contains("held"),
        "{report}"
    );
    let vcd = PathBuf::from(handshake["vcd"].as_str().unwrap());
    let wave = std::fs::read_to_string(&vcd).unwrap();
    assert!(
        wave.contains("$enddefinitions") && wave.contains("m_ready"),
        "{}",
        vcd.display()
    );
}

#[test]
fn a_block_invariant_is_proven_with_the_group_and_a_broken_one_fails_it() {
    let dir = scratch("prove-invariant");
    let build = small_design(&dir);
    let mvtu = build.join("l1_mvtu.v");
    let text = std::fs::read_to_string(&mvtu).unwrap();
    // The MVTU holds its input in flip-flops: `in_ready` is a register, and the block states
    // under `ifdef FORMAL` that it equals what it stands for.
    let guarded = &text[text.find("`ifdef FORMAL").expect("no invariant")..];
    assert!(guarded.contains("assert(l1_mvtu_rdy_q =="), "{text}");
    if !provers_present() {
        return;
    }
    let out = prove_handshake(&build, 120);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(group(&last_json(&out), "handshake")["status"], "proven");

    // The register leaves reset low: it no longer equals what it stands for, though no
    // property of the top's ports sees that within the first cycles.
    let reset = "l1_mvtu_rdy_q <= 1'b1;";
    assert!(text.contains(reset), "{text}");
    std::fs::write(&mvtu, text.replace(reset, "l1_mvtu_rdy_q <= 1'b0;")).unwrap();
    let out = prove_handshake(&build, 120);
    assert!(!out.status.success(), "the broken invariant was proven");
    let report = last_json(&out);
    let handshake = group(&report, "handshake");
    assert_eq!(handshake["status"], "failed", "{report}");
    let assertion = handshake["assertion"].as_str().unwrap();
    assert!(
        assertion.starts_with("l1_mvtu.v:") && assertion.contains("assert(l1_mvtu_rdy_q =="),
        "{report}"
    );
}

#[test]
fn prove_names_a_directory_without_a_design_and_a_missing_prover() {
    let dir = scratch("prove-errors");
    let out = flipchip(&["prove", "--build", s(&dir)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(s(&dir))
            && err.contains("is not a compiled design")
            && !err.contains("panicked"),
        "{err}"
    );
    let build = small_design(&dir);
    // No prover anywhere: an empty PATH and no project venv.
    let out = Command::new(env!("CARGO_BIN_EXE_flipchip"))
        .args(["prove", "--build", s(&build)])
        .env("PATH", "")
        .env("FLIPCHIP_FPGA_VENV", &dir)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("not found") && err.contains("scripts/setup.sh --formal"),
        "{err}"
    );
}
