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

/// The exported graph with its `Flatten` given another axis: every axis whose leading
/// dimensions are all 1 flattens to `[1, N]` and imports to the same model; the others (which
/// would make rows of channels or image rows) are refused with the shape they make.
#[test]
fn flatten_imports_on_every_axis_that_leaves_one_row() {
    let with_axis = |m: &Model, axis: i64| {
        let mut proto = qonnx::export::to_proto(m).expect("exports");
        let graph = proto.graph.as_mut().expect("a graph");
        let flatten = graph
            .node
            .iter_mut()
            .find(|n| n.op_type == "Flatten")
            .expect("a Flatten between the convolution and the dense layer");
        let a = flatten
            .attribute
            .iter_mut()
            .find(|a| a.name == "axis")
            .expect("an axis");
        a.i = axis;
        qonnx::import::import(
            &proto,
            qonnx::Options {
                input_range: (0.0, 255.0),
                pixel_bits: 8,
            },
        )
        .map(|i| i.model.layers)
    };
    let four = random_model(3, "c4-p-10", 6, 6, 1, Encoding::Threshold(100));
    for axis in [0, 1, -3] {
        assert_eq!(
            with_axis(&four, axis).expect("imports"),
            four.layers,
            "axis {axis}"
        );
    }
    for (axis, shape) in [(2, "[4, 4]"), (-1, "[8, 2]"), (4, "[16, 1]")] {
        let err = with_axis(&four, axis).unwrap_err().to_string();
        assert!(
            err.contains(&format!("into {shape}; only a flatten to [1, 16]")),
            "axis {axis}: {err}"
        );
    }
    assert!(with_axis(&four, 5)
        .unwrap_err()
        .to_string()
        .contains("has axis 5"));
    // One channel: the channel axis is 1 too, so axis 2 still leaves a single row.
    let one = random_model(4, "c1-10", 6, 6, 1, Encoding::Threshold(100));
    assert_eq!(with_axis(&one, 2).expect("imports"), one.layers);
}

/// An input threshold written as the float pixel `T / 255` (float32, as a graph holds it) on
/// `--input-range 0,1`: pixel `T` lands exactly on it in float32 (ToTensor's `v / 255`) and
/// fires, so the encoding is `threshold:T` for every `T`. Evaluating the input path in `f64`
/// instead puts `T / 255` below its float32 rounding for about half the values of `T`.
#[test]
fn input_thresholds_on_the_pixel_grid_follow_float32() {
    let m = random_model(6, "16-10", 4, 4, 1, Encoding::Threshold(1));
    let base = qonnx::export::to_proto(&m).expect("exports");
    for t in 1..=255u16 {
        let mut proto = base.clone();
        let graph = proto.graph.as_mut().expect("a graph");
        let init = graph
            .initializer
            .iter_mut()
            .find(|i| i.name.starts_with("encode"))
            .expect("the encoding's threshold");
        let name = init.name.clone();
        let v = (t as f32 / 255.0) as f64;
        *init = qonnx::tensor::Tensor {
            dims: vec![1, 1],
            data: vec![v],
        }
        .to_proto(&name);
        let got = qonnx::import::import(
            &proto,
            qonnx::Options {
                input_range: (0.0, 1.0),
                pixel_bits: 8,
            },
        )
        .expect("imports")
        .model
        .input
        .encoding;
        assert_eq!(got, Encoding::Threshold(t), "threshold {t} / 255 = {v}");
    }
}

/// Models whose last layer has per-class integer scales (one random model in three) come back
/// with the same scales, whatever the smallest of them.
#[test]
fn per_class_scales_roundtrip() {
    let mut scaled = 0;
    for seed in 1..=12 {
        let m = random_model(seed, "16-10", 4, 4, 1, Encoding::Threshold(100));
        if let Some(flip::model::Layer::Binary(l)) = m.layers.last() {
            if matches!(&l.activation, flip::model::Activation::Scores { scale, .. } if !scale.is_empty())
            {
                scaled += 1;
            }
        }
        roundtrip(&m);
    }
    assert!(
        scaled >= 2,
        "only {scaled} of 12 random models have per-class scales"
    );
}
