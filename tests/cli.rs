//! End-to-end checks of the `flipchip` command line on the embedded digits.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn flipchip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flipchip"))
        .args(args)
        .output()
        .expect("the flipchip binary runs")
}

/// Runs `flipchip` and checks that it succeeded (showing its stderr if not).
fn flipchip_ok(args: &[&str]) -> Output {
    let out = flipchip(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The JSON object on the last line of stdout.
fn last_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "last line is not JSON ({e}): {line:?}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn default_training_on_digits_reaches_the_accuracy_bar_and_eval_agrees() {
    let dir = scratch("cli-train");
    let model = dir.join("digits.fcm");
    let out = flipchip_ok(&["train", "--out", s(&model), "--json", "--quiet"]);
    let train = last_json(&out);
    let acc = train["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.93, "digits test accuracy {acc} below 93%");
    for key in ["samples", "seconds", "epoch_seconds", "state_bytes"] {
        assert!(train[key].as_f64().unwrap() > 0.0, "train JSON lacks {key}");
    }
    let bytes_per_weight = train["state_bytes_per_weight"].as_f64().unwrap();
    assert!(
        bytes_per_weight <= 1.5,
        "state {bytes_per_weight} bytes/weight"
    );

    let out = flipchip_ok(&["eval", s(&model), "--json"]);
    let eval = last_json(&out);
    assert_eq!(
        eval["accuracy"].as_f64().unwrap(),
        acc,
        "eval disagrees with train"
    );
    assert_eq!(eval["samples"], train["samples"]);
}

#[test]
fn same_seed_gives_an_identical_model_file() {
    let dir = scratch("cli-seed");
    let (a, b) = (dir.join("a.fcm"), dir.join("b.fcm"));
    for m in [&a, &b] {
        flipchip_ok(&[
            "train",
            "--epochs",
            "3",
            "--seed",
            "9",
            "--out",
            s(m),
            "--quiet",
        ]);
    }
    let text = std::fs::read_to_string(&a).unwrap();
    assert!(text.starts_with("flipchip-model 1"));
    assert_eq!(text, std::fs::read_to_string(&b).unwrap());
    let out = flipchip(&[
        "train",
        "--epochs",
        "3",
        "--seed",
        "10",
        "--out",
        s(&b),
        "--quiet",
    ]);
    assert!(out.status.success());
    assert_ne!(
        text,
        std::fs::read_to_string(&b).unwrap(),
        "seed has no effect"
    );
}

#[test]
fn a_malformed_model_file_is_an_error_naming_file_and_line() {
    let dir = scratch("cli-bad");
    let bad = dir.join("bad.fcm");
    std::fs::write(&bad, "flipchip-model 1\ninput width 8 height eight\n").unwrap();
    let out = flipchip(&["eval", s(&bad)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.fcm") && err.contains("line 2"),
        "unhelpful error: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let out = flipchip(&["eval", s(&dir.join("missing.fcm"))]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.fcm"));
}

#[test]
fn a_corrupt_dataset_is_an_error_naming_the_file() {
    let dir = scratch("cli-corrupt");
    for f in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(dir.join(f), [0u8, 0, 8, 3, 0, 0]).unwrap();
    }
    let out = flipchip(&["train", "--data", s(&dir), "--out", s(&dir.join("m.fcm"))]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-idx"), "error does not name the file: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn compile_sim_and_verify_agree_on_the_trained_digits_model() {
    let dir = scratch("cli-hw");
    let model = dir.join("digits.fcm");
    let build = dir.join("build");
    let out = flipchip_ok(&[
        "train",
        "--epochs",
        "3",
        "--out",
        s(&model),
        "--quiet",
        "--json",
    ]);
    let accuracy = last_json(&out)["accuracy"].as_f64().unwrap();

    flipchip_ok(&["compile", s(&model), "--out", s(&build), "--json"]);
    for f in ["report.json", "ports.json"] {
        assert!(build.join(f).exists(), "compile wrote no {f}");
    }

    let out = flipchip_ok(&["sim", s(&model), "--build", s(&build), "--json"]);
    let sim = last_json(&out);
    assert_eq!(
        sim["accuracy"].as_f64().unwrap(),
        accuracy,
        "simulator disagrees with the reference"
    );
    for key in [
        "frames",
        "cycles_per_frame",
        "latency_cycles",
        "sim_cycles_per_second",
    ] {
        assert!(sim[key].as_f64().unwrap() > 0.0, "sim JSON lacks {key}");
    }

    let rtl = if testbenches::available(testbenches::Rtl::Verilator).is_ok() {
        "verilator"
    } else {
        eprintln!("verilator missing: checking reference against simulator only");
        "none"
    };
    let out = flipchip_ok(&[
        "verify",
        "--build",
        s(&build),
        "--frames",
        "40",
        "--rtl",
        rtl,
        "--json",
    ]);
    let v = last_json(&out);
    assert_eq!(v["frames"].as_u64().unwrap(), 40);
    assert_eq!(v["mismatches"].as_u64().unwrap(), 0);

    // An impossible folding is refused with the layer named.
    let fold = dir.join("fold.json");
    std::fs::write(
        &fold,
        r#"{"layers":[{"pe":3,"simd":64},{"pe":1,"simd":1}]}"#,
    )
    .unwrap();
    let out = flipchip(&[
        "compile",
        s(&model),
        "--out",
        s(&dir.join("bad")),
        "--fold",
        s(&fold),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("layer 1") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn a_fashion_mnist_model_runs_identically_in_simulator_and_verilator() {
    let fmnist = Path::new("/usr/share/datasets/fashion-mnist");
    if !fmnist.exists() || testbenches::available(testbenches::Rtl::Verilator).is_err() {
        eprintln!("skipped: Fashion-MNIST or Verilator missing (scripts/setup.sh installs both)");
        return;
    }
    let dir = scratch("cli-fmnist");
    let model = dir.join("fmnist.fcm");
    let build = dir.join("build");
    flipchip_ok(&[
        "train",
        "--data",
        s(fmnist),
        "--arch",
        "784-256-256-10",
        "--epochs",
        "1",
        "--out",
        s(&model),
        "--quiet",
    ]);
    flipchip_ok(&["compile", s(&model), "--out", s(&build)]);
    let out = flipchip_ok(&[
        "verify",
        "--build",
        s(&build),
        "--data",
        s(fmnist),
        "--frames",
        "30",
        "--bubbles",
        "30",
        "--stalls",
        "30",
        "--json",
    ]);
    let v = last_json(&out);
    assert_eq!(
        (v["frames"].as_u64(), v["mismatches"].as_u64()),
        (Some(30), Some(0))
    );
}

#[test]
fn calibrate_fits_at_least_as_well_as_the_shipped_coefficients() {
    let dir = scratch("cli-calibrate");
    let model = dir.join("small.fcm");
    flipchip_ok(&[
        "train",
        "--arch",
        "64-16-10",
        "--epochs",
        "1",
        "--out",
        s(&model),
        "--quiet",
    ]);
    let mut dirs = Vec::new();
    for t in ["64", "256", "1024"] {
        let d = dir.join(format!("t{t}"));
        let out = flipchip(&["compile", s(&model), "--out", s(&d), "--target-cycles", t]);
        assert!(out.status.success());
        dirs.push(d);
    }
    let mut args = vec!["calibrate", "--family", "ice40", "--json"];
    args.extend(dirs.iter().map(|d| s(d)));

    // Without --synth a missing report is an error naming it.
    let out = flipchip(&args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stat_ice40.txt"), "{err}");

    args.push("--synth");
    let out = flipchip(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = last_json(&out);
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    // The fit minimises the summed squared relative error over non-negative coefficients; the
    // shipped coefficients are such a point, so they cannot do better.
    let sq = |key: &str| -> f64 {
        rows.iter()
            .map(|r| {
                let y = r["yosys_luts"].as_f64().unwrap();
                assert!(y > 0.0);
                let e = (r[key].as_f64().unwrap() - y) / y;
                e * e
            })
            .sum()
    };
    assert!(
        sq("fit_luts") <= sq("current_luts") + 1e-4,
        "fit {} current {}",
        sq("fit_luts"),
        sq("current_luts")
    );
    for (name, c) in j["coefficients"].as_object().unwrap() {
        assert!(c.as_f64().unwrap() >= 0.0, "{name} = {c}");
    }
    assert!(dirs[0].join("stat_ice40.txt").exists());
}
