//! `flipchip prove --datapath` end to end: every layer of a small design and the whole network
//! proven equal to the model's specification, and a design with one weight bit flipped fails
//! its proof with a counterexample waveform; the same for a folding whose layers add each sum
//! over several SIMD chunks, proven through the chunked specification and its lemmas.

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

/// A random 12-4-3 model on 12 pixels in 2 bit planes, folded so that every neuron's sum is
/// added over several SIMD chunks: layer 1 PE 2 SIMD 4 (3 chunks x 2 planes a neuron), layer 2
/// PE 1 SIMD 2 (2 chunks).
fn chunked_design(dir: &Path) -> PathBuf {
    let mut rng = compiler::random::Rng(7);
    let encoding: flip::encoding::Encoding = "bitplanes:2".parse().unwrap();
    let model = compiler::random::random_model(&mut rng, 12, 8, encoding, &[4, 3]);
    let path = dir.join("chunked.fcm");
    flip::model::format::save(&model, &path).unwrap();
    let fold = dir.join("fold.json");
    std::fs::write(&fold, r#"{"layers":[{"pe":2,"simd":4},{"pe":1,"simd":2}]}"#).unwrap();
    let build = dir.join("build");
    flipchip_ok(&["compile", s(&path), "--fold", s(&fold), "--out", s(&build)]);
    build
}

/// The tools `prove --datapath` runs, or `false` after saying which is missing (a failure
/// under FLIPCHIP_REQUIRE_TOOLS=1).
fn provers_present() -> bool {
    let install = "scripts/setup.sh --formal";
    tools::for_test(&["yowasp-sby"], install).is_some()
        && tools::for_test(&["z3"], install).is_some()
        && tools::for_test(&["berkeley-abc", "yosys-abc"], install).is_some()
        // Yosys simulates a refuted harness on ABC's counterexample for its waveform.
        && tools::for_test(&["yosys"], "scripts/setup.sh").is_some()
}

/// `flipchip sim --replay` of the waveform of a failed row: the simulator must part from the
/// design on an output, where the specification sides with the simulator.
fn replay_reproduces(model: &Path, build: &Path, row: &serde_json::Value) {
    let vcd = row["vcd"].as_str().unwrap();
    assert!(vcd.ends_with("_cex.vcd"), "not ABC's counterexample: {row}");
    let out = flipchip_ok(&[
        "sim",
        s(model),
        "--build",
        s(build),
        "--replay",
        vcd,
        "--json",
    ]);
    let v = last_json(&out);
    assert_eq!(v["reproduced"], true, "{v}");
    let signals = v["first_difference"]["signals"].as_array().unwrap();
    assert!(
        signals.iter().any(|d| {
            let d = d.as_str().unwrap();
            d.contains("score") && d.contains("specification")
        }),
        "{v}"
    );
}

/// Flips the lowest bit of weight ROM word `word` in `file` (the `word`-th line
/// `..._w = N'h...;`).
fn flip_weight_bit(file: &Path, word: usize) {
    let text = std::fs::read_to_string(file).unwrap();
    let mut seen = 0;
    let mut done = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if done || !l.contains("_w = ") || !l.contains("'h") {
                return l.to_string();
            }
            seen += 1;
            if seen <= word {
                return l.to_string();
            }
            done = true;
            let end = l.rfind(';').unwrap();
            let last = l[..end].chars().last().unwrap();
            let flipped = char::from_digit(last.to_digit(16).unwrap() ^ 1, 16).unwrap();
            format!("{}{flipped}{}", &l[..end - 1], &l[end..])
        })
        .collect();
    assert!(done, "no weight ROM word {word} in {}", file.display());
    std::fs::write(file, out.join("\n") + "\n").unwrap();
}

/// `flipchip prove --datapath` on `build`. The budget covers the proof and, for a refuted one,
/// the bounded check that writes its trace; generous, because other jobs may share the
/// machine's cores.
fn prove(build: &Path) -> std::process::Output {
    flipchip(&[
        "prove",
        "--build",
        s(build),
        "--datapath",
        "--timeout",
        "300",
        "--json",
    ])
}

