//! `flipchip prove --datapath` end to end: every layer of a small design and the whole network
//! proven equal to the model's specification, and a design with one weight bit flipped fails
//! its proof with a counterexample waveform.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// A random 8-6-3 model on 8 one-bit pixels, compiled with the auto folding (8 cycles per
/// frame: each layer folded over several steps, so the proof covers the fold).
fn small_design(dir: &Path) -> PathBuf {
    let mut rng = compiler::random::Rng(5);
    let encoding: flip::encoding::Encoding = "threshold:128".parse().unwrap();
    let model = compiler::random::random_model(&mut rng, 8, 8, encoding, &[6, 3]);
    let path = dir.join("small.fcm");
    flip::model::format::save(&model, &path).unwrap();
    let build = dir.join("build");
    flipchip_ok(&["compile", s(&path), "--out", s(&build)]);
    build
}

/// The tools `prove --datapath` runs, or `false` after saying which is missing (a failure
/// under FLIPCHIP_REQUIRE_TOOLS=1).
fn provers_present() -> bool {
    let install = "scripts/setup.sh --formal";
    tools::for_test(&["yowasp-sby"], install).is_some()
        && tools::for_test(&["z3"], install).is_some()
        && tools::for_test(&["berkeley-abc", "yosys-abc"], install).is_some()
}

/// Flips the lowest bit of the first weight ROM word in `file` (a line `..._w = N'h...;`).
fn flip_weight_bit(file: &Path) {
    let text = std::fs::read_to_string(file).unwrap();
    let mut done = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if done || !l.contains("_w = ") || !l.contains("'h") {
                return l.to_string();
            }
            done = true;
            let end = l.rfind(';').unwrap();
            let last = l[..end].chars().last().unwrap();
            let flipped = char::from_digit(last.to_digit(16).unwrap() ^ 1, 16).unwrap();
            format!("{}{flipped}{}", &l[..end - 1], &l[end..])
        })
        .collect();
    assert!(done, "no weight ROM word in {}", file.display());
    std::fs::write(file, out.join("\n") + "\n").unwrap();
}

fn rows(report: &serde_json::Value) -> &Vec<serde_json::Value> {
    report["datapath"].as_array().unwrap()
}

#[test]
fn each_layer_and_the_network_prove_and_a_flipped_weight_fails_with_a_trace() {
    let dir = scratch("prove-datapath");
    let build = small_design(&dir);
    if !provers_present() {
        return;
    }
    let prove = |build: &Path| {
        flipchip(&[
            "prove",
            "--build",
            s(build),
            "--datapath",
            "--timeout",
            "120",
            "--json",
        ])
    };
    let out = prove(&build);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = last_json(&out);
    // Only the datapath ran: no protocol group.
    assert_eq!(report["groups"].as_array().unwrap().len(), 0, "{report}");
    let layers: Vec<&serde_json::Value> = rows(&report).iter().collect();
    assert_eq!(layers.len(), 3, "{report}");
    for (row, layer) in layers.iter().zip([
        serde_json::json!(1),
        serde_json::json!(2),
        serde_json::json!("network"),
    ]) {
        assert_eq!(row["layer"], layer, "{report}");
        assert_eq!(row["status"], "proven", "{report}");
        assert_eq!(row["depth"], row["frame_cycles"], "{report}");
    }
    assert_eq!(report["proven"], true);

    // One weight of the scores layer flipped: some input changes that class's score.
    flip_weight_bit(&build.join("l2_mvtu.v"));
    let out = prove(&build);
    assert!(!out.status.success(), "the broken design was proven");
    let err = stderr(&out);
    assert!(
        err.contains("l2_equiv: failed") && !err.contains("panicked"),
        "{err}"
    );
    let report = last_json(&out);
    let r = rows(&report);
    assert_eq!(r[0]["status"], "proven", "{report}");
    for row in &r[1..] {
        assert_eq!(row["status"], "failed", "{report}");
        assert!(
            row["assertion"].as_str().unwrap().contains("assert("),
            "{report}"
        );
        let vcd = PathBuf::from(row["vcd"].as_str().unwrap());
        let wave = std::fs::read_to_string(&vcd).unwrap();
        assert!(wave.contains("$enddefinitions"), "{}", vcd.display());
    }
    assert_eq!(report["proven"], false);
}
