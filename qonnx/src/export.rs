//! Writing a flipchip model as a QONNX graph that qonnx's `execute_onnx` runs to the same
//! class as flipchip's reference.
//!
//! The graph takes the raw pixel values as floats in NCHW (`[1, C, H, W]`, values
//! `0..2^B - 1`) and gives the model's integer class scores `s + bias` as floats. Every value in
//! it is a small integer, so float32 arithmetic is exact:
//!
//! * the encoding is `MultiThreshold` on the pixels: `+-1` bits for a threshold (one node per
//!   level of a thermometer, concatenated on the channel axis), the centred level
//!   `2q - (2^P - 1)` for bit planes;
//! * a binary layer is `MatMul` (dense, after a `Flatten`) or `Conv` with `+-1` weights, giving
//!   `dot = 2s - Smax` (`Smax` the largest popcount sum); a threshold layer then compares `dot`
//!   (times `-1` where the direction bit is set) with a `MultiThreshold` whose output is `+-1`;
//!   the scores layer computes `dot * 0.5 + (Smax / 2 + bias)`;
//! * a max-pool is `MaxPool` on the `+-1` map (the OR of the bits).

use flip::encoding::Encoding;
use flip::model::{Activation, BinaryLayer, Layer, Model};
use prost::Message;

use crate::proto::{
    attribute_type, data_type, AttributeProto, Dimension, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use crate::tensor::Tensor;

/// Why a model does not export.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExportError(pub String);

/// The domain of QONNX's own operators.
pub const QONNX_DOMAIN: &str = "qonnx.custom_op.general";

/// Where each element of the current ONNX tensor sits among flipchip's bits.
enum Layout {
    /// `[1, C', h, w]`; channel `c'` is flipchip channel `chperm[c']` of an `h x w` map.
    Spatial {
        chperm: Vec<usize>,
        h: usize,
        w: usize,
    },
    /// `[1, n]`; element `i` is flipchip input `perm[i]`.
    Flat { perm: Vec<usize> },
}

struct Builder {
    nodes: Vec<NodeProto>,
    inits: Vec<crate::proto::TensorProto>,
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INT,
        i: v,
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::FLOAT,
        f: v,
        ..Default::default()
    }
}

fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRING,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            dim_value: d as i64,
                            dim_param: String::new(),
                        })
                        .collect(),
                }),
            }),
            denotation: String::new(),
        }),
        doc_string: String::new(),
    }
}

impl Builder {
    /// Adds a constant and returns its name.
    fn constant(&mut self, name: &str, t: Tensor) -> String {
        self.inits.push(t.to_proto(name));
        name.to_string()
    }

    /// Adds a node reading `inputs` and returns its output's name.
    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[String],
        attrs: Vec<AttributeProto>,
        qonnx: bool,
    ) -> String {
        let out = format!("{name}_out");
        self.nodes.push(NodeProto {
            input: inputs.to_vec(),
            output: vec![out.clone()],
            name: name.to_string(),
            op_type: op.to_string(),
            domain: if qonnx {
                QONNX_DOMAIN.into()
            } else {
                String::new()
            },
            attribute: attrs,
            doc_string: String::new(),
        });
        out
    }

    /// `MultiThreshold` with `thresholds` (`[rows, count]`) and output `scale * count + bias`.
    fn multithreshold(
        &mut self,
        name: &str,
        x: &str,
        thresholds: Tensor,
        scale: f32,
        bias: f32,
        dtype: &str,
    ) -> String {
        let t = self.constant(&format!("{name}_thresholds"), thresholds);
        self.node(
            "MultiThreshold",
            name,
            &[x.to_string(), t],
            vec![
                attr_str("out_dtype", dtype),
                attr_float("out_scale", scale),
                attr_float("out_bias", bias),
                attr_str("data_layout", "NCHW"),
            ],
            true,
        )
    }
}

