//! The trained network as every later stage sees it: input shape and encoding, layers, metadata.
//!
//! Binary layers carry the integer semantics of the software reference (see [`crate::reference`]).
//! Float layers exist only for the full-precision baseline and its post-training truncation; the
//! compiler accepts binary models only.

pub mod arch;
pub mod format;
pub mod random;

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

/// One layer: dense or convolutional (binary or float), or a max-pool.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// Weights in {-1,+1} and integer thresholds or scores.
    Binary(BinaryLayer),
    /// Full-precision weights (baseline models only).
    Float(FloatLayer),
    /// Max-pool over a feature map (on bits: an OR over each window).
    MaxPool(MaxPool),
}

impl Layer {
    /// Flattened input size: the previous layer's [`Layer::outputs`] (for a convolution the
    /// whole feature map it slides over, not its window).
    pub fn inputs(&self) -> usize {
        match self {
            Layer::Binary(l) => l.conv.map_or(l.inputs, |c| c.input_size()),
            Layer::Float(l) => l.conv.map_or(l.inputs, |c| c.input_size()),
            Layer::MaxPool(p) => p.input_size(),
        }
    }

    /// Flattened output size: neurons of a dense layer, the whole output feature map
    /// (`out_height * out_width * channels`) of a convolution or pool.
    pub fn outputs(&self) -> usize {
        match self {
            Layer::Binary(l) => l.conv.map_or(l.outputs, |c| c.output_pixels() * l.outputs),
            Layer::Float(l) => l.conv.map_or(l.outputs, |c| c.output_pixels() * l.outputs),
            Layer::MaxPool(p) => p.output_size(),
        }
    }

    /// The convolution geometry, if this is a convolution.
    pub fn conv(&self) -> Option<Conv> {
        match self {
            Layer::Binary(l) => l.conv,
            Layer::Float(l) => l.conv,
            Layer::MaxPool(_) => None,
        }
    }

    /// The architecture token of this layer (`c32`, `c16k5`, `p`, `256`).
    pub fn token(&self) -> String {
        let (conv, outputs) = match self {
            Layer::Binary(l) => (l.conv, l.outputs),
            Layer::Float(l) => (l.conv, l.outputs),
            Layer::MaxPool(_) => return "p".into(),
        };
        match conv {
            Some(c) if c.kernel == 3 => format!("c{outputs}"),
            Some(c) => format!("c{outputs}k{}", c.kernel),
            None => outputs.to_string(),
        }
    }
}

/// Where a convolution slides: its input feature map (`height` x `width` pixels of `channels`
/// bits, stored row-major with the channels of a pixel adjacent: bit `(y * width + x) *
/// channels + c`) and its square kernel. Stride 1, no padding; the output map is
/// `(height - kernel + 1) x (width - kernel + 1)` pixels of one channel per output channel,
/// stored the same way.
///
/// Weight column `(ky * kernel + kx) * channels + c` of output channel `o` multiplies input
/// bit `((y + ky) * width + x + kx) * channels + c` for output pixel `(y, x)`: a window is read
/// row by row, and within a pixel channel by channel, the order in which a pixel stream fills
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv {
    /// Input rows.
    pub height: usize,
    /// Input pixels per row.
    pub width: usize,
    /// Input channels (bits per input pixel and plane).
    pub channels: usize,
    /// Kernel side.
    pub kernel: usize,
}

impl Conv {
    /// Output rows.
    pub fn out_height(&self) -> usize {
        self.height + 1 - self.kernel
    }

    /// Output pixels per row.
    pub fn out_width(&self) -> usize {
        self.width + 1 - self.kernel
    }

    /// Output pixels.
    pub fn output_pixels(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Bits of one window: the weights of one output channel.
    pub fn window(&self) -> usize {
        self.kernel * self.kernel * self.channels
    }

    /// Bits of the input feature map (per plane).
    pub fn input_size(&self) -> usize {
        self.height * self.width * self.channels
    }
}

/// A `size` x `size` max-pool with stride `size` over a feature map laid out as for [`Conv`].
/// On the bits of a threshold layer it is an OR over each window; on float activations the
/// largest value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool {
    /// Input rows (a multiple of `size`).
    pub height: usize,
    /// Input pixels per row (a multiple of `size`).
    pub width: usize,
    /// Channels (kept).
    pub channels: usize,
    /// Window side and stride.
    pub size: usize,
}

