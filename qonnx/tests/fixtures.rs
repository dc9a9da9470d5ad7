//! The committed fixtures (made by `scripts/qonnx-fixtures.sh` with Brevitas and qonnx): every
//! importable model gives qonnx's class on every stored input, and every unsupported one fails
//! with its named error.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Imports fixture `name` and returns how many stored inputs it classified as qonnx did, out of
/// how many.
fn agreement(name: &str) -> (usize, usize, flip::model::Model) {
    let meta = read_json(&fixtures().join(format!("{name}.json")));
    let range = meta["input_range"].as_array().expect("input_range");
    let opts = qonnx::Options {
        input_range: (range[0].as_f64().unwrap(), range[1].as_f64().unwrap()),
        pixel_bits: meta["pixel_bits"].as_u64().unwrap() as u8,
    };
    let imported = qonnx::import_file(&fixtures().join(format!("{name}.onnx")), opts)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let model = imported.model;
    // The imported model must survive the model file's round trip unchanged.
    let text = flip::model::format::to_string(&model);
    assert_eq!(flip::model::format::parse(&text).expect("reparses"), model);
    let inputs = meta["inputs"].as_array().expect("inputs");
    let classes = meta["classes"].as_array().expect("classes");
    assert_eq!(inputs.len(), classes.len());
    assert!(!inputs.is_empty(), "{name} has no stored inputs");
    let mut agree = 0;
    for (i, (img, want)) in inputs.iter().zip(classes).enumerate() {
        let px: Vec<u8> = img
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(px.len(), model.input.pixels(), "{name} input {i}");
        let scores = flip::reference::binary_scores(&model, &px);
        let got = flip::reference::argmax(&scores);
        if got == want.as_u64().unwrap() as usize {
            agree += 1;
        } else {
            eprintln!("{name} input {i}: flipchip class {got} (scores {scores:?}), qonnx {want}");
        }
    }
    (agree, inputs.len(), model)
}

fn check(name: &str, arch: &str, encoding: &str) {
    let (agree, total, model) = agreement(name);
    assert_eq!(model.arch(), arch, "{name}");
    assert_eq!(
        qonnx::import::encoding_name(&model.input.encoding),
        encoding,
        "{name}"
    );
    assert_eq!(
        agree, total,
        "{name}: {agree} of {total} classes agree with qonnx"
    );
}

#[test]
fn tfc_matches_qonnx() {
    check("tfc", "784-64-64-64-10", "threshold:128");
}

#[test]
fn sfc_matches_qonnx() {
    check("sfc", "784-96-96-10", "thermometer:43,128,213");
}

#[test]
fn cnv_matches_qonnx() {
    check("cnv", "c8-c8-p-16-10", "threshold:128");
}

#[test]
fn trained_digits_matches_qonnx() {
    check("digits", "64-64-10", "threshold:8");
}

/// A batch norm after the last layer whose scales differ between classes (some negative):
/// imported with per-class integer score multipliers, the classes still qonnx's on every input.
#[test]
fn per_class_score_scales_match_qonnx() {
    check("perclass", "64-32-10", "threshold:128");
    let (_, _, model) = agreement("perclass");
    let Some(flip::model::Layer::Binary(last)) = model.layers.last() else {
        panic!("a binary last layer")
    };
    let flip::model::Activation::Scores { scale, .. } = &last.activation else {
        panic!("scores")
    };
    assert_eq!(scale.len(), 10, "per-class multipliers");
    assert!(scale.iter().any(|&m| m != scale[0]), "{scale:?}");
}

/// MNIST's normalisation `(x - 0.1307) / 0.3081` as a Sub and a Div with `[1, 1, 1, 1]`
/// constants before a 2-bit input quantiser of scale 0.75: codes step where
/// `(v / 255 - 0.1307) / 0.3081 / 0.75` passes 0.5, 1.5 and 2.5.
#[test]
fn input_normalisation_moves_the_encoding_and_matches_qonnx() {
    check("normalize", "144-32-10", "thermometer:63,122,181");
    let opts = qonnx::Options {
        input_range: (0.0, 1.0),
        pixel_bits: 8,
    };
    let report = qonnx::import_file(&fixtures().join("normalize.onnx"), opts)
        .unwrap()
        .report;
    for op in ["(Sub) on the input", "(Div) on the input"] {
        assert!(
            report.folded.iter().any(|f| f.contains(op)),
            "{op} missing from {:?}",
            report.folded
        );
    }
}

/// RGB input with equal per-channel constants (`Normalize((0.5,)*3, (0.5,)*3)`) and PyTorch's
/// `x.view(x.size(0), -1)` exported with a dynamic batch axis: the Shape of the known map is
/// folded and the Reshape it feeds is a flatten.
#[test]
fn dynamic_flatten_and_rgb_normalisation_match_qonnx() {
    check("viewflatten", "c8-c8-16-10", "threshold:128");
    let opts = qonnx::Options {
        input_range: (0.0, 1.0),
        pixel_bits: 8,
    };
    let imported = qonnx::import_file(&fixtures().join("viewflatten.onnx"), opts).unwrap();
    assert_eq!(imported.model.input.channels, 3);
    let folded = &imported.report.folded;
    assert!(
        folded
            .iter()
            .any(|f| f.contains("(Shape) of a tensor of known shape [1, 8, 6, 6]")),
        "{folded:?}"
    );
    assert!(
        folded
            .iter()
            .any(|f| f.contains("(Concat) evaluated to [1.0, -1.0]")),
        "{folded:?}"
    );
    let dense = imported
        .report
        .layers
        .iter()
        .find(|l| l.kind == "dense")
        .expect("a dense layer");
    assert_eq!(dense.token, "16");
}

