//! The trained network as every later stage sees it: input shape and encoding, layers, metadata.
//!
//! Binary layers carry the integer semantics of the software reference (see [`crate::reference`]).
//! Float layers exist only for the full-precision baseline and its post-training truncation; the
//! compiler accepts binary models only.

pub mod format;

use std::collections::BTreeMap;

use crate::bits::BitMatrix;
use crate::encoding::Encoding;

/// A trained network.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// What the network reads.
    pub input: InputSpec,
    /// Layers from input to output; the last one produces the class scores.
    pub layers: Vec<Layer>,
    /// Where the model came from.
    pub meta: Metadata,
}

/// Shape and encoding of the input image.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InputSpec {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Channels per pixel (1 for grey images); channels are interleaved per pixel.
    pub channels: usize,
    /// Bits of a raw pixel value (8 for MNIST, 5 for the 0..16 optical digits).
    pub pixel_bits: u8,
    /// How pixels become first-layer bits.
    pub encoding: Encoding,
}

impl InputSpec {
    /// Raw values per image.
    pub fn pixels(&self) -> usize {
        self.width * self.height * self.channels
    }

    /// Width of the first layer's input after encoding (one weight per such input).
    pub fn encoded_inputs(&self) -> usize {
        self.pixels() * self.encoding.bits_per_pixel()
    }
}

/// One dense layer.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// Weights in {-1,+1} and integer thresholds or scores.
    Binary(BinaryLayer),
    /// Full-precision weights (baseline models only).
    Float(FloatLayer),
}

impl Layer {
    /// Input width.
    pub fn inputs(&self) -> usize {
        match self {
            Layer::Binary(l) => l.inputs,
            Layer::Float(l) => l.inputs,
        }
    }

    /// Output width (neurons).
    pub fn outputs(&self) -> usize {
        match self {
            Layer::Binary(l) => l.outputs,
            Layer::Float(l) => l.outputs,
        }
    }
}

/// A dense layer with binary weights. Row `r` of `weights` holds neuron `r`'s weights, bit set
/// meaning +1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryLayer {
    /// Input width (bits per input plane).
    pub inputs: usize,
    /// Neurons.
    pub outputs: usize,
    /// `outputs` x `inputs` weight bits.
    pub weights: BitMatrix,
    /// What the neuron does with its popcount.
    pub activation: Activation,
}

/// What a binary neuron does with its popcount sum `s`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Hidden layer: output bit `(s >= thresholds[i]) XOR invert[i]`. `invert` is the direction
    /// bit that a negative batch-norm scale folds into.
    Threshold {
        /// Per-neuron integer threshold on `s`.
        thresholds: Vec<i32>,
        /// Per-neuron direction bit.
        invert: Vec<bool>,
    },
    /// Last layer: class score `s + bias[i]`; the class is the argmax, lowest index on ties.
    Scores {
        /// Per-class integer offset.
        bias: Vec<i32>,
    },
}

/// A dense layer with f32 weights: `y = scale * (W x) + shift`, then `hardtanh` unless last.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatLayer {
    /// Input width.
    pub inputs: usize,
    /// Neurons.
    pub outputs: usize,
    /// Row-major `outputs` x `inputs`.
    pub weights: Vec<f32>,
    /// Per-neuron scale (folded batch norm).
    pub scale: Vec<f32>,
    /// Per-neuron shift (folded batch norm and bias).
    pub shift: Vec<f32>,
}

/// Provenance of a model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    /// Dataset name (`optdigits`, or the `--data` directory's name).
    pub dataset: String,
    /// Optimizer that produced the weights (`flip`, `binaryconnect`, `bop`, `float`, `quantize`).
    pub optimizer: String,
    /// Training seed.
    pub seed: u64,
    /// Test accuracy measured at export, 0..1.
    pub test_accuracy: Option<f64>,
    /// Anything else worth keeping (epochs, encoding choice, ...); written in key order.
    pub extra: BTreeMap<String, String>,
}

/// A model that does not hang together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ModelError(pub String);

impl Model {
    /// True when every layer is binary (what the reference and the compiler take).
    pub fn is_binary(&self) -> bool {
        self.layers.iter().all(|l| matches!(l, Layer::Binary(_)))
    }

