//! Reading an ONNX file into a graph whose constant parts are already evaluated.
//!
//! Brevitas exports weights as `initializer -> BipolarQuant -> Transpose -> MatMul`, and
//! sometimes aliases batch-norm statistics through `Identity` nodes; folding every node whose
//! inputs are all constant leaves the importer a single chain of computed tensors from the
//! graph input to its output.

use std::collections::HashMap;

use prost::Message;

use crate::proto::{
    attribute_type, data_type, AttributeProto, ModelProto, NodeProto, ValueInfoProto,
};
use crate::quant::{bipolar, IntQuant, Rounding};
use crate::shape_ops;
use crate::tensor::Tensor;
use crate::ImportError;

/// The standard ONNX domain (either spelling).
pub fn is_standard(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// A graph with its constant tensors evaluated.
pub struct Graph {
    /// Nodes that compute from the graph input, in file order.
    pub nodes: Vec<NodeProto>,
    /// Initializers and the outputs of folded nodes.
    pub consts: HashMap<String, Tensor>,
    /// Names of nodes folded into constants, in order.
    pub folded: Vec<String>,
    /// The graph input: name and shape (a symbolic or zero dimension reads as 1).
    pub input: (String, Vec<usize>),
    /// The graph output's name.
    pub output: String,
}

/// A node's name for messages: its `name`, or its first output when it has none.
pub fn node_name(n: &NodeProto) -> String {
    if !n.name.is_empty() {
        n.name.clone()
    } else {
        format!("<unnamed, output {}>", n.output.first().map_or("?", |s| s))
    }
}

/// An error about node `n`.
pub fn node_err(n: &NodeProto, why: impl Into<String>) -> ImportError {
    ImportError::Node {
        node: node_name(n),
        op: n.op_type.clone(),
        why: why.into(),
    }
}

/// Attribute `name` of `n`.
pub fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

/// Integer attribute `name`, or `default`.
pub fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name)
        .filter(|a| a.r#type == attribute_type::INT)
        .map_or(default, |a| a.i)
}