/// The report of a datapath proof of `build` that must fail at layer 2's unit, and say so
/// without a panic.
fn prove_fails_at_layer_2(build: &Path) -> serde_json::Value {
    let out = prove(build);
    assert!(!out.status.success(), "the broken design was proven");
    let err = stderr(&out);
    assert!(
        err.contains("l2_equiv: failed") && !err.contains("panicked"),
        "{err}"
    );
    last_json(&out)
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
    let out = prove(&build);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = last_json(&out);
    // Only the datapath ran: no protocol group.
    assert_eq!(report["groups"].as_array().unwrap().len(), 0, "{report}");
    // The auto folding adds both layers' sums over several chunks (PE 3 SIMD 2, PE 1 SIMD 3):
    // each layer has its lemma, every proof of the design is against the chunked layers.
    let lemmas = comparing(&report, "chunked=flat");
    assert_eq!(lemmas.len(), 2, "{report}");
    for row in &lemmas {
        assert_eq!(row["status"], "proven", "{report}");
    }
    // Each layer, then the network in its pieces (cut at the hand-over from layer 1 to 2) and
    // the network's own row.
    let layers = comparing(&report, "design=chunked");
    let proofs: Vec<&str> = layers
        .iter()
        .map(|r| r["proof"].as_str().unwrap())
        .collect();
    assert_eq!(
        proofs,
        ["l1_equiv", "l2_equiv", "net_l1", "net_out", "network"],
        "{report}"
    );
    for row in &layers {
        assert_eq!(row["status"], "proven", "{report}");
        if row["proof"] != "network" {
            assert_eq!(row["depth"], row["frame_cycles"], "{report}");
        }
    }
    for row in &layers[2..] {
        assert_eq!(row["layer"], "network", "{report}");
    }
    assert_eq!(report["proven"], true);

    // One weight of the scores layer flipped: some input changes that class's score. Layer 1
    // and what the top hands on from it still prove; the output on that hand-over does not.
    flip_weight_bit(&build.join("l2_mvtu.v"), 0);
    let report = prove_fails_at_layer_2(&build);
    let r = comparing(&report, "design=chunked");
    assert_eq!(r[0]["status"], "proven", "{report}");
    assert_eq!(r[2]["proof"], "net_l1", "{report}");
    assert_eq!(r[2]["status"], "proven", "{report}");
    assert_eq!(r[4]["proof"], "network", "{report}");
    assert_eq!(r[4]["status"], "failed", "{report}");
    for row in [r[1], r[3]] {
        assert_eq!(row["status"], "failed", "{report}");
        assert!(
            row["assertion"].as_str().unwrap().contains("assert("),
            "{report}"
        );
        let vcd = PathBuf::from(row["vcd"].as_str().unwrap());
        let wave = std::fs::read_to_string(&vcd).unwrap();
        assert!(wave.contains("$enddefinitions"), "{}", vcd.display());
        // The layer's unit alone, and the whole top, replayed in the simulator.
        replay_reproduces(&dir.join("small.fcm"), &build, row);
    }
    assert_eq!(report["proven"], false);
}

/// The rows of `report` that compare `compares` (`design=chunked`, `chunked=flat`, ...).
fn comparing<'a>(report: &'a serde_json::Value, compares: &str) -> Vec<&'a serde_json::Value> {
    rows(report)
        .iter()
        .filter(|r| r["compares"] == compares)
        .collect()
}

#[test]
fn layers_that_add_over_several_chunks_prove_through_the_chunked_specification() {
    let dir = scratch("prove-datapath-chunked");
    let build = chunked_design(&dir);
    if !provers_present() {
        return;
    }
    let out = prove(&build);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = last_json(&out);
    // Per layer the lemma (chunked = flat), then the design against the chunked one; then the
    // network's pieces against the chunked layers (net_l1, net_out) and its own row.
    let want = [
        (serde_json::json!(1), "chunked=flat"),
        (serde_json::json!(1), "design=chunked"),
        (serde_json::json!(2), "chunked=flat"),
        (serde_json::json!(2), "design=chunked"),
        (serde_json::json!("network"), "design=chunked"),
        (serde_json::json!("network"), "design=chunked"),
        (serde_json::json!("network"), "design=chunked"),
    ];
    let r = rows(&report);
    assert_eq!(r.len(), want.len(), "{report}");
    for (row, (layer, compares)) in r.iter().zip(want) {
        assert_eq!(row["layer"], layer, "{report}");
        assert_eq!(row["compares"], compares, "{report}");
        assert_eq!(row["spec"], "chunked", "{report}");
        assert_eq!(row["status"], "proven", "{report}");
        assert_eq!(row["depth"], row["frame_cycles"], "{report}");
    }
    assert_eq!(report["proven"], true);

    // Class 0's weight on layer 2's input 2, in its second chunk (ROM word 1 = neuron group 0,
    // chunk 1), flipped: the unit no longer computes the chunked sums, the lemmas still hold.
    flip_weight_bit(&build.join("l2_mvtu.v"), 1);
    let report = prove_fails_at_layer_2(&build);
    for row in comparing(&report, "chunked=flat") {
        assert_eq!(row["status"], "proven", "{report}");
    }
    let design = comparing(&report, "design=chunked");
    assert_eq!(design[0]["status"], "proven", "{report}");
    let l2 = design[1];
    assert_eq!(l2["layer"], 2, "{report}");
    assert_eq!(l2["status"], "failed", "{report}");
    assert!(
        l2["assertion"].as_str().unwrap().contains("assert("),
        "{report}"
    );
    let vcd = PathBuf::from(l2["vcd"].as_str().unwrap());
    let wave = std::fs::read_to_string(&vcd).unwrap();
    assert!(wave.contains("$enddefinitions"), "{}", vcd.display());
    replay_reproduces(&dir.join("chunked.fcm"), &build, l2);
    assert_eq!(report["proven"], false);
}

