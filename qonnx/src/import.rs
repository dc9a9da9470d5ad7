//! Turning a QONNX graph of a binary network into a flipchip [`Model`].
//!
//! The importer follows the one chain of computed tensors from the graph input to its output
//! and tracks what each tensor is in flipchip's terms:
//!
//! * **pixels**: the float image, `lo + (hi - lo) * v / (2^B - 1)` for raw pixel values `v`
//!   (`--input-range lo,hi`), with any scalar `Mul`/`Add`/`Sub`/`Div` applied;
//! * **codes**: the output of a quantiser, an integer code per element (a bit after a sign-like
//!   activation; `0..=L` after the input quantiser) whose ONNX value is `mul * code + off`;
//! * **sums**: the output of a `Gemm`/`MatMul`/`Conv` with binary weights over codes, which is
//!   a per-neuron affine function of flipchip's popcount sum `s`, followed by the per-channel
//!   steps (`BatchNormalization`, `Mul`, `Add`, ...) applied after it.
//!
//! A quantiser after sums becomes the neuron's threshold: since the steps are affine per
//! neuron, whether the activation fires is monotone in the integer `s`, so the threshold and
//! the direction bit are found by evaluating the steps at integer `s` (binary search), in the
//! order and with the comparisons (`>=`) of the qonnx operators. The last sums become integer
//! scores (see [`scores`]).

use std::collections::HashMap;

use flip::bits::BitMatrix;
use flip::encoding::Encoding;
use flip::model::{Activation, BinaryLayer, Conv, InputSpec, Layer, MaxPool, Metadata, Model};
use serde::Serialize;

use crate::graph::{
    attr, attr_f, attr_i, attr_ints, attr_s, fold, int_quant, is_standard, node_err, node_name,
    Graph,
};
use crate::proto::NodeProto;
use crate::quant::IntQuant;
use crate::scores::{integer_scores, IntScores};
use crate::shape_ops;
use crate::tensor::Tensor;
use crate::ImportError;

/// How raw pixels relate to the model's float input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// The float values pixel 0 and the largest pixel `2^pixel_bits - 1` map to.
    pub input_range: (f64, f64),
    /// Bits of a raw pixel value (8 for bytes).
    pub pixel_bits: u8,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            input_range: (0.0, 1.0),
            pixel_bits: 8,
        }
    }
}

/// One layer of the imported model, for `import --json`.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    /// 1-based layer number in the model file.
    pub layer: usize,
    /// `dense`, `conv` or `maxpool`.
    pub kind: String,
    /// The layer's architecture token (`256`, `c16`, `p`).
    pub token: String,
    /// `threshold`, `scores`, or empty for a pool.
    pub activation: String,
    /// The ONNX nodes the layer was made of.
    pub nodes: Vec<String>,
}

/// What the importer found and did.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The layers, in order.
    pub layers: Vec<LayerReport>,
    /// Constant nodes evaluated at import (weight quantisers, transposes, aliases).
    pub constants_folded: Vec<String>,
    /// Nodes folded into thresholds, direction bits, the input encoding or score offsets.
    pub folded: Vec<String>,
    /// The model's architecture string.
    pub arch: String,
    /// The input encoding, as `train --encoding` spells it.
    pub encoding: String,
}

/// An imported model and its report.
pub struct Imported {
    /// The flipchip model.
    pub model: Model,
    /// What was found and folded.
    pub report: Report,
}

/// A computed tensor's layout: which flipchip unit (pixel, or bit of a feature map) each ONNX
/// element is.
#[derive(Clone, Debug)]
enum Layout {
    /// NCHW `[1, c, h, w]`; element `(ch, y, x)` is unit `(y * w + x) * c + chperm[ch]`
    /// (`chperm` is the identity but after the concatenated levels of a thermometer).
    Spatial {
        c: usize,
        h: usize,
        w: usize,
        chperm: Vec<usize>,
    },
    /// `[1, n]`; element `i` is unit `perm[i]`.
    Flat { perm: Vec<usize> },
}

impl Layout {
    fn len(&self) -> usize {
        match self {
            Layout::Spatial { c, h, w, .. } => c * h * w,
            Layout::Flat { perm } => perm.len(),
        }
    }

    fn channels(&self) -> usize {
        match self {
            Layout::Spatial { c, .. } => *c,
            Layout::Flat { perm } => perm.len(),
        }
    }

    fn rank(&self) -> usize {
        match self {
            Layout::Spatial { .. } => 4,
            Layout::Flat { .. } => 2,
        }
    }

    /// The ONNX shape of a tensor with this layout.
    fn dims(&self) -> Vec<usize> {
        match self {
            Layout::Spatial { c, h, w, .. } => vec![1, *c, *h, *w],
            Layout::Flat { perm } => vec![1, perm.len()],
        }
    }

    /// The flattened layout (`Flatten(axis=1)` of NCHW: element `ch * h * w + y * w + x`).
    fn flatten(&self) -> Layout {
        match self {
            Layout::Flat { .. } => self.clone(),
            Layout::Spatial { c, h, w, chperm } => {
                let (c, h, w) = (*c, *h, *w);
                let mut perm = vec![0; c * h * w];
                for (ch, &cf) in chperm.iter().enumerate() {
                    for y in 0..h {
                        for x in 0..w {
                            perm[ch * h * w + y * w + x] = (y * w + x) * c + cf;
                        }
                    }
                }
                Layout::Flat { perm }
            }
        }
    }
}

/// An elementwise step on the pixels or on one neuron's value.
#[derive(Clone, Debug)]
enum Step {
    Mul(f64),
    Div(f64),
    Add(f64),
    Sub(f64),
    /// `(x - mean) / sqrt(var + eps) * gamma + beta`, as ONNX defines it.
    Norm {
        gamma: f64,
        beta: f64,
        mean: f64,
        var: f64,
        eps: f64,
    },
}

impl Step {
    fn apply(&self, x: f64) -> f64 {
        match *self {
            Step::Mul(c) => x * c,
            Step::Div(c) => x / c,
            Step::Add(c) => x + c,
            Step::Sub(c) => x - c,
            Step::Norm {
                gamma,
                beta,
                mean,
                var,
                eps,
            } => (x - mean) / (var + eps).sqrt() * gamma + beta,
        }
    }

    /// The step in `f32`, as ONNX runtimes evaluate a float32 graph: the input path's steps
    /// (a normalisation's `Sub` and `Div`) are evaluated this way, so that a pixel whose value
    /// lands on a quantiser's boundary goes the way qonnx sends it.
    fn apply32(&self, x: f32) -> f32 {
        match *self {
            Step::Mul(c) => x * c as f32,
            Step::Div(c) => x / c as f32,
            Step::Add(c) => x + c as f32,
            Step::Sub(c) => x - c as f32,
            Step::Norm { .. } => self.apply(x as f64) as f32,
        }
    }