/// Float attribute `name`, or `default`.
pub fn attr_f(n: &NodeProto, name: &str, default: f64) -> f64 {
    attr(n, name)
        .filter(|a| a.r#type == attribute_type::FLOAT)
        .map_or(default, |a| a.f as f64)
}

/// String attribute `name`, or `default`.
pub fn attr_s(n: &NodeProto, name: &str, default: &str) -> String {
    attr(n, name)
        .filter(|a| a.r#type == attribute_type::STRING)
        .map_or(default.to_string(), |a| {
            String::from_utf8_lossy(&a.s).into_owned()
        })
}

/// Integer-list attribute `name`, if present.
pub fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name)
        .filter(|a| a.r#type == attribute_type::INTS)
        .map(|a| a.ints.clone())
}

/// Decodes an ONNX file's bytes.
pub fn decode(bytes: &[u8]) -> Result<ModelProto, ImportError> {
    ModelProto::decode(bytes).map_err(|e| ImportError::Decode(e.to_string()))
}

fn shape_of(v: &ValueInfoProto) -> Vec<usize> {
    v.r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .map(|s| {
            s.dim
                .iter()
                .map(|d| {
                    if d.dim_value > 0 {
                        d.dim_value as usize
                    } else {
                        1
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Graph {
    /// Indexes the model's graph and folds its constant nodes.
    pub fn new(model: &ModelProto) -> Result<Graph, ImportError> {
        let g = model
            .graph
            .as_ref()
            .ok_or_else(|| ImportError::Model("the file has no graph".into()))?;
        let mut consts = HashMap::new();
        for t in &g.initializer {
            let v = Tensor::from_proto(t)
                .map_err(|why| ImportError::Model(format!("initializer {}: {why}", t.name)))?;
            consts.insert(t.name.clone(), v);
        }
        let inputs: Vec<&ValueInfoProto> = g
            .input
            .iter()
            .filter(|i| !consts.contains_key(&i.name))
            .collect();
        let [input] = inputs[..] else {
            return Err(ImportError::Model(format!(
                "the graph has {} inputs besides its initializers; one image input imports",
                inputs.len()
            )));
        };
        let [output] = &g.output[..] else {
            return Err(ImportError::Model(format!(
                "the graph has {} outputs; one output of class scores imports",
                g.output.len()
            )));
        };
        let mut nodes = Vec::new();
        let mut folded = Vec::new();
        for n in &g.node {
            let all_const = n
                .input
                .iter()
                .all(|i| i.is_empty() || consts.contains_key(i));
            if all_const && n.output.len() == 1 {
                if let Some(t) = fold(n, &consts)? {
                    consts.insert(n.output[0].clone(), t);
                    folded.push(format!("{} ({})", node_name(n), n.op_type));
                    continue;
                }
            }
            nodes.push(n.clone());
        }
        Ok(Graph {
            nodes,
            consts,
            folded,
            input: (input.name.clone(), shape_of(input)),
            output: output.name.clone(),
        })
    }
}

/// A node's `i`th input as a constant.
fn konst<'a>(
    n: &NodeProto,
    consts: &'a HashMap<String, Tensor>,
    i: usize,
) -> Result<&'a Tensor, ImportError> {
    n.input
        .get(i)
        .and_then(|name| consts.get(name))
        .ok_or_else(|| node_err(n, format!("lacks its input {i}")))
}

/// A scalar constant input.
fn scalar(n: &NodeProto, consts: &HashMap<String, Tensor>, i: usize) -> Result<f64, ImportError> {
    let t = konst(n, consts, i)?;
    if t.numel() != 1 {
        return Err(node_err(
            n,
            format!("has a non-scalar input {i} of shape {:?}", t.dims),
        ));
    }
    Ok(t.data[0])
}

/// Reads a `Quant` node's integer grid.
pub fn int_quant(n: &NodeProto, bits: f64) -> Result<IntQuant, ImportError> {
    if !(1.0..=32.0).contains(&bits) || bits.fract() != 0.0 {
        return Err(node_err(n, format!("has a bit width of {bits}")));
    }
    let mode = attr_s(n, "rounding_mode", "ROUND");
    let rounding = Rounding::parse(&mode)
        .ok_or_else(|| node_err(n, format!("has an unknown rounding_mode {mode:?}")))?;
    Ok(IntQuant {
        bits: bits as u32,
        signed: attr_i(n, "signed", 1) != 0,
        narrow: attr_i(n, "narrow", 0) != 0,
        rounding,
    })
}

/// Evaluates a node whose inputs are all constant; `None` for an operator this crate does not
/// evaluate (the importer then reports it where it meets it).
pub fn fold(
    n: &NodeProto,
    consts: &HashMap<String, Tensor>,
) -> Result<Option<Tensor>, ImportError> {
    let op = n.op_type.as_str();
    let bin = |f: fn(f64, f64) -> f64| -> Result<Option<Tensor>, ImportError> {
        let (a, b) = (konst(n, consts, 0)?, konst(n, consts, 1)?);
        a.broadcast(b, f).map(Some).map_err(|why| node_err(n, why))
    };
    if is_standard(&n.domain) {
        return match op {
            "Identity" => Ok(Some(konst(n, consts, 0)?.clone())),
            "Constant" => {
                let Some(t) = attr(n, "value").and_then(|a| a.t.as_ref()) else {
                    return Ok(None);
                };
                Tensor::from_proto(t)
                    .map(Some)
                    .map_err(|why| node_err(n, why))
            }
            "Transpose" => {
                let t = konst(n, consts, 0)?;
                let perm: Vec<usize> = match attr_ints(n, "perm") {
                    Some(p) => p.iter().map(|&v| v.max(0) as usize).collect(),
                    None => (0..t.dims.len()).rev().collect(),
                };
                t.transpose(&perm).map(Some).map_err(|why| node_err(n, why))
            }
            "Mul" => bin(|a, b| a * b),
            "Div" => bin(|a, b| a / b),
            "Add" => bin(|a, b| a + b),
            "Sub" => bin(|a, b| a - b),
            "Neg" => {
                let t = konst(n, consts, 0)?;
                Ok(Some(Tensor {
                    dims: t.dims.clone(),
                    data: t.data.iter().map(|v| -v).collect(),
                }))
            }
            "Shape" => {
                let t = konst(n, consts, 0)?;
                let end = attr(n, "end").map(|_| attr_i(n, "end", 0));
                Ok(Some(shape_ops::shape(&t.dims, attr_i(n, "start", 0), end)))
            }
            "Gather" => {
                let (t, i) = (konst(n, consts, 0)?, konst(n, consts, 1)?);
                shape_ops::gather(t, i, attr_i(n, "axis", 0))
                    .map(Some)
                    .map_err(|why| node_err(n, why))
            }
            "Unsqueeze" | "Squeeze" => {
                let t = konst(n, consts, 0)?;
                // Opset 13 moved `axes` from an attribute to an optional second input.
                let axes: Option<Vec<i64>> = match n.input.get(1).filter(|s| !s.is_empty()) {
                    Some(_) => Some(
                        konst(n, consts, 1)?
                            .data
                            .iter()
                            .map(|&v| v as i64)
                            .collect(),
                    ),
                    None => attr_ints(n, "axes"),
                };
                let r = if op == "Unsqueeze" {
                    let axes = axes.ok_or_else(|| node_err(n, "has no axes"))?;
                    shape_ops::unsqueeze(t, &axes)
                } else {
                    shape_ops::squeeze(t, axes.as_deref())
                };
                r.map(Some).map_err(|why| node_err(n, why))
            }
            "Concat" => {
                let parts = (0..n.input.len())
                    .map(|i| konst(n, consts, i))
                    .collect::<Result<Vec<_>, _>>()?;
                shape_ops::concat(&parts, attr_i(n, "axis", 0))
                    .map(Some)
                    .map_err(|why| node_err(n, why))
            }
            "Cast" => {
                let t = konst(n, consts, 0)?;
                let to = attr_i(n, "to", data_type::FLOAT as i64) as i32;
                let conv: fn(f64) -> f64 = match to {
                    data_type::FLOAT => |v| v as f32 as f64,
                    data_type::DOUBLE => |v| v,
                    data_type::INT64 | data_type::INT32 | data_type::INT16 | data_type::INT8 => {
                        f64::trunc
                    }
                    _ => return Ok(None),
                };
                Ok(Some(Tensor {
                    dims: t.dims.clone(),
                    data: t.data.iter().map(|&v| conv(v)).collect(),
                }))
            }
            "Reshape" => {
                let (t, target) = (konst(n, consts, 0)?, konst(n, consts, 1)?);
                let dims =
                    shape_ops::reshaped(&t.dims, &target.data, attr_i(n, "allowzero", 0) != 0)
                        .map_err(|why| node_err(n, why))?;
                Ok(Some(Tensor {
                    dims,
                    data: t.data.clone(),
                }))
            }
            _ => Ok(None),
        };
    }
    match op {
        "BipolarQuant" => {
            let (x, s) = (konst(n, consts, 0)?, konst(n, consts, 1)?);
            x.broadcast(s, bipolar)
                .map(Some)
                .map_err(|why| node_err(n, why))
        }
        "Quant" => {
            let q = int_quant(n, scalar(n, consts, 3)?)?;
            let (x, s, z) = (
                konst(n, consts, 0)?,
                konst(n, consts, 1)?,
                konst(n, consts, 2)?,
            );
            let e = |why| node_err(n, why);
            let y = x
                .broadcast(s, |x, s| x / s)
                .and_then(|y| y.broadcast(z, |y, z| y + z))
                .map_err(e)?;
            // qonnx takes a signed 1-bit grid as bipolar: the sign of x / scale + zeropt.
            let y = Tensor {
                dims: y.dims,
                data: y
                    .data
                    .iter()
                    .map(|&v| {
                        if q.bits == 1 && q.signed {
                            if v >= 0.0 {
                                1.0
                            } else {
                                -1.0
                            }
                        } else {
                            q.rounding.apply(v.clamp(q.min_int(), q.max_int()))
                        }
                    })
                    .collect(),
            };
            let out = y
                .broadcast(z, |y, z| y - z)
                .and_then(|y| y.broadcast(s, |y, s| y * s));
            out.map(Some).map_err(|why| node_err(n, why))
        }
        _ => Ok(None),
    }
}
