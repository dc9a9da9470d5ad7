//! qonnx's execution of exported graphs (stored by `scripts/qonnx-fixtures.sh --export` in
//! `fixtures/export/`) against flipchip's reference: the committed graph is what `export` writes
//! today, and qonnx's class equals the reference's on every stored image.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/export")
}

/// All digits in the CSV's order (the order the check script ran them in).
fn digits() -> Vec<Vec<u8>> {
    let gz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../flip/data/optdigits-8x8.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&gz).expect("the vendored digits"))
        .read_to_string(&mut text)
        .expect("gzip text");
    text.lines()
        .map(|l| {
            let v: Vec<u8> = l.split(',').map(|t| t.trim().parse().unwrap()).collect();
            v[..64].to_vec()
        })
        .collect()
}

fn check(name: &str) {
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap())
            .unwrap();
    let model = flip::model::format::load(&dir().join(format!("{name}.fcm"))).unwrap();
    let committed = std::fs::read(dir().join(format!("{name}.onnx"))).unwrap();
    assert!(
        qonnx::export::to_bytes(&model).unwrap() == committed,
        "{name}: export no longer writes the graph qonnx ran; rerun scripts/qonnx-fixtures.sh --export-only"
    );
    let images: Vec<Vec<u8>> = match meta["data"].as_str().unwrap() {
        "optdigits-csv" => digits(),
        "fashion-mnist-t10k" => {
            let d = Path::new("/usr/share/datasets/fashion-mnist");
            if !d.exists() {
                tools::tool_missing(
                    "Fashion-MNIST missing (scripts/setup.sh installs dataset-fashion-mnist)",
                );
                return;
            }
            let data = flip::data::load(Some(d)).unwrap();
            let p = data.pixels();
            data.test.images.chunks(p).map(|c| c.to_vec()).collect()
        }
        // The `perclass` fixture's stored random pixel vectors.
        "perclass-inputs" => {
            let meta: Value = serde_json::from_str(
                &std::fs::read_to_string(dir().join("../perclass.json")).unwrap(),
            )
            .unwrap();
            meta["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|img| {
                    img.as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_u64().unwrap() as u8)
                        .collect()
                })
                .collect()
        }
        other => panic!("{name}: unknown data {other}"),
    };
    let classes = meta["classes"].as_array().unwrap();
    assert_eq!(classes.len(), images.len(), "{name}");
    let mut differ = 0;
    for (img, want) in images.iter().zip(classes) {
        let got = flip::reference::argmax(&flip::reference::binary_scores(&model, img));
        differ += usize::from(got != want.as_u64().unwrap() as usize);
    }
    eprintln!(
        "{name}: {} images, {differ} classes differ from qonnx",
        images.len()
    );
    assert_eq!(
        differ,
        0,
        "{name}: {differ} of {} classes differ from qonnx's",
        images.len()
    );
}

#[test]
fn digits_bitplane_mlp_matches_qonnx_execution() {
    check("digits-mlp");
}

#[test]
fn digits_conv_net_matches_qonnx_execution() {
    check("digits-conv");
}

#[test]
fn digits_thermometer_mlp_matches_qonnx_execution() {
    check("digits-thermometer");
}

#[test]
fn fashion_mnist_mlp_matches_qonnx_execution_on_10000_images() {
    check("fashion-mlp");
}

/// A model with per-class score multipliers (imported from the `perclass` fixture) exported
/// and executed by qonnx: the multipliers survive the export.
#[test]
fn per_class_scaled_model_matches_qonnx_execution() {
    let model = flip::model::format::load(&dir().join("perclass-export.fcm")).unwrap();
    let Some(flip::model::Layer::Binary(last)) = model.layers.last() else {
        panic!("a binary last layer")
    };
    assert!(
        matches!(&last.activation, flip::model::Activation::Scores { scale, .. } if scale.len() == 10),
        "per-class multipliers"
    );
    check("perclass-export");
}