    /// The step as `x * a + b`.
    fn affine(&self) -> (f64, f64) {
        match *self {
            Step::Mul(c) => (c, 0.0),
            Step::Div(c) => (1.0 / c, 0.0),
            Step::Add(c) => (1.0, c),
            Step::Sub(c) => (1.0, -c),
            Step::Norm {
                gamma,
                beta,
                mean,
                var,
                eps,
            } => {
                let m = gamma / (var + eps).sqrt();
                (m, beta - mean * m)
            }
        }
    }
}

/// A linear layer waiting for its activation.
#[derive(Clone, Debug)]
struct Pending {
    weights: BitMatrix,
    inputs: usize,
    outputs: usize,
    conv: Option<Conv>,
    /// The largest popcount sum.
    smax: i64,
    /// Per neuron: the steps from its popcount sum `s` to its ONNX value, kept as steps rather
    /// than one affine map so that evaluation follows the graph's order of operations.
    steps: Vec<Vec<Step>>,
    /// The ONNX nodes folded into the layer so far.
    nodes: Vec<String>,
    /// Layout of the output.
    layout: Layout,
}

impl Pending {
    fn eval(&self, j: usize, s: i64) -> f64 {
        self.steps[j].iter().fold(s as f64, |x, st| st.apply(x))
    }
}

#[derive(Clone, Debug)]
enum Val {
    Const(Tensor),
    Pixels {
        layout: Layout,
        /// Per channel of the graph input: the steps from the float pixel to this tensor (a
        /// normalisation `(x - mean) / std` has its own constants per channel).
        steps: Vec<Vec<Step>>,
        /// The nodes that applied them.
        nodes: Vec<InputStep>,
    },
    Codes {
        layout: Layout,
        /// The largest code.
        levels: u32,
        /// Flipchip inputs per unit (a thermometer's levels, else 1).
        expand: usize,
        mul: f64,
        off: f64,
    },
    Sums(Box<Pending>),
}

/// A node applied to the input before its quantiser.
#[derive(Clone, Debug)]
struct InputStep {
    node: String,
    op: String,
    /// Its constants per channel when they differ between channels.
    per_channel: Option<Vec<f64>>,
}

/// A quantiser: the code (0..=levels) it gives a value on a channel, and the value of a code,
/// `mul * code + off`.
struct Quantiser {
    code: Box<dyn Fn(f64, usize) -> f64>,
    levels: f64,
    mul: f64,
    off: f64,
}

struct Importer<'g> {
    graph: &'g Graph,
    opts: Options,
    vals: HashMap<String, Val>,
    input: Option<InputSpec>,
    layers: Vec<Layer>,
    reports: Vec<LayerReport>,
    folded: Vec<String>,
    /// Input quantisers with two codes, by output name: their pixel threshold, the layout of
    /// the pixels they read, and their node name (a thermometer exported one node per level is
    /// their concatenation).
    input_bits: HashMap<String, (u16, Layout, String)>,
}

/// Imports a decoded ONNX model.
pub fn import(model: &crate::proto::ModelProto, opts: Options) -> Result<Imported, ImportError> {
    let (lo, hi) = opts.input_range;
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(ImportError::Model(format!(
            "--input-range {lo},{hi} is not an increasing range"
        )));
    }
    if !(1..=8).contains(&opts.pixel_bits) {
        return Err(ImportError::Model(format!(
            "pixel bits must be 1..=8, got {}",
            opts.pixel_bits
        )));
    }
    let graph = Graph::new(model)?;
    let mut im = Importer {
        graph: &graph,
        opts,
        vals: HashMap::new(),
        input: None,
        layers: Vec::new(),
        reports: Vec::new(),
        folded: Vec::new(),
        input_bits: HashMap::new(),
    };
    im.start()?;
    for n in &graph.nodes {
        im.node(n)?;
    }
    let out = im.vals.get(&graph.output).cloned();
    match out {
        Some(Val::Sums(p)) => im.scores(*p)?,
        Some(Val::Codes { .. }) => {
            return Err(ImportError::Model(format!(
                "the graph output {} is quantised activations, not class scores; the last layer \
                 must be a Gemm/MatMul without an activation",
                graph.output
            )))
        }
        _ => {
            return Err(ImportError::Model(format!(
                "the graph output {} is not computed from the input through a binary layer",
                graph.output
            )))
        }
    }
    let input = im
        .input
        .clone()
        .ok_or_else(|| ImportError::Model("the input is never quantised".into()))?;
    let model = Model {
        input,
        layers: im.layers,
        meta: Metadata {
            dataset: String::new(),
            optimizer: "qonnx".into(),
            seed: 0,
            test_accuracy: None,
            extra: [
                (
                    "producer".to_string(),
                    format!("{} {}", model.producer_name, model.producer_version)
                        .trim()
                        .to_string(),
                ),
                ("input_range".to_string(), format!("{lo},{hi}")),
            ]
            .into_iter()
            .collect(),
        },
    };
    model.check().map_err(|e| {
        ImportError::Model(format!(
            "the imported layers do not form a flipchip model: {e}"
        ))
    })?;
    let report = Report {
        layers: im.reports,
        constants_folded: graph.folded.clone(),
        folded: im.folded,
        arch: model.arch(),
        encoding: encoding_name(&model.input.encoding),
    };
    Ok(Imported { model, report })
}

