//! `flipchip import` and `flipchip export` end to end: a Brevitas-exported model imported from
//! the committed fixtures goes through `compile` and `verify` unchanged.

mod common;
use common::*;
use std::path::Path;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("qonnx/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// `model` compiled into `build` and verified over `frames` frames against the reference and
/// Verilator: no mismatch on either side.
fn compile_and_verify(model: &Path, build: &Path, frames: u64) {
    flipchip_ok(&["compile", s(model), "--out", s(build), "--json"]);
    let v = last_json(&flipchip_ok(&[
        "verify",
        "--build",
        s(build),
        "--frames",
        &frames.to_string(),
        "--rtl",
        verilator_or_none(),
        "--json",
    ]));
    assert_eq!(v["frames"].as_u64().unwrap(), frames);
    assert_eq!(v["mismatches"].as_u64().unwrap(), 0, "{v}");
    assert_eq!(v["rtl_mismatches"].as_u64(), Some(0), "{v}");
}

#[test]
fn an_imported_brevitas_model_compiles_and_verifies() {
    let dir = scratch("qonnx-import-hw");
    let model = dir.join("digits.fcm");
    let out = flipchip_ok(&[
        "import",
        &fixture("digits.onnx"),
        "--out",
        s(&model),
        "--pixel-bits",
        "5",
        "--json",
    ]);
    let j = last_json(&out);
    assert_eq!(j["arch"], "64-64-10", "{j}");
    // The sign of v / 31 - 0.25: the Add on the input moves the encoding's threshold.
    assert_eq!(j["encoding"], "threshold:8", "{j}");
    let layers = j["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["activation"], "threshold");
    assert_eq!(layers[1]["activation"], "scores");
    let folded: Vec<&str> = j["folded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        folded.iter().any(|f| f.contains("BatchNormalization")),
        "{folded:?}"
    );

    // The model reads the embedded digits as trained (5-bit pixels, v / 31).
    let eval = last_json(&flipchip_ok(&["eval", s(&model), "--json"]));
    let accuracy = eval["accuracy"].as_f64().unwrap();
    eprintln!("imported digits model: test accuracy {accuracy}");
    assert!(
        accuracy > 0.3,
        "an imported trained model at chance: {accuracy}"
    );

    compile_and_verify(&model, &dir.join("build"), 40);
}

#[test]
fn an_imported_conv_net_compiles() {
    let dir = scratch("qonnx-import-conv");
    let model = dir.join("cnv.fcm");
    flipchip_ok(&[
        "import",
        &fixture("cnv.onnx"),
        "--out",
        s(&model),
        "--input-range",
        "-1,1",
    ]);
    let r = last_json(&flipchip_ok(&[
        "compile",
        s(&model),
        "--out",
        s(&dir.join("build")),
        "--json",
    ]));
    assert!(r["total"]["cycles_per_frame"].as_u64().unwrap() > 0, "{r}");
}

#[test]
fn an_unsupported_operator_is_an_error_naming_file_and_node() {
    let dir = scratch("qonnx-import-bad");
    let out = flipchip(&[
        "import",
        &fixture("unsupported/relu.onnx"),
        "--out",
        s(&dir.join("m.fcm")),
        "--input-range",
        "-1,1",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("relu.onnx") && err.contains("node /3/Relu: Relu has no binary form"),
        "{err}"
    );
    assert!(!dir.join("m.fcm").exists());

    let out = flipchip(&[
        "import",
        &fixture("tfc.json"),
        "--out",
        s(&dir.join("m.fcm")),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tfc.json") && err.contains("not an ONNX model"),
        "{err}"
    );

    let out = flipchip(&[
        "import",
        &fixture("tfc.onnx"),
        "--out",
        s(&dir.join("m.fcm")),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--input-range"),
        "a constant input quantiser hints at the range: {err}"
    );
}

/// A model with its input normalisation in the graph (MNIST's `(x - 0.1307) / 0.3081` before
/// a 2-bit quantiser) goes from import through compile to the RTL: the normalisation lives in
/// the input adapter's thermometer thresholds.
#[test]
fn an_imported_normalised_model_compiles_and_verifies() {
    let dir = scratch("qonnx-import-normalize");
    let model = dir.join("normalize.fcm");
    let j = last_json(&flipchip_ok(&[
        "import",
        &fixture("normalize.onnx"),
        "--out",
        s(&model),
        "--input-range",
        "0,1",
        "--json",
    ]));
    assert_eq!(j["arch"], "144-32-10", "{j}");
    assert_eq!(j["encoding"], "thermometer:63,122,181", "{j}");
    let folded = j["folded"].to_string();
    assert!(
        folded.contains("/Sub (Sub) on the input") && folded.contains("/Div (Div) on the input"),
        "{folded}"
    );
    compile_and_verify(&model, &dir.join("build"), 40);
}

/// CIFAR-10's per-channel normalisation before a sign would need a pixel threshold per
/// channel, which no flipchip encoding has: the error names the file, the Sub node and the
/// thresholds each channel would need.
#[test]
fn a_per_channel_normalisation_needing_per_channel_thresholds_is_refused() {
    let dir = scratch("qonnx-import-normalize-rgb");
    let out = flipchip(&[
        "import",
        &fixture("unsupported/normalize-rgb.onnx"),
        "--out",
        s(&dir.join("m.fcm")),
        "--input-range",
        "0,1",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // (v / 255 - mean) / std >= 0 from v = 255 * mean on: 125.3, 123.0, 113.9.
    for want in [
        "normalize-rgb.onnx",
        "node /norm/Sub: Sub applies per-channel constants [0.4914, 0.4822, 0.4465]",
        "[126] on channel 0, [123] on channel 1, [114] on channel 2",
    ] {
        assert!(err.contains(want), "{want:?} missing from {err}");
    }
    assert!(!dir.join("m.fcm").exists());
}

/// An RGB conv net flattened by `x.view(x.size(0), -1)` (exported with a dynamic batch axis,
/// so the graph computes the reshape's target from a Shape) imports, compiles and verifies.
#[test]
fn an_imported_dynamic_flatten_conv_net_verifies() {
    let dir = scratch("qonnx-import-viewflatten");
    let model = dir.join("viewflatten.fcm");
    let j = last_json(&flipchip_ok(&[
        "import",
        &fixture("viewflatten.onnx"),
        "--out",
        s(&model),
        "--json",
    ]));
    assert_eq!(j["arch"], "c8-c8-16-10", "{j}");
    assert!(j["folded"].to_string().contains("/Shape (Shape)"), "{j}");
    compile_and_verify(&model, &dir.join("build"), 20);
}