/// The same graphs with other constants import to another encoding, or not at all: the
/// normalisation is read, not assumed.
#[test]
fn normalisation_constants_decide_the_encoding() {
    let imported = |lo: f64, hi: f64| {
        qonnx::import_file(
            &fixtures().join("normalize.onnx"),
            qonnx::Options {
                input_range: (lo, hi),
                pixel_bits: 8,
            },
        )
        .map(|i| qonnx::import::encoding_name(&i.model.input.encoding))
    };
    // Pixels seen as 0..255 instead of 0..1: pixel 1 is already past every level.
    assert_eq!(imported(0.0, 255.0).unwrap(), "thermometer:1,1,1");
    // The same --input-range composed with the graph's normalisation.
    assert_eq!(imported(0.0, 1.0).unwrap(), "thermometer:63,122,181");
    let err = imported(-10.0, -9.0).unwrap_err().to_string();
    assert!(err.contains("gives the same code"), "{err}");
}

#[test]
fn multithreshold_graph_matches_qonnx() {
    check("multithreshold", "16-12-5", "threshold:128");
}

#[test]
fn unsupported_models_name_their_node() {
    let dir = fixtures().join("unsupported");
    let expected = read_json(&dir.join("expected.json"));
    let expected = expected.as_object().expect("an object of name: phrase");
    assert!(expected.len() >= 3);
    for (name, phrase) in expected {
        let phrase = phrase.as_str().unwrap();
        let path = dir.join(format!("{name}.onnx"));
        // Their inputs are signs of x * 2 - 1, so that the failure is the node named.
        let opts = qonnx::Options {
            input_range: (-1.0, 1.0),
            pixel_bits: 8,
        };
        match qonnx::import_file(&path, opts) {
            Ok(_) => panic!("{name} imported but should fail with {phrase:?}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(phrase), "{name}: {msg:?} lacks {phrase:?}");
                eprintln!("{name}: {msg}");
            }
        }
    }
}

#[test]
fn brevitas_fashion_mnist_mlp_matches_qonnx_on_10000_test_images() {
    let meta = read_json(&fixtures().join("fashion.json"));
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.exists() {
        tools::tool_missing(
            "Fashion-MNIST missing (scripts/setup.sh installs dataset-fashion-mnist)",
        );
        return;
    }
    let opts = qonnx::Options {
        input_range: (-1.0, 1.0),
        pixel_bits: 8,
    };
    let model = qonnx::import_file(&fixtures().join("fashion.onnx"), opts)
        .expect("imports")
        .model;
    assert_eq!(model.arch(), "784-64-10");
    let data = flip::data::load(Some(dir)).expect("Fashion-MNIST loads");
    let classes = meta["classes"].as_array().expect("classes");
    let p = data.pixels();
    assert_eq!(classes.len(), data.test.labels.len());
    let (mut differ, mut right) = (0, 0);
    for ((img, want), &label) in data
        .test
        .images
        .chunks(p)
        .zip(classes)
        .zip(&data.test.labels)
    {
        let got = flip::reference::argmax(&flip::reference::binary_scores(&model, img));
        differ += usize::from(got != want.as_u64().unwrap() as usize);
        right += usize::from(got == label as usize);
    }
    let accuracy = right as f64 / classes.len() as f64;
    let brevitas = meta["brevitas_accuracy"].as_f64().unwrap();
    eprintln!(
        "fashion: flipchip accuracy {accuracy:.4}, Brevitas {brevitas:.4}, {differ} of {} classes differ from qonnx",
        classes.len()
    );
    assert_eq!(differ, 0, "{differ} classes differ from qonnx's");
    assert!(
        (accuracy - brevitas).abs() <= 0.001,
        "flipchip {accuracy} vs Brevitas {brevitas}"
    );
    // The batched reference that `flipchip eval` uses agrees.
    let batched = flip::reference::accuracy(&model, &data.test.images, &data.test.labels);
    assert_eq!(batched, accuracy);
}

#[test]
fn a_cleaned_up_graph_imports_to_the_same_model() {
    let opts = qonnx::Options {
        input_range: (-1.0, 1.0),
        pixel_bits: 8,
    };
    let raw = qonnx::import_file(&fixtures().join("cnv.onnx"), opts).unwrap();
    let clean = qonnx::import_file(&fixtures().join("cnv-clean.onnx"), opts).unwrap();
    assert_eq!(clean.model.layers, raw.model.layers);
    assert_eq!(clean.model.input, raw.model.input);
    // Folded by qonnx already: fewer constants left to evaluate here.
    assert!(clean.report.constants_folded.len() < raw.report.constants_folded.len());
}