#[test]
fn a_flipped_weight_of_layer_1_fails_the_piece_of_the_network_that_holds_it() {
    let dir = scratch("prove-datapath-cut");
    let build = small_design(&dir);
    if !provers_present() {
        return;
    }
    // The network alone, its hand-over from layer 1 in parts of 3 neurons.
    let run = || {
        flipchip(&[
            "prove",
            "--build",
            s(&build),
            "--datapath",
            "--datapath-outputs",
            "3",
            "--datapath-layer",
            "network",
            "--timeout",
            "300",
            "--json",
        ])
    };
    let out = run();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = last_json(&out);
    let r = rows(&report);
    let proofs: Vec<&str> = r.iter().map(|r| r["proof"].as_str().unwrap()).collect();
    assert_eq!(
        proofs,
        ["net_l1_0", "net_l1_1", "net_out", "network"],
        "{report}"
    );
    assert_eq!(r[1]["outputs"], serde_json::json!([3, 6]), "{report}");
    assert_eq!(r[1]["hand_over"], 1, "{report}");
    for row in r {
        assert_eq!(row["layer"], "network", "{report}");
        assert_eq!(row["status"], "proven", "{report}");
    }

    // Neuron 0's weight on input 0 flipped (layer 1's first ROM word, its lowest bit): the
    // part that holds neuron 0 fails with a waveform; the other part, and the output on what
    // the top hands on, still prove; the network is not proven.
    flip_weight_bit(&build.join("l1_mvtu.v"), 0);
    let out = run();
    assert!(!out.status.success(), "the broken design was proven");
    let err = stderr(&out);
    assert!(
        err.contains("net_l1_0: failed") && !err.contains("panicked"),
        "{err}"
    );
    let report = last_json(&out);
    let r = rows(&report);
    let status: Vec<&str> = r.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["failed", "proven", "proven", "failed"], "{report}");
    assert!(
        r[0]["assertion"].as_str().unwrap().contains("assert(y1["),
        "{report}"
    );
    let wave = std::fs::read_to_string(r[0]["vcd"].as_str().unwrap()).unwrap();
    assert!(wave.contains("$enddefinitions"), "{report}");
    assert_eq!(report["proven"], false);
}

#[test]
fn a_single_layer_part_or_lemma_is_proven_alone_and_bad_choices_are_named() {
    let dir = scratch("prove-datapath-choose");
    let build = small_design(&dir);
    if !provers_present() {
        return;
    }
    let run = |extra: &[&str]| {
        let mut args = vec!["prove", "--build", s(&build), "--datapath", "--json"];
        args.extend_from_slice(extra);
        flipchip(&args)
    };
    // Part 1 of layer 1 split in parts of 2 neurons: that proof alone, no lemma, no network.
    let out = run(&[
        "--datapath-outputs",
        "2",
        "--datapath-layer",
        "1",
        "--datapath-part",
        "1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = last_json(&out);
    let r = rows(&report);
    assert_eq!(r.len(), 1, "{report}");
    assert_eq!(r[0]["proof"], "l1_equiv_1", "{report}");
    assert_eq!(r[0]["outputs"], serde_json::json!([2, 4]), "{report}");
    assert_eq!(r[0]["status"], "proven", "{report}");
    // Layer 2's lemma alone.
    let out = run(&["--datapath-layer", "2", "--datapath-part", "lemma"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = last_json(&out);
    let r = rows(&report);
    assert_eq!(r.len(), 1, "{report}");
    assert_eq!(r[0]["proof"], "l2_lemma", "{report}");
    assert_eq!(r[0]["compares"], "chunked=flat", "{report}");
    // A part beyond a layer's split, a layer the model lacks, a malformed value: each an
    // error that names it, before any proof runs.
    for (extra, says) in [
        (
            &[
                "--datapath-outputs",
                "2",
                "--datapath-layer",
                "1",
                "--datapath-part",
                "3",
            ][..],
            "layer 1 has 3 part(s) of 2 output(s)",
        ),
        (
            &["--datapath-layer", "3"][..],
            "the model has layers 1 to 2",
        ),
        (&["--datapath-part", "first"][..], "not a part"),
    ] {
        let out = run(extra);
        assert!(!out.status.success(), "{extra:?} ran");
        let err = stderr(&out);
        assert!(
            err.contains(says) && !err.contains("panicked") && !err.contains("l1_equiv"),
            "{extra:?}: {err}"
        );
    }
}