impl MaxPool {
    /// Output rows.
    pub fn out_height(&self) -> usize {
        self.height / self.size
    }

    /// Output pixels per row.
    pub fn out_width(&self) -> usize {
        self.width / self.size
    }

    /// Bits of the input feature map.
    pub fn input_size(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Bits of the output feature map.
    pub fn output_size(&self) -> usize {
        self.out_height() * self.out_width() * self.channels
    }
}

/// A binary layer, dense or convolutional. Row `r` of `weights` holds neuron (output channel)
/// `r`'s weights, bit set meaning +1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryLayer {
    /// Weights per neuron: the input width (bits per input plane) of a dense layer, the window
    /// of a convolution.
    pub inputs: usize,
    /// Neurons, or output channels of a convolution.
    pub outputs: usize,
    /// `outputs` x `inputs` weight bits.
    pub weights: BitMatrix,
    /// What the neuron does with its popcount.
    pub activation: Activation,
    /// `Some` for a convolution: where its window slides.
    pub conv: Option<Conv>,
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
    /// Last layer: class score `scale[i] * s + bias[i]`; the class is the argmax, lowest index
    /// on ties.
    Scores {
        /// Per-class integer offset.
        bias: Vec<i32>,
        /// Per-class positive integer multiplier, or empty: 1 for every class (what the
        /// trainers make). Imported models whose last batch norm scales classes differently
        /// carry their scales here exactly (see `docs/model-format.md`).
        scale: Vec<u32>,
    },
}

/// Class `c`'s score from its sum `s`: `scale[c] * s + bias[c]` (`scale` empty: 1). A checked
/// model's scores fit an `i32`.
pub fn class_score(scale: &[u32], bias: &[i32], c: usize, s: i32) -> i32 {
    match scale.get(c) {
        Some(&m) => s * m as i32 + bias[c],
        None => s + bias[c],
    }
}

/// A layer with f32 weights: `y = scale * (W x) + shift`, then `hardtanh` unless last; for a
/// convolution `W x` is taken over each window as for [`BinaryLayer`].
#[derive(Clone, Debug, PartialEq)]
pub struct FloatLayer {
    /// Weights per neuron (input width, or window of a convolution).
    pub inputs: usize,
    /// Neurons, or output channels.
    pub outputs: usize,
    /// Row-major `outputs` x `inputs`.
    pub weights: Vec<f32>,
    /// Per-neuron scale (folded batch norm).
    pub scale: Vec<f32>,
    /// Per-neuron shift (folded batch norm and bias).
    pub shift: Vec<f32>,
    /// `Some` for a convolution: where its window slides.
    pub conv: Option<Conv>,
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
    /// True when no layer is float (what the reference and the compiler take).
    pub fn is_binary(&self) -> bool {
        !self.layers.iter().any(|l| matches!(l, Layer::Float(_)))
    }

    /// True when some layer is a convolution or a pool.
    pub fn is_convolutional(&self) -> bool {
        self.layers
            .iter()
            .any(|l| l.conv().is_some() || matches!(l, Layer::MaxPool(_)))
    }

    /// Number of classes (outputs of the last layer).
    pub fn classes(&self) -> usize {
        self.layers.last().map_or(0, Layer::outputs)
    }

