//! Export then import: random flipchip models written as QONNX graphs read back into models
//! that score every input identically (the importer is independent of the exporter's
//! arithmetic, so this holds each against the other; qonnx's own execution of exported graphs
//! is checked by `scripts/qonnx-fixtures.sh --export`, see `export_check.rs`).

use flip::encoding::Encoding;
use flip::model::arch;
use flip::model::{InputSpec, Model};

fn random_model(seed: u64, arch_str: &str, w: usize, h: usize, c: usize, enc: Encoding) -> Model {
    let input = InputSpec {
        width: w,
        height: h,
        channels: c,
        pixel_bits: 8,
        encoding: enc,
    };
    let specs = arch::parse(arch_str, input.pixels()).expect("a valid arch");
    flip::model::random::binary(seed, input, &specs, 10)
}

fn roundtrip(m: &Model) {
    let bytes = qonnx::export::to_bytes(m).expect("exports");
    let proto = qonnx::graph::decode(&bytes).expect("decodes");
    let back = qonnx::import::import(
        &proto,
        qonnx::Options {
            input_range: (0.0, 255.0),
            pixel_bits: 8,
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", m.arch()))
    .model;
    assert_eq!(back.arch(), m.arch());
    assert_eq!(back.input.encoding, m.input.encoding);
    let mut s = 99u64;
    for i in 0..200 {
        let px: Vec<u8> = (0..m.input.pixels())
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 56) as u8
            })
            .collect();
        assert_eq!(
            flip::reference::binary_scores(&back, &px),
            flip::reference::binary_scores(m, &px),
            "{} input {i}",
            m.arch()
        );
    }
    assert_eq!(back.layers, m.layers, "{}", m.arch());
}

#[test]
fn dense_threshold_model_roundtrips() {
    roundtrip(&random_model(
        1,
        "64-32-16-10",
        8,
        8,
        1,
        Encoding::Threshold(100),
    ));
}

#[test]
fn dense_bitplane_model_roundtrips() {
    roundtrip(&random_model(
        2,
        "48-20-10",
        4,
        4,
        3,
        Encoding::BitPlanes(3),
    ));
}

#[test]
fn conv_model_roundtrips() {
    roundtrip(&random_model(
        3,
        "c6-p-c5k2-12-10",
        10,
        10,
        2,
        Encoding::Threshold(77),
    ));
    roundtrip(&random_model(
        4,
        "c4-c3-10",
        6,
        6,
        1,
        Encoding::BitPlanes(2),
    ));
}

#[test]
fn thermometer_models_roundtrip() {
    // Exported as one MultiThreshold per level, concatenated on the channel axis.
    let levels = || Encoding::Thermometer(vec![40, 90, 200]);
    roundtrip(&random_model(5, "48-20-10", 4, 4, 3, levels()));
    roundtrip(&random_model(6, "c5-p-12-10", 6, 6, 2, levels()));
}