/// An encoding as `train --encoding` spells it.
pub fn encoding_name(e: &Encoding) -> String {
    match e {
        Encoding::Threshold(t) => format!("threshold:{t}"),
        Encoding::BitPlanes(p) => format!("bitplanes:{p}"),
        Encoding::Thermometer(ts) => format!(
            "thermometer:{}",
            ts.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

impl Importer<'_> {
    fn start(&mut self) -> Result<(), ImportError> {
        let (name, dims) = &self.graph.input;
        let layout = match dims[..] {
            [1, c, h, w] => Layout::Spatial {
                c,
                h,
                w,
                chperm: (0..c).collect(),
            },
            [1, n] => Layout::Flat {
                perm: (0..n).collect(),
            },
            _ => {
                return Err(ImportError::Model(format!(
                    "the graph input {name} has shape {dims:?}; [1, C, H, W] or [1, N] imports"
                )))
            }
        };
        let channels = match layout {
            Layout::Spatial { c, .. } => c,
            Layout::Flat { .. } => 1,
        };
        self.vals.insert(
            name.clone(),
            Val::Pixels {
                layout,
                steps: vec![Vec::new(); channels],
                nodes: Vec::new(),
            },
        );
        Ok(())
    }

    fn get(&self, n: &NodeProto, i: usize) -> Result<Val, ImportError> {
        let name = n
            .input
            .get(i)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| node_err(n, format!("lacks its input {i}")))?;
        if let Some(t) = self.graph.consts.get(name) {
            return Ok(Val::Const(t.clone()));
        }
        self.vals.get(name).cloned().ok_or_else(|| {
            node_err(
                n,
                format!("reads {name}, which is neither a constant nor computed by a node this importer follows"),
            )
        })
    }

    fn konst(&self, n: &NodeProto, i: usize) -> Result<Tensor, ImportError> {
        match self.get(n, i)? {
            Val::Const(t) => Ok(t),
            _ => Err(node_err(
                n,
                format!("has a computed input {i} where a constant is needed"),
            )),
        }
    }

    fn scalar(&self, n: &NodeProto, i: usize) -> Result<f64, ImportError> {
        let t = self.konst(n, i)?;
        if t.numel() != 1 {
            return Err(node_err(
                n,
                format!(
                    "has a non-scalar input {i} of shape {:?} where one value per tensor is needed",
                    t.dims
                ),
            ));
        }
        Ok(t.data[0])
    }

    fn set(&mut self, n: &NodeProto, v: Val) -> Result<(), ImportError> {
        let out = n
            .output
            .first()
            .ok_or_else(|| node_err(n, "has no output"))?;
        self.vals.insert(out.clone(), v);
        Ok(())
    }

    fn node(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        // A node whose inputs are neither constant nor on the chain computes something we never
        // use (a shape computation); it only matters if the chain reads its output.
        let on_chain = n.input.iter().any(|i| self.vals.contains_key(i));
        if !on_chain {
            return Ok(());
        }
        // Every input constant, some computed here (a `Shape` of an activation, then the
        // `Gather`/`Unsqueeze`/`Concat` that make a reshape's target from it): evaluate it.
        if let Some(t) = self.fold_computed(n)? {
            self.folded.push(format!(
                "{} ({}) evaluated to {}",
                node_name(n),
                n.op_type,
                show_tensor(&t)
            ));
            return self.set(n, Val::Const(t));
        }
        let op = n.op_type.as_str();
        if !is_standard(&n.domain)
            && !n.domain.starts_with("qonnx")
            && !n.domain.starts_with("finn")
        {
            return Err(node_err(
                n,
                format!("is in the unknown domain {:?}", n.domain),
            ));
        }
        match op {
            "Identity" | "Dropout" => {
                let v = self.get(n, 0)?;
                self.set(n, v)
            }
            "Mul" | "Div" | "Add" | "Sub" => self.elementwise(n),
            "BatchNormalization" => self.batch_norm(n),
            "Gemm" | "MatMul" => self.dense(n),
            "Conv" => self.conv(n),
            "BipolarQuant" | "Quant" | "MultiThreshold" => self.quantise(n),
            "MaxPool" => self.max_pool(n),
            "Flatten" | "Reshape" => self.flatten(n),
            "Shape" => self.shape(n),
            "Concat" => self.thermometer_levels(n),
            "Softmax" | "LogSoftmax" => {
                let v = self.get(n, 0)?;
                if !matches!(v, Val::Sums(_))
                    || attr_i(n, "axis", -1) != -1 && attr_i(n, "axis", -1) != 1
                {
                    return Err(node_err(n, "only a softmax over the class scores imports"));
                }
                self.folded.push(format!(
                    "{} ({op}): dropped, it keeps the order of the scores",
                    node_name(n)
                ));
                self.set(n, v)
            }
            "Relu" | "Sigmoid" | "Tanh" | "HardTanh" | "Clip" | "LeakyRelu" | "Elu" | "Selu"
            | "HardSigmoid" => Err(node_err(
                n,
                "has no binary form; only sign-like activations (BipolarQuant, 1-bit Quant, \
                 one-threshold MultiThreshold) import",
            )),
            _ => Err(node_err(
                n,
                "is not an operator of the binary networks this importer reads",
            )),
        }
    }

    fn elementwise(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let op = n.op_type.as_str();
        let (a, b) = (self.get(n, 0)?, self.get(n, 1)?);
        let (v, c, const_first) = match (a, b) {
            (Val::Const(c), v) => (v, c, true),
            (v, Val::Const(c)) => (v, c, false),
            _ => {
                return Err(node_err(
                    n,
                    "combines two computed tensors; only a constant operand imports",
                ))
            }
        };
        // c - x and c / x: written as steps on x.
        let steps_of = |vals: &[f64]| -> Result<Vec<Vec<Step>>, ImportError> {
            vals.iter()
                .map(|&k| match (op, const_first) {
                    ("Mul", _) => Ok(vec![Step::Mul(k)]),
                    ("Add", _) => Ok(vec![Step::Add(k)]),
                    ("Div", false) => Ok(vec![Step::Div(k)]),
                    ("Sub", false) => Ok(vec![Step::Sub(k)]),
                    ("Sub", true) => Ok(vec![Step::Mul(-1.0), Step::Add(k)]),
                    _ => Err(node_err(n, "divides a constant by a computed tensor")),
                })
                .collect()
        };
        let new = match v {
            Val::Pixels {
                layout,
                mut steps,
                mut nodes,
            } => {
                let chans = steps.len();
                let per = match &layout {
                    _ if c.numel() == 1 => Some(vec![c.data[0]; chans]),
                    Layout::Spatial { c: lc, .. } if *lc == chans => c.per_channel(chans, 4),
                    _ => None,
                }
                .ok_or_else(|| {
                    node_err(
                        n,
                        format!(
                            "applies a constant of shape {:?} to the input; only a scalar or one \
                             value per channel of the NCHW input ([C] on axis 1, e.g. \
                             [1, C, 1, 1]) maps to a pixel encoding",
                            c.dims
                        ),
                    )
                })?;
                for (ch, st) in steps_of(&per)?.into_iter().enumerate() {
                    steps[ch].extend(st);
                }
                nodes.push(InputStep {
                    node: node_name(n),
                    op: op.to_string(),
                    per_channel: per.iter().any(|&v| v != per[0]).then_some(per),
                });
                Val::Pixels {
                    layout,
                    steps,
                    nodes,
                }
            }
            Val::Codes {
                layout,
                levels,
                expand,
                mut mul,
                mut off,
            } => {
                if c.numel() != 1 {
                    return Err(node_err(
                        n,
                        format!(
                            "scales quantised activations by a constant of shape {:?}; only a \
                             scalar keeps them binary",
                            c.dims
                        ),
                    ));
                }
                for st in steps_of(&[c.data[0]])?.remove(0) {
                    let (a, b) = st.affine();
                    mul *= a;
                    off = off * a + b;
                }
                Val::Codes {
                    layout,
                    levels,
                    expand,
                    mul,
                    off,
                }
            }
            Val::Sums(mut p) => {
                let per = c
                    .per_channel(p.layout.channels(), p.layout.rank())
                    .ok_or_else(|| {
                        node_err(
                            n,
                            format!(
                                "has a constant of shape {:?} that is not one value per channel",
                                c.dims
                            ),
                        )
                    })?;
                for (j, st) in steps_of(&per)?.into_iter().enumerate() {
                    p.steps[j].extend(st);
                }
                p.nodes.push(node_name(n));
                self.folded.push(format!(
                    "{} ({op}) into layer {}",
                    node_name(n),
                    self.layers.len() + 1
                ));
                Val::Sums(p)
            }
            Val::Const(_) => unreachable!("a node with constant inputs only is folded"),
        };
        self.set(n, new)
    }

    fn batch_norm(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let Val::Sums(mut p) = self.get(n, 0)? else {
            return Err(node_err(
                n,
                "normalises a tensor that is not the output of a binary Gemm, MatMul or Conv",
            ));
        };
        if attr_i(n, "training_mode", 0) != 0 {
            return Err(node_err(n, "is in training mode"));
        }
        let eps = attr_f(n, "epsilon", 1e-5);
        let ch = p.layout.channels();
        let mut per = Vec::new();
        for i in 1..5 {
            let t = self.konst(n, i)?;
            per.push(one_per_channel(&t, ch).ok_or_else(|| {
                node_err(
                    n,
                    format!("input {i} has {} values for {ch} channels", t.numel()),
                )
            })?);
        }
        for (j, steps) in p.steps.iter_mut().enumerate() {
            steps.push(Step::Norm {
                gamma: per[0][j],
                beta: per[1][j],
                mean: per[2][j],
                var: per[3][j],
                eps,
            });
        }
        p.nodes.push(node_name(n));
        self.folded.push(format!(
            "{} (BatchNormalization) into layer {}",
            node_name(n),
            self.layers.len() + 1
        ));
        self.set(n, Val::Sums(p))
    }

    /// The codes a linear layer reads, or why it cannot.
    fn codes(&self, n: &NodeProto) -> Result<(Layout, u32, usize, f64, f64), ImportError> {
        match self.get(n, 0)? {
            Val::Codes {
                layout,
                levels,
                expand,
                mul,
                off,
            } => Ok((layout, levels, expand, mul, off)),
            Val::Pixels { .. } => Err(node_err(
                n,
                "reads the unquantised input; the input must pass a quantiser (BipolarQuant, \
                 Quant or MultiThreshold) first",
            )),
            Val::Sums(_) => Err(node_err(
                n,
                "follows another linear layer without an activation between them",
            )),
            Val::Const(_) => Err(node_err(n, "has a constant first input")),
        }
    }

    /// Splits a weight tensor's values into signs and per-output magnitudes: `w[o][i]` for
    /// output `o`, ONNX input element `i`.
    fn binary_weights(
        &self,
        n: &NodeProto,
        w: impl Fn(usize, usize) -> f64,
        outputs: usize,
        fan_in: usize,
    ) -> Result<(Vec<Vec<bool>>, Vec<f64>), ImportError> {
        let mut signs = Vec::with_capacity(outputs);
        let mut mags = Vec::with_capacity(outputs);
        for o in 0..outputs {
            let m = w(o, 0).abs();
            let mut row = Vec::with_capacity(fan_in);
            for i in 0..fan_in {
                // + 0.0 turns a -0 into 0 for the message.
                let v = w(o, i) + 0.0;
                if v == 0.0 || v.abs() != m || !v.is_finite() {
                    return Err(node_err(
                        n,
                        format!(
                            "output {o} has weights {} and {v}; only binary weights (+-m, m the \
                             same for a whole output) import",
                            w(o, 0) + 0.0
                        ),
                    ));
                }
                row.push(v > 0.0);
            }
            signs.push(row);
            mags.push(m);
        }
        Ok((signs, mags))
    }

    /// The steps from the popcount sum `s` to the ONNX value of a layer's output `o` before
    /// any bias: `mag * (mul * (s - levels * negatives) + off * (sum of signs))`.
    fn start_steps(levels: u32, signs: &[bool], mul: f64, off: f64, mag: f64) -> Vec<Step> {
        let neg = signs.iter().filter(|&&b| !b).count() as f64;
        let sum = signs.len() as f64 - 2.0 * neg;
        vec![
            Step::Sub(levels as f64 * neg),
            Step::Mul(mul),
            Step::Add(off * sum),
            Step::Mul(mag),
        ]
    }

    fn dense(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let (layout, levels, expand, mul, off) = self.codes(n)?;
        let Layout::Flat { perm } = layout.flatten() else {
            unreachable!("flatten gives a flat layout")
        };
        let Layout::Flat { .. } = layout else {
            return Err(node_err(
                n,
                "reads a 4-D feature map; insert a Flatten or Reshape before it",
            ));
        };
        let b = self.konst(n, 1)?;
        let gemm = n.op_type == "Gemm";
        if gemm && attr_i(n, "transA", 0) != 0 {
            return Err(node_err(n, "has transA set"));
        }
        let trans_b = gemm && attr_i(n, "transB", 0) != 0;
        if b.dims.len() != 2 {
            return Err(node_err(
                n,
                format!("has weights of shape {:?}, not a matrix", b.dims),
            ));
        }
        let (fan_in, outputs) = if trans_b {
            (b.dims[1], b.dims[0])
        } else {
            (b.dims[0], b.dims[1])
        };
        if fan_in != perm.len() {
            return Err(node_err(
                n,
                format!(
                    "has {fan_in} weights per output but reads {} values",
                    perm.len()
                ),
            ));
        }
        let at = |o: usize, i: usize| {
            if trans_b {
                b.data[o * fan_in + i]
            } else {
                b.data[i * outputs + o]
            }
        };
        let (signs, mags) = self.binary_weights(n, at, outputs, fan_in)?;
        let inputs = perm.len() * expand;
        let mut weights = BitMatrix::zeros(outputs, inputs);
        let mut steps = Vec::with_capacity(outputs);
        for (o, row) in signs.iter().enumerate() {
            for (i, &pos) in row.iter().enumerate() {
                for k in 0..expand {
                    weights.set(o, perm[i] * expand + k, pos);
                }
            }
            steps.push(Self::start_steps(levels, row, mul, off, mags[o]));
        }
        if gemm {
            let alpha = attr_f(n, "alpha", 1.0);
            let beta = attr_f(n, "beta", 1.0);
            let bias = if n.input.len() > 2 && !n.input[2].is_empty() {
                let c = self.konst(n, 2)?;
                Some(
                    c.per_channel(outputs, 2)
                        .ok_or_else(|| node_err(n, format!("has a bias of shape {:?}", c.dims)))?,
                )
            } else {
                None
            };
            for (o, st) in steps.iter_mut().enumerate() {
                if alpha != 1.0 {
                    st.push(Step::Mul(alpha));
                }
                if let Some(c) = &bias {
                    st.push(Step::Add(beta * c[o]));
                }
            }
        }
        let p = Pending {
            weights,
            inputs,
            outputs,
            conv: None,
            smax: levels as i64 * fan_in as i64,
            steps,
            nodes: vec![node_name(n)],
            layout: Layout::Flat {
                perm: (0..outputs).collect(),
            },
        };
        self.set(n, Val::Sums(Box::new(p)))
    }

    fn conv(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let (layout, levels, expand, mul, off) = self.codes(n)?;
        let Layout::Spatial { c, h, w, chperm } = layout else {
            return Err(node_err(
                n,
                "reads a flat tensor; a convolution needs an NCHW feature map",
            ));
        };
        let wt = self.konst(n, 1)?;
        let [o_n, c_n, kh, kw] = wt.dims[..] else {
            return Err(node_err(
                n,
                format!("has weights of shape {:?}, not [O, C, K, K]", wt.dims),
            ));
        };
        let ones = |name: &str| attr_ints(n, name).is_none_or(|v| v.iter().all(|&x| x == 1));
        let zeros = attr_ints(n, "pads").is_none_or(|v| v.iter().all(|&x| x == 0));
        let pad = attr_s(n, "auto_pad", "NOTSET");
        if kh != kw
            || c_n != c
            || attr_i(n, "group", 1) != 1
            || !ones("strides")
            || !ones("dilations")
            || !zeros
            || !(pad == "NOTSET" || pad == "VALID")
        {
            return Err(node_err(
                n,
                format!(
                    "is a {kh}x{kw} convolution over {c_n} of {c} channels with group {}, strides \
                     {:?}, pads {:?}, dilations {:?}; only square, stride-1, unpadded, ungrouped \
                     convolutions import",
                    attr_i(n, "group", 1),
                    attr_ints(n, "strides"),
                    attr_ints(n, "pads"),
                    attr_ints(n, "dilations")
                ),
            ));
        }
        let k = kh;
        if k > h || k > w {
            return Err(node_err(
                n,
                format!("has a {k}x{k} kernel over a {h}x{w} map"),
            ));
        }
        let fan_in = c * k * k;
        let at = |o: usize, i: usize| wt.data[o * fan_in + i];
        let (signs, mags) = self.binary_weights(n, at, o_n, fan_in)?;
        let channels = c * expand;
        let inputs = k * k * channels;
        let mut weights = BitMatrix::zeros(o_n, inputs);
        let mut steps = Vec::with_capacity(o_n);
        for (o, row) in signs.iter().enumerate() {
            // ONNX weight element (ch, ky, kx) is window column (ky * k + kx) * channels + ch'.
            for ch in 0..c {
                for ky in 0..k {
                    for kx in 0..k {
                        let pos = row[(ch * k + ky) * k + kx];
                        for e in 0..expand {
                            let col = (ky * k + kx) * channels + chperm[ch] * expand + e;
                            weights.set(o, col, pos);
                        }
                    }
                }
            }
            steps.push(Self::start_steps(levels, row, mul, off, mags[o]));
        }
        if n.input.len() > 2 && !n.input[2].is_empty() {
            let b = self.konst(n, 2)?;
            let per = one_per_channel(&b, o_n)
                .ok_or_else(|| node_err(n, format!("has a bias of shape {:?}", b.dims)))?;
            for (o, st) in steps.iter_mut().enumerate() {
                st.push(Step::Add(per[o]));
            }
        }
        let conv = Conv {
            height: h,
            width: w,
            channels,
            kernel: k,
        };
        let p = Pending {
            weights,
            inputs,
            outputs: o_n,
            conv: Some(conv),
            smax: levels as i64 * fan_in as i64,
            steps,
            nodes: vec![node_name(n)],
            layout: Layout::Spatial {
                c: o_n,
                h: conv.out_height(),
                w: conv.out_width(),
                chperm: (0..o_n).collect(),
            },
        };
        self.set(n, Val::Sums(Box::new(p)))
    }

    /// Reads a quantiser node.
    /// Reads a quantiser node; `input` for the input quantiser, whose arithmetic follows
    /// qonnx's in `f32` (its inputs are the `f32` pixel values).
    fn quantiser(
        &self,
        n: &NodeProto,
        channels: usize,
        input: bool,
    ) -> Result<Quantiser, ImportError> {
        match n.op_type.as_str() {
            "BipolarQuant" => {
                let s = self.scalar(n, 1)?;
                Ok(Quantiser {
                    code: Box::new(|x, _| if x >= 0.0 { 1.0 } else { 0.0 }),
                    levels: 1.0,
                    mul: 2.0 * s,
                    off: -s,
                })
            }
            "Quant" => {
                let (s, z) = (self.scalar(n, 1)?, self.scalar(n, 2)?);
                let q: IntQuant = int_quant(n, self.scalar(n, 3)?)?;
                let (lo, hi) = q.range();
                if q.bits == 1 && q.signed {
                    // Bipolar: integers -1 and +1.
                    return Ok(Quantiser {
                        code: Box::new(move |x, _| {
                            let i = if input {
                                q.integer_f32(x, s, z)
                            } else {
                                q.integer(x, s, z)
                            };
                            if i > 0.0 {
                                1.0
                            } else {
                                0.0
                            }
                        }),
                        levels: 1.0,
                        mul: 2.0 * s,
                        off: (-1.0 - z) * s,
                    });
                }
                Ok(Quantiser {
                    code: Box::new(move |x, _| {
                        if input {
                            q.integer_f32(x, s, z) - lo
                        } else {
                            q.integer(x, s, z) - lo
                        }
                    }),
                    levels: hi - lo,
                    mul: s,
                    off: (lo - z) * s,
                })
            }
            "MultiThreshold" => {
                let t = self.konst(n, 1)?;
                let layout = attr_s(n, "data_layout", "NCHW");
                if !(layout == "NCHW" || layout == "NC") {
                    return Err(node_err(
                        n,
                        format!("has data_layout {layout}; NCHW imports"),
                    ));
                }
                let [rows, count] = t.dims[..] else {
                    return Err(node_err(n, format!("has thresholds of shape {:?}", t.dims)));
                };
                if rows != 1 && rows != channels {
                    return Err(node_err(
                        n,
                        format!("has {rows} rows of thresholds for {channels} channels"),
                    ));
                }
                let data = t.data.clone();
                Ok(Quantiser {
                    code: Box::new(move |x, c| {
                        let r = if rows == 1 { 0 } else { c };
                        data[r * count..(r + 1) * count]
                            .iter()
                            .filter(|&&t| x >= t)
                            .count() as f64
                    }),
                    levels: count as f64,
                    mul: attr_f(n, "out_scale", 1.0),
                    off: attr_f(n, "out_bias", 0.0),
                })
            }
            _ => unreachable!("called for quantisers"),
        }
    }

    fn quantise(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        match self.get(n, 0)? {
            Val::Pixels {
                layout,
                steps,
                nodes,
            } => self.input_quantiser(n, layout, steps, nodes),
            Val::Sums(p) => self.activation(n, *p),
            Val::Codes { .. } => Err(node_err(n, "quantises already quantised activations")),
            Val::Const(_) => unreachable!("a node with constant inputs only is folded"),
        }
    }

    fn input_quantiser(
        &mut self,
        n: &NodeProto,
        layout: Layout,
        steps: Vec<Vec<Step>>,
        norm: Vec<InputStep>,
    ) -> Result<(), ImportError> {
        let channels = steps.len();
        // The quantiser's own channel axis: the input's channels while it is NCHW; after a
        // flatten, axis 1 runs over every value, so only one row of thresholds applies.
        let q_channels = match layout {
            Layout::Spatial { c, .. } => c,
            Layout::Flat { .. } => 1,
        };
        let q = self.quantiser(n, q_channels, true)?;
        let vmax = (1u32 << self.opts.pixel_bits) - 1;
        let (lo, hi) = self.opts.input_range;
        // Float32 as ToTensor (`v / 255`) and `x * (hi - lo) + lo` compute it, then the graph's
        // steps on the input in float32 too.
        let x = |v: u32, ch: usize| {
            let x0 = v as f32 / vmax as f32 * (hi - lo) as f32 + lo as f32;
            steps[ch].iter().fold(x0, |x, s| s.apply32(x)) as f64
        };
        let per_channel: Vec<Vec<f64>> = (0..channels)
            .map(|ch| {
                let qch = if q_channels == 1 { 0 } else { ch };
                (0..=vmax).map(|v| (q.code)(x(v, ch), qch)).collect()
            })
            .collect();
        let codes = per_channel[0].clone();
        if let Some(ch) = (1..channels).find(|&ch| per_channel[ch] != codes) {
            let changes =
                |c: &[f64]| -> Vec<usize> { (1..c.len()).filter(|&v| c[v] != c[v - 1]).collect() };
            let at = per_channel
                .iter()
                .enumerate()
                .map(|(ch, c)| format!("{:?} on channel {ch}", changes(c)))
                .collect::<Vec<_>>()
                .join(", ");
            // The normalisation is what a user changes, so name it when it is the cause.
            if let Some(step) = norm.iter().find(|s| s.per_channel.is_some()) {
                // As the file holds them (float32), not as their f64 expansions.
                let values = step
                    .per_channel
                    .iter()
                    .flatten()
                    .map(|&v| (v as f32).to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(ImportError::Node {
                    node: step.node.clone(),
                    op: step.op.clone(),
                    why: format!(
                        "applies per-channel constants [{values}] to the input, after which the \
                         input quantiser {} ({}) changes code at pixel values {at} over \
                         --input-range {lo},{hi}; a flipchip input encoding (threshold, bit \
                         planes or thermometer) applies the same pixel thresholds to every \
                         channel, so a per-channel normalisation imports only where it gives \
                         every channel the same codes",
                        node_name(n),
                        n.op_type
                    ),
                });
            }
            return Err(node_err(
                n,
                format!(
                    "quantises channel {ch} differently from channel 0 (code changes at pixel \
                     values {at}); one encoding for all channels imports"
                ),
            ));
        }
        if codes.windows(2).any(|w| w[1] < w[0]) {
            return Err(node_err(
                n,
                format!(
                    "gives codes that fall as pixels get brighter over --input-range {lo},{hi}; \
                     no pixel encoding expresses that"
                ),
            ));
        }
        let (cmin, cmax) = (codes[0], codes[vmax as usize]);
        let levels = (cmax - cmin) as u32;
        if levels == 0 {
            return Err(node_err(
                n,
                format!(
                    "gives the same code {cmin} for every pixel 0..={vmax} over --input-range \
                     {lo},{hi}; check --input-range"
                ),
            ));
        }
        // Pixel v reaches level k (1-based) from the first v whose code is cmin + k.
        let thresholds: Vec<u16> = (1..=levels)
            .map(|k| {
                codes
                    .iter()
                    .position(|&c| c >= cmin + k as f64)
                    .unwrap_or(0) as u16
            })
            .collect();
        let bits = self.opts.pixel_bits;
        let planes = (levels + 1).trailing_zeros();
        let encoding = if levels == 1 {
            Encoding::Threshold(thresholds[0])
        } else if (levels + 1).is_power_of_two()
            && planes as u8 <= bits
            && thresholds
                .iter()
                .enumerate()
                .all(|(k, &t)| t as u32 == (k as u32 + 1) << (bits as u32 - planes))
        {
            Encoding::BitPlanes(planes as u8)
        } else {
            Encoding::Thermometer(thresholds.clone())
        };
        let expand = encoding.bits_per_pixel();
        let (width, height, channels) = match layout {
            Layout::Spatial { c, h, w, .. } => (w, h, c),
            Layout::Flat { ref perm } => {
                let side = (perm.len() as f64).sqrt().round() as usize;
                if side * side == perm.len() {
                    (side, side, 1)
                } else {
                    (perm.len(), 1, 1)
                }
            }
        };
        for step in &norm {
            self.folded.push(format!(
                "{} ({}) on the input into the input encoding {}",
                step.node,
                step.op,
                encoding_name(&encoding)
            ));
        }
        self.folded.push(format!(
            "{} ({}) into the input encoding {}",
            node_name(n),
            n.op_type,
            encoding_name(&encoding)
        ));
        self.input = Some(InputSpec {
            width,
            height,
            channels,
            pixel_bits: bits,
            encoding,
        });
        // Code c counts levels above the darkest pixel's code.
        let (mul, off) = (q.mul, q.off + q.mul * cmin);
        if let (
            Some(InputSpec {
                encoding: Encoding::Threshold(t),
                ..
            }),
            Some(out),
        ) = (&self.input, n.output.first())
        {
            self.input_bits
                .insert(out.clone(), (*t, layout.clone(), node_name(n)));
        }
        self.set(
            n,
            Val::Codes {
                layout,
                levels,
                expand,
                mul,
                off,
            },
        )
    }

    fn activation(&mut self, n: &NodeProto, p: Pending) -> Result<(), ImportError> {
        let q = self.quantiser(n, p.outputs, false)?;
        if q.levels != 1.0 {
            return Err(node_err(
                n,
                format!(
                    "is a {}-level activation; only 1-bit (sign-like) activations have a binary form",
                    q.levels + 1.0
                ),
            ));
        }
        let fires = |j: usize, s: i64| (q.code)(p.eval(j, s), j) >= 1.0;
        let mut thresholds = Vec::with_capacity(p.outputs);
        let mut invert = Vec::with_capacity(p.outputs);
        for j in 0..p.outputs {
            let (at0, atmax) = (fires(j, 0), fires(j, p.smax));
            // Monotone in s: find the first s where the output differs from s = 0.
            let (t, inv) = if at0 == atmax {
                (0, !at0)
            } else {
                let (mut a, mut b) = (0i64, p.smax);
                while b - a > 1 {
                    let m = a + (b - a) / 2;
                    if fires(j, m) == at0 {
                        a = m;
                    } else {
                        b = m;
                    }
                }
                (b, at0)
            };
            thresholds.push(i32::try_from(t).map_err(|_| node_err(n, "threshold out of range"))?);
            invert.push(inv);
        }
        let token_layer = BinaryLayer {
            inputs: p.inputs,
            outputs: p.outputs,
            weights: p.weights,
            activation: Activation::Threshold { thresholds, invert },
            conv: p.conv,
        };
        self.folded.push(format!(
            "{} ({}) into the thresholds and direction bits of layer {}",
            node_name(n),
            n.op_type,
            self.layers.len() + 1
        ));
        let mut nodes = p.nodes;
        nodes.push(node_name(n));
        self.push(Layer::Binary(token_layer), nodes, "threshold");
        let (mul, off) = (q.mul, q.off);
        self.set(
            n,
            Val::Codes {
                layout: p.layout,
                levels: 1,
                expand: 1,
                mul,
                off,
            },
        )
    }

    fn push(&mut self, layer: Layer, nodes: Vec<String>, activation: &str) {
        let kind = match &layer {
            Layer::MaxPool(_) => "maxpool",
            l if l.conv().is_some() => "conv",
            _ => "dense",
        };
        self.reports.push(LayerReport {
            layer: self.layers.len() + 1,
            kind: kind.into(),
            token: layer.token(),
            activation: activation.into(),
            nodes,
        });
        self.layers.push(layer);
    }

    fn max_pool(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let Val::Codes {
            layout: Layout::Spatial { c, h, w, chperm },
            levels: 1,
            expand,
            mul,
            off,
        } = self.get(n, 0)?
        else {
            return Err(node_err(
                n,
                "pools a tensor that is not a map of binary activations; only a pool after a \
                 sign-like activation imports",
            ));
        };
        if mul <= 0.0 {
            return Err(node_err(
                n,
                "pools activations whose value falls as their bit rises",
            ));
        }
        let kernel = attr_ints(n, "kernel_shape").unwrap_or_default();
        let strides = attr_ints(n, "strides").unwrap_or_else(|| vec![1, 1]);
        let zeros = attr_ints(n, "pads").is_none_or(|v| v.iter().all(|&x| x == 0));
        let ones = attr_ints(n, "dilations").is_none_or(|v| v.iter().all(|&x| x == 1));
        let [s, s2] = kernel[..] else {
            return Err(node_err(n, format!("has kernel_shape {kernel:?}")));
        };
        if s != s2
            || strides != kernel
            || !zeros
            || !ones
            || s <= 0
            || h % s as usize != 0
            || w % s as usize != 0
        {
            return Err(node_err(
                n,
                format!(
                    "is a {kernel:?} pool with strides {strides:?} over a {h}x{w} map; only square \
                     pools with stride equal to the kernel, no padding, that tile the map import"
                ),
            ));
        }
        let s = s as usize;
        let pool = MaxPool {
            height: h,
            width: w,
            channels: c,
            size: s,
        };
        self.push(Layer::MaxPool(pool), vec![node_name(n)], "");
        self.set(
            n,
            Val::Codes {
                layout: Layout::Spatial {
                    c,
                    h: h / s,
                    w: w / s,
                    chperm,
                },
                levels: 1,
                expand,
                mul,
                off,
            },
        )
    }

    /// `Concat` on the channel axis of one-threshold input quantisers on the same pixels: the
    /// levels of a thermometer, level `k` of pixel channel `ch` at ONNX channel `k * C + ch`
    /// (flipchip's channel `ch * L + k`), each with its own weights.
    fn thermometer_levels(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let mut levels = Vec::new();
        let mut mul_off = None;
        for (i, name) in n.input.iter().enumerate() {
            let (Some((t, layout, _)), Val::Codes { mul, off, .. }) =
                (self.input_bits.get(name).cloned(), self.get(n, i)?)
            else {
                return Err(node_err(
                    n,
                    "joins tensors other than one-threshold quantisers of the input; only the \
                     levels of a thermometer encoding concatenate",
                ));
            };
            if mul_off.is_some_and(|m| m != (mul, off)) {
                return Err(node_err(n, "joins input levels of different values"));
            }
            mul_off = Some((mul, off));
            levels.push((t, layout));
        }
        let Some((mul, off)) = mul_off else {
            return Err(node_err(n, "has no inputs"));
        };
        let l = levels.len();
        let layout = levels[0].1.clone();
        let axis = attr_i(n, "axis", 0);
        let layout = match layout {
            Layout::Spatial { c, h, w, .. } if axis == 1 || axis == -3 => {
                let mut chperm = vec![0; c * l];
                for k in 0..l {
                    for ch in 0..c {
                        chperm[k * c + ch] = ch * l + k;
                    }
                }
                Layout::Spatial {
                    c: c * l,
                    h,
                    w,
                    chperm,
                }
            }
            Layout::Flat { perm } if axis == 1 || axis == -1 => {
                let n_px = perm.len();
                let mut cols = vec![0; n_px * l];
                for k in 0..l {
                    for (i, &p) in perm.iter().enumerate() {
                        cols[k * n_px + i] = p * l + k;
                    }
                }
                Layout::Flat { perm: cols }
            }
            _ => {
                return Err(node_err(
                    n,
                    format!("concatenates on axis {axis}; the channel axis (1) imports"),
                ))
            }
        };
        let ts: Vec<u16> = levels.iter().map(|(t, _)| *t).collect();
        let encoding = Encoding::Thermometer(ts);
        self.folded.push(format!(
            "{} (Concat) of {l} input thresholds into the input encoding {}",
            node_name(n),
            encoding_name(&encoding)
        ));
        if let Some(input) = &mut self.input {
            input.encoding = encoding;
        }
        self.set(
            n,
            Val::Codes {
                layout,
                levels: 1,
                expand: 1,
                mul,
                off,
            },
        )
    }

    /// `Flatten` or `Reshape`: a flatten after the batch axis (`[1, ...]` to `[1, N]`), or a
    /// reshape to the shape the tensor has.
    fn flatten(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let v = self.get(n, 0)?;
        let layout = match &v {
            Val::Pixels { layout, .. } | Val::Codes { layout, .. } => layout.clone(),
            Val::Sums(_) => {
                return Err(node_err(
                    n,
                    "reshapes a layer's output before its activation",
                ))
            }
            Val::Const(_) => return Err(node_err(n, "reshapes a constant")),
        };
        let dims = layout.dims();
        let len = layout.len();
        let target = if n.op_type == "Flatten" {
            let a = attr_i(n, "axis", 1);
            let rank = dims.len() as i64;
            let k = if a < 0 { a + rank } else { a };
            if !(0..=rank).contains(&k) {
                return Err(node_err(
                    n,
                    format!("has axis {a} for a tensor of rank {rank}"),
                ));
            }
            let (outer, inner) = dims.split_at(k as usize);
            vec![outer.iter().product(), inner.iter().product::<usize>()]
        } else {
            let shape = self.konst(n, 1)?;
            shape_ops::reshaped(&dims, &shape.data, attr_i(n, "allowzero", 0) != 0)
                .map_err(|why| node_err(n, why))?
        };
        if target == dims {
            return self.set(n, v);
        }
        if target != [1, len] {
            return Err(node_err(
                n,
                format!(
                    "turns a tensor of shape {dims:?} into {target:?}; only a flatten to \
                     [1, {len}] after the batch axis (or a reshape to the same shape) imports"
                ),
            ));
        }
        let flat = layout.flatten();
        let v = match v {
            Val::Pixels { steps, nodes, .. } => Val::Pixels {
                layout: flat,
                steps,
                nodes,
            },
            Val::Codes {
                levels,
                expand,
                mul,
                off,
                ..
            } => Val::Codes {
                layout: flat,
                levels,
                expand,
                mul,
                off,
            },
            _ => unreachable!("checked above"),
        };
        self.set(n, v)
    }

    /// `Shape` of a computed tensor: the importer knows it, so it is a constant.
    fn shape(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let dims = match self.get(n, 0)? {
            Val::Pixels { layout, .. } | Val::Codes { layout, .. } => layout.dims(),
            Val::Sums(p) => p.layout.dims(),
            Val::Const(t) => t.dims,
        };
        let end = attr(n, "end").map(|_| attr_i(n, "end", 0));
        let t = shape_ops::shape(&dims, attr_i(n, "start", 0), end);
        self.folded.push(format!(
            "{} (Shape) of a tensor of known shape {dims:?}: {}",
            node_name(n),
            show_tensor(&t)
        ));
        self.set(n, Val::Const(t))
    }

    /// Evaluates a node whose inputs are all constant but some of them computed by this
    /// importer (`Shape` outputs and what follows them); `None` if an input is not constant.
    fn fold_computed(&self, n: &NodeProto) -> Result<Option<Tensor>, ImportError> {
        let mut consts = HashMap::new();
        for name in n.input.iter().filter(|s| !s.is_empty()) {
            let t = match (self.graph.consts.get(name), self.vals.get(name)) {
                (Some(t), _) | (None, Some(Val::Const(t))) => t.clone(),
                _ => return Ok(None),
            };
            consts.insert(name.clone(), t);
        }
        match fold(n, &consts)? {
            Some(t) if n.output.len() == 1 => Ok(Some(t)),
            _ => Err(node_err(
                n,
                "computes from a tensor's shape in a way this importer does not evaluate (it \
                 evaluates Shape, Gather, Unsqueeze, Squeeze, Concat, Cast, Reshape and \
                 arithmetic)",
            )),
        }
    }

    /// The last layer: integer scores `scale * s + bias` (on weights negated for classes whose
    /// scores fall with `s`) whose argmax is the graph's (see [`crate::scores`]).
    fn scores(&mut self, p: Pending) -> Result<(), ImportError> {
        let layer = self.layers.len() + 1;
        if p.conv.is_some() {
            return Err(ImportError::Model(format!(
                "layer {layer}, the last, is a convolution; the class scores come from a dense layer"
            )));
        }
        let affine: Vec<(f64, f64)> = p
            .steps
            .iter()
            .map(|st| {
                st.iter().fold((1.0, 0.0), |(a, b), s| {
                    let (m, c) = s.affine();
                    (a * m, b * m + c)
                })
            })
            .collect();
        // Per class: a falling score is the rising score of the negated weights,
        // a s + b = |a| s' + (a smax + b) with s' = smax - s.
        let mut weights = p.weights;
        let mut factors = Vec::with_capacity(affine.len());
        let mut offsets = Vec::with_capacity(affine.len());
        let mut negated = Vec::new();
        for (c, &(a, b)) in affine.iter().enumerate() {
            if a == 0.0 || !a.is_finite() || !b.is_finite() {
                return Err(ImportError::Model(format!(
                    "layer {layer} ({}) gives class {c} the score factor {a} and offset {b}: its \
                     score does not depend on the input",
                    p.nodes.join(", ")
                )));
            }
            if a < 0.0 {
                let r = weights.row_mut(c);
                for w in r.iter_mut() {
                    *w = !*w;
                }
                flip::bits::clear_padding(r, p.inputs);
                negated.push(c.to_string());
                factors.push(-a);
                offsets.push(a * p.smax as f64 + b);
            } else {
                factors.push(a);
                offsets.push(b);
            }
        }
        if !negated.is_empty() {
            self.folded.push(format!(
                "layer {layer}'s scores fall as its sums rise for class(es) {}: their weights negated",
                negated.join(", ")
            ));
        }
        let IntScores { scale, bias } = integer_scores(&factors, &offsets, p.smax.max(0) as u64)
            .map_err(|e| {
                ImportError::Model(format!("layer {layer} ({}): {e}", p.nodes.join(", ")))
            })?;
        if !scale.is_empty() {
            self.folded.push(format!(
                "layer {layer}'s per-class score scales into integer multipliers {}",
                scale
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        if p.steps.iter().any(|s| s.len() > 4) {
            self.folded.push(format!(
                "the steps after layer {layer}'s sums into integer score offsets"
            ));
        }
        let l = BinaryLayer {
            inputs: p.inputs,
            outputs: p.outputs,
            weights,
            activation: Activation::Scores { bias, scale },
            conv: None,
        };
        self.push(Layer::Binary(l), p.nodes, "scores");
        Ok(())
    }
}

/// A small constant for messages: its values, or its shape when it is large.
fn show_tensor(t: &Tensor) -> String {
    if t.numel() <= 8 {
        format!("{:?}", t.data)
    } else {
        format!("a tensor of shape {:?}", t.dims)
    }
}

/// A 1-D per-channel parameter (batch norm, conv bias): one value per channel, or one for all.
fn one_per_channel(t: &Tensor, channels: usize) -> Option<Vec<f64>> {
    match t.numel() {
        1 => Some(vec![t.data[0]; channels]),
        k if k == channels => Some(t.data.clone()),
        _ => None,
    }
}