    /// The architecture: layer widths, input first, for dense models (`784-256-256-10`); the
    /// layer tokens of `--arch` for convolutional ones (`c32-c32-p-c64-c64-p-256-10`).
    pub fn arch(&self) -> String {
        let mut parts = Vec::new();
        if !self.is_convolutional() {
            parts.push(self.input.pixels().to_string());
        }
        parts.extend(self.layers.iter().map(Layer::token));
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
        let float = self.layers.iter().any(|l| matches!(l, Layer::Float(_)));
        // The encoded input is a feature map whose channels are a pixel's encoded bits; it stays
        // a map through convolutions and pools and becomes flat at the first dense layer.
        let mut map = Some((
            self.input.height,
            self.input.width,
            self.input.channels * self.input.encoding.bits_per_pixel(),
        ));
        let mut width = self.input.encoded_inputs();
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let n = i + 1;
            if let Some(c) = layer.conv() {
                let Some((h, w, ch)) = map else {
                    return err(format!(
                        "layer {n} is a convolution after a dense layer (convolutions and pools \
                         come before the dense layers)"
                    ));
                };
                if (c.height, c.width, c.channels) != (h, w, ch) {
                    return err(format!(
                        "layer {n} slides over {}x{}x{} but receives {h}x{w}x{ch}",
                        c.height, c.width, c.channels
                    ));
                }
                if c.kernel == 0 || c.kernel > h || c.kernel > w {
                    return err(format!(
                        "layer {n}: a {k}x{k} kernel does not fit a {h}x{w} feature map",
                        k = c.kernel
                    ));
                }
                if i == last {
                    return err(format!(
                        "last layer {n} is a convolution; the class scores come from a dense layer"
                    ));
                }
            }
            if let Layer::MaxPool(p) = layer {
                let Some((h, w, ch)) = map else {
                    return err(format!("layer {n} is a pool after a dense layer"));
                };
                if i == 0 {
                    return err(format!(
                        "layer {n} pools the input; a pool follows a convolution"
                    ));
                }
                if i == last {
                    return err(format!("last layer {n} is a pool, not a dense layer"));
                }
                if (p.height, p.width, p.channels) != (h, w, ch) {
                    return err(format!(
                        "layer {n} pools {}x{}x{} but receives {h}x{w}x{ch}",
                        p.height, p.width, p.channels
                    ));
                }
                if p.size == 0 || h % p.size != 0 || w % p.size != 0 {
                    return err(format!(
                        "layer {n}: a {s}x{s} pool does not tile a {h}x{w} feature map",
                        s = p.size
                    ));
                }
                map = Some((p.out_height(), p.out_width(), ch));
                width = p.output_size();
                continue;
            }
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
                Layer::MaxPool(_) => unreachable!("handled above"),
                Layer::Binary(l) => {
                    if float {
                        return err(format!("layer {n} is binary in a float model"));
                    }
                    if let Some(c) = l.conv {
                        if l.inputs != c.window() {
                            return err(format!(
                                "layer {n} has {} weights per channel but a {k}x{k}x{} window",
                                l.inputs,
                                c.channels,
                                k = c.kernel
                            ));
                        }
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
                        (Activation::Scores { bias, scale }, true) => {
                            if bias.len() != l.outputs {
                                return err(format!("layer {n} needs {} score offsets", l.outputs));
                            }
                            if !scale.is_empty() && scale.len() != l.outputs {
                                return err(format!(
                                    "layer {n} needs {} score scales (or none)",
                                    l.outputs
                                ));
                            }
                            if let Some(c) = scale.iter().position(|&m| m == 0) {
                                return err(format!(
                                    "layer {n}: score scale 0 of class {c} (scales are at least 1)"
                                ));
                            }
                            // Sums are never negative, so only a large positive offset or scale
                            // can overflow `scale * sum + bias`.
                            let top = |c: usize| max_sum * scale.get(c).map_or(1, |&m| m as i64);
                            if let Some((c, b)) = bias
                                .iter()
                                .enumerate()
                                .find(|&(c, &b)| b as i64 + top(c) > i32::MAX as i64)
                            {
                                return err(format!(
                                    "layer {n}: score offset {b} of class {c} plus the largest {}sum \
                                     {} overflows a 32-bit score",
                                    if scale.is_empty() { "" } else { "scaled " },
                                    top(c)
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
                    if let Some(c) = l.conv {
                        if l.inputs != c.window() {
                            return err(format!(
                                "layer {n} has {} weights per channel but a {k}x{k}x{} window",
                                l.inputs,
                                c.channels,
                                k = c.kernel
                            ));
                        }
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
            map = layer
                .conv()
                .map(|c| (c.out_height(), c.out_width(), layer_channels(layer)));
            width = layer.outputs();
        }
        Ok(())
    }
}

/// Neurons (output channels) of a weight layer.
fn layer_channels(layer: &Layer) -> usize {
    match layer {
        Layer::Binary(l) => l.outputs,
        Layer::Float(l) => l.outputs,
        Layer::MaxPool(p) => p.channels,
    }
}
