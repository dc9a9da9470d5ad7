//! `flipchip sim --replay`: a counterexample of `flipchip prove` on a broken design, replayed in
//! the cycle-accurate simulator, shows the failure at the cycle the prover found.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// A random 4-4-2 model on 4 one-bit pixels, one frame per cycle, compiled into `dir/build`.
fn small_design(dir: &Path) -> (PathBuf, PathBuf) {
    let mut rng = compiler::random::Rng(7);
    let encoding: flip::encoding::Encoding = "threshold:128".parse().unwrap();
    let model = compiler::random::random_model(&mut rng, 4, 8, encoding, &[4, 2]);
    let path = dir.join("small.fcm");
    flip::model::format::save(&model, &path).unwrap();
    let build = dir.join("build");
    flipchip_ok(&[
        "compile",
        s(&path),
        "--out",
        s(&build),
        "--target-cycles",
        "1",
    ]);
    (path, build)
}

#[test]
fn a_counterexample_replayed_in_the_simulator_shows_the_dropped_result() {
    let install = "scripts/setup.sh --formal";
    for t in [
        &["yowasp-sby"][..],
        &["yices-smt2"],
        &["z3"],
        &["berkeley-abc", "yosys-abc"],
    ] {
        if tools::for_test(t, install).is_none() {
            return;
        }
    }
    let dir = scratch("replay");
    let (model, build) = small_design(&dir);
    // A waveform that is not a counterexample of the wrapper's top is refused.
    let wave = dir.join("other.vcd");
    std::fs::write(
        &wave,
        "$scope module top $end\n$var wire 1 ! s_valid $end\n$upscope $end\n\
         $enddefinitions $end\n#0\n0!\n#10\n",
    )
    .unwrap();
    let out = flipchip(&["sim", s(&model), "--build", s(&build), "--replay", s(&wave)]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no top-level rst"),
        "{}",
        stderr(&out)
    );

    // The argmax drops its result whether or not the sink takes it.
    break_argmax_handshake(&build.join("argmax.v"));
    let out = prove_handshake(&build, 60);
    assert!(!out.status.success(), "the broken design was proven");
    let report = last_json(&out);
    let vcd = report["groups"][0]["vcd"].as_str().unwrap().to_string();

    let out = flipchip_ok(&[
        "sim",
        s(&model),
        "--build",
        s(&build),
        "--replay",
        &vcd,
        "--json",
    ]);
    let v = last_json(&out);
    assert_eq!(v["reproduced"], true, "{v}");
    assert_eq!(v["reset_cycles"], 1, "{v}");
    let cycles = v["cycles"].as_u64().unwrap();
    let at = v["first_difference"]["cycle"].as_u64().unwrap();
    assert!(at < cycles, "{v}");
    // The result went away while the sink was not ready; the simulator kept it. In the same
    // cycle the emptied output may let a stage take a beat the simulator's does not (whether
    // the solver's trace offers one there is its choice): the stage handshakes may differ too,
    // nothing else.
    let signals: Vec<&str> = v["first_difference"]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(signals[0], "m_valid design 0x0, simulator 0x1", "{v}");
    assert!(
        signals[1..].iter().all(|x| x.starts_with("dbg_fire ")),
        "{v}"
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("at cycle {at} (s_valid")) && err.contains("m_ready 0)"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