/// The model as a QONNX `ModelProto`.
pub fn to_proto(model: &Model) -> Result<ModelProto, ExportError> {
    if !model.is_binary() {
        return Err(ExportError(
            "a float model does not export; quantize it first (flipchip quantize)".into(),
        ));
    }
    let inp = &model.input;
    let (c, h, w) = (inp.channels, inp.height, inp.width);
    let mut b = Builder {
        nodes: Vec::new(),
        inits: Vec::new(),
    };
    let bits = inp.pixel_bits as u32;
    // The encoding.
    let (mut x, chperm, mut levels) = match &inp.encoding {
        Encoding::Threshold(t) => {
            let th = Tensor {
                dims: vec![1, 1],
                data: vec![*t as f64],
            };
            let x = b.multithreshold("encode", "pixels", th, 2.0, -1.0, "BIPOLAR");
            (x, (0..c).collect::<Vec<_>>(), 1i64)
        }
        Encoding::BitPlanes(p) => {
            let q = (1u32 << p) - 1;
            let th = Tensor {
                dims: vec![1, q as usize],
                data: (1..=q).map(|k| (k << (bits - *p as u32)) as f64).collect(),
            };
            let dtype = format!("INT{}", p + 1);
            let x = b.multithreshold("encode", "pixels", th, 2.0, -(q as f32), &dtype);
            (x, (0..c).collect(), q as i64)
        }
        Encoding::Thermometer(ts) => {
            let l = ts.len();
            let mut parts = Vec::new();
            for (k, &t) in ts.iter().enumerate() {
                let th = Tensor {
                    dims: vec![1, 1],
                    data: vec![t as f64],
                };
                parts.push(b.multithreshold(
                    &format!("encode_level{k}"),
                    "pixels",
                    th,
                    2.0,
                    -1.0,
                    "BIPOLAR",
                ));
            }
            let x = if l == 1 {
                parts.remove(0)
            } else {
                b.node(
                    "Concat",
                    "encode_levels",
                    &parts,
                    vec![attr_int("axis", 1)],
                    false,
                )
            };
            // ONNX channel k * C + ch is flipchip channel ch * L + k.
            let mut chperm = vec![0; c * l];
            for k in 0..l {
                for ch in 0..c {
                    chperm[k * c + ch] = ch * l + k;
                }
            }
            (x, chperm, 1)
        }
    };
    let mut layout = Layout::Spatial { chperm, h, w };
    let last = model.layers.len() - 1;
    for (i, layer) in model.layers.iter().enumerate() {
        let n = i + 1;
        match layer {
            Layer::Float(_) => unreachable!("checked binary"),
            Layer::MaxPool(p) => {
                let s = p.size as i64;
                x = b.node(
                    "MaxPool",
                    &format!("l{n}_maxpool"),
                    &[x],
                    vec![
                        attr_ints("kernel_shape", &[s, s]),
                        attr_ints("strides", &[s, s]),
                    ],
                    false,
                );
                let Layout::Spatial { chperm, h, w } = layout else {
                    return Err(ExportError(format!("layer {n} pools a flat tensor")));
                };
                layout = Layout::Spatial {
                    chperm,
                    h: h / p.size,
                    w: w / p.size,
                };
            }
            Layer::Binary(l) => {
                let (dot, smax, next) = if let Some(conv) = l.conv {
                    let Layout::Spatial { chperm, .. } = &layout else {
                        return Err(ExportError(format!("layer {n} convolves a flat tensor")));
                    };
                    let k = conv.kernel;
                    let cin = chperm.len();
                    let mut wt = vec![0.0; l.outputs * cin * k * k];
                    for o in 0..l.outputs {
                        for (ci, &cf) in chperm.iter().enumerate() {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let col = (ky * k + kx) * conv.channels + cf;
                                    wt[((o * cin + ci) * k + ky) * k + kx] =
                                        if l.weights.get(o, col) { 1.0 } else { -1.0 };
                                }
                            }
                        }
                    }
                    let wname = b.constant(
                        &format!("l{n}_weights"),
                        Tensor {
                            dims: vec![l.outputs, cin, k, k],
                            data: wt,
                        },
                    );
                    let kk = k as i64;
                    let dot = b.node(
                        "Conv",
                        &format!("l{n}_conv"),
                        &[x.clone(), wname],
                        vec![
                            attr_ints("kernel_shape", &[kk, kk]),
                            attr_ints("strides", &[1, 1]),
                            attr_ints("pads", &[0, 0, 0, 0]),
                        ],
                        false,
                    );
                    let next = Layout::Spatial {
                        chperm: (0..l.outputs).collect(),
                        h: conv.out_height(),
                        w: conv.out_width(),
                    };
                    (dot, levels * l.inputs as i64, next)
                } else {
                    let perm = match layout {
                        Layout::Flat { perm } => perm,
                        Layout::Spatial { chperm, h, w } => {
                            // Flatten(axis=1) of NCHW: element ch * h * w + y * w + x.
                            let cn = chperm.len();
                            x = b.node(
                                "Flatten",
                                &format!("l{n}_flatten"),
                                &[x],
                                vec![attr_int("axis", 1)],
                                false,
                            );
                            let mut perm = vec![0; cn * h * w];
                            for (ch, &cf) in chperm.iter().enumerate() {
                                for y in 0..h {
                                    for xx in 0..w {
                                        perm[ch * h * w + y * w + xx] = (y * w + xx) * cn + cf;
                                    }
                                }
                            }
                            perm
                        }
                    };
                    if perm.len() != l.inputs {
                        return Err(ExportError(format!(
                            "layer {n} has {} inputs but receives {}",
                            l.inputs,
                            perm.len()
                        )));
                    }
                    let mut wt = vec![0.0; l.inputs * l.outputs];
                    for (i, &col) in perm.iter().enumerate() {
                        for o in 0..l.outputs {
                            wt[i * l.outputs + o] = if l.weights.get(o, col) { 1.0 } else { -1.0 };
                        }
                    }
                    let wname = b.constant(
                        &format!("l{n}_weights"),
                        Tensor {
                            dims: vec![l.inputs, l.outputs],
                            data: wt,
                        },
                    );
                    let dot = b.node(
                        "MatMul",
                        &format!("l{n}_matmul"),
                        &[x.clone(), wname],
                        vec![],
                        false,
                    );
                    let next = Layout::Flat {
                        perm: (0..l.outputs).collect(),
                    };
                    (dot, levels * l.inputs as i64, next)
                };
                x = activation(&mut b, n, l, &dot, smax, i == last)?;
                layout = next;
                levels = 1;
            }
        }
    }
    let scores = b.node("Identity", "scores", &[x], vec![], false);
    let graph = GraphProto {
        node: b.nodes,
        name: "flipchip".into(),
        initializer: b.inits,
        doc_string: format!("flipchip model {}", model.arch()),
        input: vec![value_info("pixels", &[1, c, h, w])],
        output: vec![value_info(&scores, &[1, model.classes()])],
        value_info: Vec::new(),
        quantization_annotation: Vec::new(),
    };
    Ok(ModelProto {
        ir_version: 8,
        opset_import: vec![
            OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            },
            OperatorSetIdProto {
                domain: QONNX_DOMAIN.into(),
                version: 1,
            },
        ],
        producer_name: "flipchip".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        ..Default::default()
    })
}

