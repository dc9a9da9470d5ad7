//! End-to-end checks of the `flipchip` command line on the embedded digits.

mod common;
use common::*;
use std::path::Path;

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

    let rtl = verilator_or_none();
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
    assert_eq!(v["rtl_mismatches"].as_u64(), Some(0), "{v}");
    assert!(v["divergence"].is_null(), "{v}");

    // An impossible folding is refused with the layer named: PE 3 and the next SIMD 64 would
    // need 192 neurons of which 64 idle.
    let fold = dir.join("fold.json");
    std::fs::write(
        &fold,
        r#"{"layers":[{"pe":3,"simd":64},{"pe":1,"simd":64}]}"#,
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
        err.contains("layer 1") && err.contains("64 idle") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn a_fashion_mnist_model_runs_identically_in_simulator_and_verilator() {
    let fmnist = Path::new("/usr/share/datasets/fashion-mnist");
    if !fmnist.exists() || testbenches::available(testbenches::Rtl::Verilator).is_err() {
        testbenches::tool_missing(
            "Fashion-MNIST or Verilator missing (scripts/setup.sh installs both)",
        );
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

/// The summed squared relative error of the `key` LUT counts of `calibrate --json` rows
/// against Yosys's.
fn squared_relative_error(rows: &[serde_json::Value], key: &str) -> f64 {
    rows.iter()
        .map(|r| {
            let y = r["yosys_luts"].as_f64().unwrap();
            assert!(y > 0.0);
            let e = (r[key].as_f64().unwrap() - y) / y;
            e * e
        })
        .sum()
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
    let sq = |key: &str| squared_relative_error(rows, key);
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

    // The CSV it writes reads back with --rows: the same designs, counts and fit without the
    // build directories.
    let csv = dir.join("cal.csv");
    let mut with_csv = args.clone();
    with_csv.extend(["--csv", s(&csv)]);
    let out = flipchip(&with_csv);
    assert!(out.status.success());
    let out = flipchip(&[
        "calibrate",
        "--family",
        "ice40",
        "--json",
        "--rows",
        s(&csv),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back = last_json(&out);
    for (a, b) in back["rows"].as_array().unwrap().iter().zip(rows) {
        for key in [
            "dir",
            "yosys_luts",
            "current_luts",
            "yosys_brams",
            "est_brams",
        ] {
            assert_eq!(a[key], b[key], "{key}");
        }
    }
    assert_eq!(back["rows"].as_array().unwrap().len(), rows.len());
    for (name, c) in j["coefficients"].as_object().unwrap() {
        let b = back["coefficients"][name].as_f64().unwrap();
        assert!(
            (b - c.as_f64().unwrap()).abs() < 1e-3,
            "{name}: {b} against {c}"
        );
    }
    // A malformed file is an error naming it.
    std::fs::write(dir.join("bad.csv"), "design,yosys_luts\nx,1\n").unwrap();
    let out = flipchip(&[
        "calibrate",
        "--family",
        "ice40",
        "--rows",
        s(&dir.join("bad.csv")),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.csv") && err.contains("yosys_brams"),
        "{err}"
    );

    // --fit frees only the named coefficients: the others stay as shipped, and the fit is
    // no worse than the shipped point it starts from.
    let mut partial = args.clone();
    partial.extend(["--fit", "block,select_bit"]);
    let out = flipchip(&partial);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = last_json(&out);
    let shipped = compiler::blocks::Family::Ice40.costs().coefficients();
    for (i, name) in compiler::blocks::Features::NAMES.iter().enumerate() {
        let c = p["coefficients"][name].as_f64().unwrap();
        if !["block", "select_bit"].contains(name) {
            assert_eq!(c, shipped[i], "{name} is held");
        }
    }
    let rows = p["rows"].as_array().unwrap();
    let sq = |key: &str| squared_relative_error(rows, key);
    assert!(sq("fit_luts") <= sq("current_luts") + 1e-4);
    // A name that is not a coefficient is an error listing the names.
    let mut bad = args.clone();
    bad.extend(["--fit", "blocks"]);
    let out = flipchip(&bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no coefficient \"blocks\"") && err.contains("table_adder_bit"),
        "{err}"
    );
}

#[test]
fn quantize_reports_every_precision_and_writes_a_loadable_binary_model() {
    let dir = scratch("cli-quantize");
    let float = dir.join("float.fcm");
    flipchip_ok(&[
        "train",
        "--optimizer",
        "float",
        "--epochs",
        "3",
        "--out",
        s(&float),
        "--quiet",
    ]);
    let out = flipchip_ok(&["quantize", s(&float), "--json"]);
    let q = last_json(&out);
    let precisions: Vec<&str> = q["precisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["precision"].as_str().unwrap())
        .collect();
    assert_eq!(precisions, ["f32", "f16", "int8", "binary"]);
    let f32_acc = q["precisions"][0]["accuracy"].as_f64().unwrap();
    assert!(f32_acc >= 0.8, "float model at {f32_acc} after 3 epochs");
    let binary = dir.join("float-binary.fcm");
    assert_eq!(q["binary_model"].as_str(), Some(s(&binary)));
    // The binary model is an ordinary model file: eval reads it and agrees with quantize.
    let eval = last_json(&flipchip_ok(&["eval", s(&binary), "--json"]));
    assert_eq!(eval["accuracy"], q["precisions"][3]["accuracy"]);

    // A binary model is not a quantize input.
    let out = flipchip(&["quantize", s(&binary)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a float model"));
}

/// A float conv net goes through quantize like a dense one: every precision keeps the
/// convolutions and the pool, f16 and int8 stay close to f32, and the binary model is a conv
/// model that eval reads back with the accuracy quantize reported.
#[test]
fn quantize_takes_a_convolutional_float_model() {
    let dir = scratch("cli-quantize-conv");
    let float = dir.join("conv.fcm");
    flipchip_ok(&[
        "train",
        "--optimizer",
        "float",
        "--arch",
        "c32-p-c64-128-10",
        "--epochs",
        "3",
        "--out",
        s(&float),
        "--quiet",
    ]);
    let out = flipchip_ok(&["quantize", s(&float), "--json"]);
    let q = last_json(&out);
    let acc: Vec<f64> = q["precisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["accuracy"].as_f64().unwrap())
        .collect();
    assert_eq!(acc.len(), 4, "{q}");
    assert!(
        acc[0] >= 0.8,
        "float conv model at {} after 3 epochs",
        acc[0]
    );
    for (name, a) in [("f16", acc[1]), ("int8", acc[2])] {
        assert!(
            (a - acc[0]).abs() <= 0.02,
            "{name} {a} against f32 {}",
            acc[0]
        );
    }
    // Post-training binarisation loses much more on a conv net than on a dense one (about
    // 34% here, against 62% for 64-128-10), but stays above chance (10%).
    assert!(acc[3] >= 0.2, "binary {}", acc[3]);
    let binary = dir.join("conv-binary.fcm");
    let eval = last_json(&flipchip_ok(&["eval", s(&binary), "--json"]));
    assert_eq!(eval["accuracy"], q["precisions"][3]["accuracy"]);
    let text = std::fs::read_to_string(&binary).unwrap();
    let layers: Vec<&str> = text.lines().filter(|l| l.starts_with("layer ")).collect();
    assert!(
        layers[0].starts_with("layer 1 binary conv kernel 3")
            && layers[1].starts_with("layer 2 maxpool size 2")
            && layers[2].starts_with("layer 3 binary conv"),
        "{layers:?}"
    );
}

#[test]
fn validation_split_is_reported_and_can_be_turned_off() {
    let dir = scratch("cli-val");
    let model = dir.join("m.fcm");
    let base = [
        "train",
        "--epochs",
        "2",
        "--out",
        s(&model),
        "--json",
        "--quiet",
    ];
    let j = last_json(&flipchip_ok(&base));
    assert_eq!(j["val_samples"], 144, "10% of 1438 by default");
    assert_eq!(j["train_samples"], 1438 - 144);
    assert!(j["val_accuracy"].as_f64().unwrap() > 0.5);
    for h in j["history"].as_array().unwrap() {
        assert!(h["val_accuracy"].is_f64() && h["val_loss"].is_f64(), "{h}");
    }

    let out = flipchip_ok(&[&base[..], &["--val", "300"]].concat());
    assert_eq!(last_json(&out)["val_samples"], 300);
    let out = flipchip_ok(&[&base[..], &["--val-fraction", "0.25"]].concat());
    assert_eq!(last_json(&out)["val_samples"], 360);

    let out = flipchip_ok(&[&base[..], &["--val", "0", "--patience", "2"]].concat());
    let j = last_json(&out);
    assert!(j["val_accuracy"].is_null());
    assert_eq!(j["val_samples"], 0);
    assert_eq!(j["patience_on"], "training loss");
    assert!(j["history"][0]["val_accuracy"].is_null());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("validation split off"), "{err}");
    assert!(err.contains("training loss"), "{err}");

    // Bad values are errors that say what is wrong (all found before the first epoch).
    let base = ["train", "--out", s(&model), "--quiet"];
    for (extra, says) in [
        (&["--val-fraction", "1"][..], "0 <= F < 1"),
        (&["--val-fraction", "-0.1"], "0 <= F < 1"),
        (&["--val", "1438"], "1438 training images"),
        (
            &["--val", "10", "--val-fraction", "0.2"],
            "cannot be used with",
        ),
        (&["--val", "0", "--keep", "best"], "--val 0"),
        (&["--epochs", "0"], "--epochs 0"),
        (&["--batch", "0"], "--batch 0"),
        (&["--min-delta", "-0.1"], "--min-delta"),
        (&["--keep", "first"], "expected last or best"),
        (
            &["--optimizer", "bop", "--set", "gamma=2"],
            "0 < gamma <= 1",
        ),
        (&["--optimizer", "float", "--set", "lr=-1"], "lr > 0"),
    ] {
        let out = flipchip(&[&base[..], extra].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} accepted");
        assert!(
            err.contains(says) && !err.contains("panicked"),
            "{extra:?}: {err}"
        );
    }
}

#[test]
fn keep_best_writes_the_epoch_of_the_best_validation_accuracy() {
    let dir = scratch("cli-keep");
    let model = dir.join("best.fcm");
    let out = flipchip_ok(&[
        "train",
        "--epochs",
        "8",
        "--keep",
        "best",
        "--out",
        s(&model),
        "--json",
        "--quiet",
    ]);
    let j = last_json(&out);
    let history = j["history"].as_array().unwrap();
    let accs: Vec<f64> = history
        .iter()
        .map(|h| h["val_accuracy"].as_f64().unwrap())
        .collect();
    let best = accs.iter().cloned().fold(0.0, f64::max);
    let first_best = accs.iter().position(|&a| a == best).unwrap() + 1;
    assert_eq!(j["keep"], "best");
    assert_eq!(j["kept_epoch"].as_u64().unwrap() as usize, first_best);
    assert_eq!(j["val_accuracy"].as_f64().unwrap(), best);
    // The file holds that epoch's model: its test accuracy is the one recorded for the epoch.
    let kept_test = history[first_best - 1]["test_accuracy"].as_f64().unwrap();
    assert_eq!(j["accuracy"].as_f64().unwrap(), kept_test);
    let eval = last_json(&flipchip_ok(&["eval", s(&model), "--json"]));
    assert_eq!(eval["accuracy"].as_f64().unwrap(), kept_test);
}

#[test]
fn seeds_reports_the_spread_over_runs() {
    let dir = scratch("cli-seeds");
    let out = flipchip_ok(&[
        "seeds",
        "--seeds",
        "1,2,3",
        "--epochs",
        "2",
        "--out",
        s(&dir.join("m.fcm")),
        "--json",
        "--quiet",
    ]);
    let j = last_json(&out);
    for m in [
        "accuracy",
        "val_accuracy",
        "epoch_seconds",
        "state_bytes_per_weight",
    ] {
        let (mean, std, min, max) = (
            j[format!("{m}_mean")].as_f64().unwrap(),
            j[format!("{m}_std")].as_f64().unwrap(),
            j[format!("{m}_min")].as_f64().unwrap(),
            j[format!("{m}_max")].as_f64().unwrap(),
        );
        assert!(min <= mean && mean <= max && std >= 0.0, "{m}: {j}");
    }
    assert_eq!(j["seeds"], serde_json::json!([1, 2, 3]));
    let runs = j["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    let accs: Vec<f64> = runs
        .iter()
        .map(|r| r["accuracy"].as_f64().unwrap())
        .collect();
    let mean = accs.iter().sum::<f64>() / 3.0;
    let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((j["accuracy_mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!(
        (j["accuracy_std"].as_f64().unwrap() - std).abs() < 1e-12,
        "sample std"
    );
    for (r, seed) in runs.iter().zip(1..) {
        assert_eq!(r["seed"], seed);
        let file = dir.join(format!("m-seed{seed}.fcm"));
        assert_eq!(r["model"].as_str(), Some(s(&file)));
        assert!(file.exists());
    }
    // The same seed through train gives the same file as through seeds.
    let single = dir.join("single.fcm");
    flipchip_ok(&[
        "train",
        "--seed",
        "2",
        "--epochs",
        "2",
        "--out",
        s(&single),
        "--quiet",
    ]);
    let text = |p: &Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(text(&single), text(&dir.join("m-seed2.fcm")));
    assert!(String::from_utf8_lossy(&out.stderr).contains("seed 2 (2 of 3)"));

    let out = flipchip(&["seeds", "--seeds", "1,1", "--out", s(&dir.join("x.fcm"))]);
    assert!(!out.status.success());
    let out = flipchip(&["seeds", "--seeds", "1", "--seed", "3"]);
    assert!(!out.status.success());
}

#[test]
fn resuming_a_digits_checkpoint_on_other_data_names_both() {
    let dir = scratch("cli-resume-other");
    let model = dir.join("digits.fcm");
    flipchip_ok(&["train", "--epochs", "1", "--out", s(&model), "--quiet"]);
    let ckpt = dir.join("digits.fcm.ckpt");
    // Another encoding on the same digits.
    let out = flipchip(&[
        "train",
        "--epochs",
        "1",
        "--encoding",
        "threshold:8",
        "--out",
        s(&model),
        "--resume",
        s(&ckpt),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("digits.fcm.ckpt")
            && err.contains("encoding: saved bitplanes")
            && err.contains("wanted threshold"),
        "{err}"
    );
    let fmnist = Path::new("/usr/share/datasets/fashion-mnist");
    if !fmnist.exists() {
        eprintln!("Fashion-MNIST missing: skipped resuming against it");
        return;
    }
    let out = flipchip(&[
        "train",
        "--data",
        s(fmnist),
        "--arch",
        "784-128-10",
        "--epochs",
        "1",
        "--out",
        s(&dir.join("f.fcm")),
        "--resume",
        s(&ckpt),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("dataset: saved optdigits, wanted fashion-mnist")
            && err
                .contains("image shape: saved 8x8x1 (5-bit pixels), wanted 28x28x1 (8-bit pixels)"),
        "{err}"
    );
}

#[test]
fn bad_architectures_are_errors_that_name_the_token() {
    for (arch, want) in [
        (
            "c16k9-10",
            "layer 1 'c16k9' has a 9x9 kernel, larger than its 8x8 input",
        ),
        ("c8k4-p-10", "layer 2 'p' pools a 5x5 feature map"),
        ("c0-10", "'c0' has zero channels"),
        ("c8-32-c8-10", "layer 3 'c8' follows a dense layer"),
        ("c8-p-12", "10 classes, not 12"),
        ("64-x-10", "'x' is not a layer"),
    ] {
        let out = flipchip(&["train", "--arch", arch, "--epochs", "1", "--quiet"]);
        assert!(!out.status.success(), "{arch} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{arch}: {err}");
    }
}

/// A conv model's FIFOs: `compile` sizes them by simulation, records them in fold.json and
/// report.json, and `sim` rebuilds the same design from the build directory and runs at the
/// measured interval; listing no FIFOs there is slower, and a FIFO after a stage the design
/// lacks is an error naming it.
#[test]
fn compile_sizes_the_fifos_of_a_conv_design_and_sim_reads_them_back() {
    let dir = scratch("cli-fifos");
    let model = dir.join("conv.fcm");
    let build = dir.join("build");
    flipchip_ok(&[
        "train",
        "--arch",
        "c16-p-c32-64-10",
        "--epochs",
        "2",
        "--out",
        s(&model),
        "--quiet",
    ]);
    let report = last_json(&flipchip_ok(&[
        "compile",
        s(&model),
        "--out",
        s(&build),
        "--json",
    ]));
    let measured = &report["measured"];
    let slowest = report["total"]["cycles_per_frame"].as_u64().unwrap();
    assert_eq!(measured["cycles_per_frame"].as_u64(), Some(slowest));
    assert!(measured["unbuffered_cycles_per_frame"].as_u64().unwrap() > slowest);
    let fifos = measured["fifos"].as_array().unwrap();
    assert!(!fifos.is_empty(), "{report}");
    let fold_path = build.join("fold.json");
    let fold: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fold_path).unwrap()).unwrap();
    assert_eq!(&fold["fifos"], &measured["fifos"]);
    let sim = |frames: &str| {
        last_json(&flipchip_ok(&[
            "sim",
            s(&model),
            "--build",
            s(&build),
            "--frames",
            frames,
            "--json",
        ]))
    };
    let run = sim("40");
    assert!(run["accuracy"].as_f64().is_some());
    assert_eq!(run["cycles_per_frame"].as_f64(), Some(slowest as f64));
    assert_eq!(run["latency_cycles"], measured["latency_cycles"]);

    let mut none = fold.clone();
    none["fifos"] = serde_json::json!([]);
    std::fs::write(&fold_path, none.to_string()).unwrap();
    flipchip_ok(&[
        "compile",
        s(&model),
        "--out",
        s(&build),
        "--fold",
        s(&fold_path),
    ]);
    let slower = sim("40")["cycles_per_frame"].as_f64().unwrap();
    assert!(slower > slowest as f64, "{slower} without FIFOs");

    let mut bad = fold;
    bad["fifos"] = serde_json::json!([{"after": "l9_swu", "depth": 4}]);
    std::fs::write(&fold_path, bad.to_string()).unwrap();
    let out = flipchip(&[
        "compile",
        s(&model),
        "--out",
        s(&build),
        "--fold",
        s(&fold_path),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("FIFO after 'l9_swu'"),
        "{err}"
    );
}

/// Packed input: a one-bit digits model compiled with `--packed-input` takes 16 binarised
/// pixels per 16-bit beat; `sim` classifies the test set as the reference does and `verify`
/// finds the RTL identical. A model with bit planes cannot take packed input, and fold files
/// with impossible beats are refused, naming the file and the numbers.
#[test]
fn a_packed_input_design_compiles_and_verifies() {
    let dir = scratch("cli-packed");
    let model = dir.join("digits-threshold.fcm");
    let build = dir.join("build");
    let out = flipchip_ok(&[
        "train",
        "--epochs",
        "2",
        "--encoding",
        "threshold:8",
        "--out",
        s(&model),
        "--quiet",
        "--json",
    ]);
    let accuracy = last_json(&out)["accuracy"].as_f64().unwrap();
    let out = flipchip_ok(&[
        "compile",
        s(&model),
        "--out",
        s(&build),
        "--packed-input",
        "--target-cycles",
        "4",
        "--json",
    ]);
    let report = last_json(&out);
    assert_eq!(report["pixels_per_beat"], 16, "{report}");
    assert_eq!(report["input_format"], "packed", "{report}");
    // The input adapter takes 4 cycles a frame (the argmax's scan of 10 classes, 9).
    assert_eq!(report["layers"][0]["cycles_per_frame"], 4, "{report}");
    let ports: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(build.join("ports.json")).unwrap()).unwrap();
    assert_eq!(ports["input_format"], "packed");
    assert_eq!(ports["input_width"], 16);
    let fold = std::fs::read_to_string(build.join("fold.json")).unwrap();
    assert!(fold.contains(r#""input": "packed""#), "{fold}");

    let out = flipchip_ok(&["sim", s(&model), "--build", s(&build), "--json"]);
    assert_eq!(last_json(&out)["accuracy"].as_f64().unwrap(), accuracy);
    let rtl = verilator_or_none();
    let out = flipchip_ok(&[
        "verify",
        "--build",
        s(&build),
        "--frames",
        "30",
        "--rtl",
        rtl,
        "--json",
    ]);
    let v = last_json(&out);
    assert_eq!(v["mismatches"].as_u64(), Some(0), "{v}");
    assert_eq!(v["rtl_mismatches"].as_u64(), Some(0), "{v}");
    assert!(v["divergence"].is_null(), "{v}");

    let refused = |args: &[&str]| {
        let out = flipchip(args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!err.contains("panicked"), "{err}");
        err
    };
    // Bit planes are not one bit per pixel.
    let planes = dir.join("digits-planes.fcm");
    flipchip_ok(&["train", "--epochs", "1", "--out", s(&planes), "--quiet"]);
    let err = refused(&[
        "compile",
        s(&planes),
        "--out",
        s(&dir.join("bad")),
        "--packed-input",
    ]);
    assert!(
        err.contains("--packed-input") && err.contains("one-bit encoding"),
        "{err}"
    );
    // 64 pixels cannot come 3 or 128 to a beat; the message gives the most a beat takes (64
    // pixel bytes, or 512 packed pixels).
    for (file, k, most) in [
        (r#"{"pixels_per_beat":3,"input":"packed","#, 3, 512),
        (r#"{"pixels_per_beat":128,"#, 128, 64),
        (r#"{"pixels_per_beat":128,"input":"packed","#, 128, 512),
    ] {
        let path = dir.join("fold-bad.json");
        let text = format!(r#"{file}"layers":[{{"pe":1,"simd":1}},{{"pe":1,"simd":1}}]}}"#);
        std::fs::write(&path, text).unwrap();
        let err = refused(&[
            "compile",
            s(&model),
            "--out",
            s(&dir.join("bad")),
            "--fold",
            s(&path),
        ]);
        assert!(
            err.contains(s(&path))
                && err.contains(&format!("pixels_per_beat {k}"))
                && err.contains("64 pixels")
                && err.contains(&format!("1..={most}")),
            "{err}"
        );
    }
}

#[test]
fn augmentation_changes_training_reproducibly_and_rejects_bad_variants() {
    let dir = scratch("cli-augment");
    let model = |n: &str| dir.join(n);
    let train = |out: &std::path::Path, extra: &[&str]| {
        let base = [
            "train",
            "--epochs",
            "3",
            "--out",
            s(out),
            "--json",
            "--quiet",
        ];
        last_json(&flipchip_ok(&[&base[..], extra].concat()))
    };
    let plain = train(&model("plain.fcm"), &[]);
    assert_eq!(plain["augment"], "none");
    let a = train(&model("a.fcm"), &["--augment", "shift:1"]);
    let b = train(&model("b.fcm"), &["--augment", "shift:1", "--threads", "1"]);
    assert_eq!(a["augment"], "shift:1");
    let read = |n: &str| std::fs::read_to_string(model(n)).unwrap();
    // The same variants whatever the thread count, different weights from plain training,
    // and the model file says how it was trained.
    assert_eq!(read("a.fcm"), read("b.fcm"));
    assert_eq!(a["val_accuracy"], b["val_accuracy"]);
    assert_ne!(read("a.fcm"), read("plain.fcm"));
    assert!(read("a.fcm").contains("meta augment \"shift:1\""));
    assert!(a["accuracy"].as_f64().unwrap() > 0.7, "{a}");
    for (bad, says) in [
        ("rotate", "unknown augmentation"),
        ("shift:0", "1..=4"),
        ("shift:4", "too large for 8x8"),
    ] {
        let out = flipchip(&[
            "train",
            "--out",
            s(&model("x.fcm")),
            "--quiet",
            "--augment",
            bad,
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "--augment {bad}: {err}");
    }
}