    /// Number of classes (outputs of the last layer).
    pub fn classes(&self) -> usize {
        self.layers.last().map_or(0, Layer::outputs)
    }

    /// Layer widths, input first: `784-256-256-10`.
    pub fn arch(&self) -> String {
        let mut parts = vec![self.input.pixels().to_string()];
        parts.extend(self.layers.iter().map(|l| l.outputs().to_string()));
        parts.join("-")
    }

    /// Checks that dimensions chain, vectors have the right lengths and the kinds are consistent.
    pub fn check(&self) -> Result<(), ModelError> {
        let err = |m: String| Err(ModelError(m));
        if self.input.pixels() == 0 {
            return err("input has no pixels".into());
        }
        if !(1..=8).contains(&self.input.pixel_bits) {
            return err(format!(
                "pixel_bits must be 1..=8, got {}",
                self.input.pixel_bits
            ));
        }
        self.input
            .encoding
            .check(self.input.pixel_bits)
            .map_err(ModelError)?;
        if self.layers.is_empty() {
            return err("model has no layers".into());
        }
        let float = matches!(self.layers[0], Layer::Float(_));
        let mut width = self.input.encoded_inputs();
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let n = i + 1;
            if layer.inputs() != width {
                return err(format!(
                    "layer {n} has {} inputs but receives {width}",
                    layer.inputs()
                ));
            }
            if layer.outputs() == 0 {
                return err(format!("layer {n} has no outputs"));
            }
            match layer {
                Layer::Binary(l) => {
                    if float {
                        return err(format!("layer {n} is binary in a float model"));
                    }
                    if l.weights.rows() != l.outputs || l.weights.cols() != l.inputs {
                        return err(format!(
                            "layer {n} weights are not {}x{}",
                            l.outputs, l.inputs
                        ));
                    }
                    // Sums and scores are i32 in the reference and the hardware; a model whose
                    // arithmetic could leave that range is refused here rather than wrapping
                    // silently in a release build.
                    let planes = if i == 0 {
                        self.input.encoding.planes()
                    } else {
                        1
                    };
                    let max_sum = ((1i64 << planes) - 1) * l.inputs as i64;
                    if max_sum > i32::MAX as i64 {
                        return err(format!(
                            "layer {n}: popcount sums up to {max_sum} do not fit 32 bits"
                        ));
                    }
                    match (&l.activation, i == last) {
                        (Activation::Threshold { thresholds, invert }, false) => {
                            if thresholds.len() != l.outputs || invert.len() != l.outputs {
                                return err(format!(
                                    "layer {n} needs {} thresholds and direction bits",
                                    l.outputs
                                ));
                            }
                        }
                        (Activation::Scores { bias }, true) => {
                            if bias.len() != l.outputs {
                                return err(format!("layer {n} needs {} score offsets", l.outputs));
                            }
                            // Sums are never negative, so only a large positive offset can
                            // overflow `sum + bias`.
                            if let Some((c, b)) = bias
                                .iter()
                                .enumerate()
                                .find(|(_, &b)| b as i64 + max_sum > i32::MAX as i64)
                            {
                                return err(format!(
                                    "layer {n}: score offset {b} of class {c} plus the largest sum \
                                     {max_sum} overflows a 32-bit score"
                                ));
                            }
                        }
                        (Activation::Threshold { .. }, true) => {
                            return err(format!(
                                "last layer {n} must produce scores, not thresholds"
                            ))
                        }
                        (Activation::Scores { .. }, false) => {
                            return err(format!(
                                "hidden layer {n} must have thresholds, not scores"
                            ))
                        }
                    }
                }
                Layer::Float(l) => {
                    if !float {
                        return err(format!("layer {n} is float in a binary model"));
                    }
                    if l.weights.len() != l.inputs * l.outputs
                        || l.scale.len() != l.outputs
                        || l.shift.len() != l.outputs
                    {
                        return err(format!(
                            "layer {n} float parameters do not match {}x{}",
                            l.outputs, l.inputs
                        ));
                    }
                }
            }
            width = layer.outputs();
        }
        Ok(())
    }
}