/// The threshold or scores stage after a layer's `dot = 2s - smax`.
fn activation(
    b: &mut Builder,
    n: usize,
    l: &BinaryLayer,
    dot: &str,
    smax: i64,
    last: bool,
) -> Result<String, ExportError> {
    let o = l.outputs;
    let per_channel = |data: Vec<f64>| Tensor {
        dims: if l.conv.is_some() {
            vec![1, o, 1, 1]
        } else {
            vec![o]
        },
        data,
    };
    match &l.activation {
        Activation::Threshold { thresholds, invert } => {
            if last {
                return Err(ExportError(format!("the last layer {n} has thresholds")));
            }
            // s >= T is dot >= 2T - smax; s < T is -dot >= smax - 2T + 2 (dot moves in 2s).
            let mut x = dot.to_string();
            if invert.iter().any(|&v| v) {
                let signs = invert.iter().map(|&v| if v { -1.0 } else { 1.0 }).collect();
                let s = b.constant(&format!("l{n}_direction"), per_channel(signs));
                x = b.node(
                    "Mul",
                    &format!("l{n}_direction_mul"),
                    &[x, s],
                    vec![],
                    false,
                );
            }
            let th: Vec<f64> = thresholds
                .iter()
                .zip(invert)
                .map(|(&t, &inv)| {
                    let t = t as i64;
                    (if inv { smax - 2 * t + 2 } else { 2 * t - smax }) as f64
                })
                .collect();
            let th = Tensor {
                dims: vec![o, 1],
                data: th,
            };
            Ok(b.multithreshold(&format!("l{n}_threshold"), &x, th, 2.0, -1.0, "BIPOLAR"))
        }
        Activation::Scores { bias, scale } => {
            if !last {
                return Err(ExportError(format!("layer {n} has scores but is not last")));
            }
            // score = scale * s + bias with s = (dot + smax) / 2: dot times scale / 2, plus
            // bias + scale * smax / 2 (every value a multiple of 1/2, exact in f32).
            let m = |c: usize| scale.get(c).map_or(1.0, |&v| f64::from(v));
            let half = if scale.is_empty() {
                b.constant(&format!("l{n}_half"), Tensor::scalar(0.5))
            } else {
                let halves = (0..bias.len()).map(|c| m(c) / 2.0).collect();
                b.constant(&format!("l{n}_half"), per_channel(halves))
            };
            let x = b.node(
                "Mul",
                &format!("l{n}_half_mul"),
                &[dot.to_string(), half],
                vec![],
                false,
            );
            let offs = bias
                .iter()
                .enumerate()
                .map(|(c, &v)| v as f64 + m(c) * smax as f64 / 2.0)
                .collect();
            let c = b.constant(&format!("l{n}_offsets"), per_channel(offs));
            Ok(b.node("Add", &format!("l{n}_scores"), &[x, c], vec![], false))
        }
    }
}

/// The model as the bytes of an ONNX file.
pub fn to_bytes(model: &Model) -> Result<Vec<u8>, ExportError> {
    Ok(to_proto(model)?.encode_to_vec())
}
