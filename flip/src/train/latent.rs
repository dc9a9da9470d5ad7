//! Float machinery shared by the latent-weight baselines (`binaryconnect`, `bop`, `float`): a
//! register-blocked matrix product, Adam, batch norm, the score head, and one forward/backward
//! pass over a mini-batch for nets of convolutions, max-pools and dense layers whose weights
//! are either bits (forward by popcount, exactly the reference's integer sums) or f32.
//!
//! Conventions, identical for the three optimizers:
//! - The first layer reads the encoding's input values (`+-1`, or the centred level
//!   `2q - (2^P - 1)` for bit planes) divided by `top` (`2^P - 1`, or 1), so its inputs lie in
//!   `[-1, 1]`. On binary weights its pre-activation is `z = (2s - top * n) / top` for the
//!   popcount sum `s` of the reference; on hidden layers `z = 2s - n`, the +-1 dot product.
//! - Hidden layers: batch norm (batch statistics in training, running statistics at export),
//!   then `sign` (binary nets, straight-through with the hard-tanh window `|y| <= 1`) or
//!   `hardtanh` (float net, same window as its derivative).
//! - Convolutions are hidden layers whose rows are windows (the order of [`Conv`]): the
//!   forward and backward passes are matrix products over all windows of the batch ("im2col"),
//!   and batch norm takes one mean and variance per output channel over the batch and all
//!   output pixels, so it folds into one threshold per channel as the reference needs.
//! - Max-pools take the largest value of each window (on `+-1` activations the OR of the
//!   bits, as in the reference) and pass its gradient to the input that won.
//! - Last layer: no batch norm but one learned positive scalar scale `alpha = exp(a)` shared by
//!   all classes and a per-class bias, `logit = alpha * z + b`. A per-class scale would not
//!   survive export to integer scores `s + bias` (the argmax would change); a shared one does,
//!   up to rounding the bias to an integer.
//!
//! Everything here is deterministic for a given batch: reductions run in a fixed order and
//! parallel work is split by output rows, so the thread count does not change a bit.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{BatchStats, TrainData};
use crate::bits::{set_bit, words_for, BitMatrix, WORD_BITS};
use crate::encoding::Encoding;
use crate::featuremap;
use crate::model::arch::LayerShape;
use crate::model::{Activation, BinaryLayer, Conv, FloatLayer, InputSpec, Layer, MaxPool, Model};
use crate::quantize::{fold_scores, fold_threshold};
use crate::reference::argmax;

/// Rows of the product's register tile.
const MR: usize = 4;
/// Widest column tile (three AVX registers per row).
const NR: usize = 24;

/// `C = A B` (or `C += A B` with `accumulate`): `A` is `m x k` with element `(r, p)` at
/// `a[r * ars + p * acs]`, `B` is `k x n` row-major, `C` is `m x n` row-major. Parallel over
/// blocks of rows of `C`; each element's sum runs over `p` in order, so the result does not
/// depend on the thread count.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    ars: usize,
    acs: usize,
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    assert!(c.len() >= m * n && b.len() >= k * n);
    assert!(m == 0 || k == 0 || a.len() > (m - 1) * ars + (k - 1) * acs);
    if m == 0 || n == 0 {
        return;
    }
    c[..m * n]
        .par_chunks_mut(MR * n)
        .enumerate()
        .for_each(|(blk, cb)| {
            let r0 = blk * MR;
            let mr = cb.len() / n;
            if !accumulate {
                cb.fill(0.0);
            }
            let mut j = 0;
            if mr == MR {
                while j + NR <= n {
                    tile::<NR>(k, a, r0, ars, acs, b, n, j, cb);
                    j += NR;
                }
                while j + 8 <= n {
                    tile::<8>(k, a, r0, ars, acs, b, n, j, cb);
                    j += 8;
                }
            }
            if j < n {
                for r in 0..mr {
                    let crow = &mut cb[r * n + j..(r + 1) * n];
                    for p in 0..k {
                        let av = a[(r0 + r) * ars + p * acs];
                        if av == 0.0 {
                            continue;
                        }
                        let brow = &b[p * n + j..(p + 1) * n];
                        for (cv, &bv) in crow.iter_mut().zip(brow) {
                            *cv = av.mul_add(bv, *cv);
                        }
                    }
                }
            }
        });
}

/// One `MR x W` tile of [`gemm`], accumulated in registers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile<const W: usize>(
    k: usize,
    a: &[f32],
    r0: usize,
    ars: usize,
    acs: usize,
    b: &[f32],
    n: usize,
    j: usize,
    cb: &mut [f32],
) {
    let mut acc = [[0f32; W]; MR];
    let base = r0 * ars;
    for p in 0..k {
        let brow: &[f32; W] = b[p * n + j..p * n + j + W].try_into().unwrap();
        let o = base + p * acs;
        let av: [f32; MR] = if ars == 1 {
            a[o..o + MR].try_into().unwrap()
        } else {
            std::array::from_fn(|r| a[o + r * ars])
        };
        for (accr, &ar) in acc.iter_mut().zip(&av) {
            for q in 0..W {
                accr[q] = ar.mul_add(brow[q], accr[q]);
            }
        }
    }
    for (r, accr) in acc.iter().enumerate() {
        for (cv, &v) in cb[r * n + j..r * n + j + W].iter_mut().zip(accr) {
            *cv += v;
        }
    }
}

/// Cosine decay from 1 to `end` over `progress` 0..1.
pub fn cosine(progress: f64, end: f64) -> f64 {
    end + (1.0 - end) * 0.5 * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos())
}

/// Adam's two moments for one parameter vector.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
}

/// Adam's exponential decay rates and epsilon (the usual defaults).
const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const ADAM_EPS: f32 = 1e-8;

impl Adam {
    /// Zero moments for `n` parameters.
    pub fn new(n: usize) -> Self {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    /// Bytes of state.
    pub fn bytes(&self) -> usize {
        4 * (self.m.len() + self.v.len())
    }

    /// One Adam step on `p` with gradient `g` at learning rate `lr`; `t` counts steps from 1.
    /// Afterwards `p` is clamped to `[-clip, clip]` when `clip` is given.
    pub fn update(&mut self, p: &mut [f32], g: &[f32], lr: f32, t: u64, clip: Option<f32>) {
        let t = t.max(1) as i32;
        let c1 = 1.0 - BETA1.powi(t.min(100_000));
        let c2 = 1.0 - BETA2.powi(t.min(100_000));
        let step = lr * c2.sqrt() / c1;
        let eps = ADAM_EPS * c2.sqrt();
        let lim = clip.unwrap_or(f32::INFINITY);
        const CH: usize = 4096;
        p.par_chunks_mut(CH)
            .zip(g.par_chunks(CH))
            .zip(self.m.par_chunks_mut(CH).zip(self.v.par_chunks_mut(CH)))
            .for_each(|((p, g), (m, v))| {
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    *m = BETA1 * *m + (1.0 - BETA1) * g;
                    *v = BETA2 * *v + (1.0 - BETA2) * g * g;
                    *p = (*p - step * *m / (v.sqrt() + eps)).clamp(-lim, lim);
                }
            });
    }
}

/// Batch norm of one hidden layer: `y = gamma (z - mean) / sqrt(var + eps) + beta`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchNorm {
    /// `gamma` then `beta`, one each per neuron (one vector for one Adam).
    pub params: Vec<f32>,
    /// Running mean of `z`, used at export.
    pub run_mean: Vec<f32>,
    /// Running (unbiased) variance of `z`, used at export.
    pub run_var: Vec<f32>,
    adam: Adam,
}

/// Batch norm's variance floor.
pub const BN_EPS: f32 = 1e-5;

impl BatchNorm {
    fn new(m: usize) -> Self {
        let mut params = vec![1.0; m];
        params.extend(std::iter::repeat_n(0.0, m));
        BatchNorm {
            params,
            run_mean: vec![0.0; m],
            run_var: vec![1.0; m],
            adam: Adam::new(2 * m),
        }
    }

    fn width(&self) -> usize {
        self.run_mean.len()
    }

    /// Bytes of state.
    pub fn bytes(&self) -> usize {
        4 * (self.params.len() + self.run_mean.len() + self.run_var.len()) + self.adam.bytes()
    }

    /// The export-time affine map `y = k z + c` per neuron, from the running statistics.
    pub fn affine(&self, i: usize) -> (f64, f64) {
        let m = self.width();
        let (gamma, beta) = (self.params[i] as f64, self.params[m + i] as f64);
        let sigma = (self.run_var[i] as f64 + BN_EPS as f64).sqrt();
        let k = gamma / sigma;
        (k, beta - k * self.run_mean[i] as f64)
    }
}

/// The score head: `logit = exp(a) z + b`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Head {
    /// `a` (log of the shared scale) then one bias per class.
    pub params: Vec<f32>,
    adam: Adam,
}

impl Head {
    fn new(classes: usize, log_scale: f32) -> Self {
        let mut params = vec![log_scale];
        params.extend(std::iter::repeat_n(0.0, classes));
        Head {
            params,
            adam: Adam::new(classes + 1),
        }
    }

    /// The shared scale.
    pub fn scale(&self) -> f32 {
        self.params[0].exp()
    }

    /// Bytes of state.
    pub fn bytes(&self) -> usize {
        4 * self.params.len() + self.adam.bytes()
    }
}

/// Everything in a net that is not a weight matrix: batch norms of the hidden layers and the
/// score head, all trained by Adam.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Norms {
    /// One per hidden layer.
    pub hidden: Vec<BatchNorm>,
    /// The last layer's scale and biases.
    pub head: Head,
    /// Weight of the newest batch in the running statistics.
    pub momentum: f32,
}

/// Gradients of [`Norms`] from one pass.
pub struct NormGrads {
    hidden: Vec<Vec<f32>>,
    head: Vec<f32>,
}

impl Norms {
    /// Fresh norms for a net of `shapes`: one batch norm per convolution (per output channel)
    /// and hidden dense layer, and the head over the last layer's classes; `log_scale`
    /// initialises the head's scale.
    pub fn new(shapes: &[LayerShape], log_scale: f32, momentum: f32) -> Self {
        let w = weighted(shapes);
        let (hidden, last) = w.split_at(w.len().saturating_sub(1));
        Norms {
            hidden: hidden.iter().map(|&(_, m)| BatchNorm::new(m)).collect(),
            head: Head::new(last.first().map_or(0, |&(_, m)| m), log_scale),
            momentum,
        }
    }

    /// Bytes of state.
    pub fn bytes(&self) -> usize {
        self.hidden.iter().map(BatchNorm::bytes).sum::<usize>() + self.head.bytes()
    }

    /// One Adam step on every norm parameter.
    pub fn update(&mut self, g: &NormGrads, lr: f32, t: u64) {
        for (bn, gr) in self.hidden.iter_mut().zip(&g.hidden) {
            bn.adam.update(&mut bn.params, gr, lr, t, None);
        }
        self.head
            .adam
            .update(&mut self.head.params, &g.head, lr, t, None);
    }
}

/// The largest magnitude of an encoded input value: `2^P - 1` for bit planes, else 1.
pub fn input_top(enc: &Encoding) -> i32 {
    match enc {
        Encoding::BitPlanes(p) => (1i32 << p) - 1,
        _ => 1,
    }
}

/// A layer's geometry as the optimizers keep it in their state: [`LayerShape`] in a form that
/// serialises with the rest of the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// A dense layer.
    Dense {
        /// Input width.
        inputs: usize,
        /// Neurons.
        outputs: usize,
    },
    /// A convolution (see [`Conv`]).
    Conv {
        /// Input rows.
        height: usize,
        /// Input pixels per row.
        width: usize,
        /// Input channels.
        channels: usize,
        /// Kernel side.
        kernel: usize,
        /// Output channels.
        outputs: usize,
    },
    /// A max-pool (see [`MaxPool`]).
    Pool {
        /// Input rows.
        height: usize,
        /// Input pixels per row.
        width: usize,
        /// Channels.
        channels: usize,
        /// Window side and stride.
        size: usize,
    },
}

impl Stage {
    /// The stage of a layer shape.
    pub fn of(s: &LayerShape) -> Stage {
        match *s {
            LayerShape::Dense { inputs, outputs } => Stage::Dense { inputs, outputs },
            LayerShape::Conv { conv, outputs } => Stage::Conv {
                height: conv.height,
                width: conv.width,
                channels: conv.channels,
                kernel: conv.kernel,
                outputs,
            },
            LayerShape::Pool(p) => Stage::Pool {
                height: p.height,
                width: p.width,
                channels: p.channels,
                size: p.size,
            },
        }
    }

    /// The layer shape of this stage.
    pub fn shape(&self) -> LayerShape {
        match *self {
            Stage::Dense { inputs, outputs } => LayerShape::Dense { inputs, outputs },
            Stage::Conv {
                height,
                width,
                channels,
                kernel,
                outputs,
            } => LayerShape::Conv {
                conv: Conv {
                    height,
                    width,
                    channels,
                    kernel,
                },
                outputs,
            },
            Stage::Pool {
                height,
                width,
                channels,
                size,
            } => LayerShape::Pool(MaxPool {
                height,
                width,
                channels,
                size,
            }),
        }
    }
}

/// Shapes of all layers of a list of stages.
pub fn shapes_of(stages: &[Stage]) -> Vec<LayerShape> {
    stages.iter().map(Stage::shape).collect()
}

/// `(fan_in, outputs)` of every layer with weights (convolutions and dense layers), in order.
pub fn weighted(shapes: &[LayerShape]) -> Vec<(usize, usize)> {
    shapes
        .iter()
        .filter(|s| !matches!(s, LayerShape::Pool(_)))
        .map(|s| (s.fan_in(), s.neurons()))
        .collect()
}

/// Checks that `shapes` chain from `input` to a dense score layer: every layer reads what the
/// one before it writes, convolutions and pools come before the dense layers, the first
/// convolution slides over the encoded image, no layer is empty. The error names the layer.
pub fn check_shapes(input: &InputSpec, shapes: &[LayerShape]) -> Result<(), String> {
    let bpp = input.encoding.bits_per_pixel();
    let mut size = input.encoded_inputs();
    let mut map = Some((input.height, input.width, input.channels * bpp));
    let last = shapes
        .len()
        .checked_sub(1)
        .ok_or("the network has no layers")?;
    for (i, s) in shapes.iter().enumerate() {
        let at = |why: String| format!("layer {}: {why}", i + 1);
        if s.in_size() != size {
            return Err(at(format!(
                "reads {} values but the layer before it gives {size}",
                s.in_size()
            )));
        }
        if s.out_size() == 0 || (!matches!(s, LayerShape::Pool(_)) && s.fan_in() == 0) {
            return Err(at("is empty (zero width, channels or inputs)".into()));
        }
        match s {
            LayerShape::Dense { .. } => map = None,
            LayerShape::Conv { conv, outputs } => {
                if map != Some((conv.height, conv.width, conv.channels)) {
                    return Err(at(format!(
                        "a convolution over a {}x{}x{} map does not fit the {}",
                        conv.height,
                        conv.width,
                        conv.channels,
                        map.map_or("dense layer before it".into(), |(h, w, c)| format!(
                            "{h}x{w}x{c} map before it"
                        ))
                    )));
                }
                if conv.kernel == 0 || conv.kernel > conv.height || conv.kernel > conv.width {
                    return Err(at(format!(
                        "a {}x{} kernel does not fit a {}x{} map",
                        conv.kernel, conv.kernel, conv.height, conv.width
                    )));
                }
                map = Some((conv.out_height(), conv.out_width(), *outputs));
            }
            LayerShape::Pool(p) => {
                if i == 0 || map != Some((p.height, p.width, p.channels)) {
                    return Err(at("a pool must follow a convolution or a pool".into()));
                }
                if p.size == 0 || p.height % p.size != 0 || p.width % p.size != 0 {
                    return Err(at(format!(
                        "a {}x{} pool does not tile a {}x{} map",
                        p.size, p.size, p.height, p.width
                    )));
                }
                map = Some((p.out_height(), p.out_width(), p.channels));
            }
        }
        size = s.out_size();
        if i == last && !matches!(s, LayerShape::Dense { .. }) {
            return Err(at(
                "the last layer must be dense (it gives the scores)".into()
            ));
        }
    }
    Ok(())
}

/// One layer's weights as a pass sees them.
pub enum Weights<'a> {
    /// Bits for the popcount forward and the same weights as `+-1.0` (row-major `m x n`) for
    /// the backward pass (not needed, and may be empty, for the first layer).
    Binary {
        /// Packed weights.
        bits: &'a BitMatrix,
        /// The same as f32 signs.
        signs: &'a [f32],
    },
    /// Row-major `m x n` f32 weights.
    Float(&'a [f32]),
}

/// What one forward/backward pass produced (besides the weight gradients).
pub struct Pass {
    /// Loss and hits.
    pub stats: BatchStats,
    /// Gradients of the norms.
    pub norm_grads: NormGrads,
}

/// First-layer inputs of a batch, scaled to `[-1, 1]`, `batch x n`.
fn first_inputs(data: &TrainData, batch: &[u32], n: usize) -> Vec<f32> {
    let inv = 1.0 / input_top(&data.input.encoding) as f32;
    let mut x = vec![0f32; batch.len() * n];
    x.par_chunks_mut(n).zip(batch.par_iter()).for_each_init(
        || vec![0i16; n],
        |v, (xr, &i)| {
            data.input
                .encoding
                .input_values(data.input.pixel_bits, data.image(i as usize), v);
            for (o, &q) in xr.iter_mut().zip(v.iter()) {
                *o = q as f32 * inv;
            }
        },
    );
    x
}

/// Transpose of a row-major `m x n` matrix.
fn transpose(w: &[f32], m: usize, n: usize) -> Vec<f32> {
    let mut t = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            t[j * m + i] = w[i * n + j];
        }
    }
    t
}

/// The windows of a batch of float maps (`bsz` maps of `conv.input_size()` values): one row of
/// `conv.window()` values per sample and output pixel, in the weight order of [`Conv`].
fn im2col(conv: &Conv, x: &[f32], bsz: usize) -> Vec<f32> {
    let (p, n, ins) = (conv.output_pixels(), conv.window(), conv.input_size());
    let run = conv.kernel * conv.channels;
    let mut cols = vec![0f32; bsz * p * n];
    cols.par_chunks_mut(p * n)
        .zip(x.par_chunks(ins))
        .for_each(|(c, xs)| {
            for (r, row) in c.chunks_exact_mut(n).enumerate() {
                let (y, xo) = (r / conv.out_width(), r % conv.out_width());
                for (ky, part) in row.chunks_exact_mut(run).enumerate() {
                    let from = ((y + ky) * conv.width + xo) * conv.channels;
                    part.copy_from_slice(&xs[from..from + run]);
                }
            }
        });
    cols
}

/// The adjoint of [`im2col`]: window gradients summed back onto the maps they were read from.
/// Each sample is summed on one thread in a fixed order.
fn col2im(conv: &Conv, dcols: &[f32], bsz: usize) -> Vec<f32> {
    let (p, n, ins) = (conv.output_pixels(), conv.window(), conv.input_size());
    let run = conv.kernel * conv.channels;
    let mut dx = vec![0f32; bsz * ins];
    dx.par_chunks_mut(ins)
        .zip(dcols.par_chunks(p * n))
        .for_each(|(d, c)| {
            for (r, row) in c.chunks_exact(n).enumerate() {
                let (y, xo) = (r / conv.out_width(), r % conv.out_width());
                for (ky, part) in row.chunks_exact(run).enumerate() {
                    let from = ((y + ky) * conv.width + xo) * conv.channels;
                    for (o, &g) in d[from..from + run].iter_mut().zip(part) {
                        *o += g;
                    }
                }
            }
        });
    dx
}

/// Max-pool of a batch of float maps; also returns, per output value, the position in its
/// sample's input map that won (the first one on ties), where the gradient goes back to.
fn pool_forward(p: &MaxPool, x: &[f32], bsz: usize) -> (Vec<f32>, Vec<u32>) {
    let (ins, outs, c) = (p.input_size(), p.output_size(), p.channels);
    let mut out = vec![0f32; bsz * outs];
    let mut arg = vec![0u32; bsz * outs];
    out.par_chunks_mut(outs)
        .zip(arg.par_chunks_mut(outs))
        .zip(x.par_chunks(ins))
        .for_each(|((o, a), xs)| {
            for oy in 0..p.out_height() {
                for ox in 0..p.out_width() {
                    for ch in 0..c {
                        let j = (oy * p.out_width() + ox) * c + ch;
                        let (mut best, mut at) = (f32::NEG_INFINITY, 0);
                        for dy in 0..p.size {
                            for dx in 0..p.size {
                                let px = (oy * p.size + dy) * p.width + ox * p.size + dx;
                                let i = px * c + ch;
                                if xs[i] > best {
                                    (best, at) = (xs[i], i);
                                }
                            }
                        }
                        o[j] = best;
                        a[j] = at as u32;
                    }
                }
            }
        });
    (out, arg)
}

/// Gradient of [`pool_forward`]: each output's gradient to its winning input.
fn pool_backward(p: &MaxPool, arg: &[u32], d: &[f32], bsz: usize) -> Vec<f32> {
    let (ins, outs) = (p.input_size(), p.output_size());
    let mut dx = vec![0f32; bsz * ins];
    dx.par_chunks_mut(ins)
        .zip(arg.par_chunks(outs).zip(d.par_chunks(outs)))
        .for_each(|(dxs, (a, ds))| {
            for (&i, &g) in a.iter().zip(ds) {
                dxs[i as usize] += g;
            }
        });
    dx
}

/// Bits `x >= 0` of a batch of `n`-value rows, each row packed into `words_for(n)` words.
fn pack_signs(x: &[f32], n: usize) -> Vec<u64> {
    let ow = words_for(n);
    let mut out = vec![0u64; x.len() / n.max(1) * ow];
    out.par_chunks_mut(ow.max(1))
        .zip(x.par_chunks(n.max(1)))
        .for_each(|(o, xr)| {
            for (i, &v) in xr.iter().enumerate() {
                if v >= 0.0 {
                    set_bit(o, i, true);
                }
            }
        });
    out
}

/// Batch-norm forward in training mode on `z` (`bsz x m`): returns `(xhat, y, inv_std)` and
/// updates the running statistics with weight `mom` if given.
fn bn_forward(
    bn: &mut BatchNorm,
    z: &[f32],
    bsz: usize,
    mom: Option<f32>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let m = bn.width();
    let mut mean = vec![0f32; m];
    for zb in z.chunks_exact(m) {
        for (s, &v) in mean.iter_mut().zip(zb) {
            *s += v;
        }
    }
    mean.iter_mut().for_each(|s| *s /= bsz as f32);
    let mut var = vec![0f32; m];
    for zb in z.chunks_exact(m) {
        for ((s, &v), &mu) in var.iter_mut().zip(zb).zip(&mean) {
            *s += (v - mu) * (v - mu);
        }
    }
    var.iter_mut().for_each(|s| *s /= bsz as f32);
    let inv: Vec<f32> = var.iter().map(|&v| 1.0 / (v + BN_EPS).sqrt()).collect();
    let (gamma, beta) = bn.params.split_at(m);
    let mut xhat = vec![0f32; z.len()];
    let mut y = vec![0f32; z.len()];
    for ((zb, xb), yb) in z
        .chunks_exact(m)
        .zip(xhat.chunks_exact_mut(m))
        .zip(y.chunks_exact_mut(m))
    {
        for i in 0..m {
            let x = (zb[i] - mean[i]) * inv[i];
            xb[i] = x;
            yb[i] = gamma[i] * x + beta[i];
        }
    }
    let unbias = if bsz > 1 {
        bsz as f32 / (bsz - 1) as f32
    } else {
        1.0
    };
    // A lone sample (a short last batch) says nothing about the spread.
    if let Some(mom) = mom.filter(|_| bsz > 1) {
        for i in 0..m {
            bn.run_mean[i] = (1.0 - mom) * bn.run_mean[i] + mom * mean[i];
            bn.run_var[i] = (1.0 - mom) * bn.run_var[i] + mom * var[i] * unbias;
        }
    }
    (xhat, y, inv)
}

/// Batch-norm backward: turns `dy` into `dz` in place and returns `[dgamma.., dbeta..]`.
fn bn_backward(bn: &BatchNorm, xhat: &[f32], inv: &[f32], dy: &mut [f32], bsz: usize) -> Vec<f32> {
    let m = bn.width();
    let mut g = vec![0f32; 2 * m];
    {
        let (dg, db) = g.split_at_mut(m);
        for (d, x) in dy.chunks_exact(m).zip(xhat.chunks_exact(m)) {
            for i in 0..m {
                dg[i] += d[i] * x[i];
                db[i] += d[i];
            }
        }
    }
    let (dg, db) = g.split_at(m);
    let nb = bsz as f32;
    let coef: Vec<f32> = (0..m).map(|i| bn.params[i] * inv[i] / nb).collect();
    for (d, x) in dy.chunks_exact_mut(m).zip(xhat.chunks_exact(m)) {
        for i in 0..m {
            d[i] = coef[i] * (nb * d[i] - db[i] - x[i] * dg[i]);
        }
    }
    g
}

/// What [`pass`] does besides the forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassMode {
    /// Backward pass, and the running statistics take this batch in.
    Train,
    /// Backward pass; the running statistics stay as they are.
    TrainOnly,
    /// Forward only, to feed the running statistics (loss and gradients are not computed).
    Statistics,
}

/// One forward and backward pass of the net `shapes` on `batch`: binary layers forward by
/// popcount (exactly the reference's sums; a convolution over its packed windows), float
/// layers by [`gemm`] (a convolution over its windows as rows, "im2col"). `weights` holds one
/// entry per convolution or dense layer. Convolutions are batch-normed per output channel over
/// the batch and all output pixels; a pool passes each gradient to the input that won its
/// window. Fills `grads` with `dLoss/dW` per weighted layer, row-major like the weights (mean
/// loss over the batch; the buffers are reused from step to step). Updates the batch norms'
/// running statistics as `mode` says; leaves every parameter as it was.
pub fn pass(
    norms: &mut Norms,
    shapes: &[LayerShape],
    weights: &[Weights],
    data: &TrainData,
    batch: &[u32],
    grads: &mut Vec<Vec<f32>>,
    mode: PassMode,
) -> Pass {
    let nl = shapes.len();
    let nw = weights.len();
    let bsz = batch.len();
    let top = input_top(&data.input.encoding);
    let planes0 = data.input.encoding.planes();
    let mom = (mode != PassMode::TrainOnly).then_some(norms.momentum);
    // Each layer's input as f32 (for weight gradients), and per hidden weighted layer its
    // (xhat, y, inv_std); per pool the winners.
    let mut xs: Vec<Vec<f32>> = Vec::with_capacity(nl);
    let mut saved: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = Vec::with_capacity(nw);
    let mut winners: Vec<Vec<u32>> = Vec::new();
    let mut x = first_inputs(data, batch, data.input.encoded_inputs());
    let mut z_last = Vec::new();
    let mut wi = 0;
    for (li, shape) in shapes.iter().enumerate() {
        if let LayerShape::Pool(p) = shape {
            let (out, arg) = pool_forward(p, &x, bsz);
            xs.push(std::mem::replace(&mut x, out));
            winners.push(arg);
            continue;
        }
        let w = &weights[wi];
        let (n, m) = (shape.fan_in(), shape.neurons());
        let conv = match shape {
            LayerShape::Conv { conv, .. } => Some(*conv),
            _ => None,
        };
        let rows = bsz * conv.map_or(1, |c| c.output_pixels());
        let mut z = vec![0f32; rows * m];
        match w {
            Weights::Binary { bits, .. } => {
                let (planes, t) = if wi == 0 { (planes0, top) } else { (1, 1) };
                let u = 1.0 / t as f32;
                let off = t * n as i32;
                let (packed, pwords) = if wi == 0 {
                    let p: Vec<u64> = batch
                        .iter()
                        .flat_map(|&i| data.encoded(i as usize).iter().copied())
                        .collect();
                    (p, data.words)
                } else {
                    (pack_signs(&x, shape.in_size()), words_for(shape.in_size()))
                };
                let mut sums = vec![0i32; rows * m];
                match conv {
                    None => {
                        crate::gemm::batch_layer_sums(bits, n, &packed, pwords, planes, &mut sums)
                    }
                    Some(c) => {
                        // One sample's windows at a time: the rows of a bit-GEMM.
                        let ww = planes * words_for(n);
                        let per = c.output_pixels() * m;
                        sums.par_chunks_mut(per)
                            .zip(packed.par_chunks(pwords))
                            .for_each_init(
                                || vec![0u64; c.output_pixels() * ww],
                                |win, (s, map)| {
                                    featuremap::windows(&c, map, planes, win);
                                    crate::gemm::batch_layer_sums(bits, n, win, ww, planes, s);
                                },
                            );
                    }
                }
                for (o, &v) in z.iter_mut().zip(&sums) {
                    *o = (2 * v - off) as f32 * u;
                }
            }
            Weights::Float(f) => match conv {
                None => {
                    // z^T = W x^T: the inputs (a few hundred KB) stay in cache while the
                    // weight rows stream past once, instead of streaming all weights per
                    // sample block.
                    let xt = transpose(&x, bsz, n);
                    let mut zt = vec![0f32; m * bsz];
                    gemm(m, bsz, n, f, n, 1, &xt, &mut zt, false);
                    z = transpose(&zt, m, bsz);
                }
                Some(c) => {
                    let cols = im2col(&c, &x, bsz);
                    let wt = transpose(f, m, n);
                    gemm(rows, m, n, &cols, n, 1, &wt, &mut z, false);
                }
            },
        }
        xs.push(std::mem::take(&mut x));
        if li + 1 == nl {
            z_last = z;
            break;
        }
        let (xhat, y, inv) = bn_forward(&mut norms.hidden[wi], &z, rows, mom);
        // Next layer's input.
        x = if matches!(w, Weights::Binary { .. }) {
            y.iter()
                .map(|&v| if v >= 0.0 { 1.0 } else { -1.0 })
                .collect()
        } else {
            y.iter().map(|&v| v.clamp(-1.0, 1.0)).collect()
        };
        saved.push((xhat, y, inv));
        wi += 1;
    }
    if mode == PassMode::Statistics {
        return Pass {
            stats: BatchStats::default(),
            norm_grads: NormGrads {
                hidden: Vec::new(),
                head: Vec::new(),
            },
        };
    }

    // Loss and the head.
    let c = shapes[nl - 1].neurons();
    let alpha = norms.head.scale();
    let mut stats = BatchStats::default();
    let mut dz = vec![0f32; bsz * c];
    let mut head_g = vec![0f32; c + 1];
    for (b, &i) in batch.iter().enumerate() {
        let zb = &z_last[b * c..(b + 1) * c];
        let logits: Vec<f32> = zb
            .iter()
            .zip(&norms.head.params[1..])
            .map(|(&z, &bias)| alpha * z + bias)
            .collect();
        let label = data.labels[i as usize] as usize;
        if argmax(&logits) == label {
            stats.correct += 1;
        }
        let top = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f64> = logits.iter().map(|&v| ((v - top) as f64).exp()).collect();
        let sum: f64 = e.iter().sum();
        stats.loss -= (e[label] / sum).max(1e-30).ln();
        for k in 0..c {
            let d = ((e[k] / sum) as f32 - if k == label { 1.0 } else { 0.0 }) / bsz as f32;
            head_g[0] += d * alpha * zb[k];
            head_g[1 + k] += d;
            dz[b * c + k] = d * alpha;
        }
    }

    // Backward: `d` is the gradient of the current layer's output (for the last layer, of z).
    grads.resize(nw, Vec::new());
    let mut hidden_g: Vec<Vec<f32>> = vec![Vec::new(); nw - 1];
    let mut d = dz;
    let mut wi = nw;
    for (li, shape) in shapes.iter().enumerate().rev() {
        if let LayerShape::Pool(p) = shape {
            let arg = winners.pop().expect("one winner list per pool");
            d = pool_backward(p, &arg, &d, bsz);
            continue;
        }
        wi -= 1;
        let (n, m) = (shape.fan_in(), shape.neurons());
        if li + 1 < nl {
            let (xhat, y, inv) = &saved[wi];
            for (g, &v) in d.iter_mut().zip(y) {
                if v.abs() > 1.0 {
                    *g = 0.0;
                }
            }
            let rows = y.len() / m;
            hidden_g[wi] = bn_backward(&norms.hidden[wi], xhat, inv, &mut d, rows);
        }
        let wf: &[f32] = match &weights[wi] {
            Weights::Binary { signs, .. } => signs,
            Weights::Float(f) => f,
        };
        grads[wi].resize(m * n, 0.0);
        match shape {
            LayerShape::Conv { conv, .. } => {
                let cols = im2col(conv, &xs[li], bsz);
                let rows = cols.len() / n;
                gemm(m, n, rows, &d, 1, m, &cols, &mut grads[wi], false);
                if wi == 0 {
                    break;
                }
                let mut dcols = cols;
                gemm(rows, n, m, &d, m, 1, wf, &mut dcols, false);
                d = col2im(conv, &dcols, bsz);
            }
            _ => {
                gemm(m, n, bsz, &d, 1, m, &xs[li], &mut grads[wi], false);
                if wi == 0 {
                    break;
                }
                let mut dx = vec![0f32; bsz * n];
                gemm(bsz, n, m, &d, m, 1, wf, &mut dx, false);
                d = dx;
            }
        }
    }
    Pass {
        stats,
        norm_grads: NormGrads {
            hidden: hidden_g,
            head: head_g,
        },
    }
}

/// `+-1.0` copy of a bit matrix, row-major.
pub fn signs_of(bits: &BitMatrix) -> Vec<f32> {
    let (m, n) = (bits.rows(), bits.cols());
    let mut out = vec![0f32; m * n];
    out.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, r)| {
        for (chunk, &word) in r.chunks_mut(WORD_BITS).zip(bits.row(i)) {
            for (j, v) in chunk.iter_mut().enumerate() {
                *v = if (word >> j) & 1 == 1 { 1.0 } else { -1.0 };
            }
        }
    });
    out
}

/// [`signs_of`] for every layer but the first, whose input gradient is never needed (empty).
pub fn signs_above_first(bits: &[BitMatrix]) -> Vec<Vec<f32>> {
    bits.iter()
        .enumerate()
        .map(|(l, b)| if l == 0 { Vec::new() } else { signs_of(b) })
        .collect()
}

/// The binary model a net of `shapes` with weights `bits` (one per convolution or dense
/// layer) and norms `norms` stands for: batch norms fold into thresholds and direction bits
/// (per output channel for a convolution, as per neuron for a dense layer), the head into
/// integer score offsets, pools into binary max-pools (the OR of the sign bits is their max).
pub fn export_binary(
    input: &InputSpec,
    shapes: &[LayerShape],
    bits: &[BitMatrix],
    norms: &Norms,
) -> Model {
    let nw = bits.len();
    let top = input_top(&input.encoding) as f64;
    let mut wi = 0;
    let layers = shapes
        .iter()
        .map(|shape| {
            let conv = match shape {
                LayerShape::Pool(p) => return Layer::MaxPool(*p),
                LayerShape::Conv { conv, .. } => Some(*conv),
                LayerShape::Dense { .. } => None,
            };
            let (l, w) = (wi, &bits[wi]);
            wi += 1;
            let (n, m) = (w.cols(), w.rows());
            let t = if l == 0 { top } else { 1.0 };
            // z = u (2s - t n) with u = 1 / t.
            let u = 1.0 / t;
            let activation = if l + 1 < nw {
                let bn = &norms.hidden[l];
                let (thresholds, invert) = (0..m)
                    .map(|i| {
                        let (k, c) = bn.affine(i);
                        // y = k z + c = 2 k u s + (c - k u t n)
                        fold_threshold(2.0 * k * u, c - k * u * t * n as f64, t as i64 * n as i64)
                    })
                    .unzip();
                Activation::Threshold { thresholds, invert }
            } else {
                let alpha = norms.head.scale() as f64;
                let shifts: Vec<f64> = norms.head.params[1..].iter().map(|&b| b as f64).collect();
                Activation::Scores {
                    bias: fold_scores(2.0 * alpha * u, &shifts),
                    scale: Vec::new(),
                }
            };
            Layer::Binary(BinaryLayer {
                inputs: n,
                outputs: m,
                weights: w.clone(),
                activation,
                conv,
            })
        })
        .collect();
    Model {
        input: input.clone(),
        layers,
        meta: Default::default(),
    }
}

/// The float model of a net of `shapes` with f32 weights `w` (row-major, one per convolution
/// or dense layer): batch norms fold into each layer's scale and shift (per output channel for
/// a convolution), the first layer's scale absorbs the input scaling, pools stay pools.
pub fn export_float(
    input: &InputSpec,
    shapes: &[LayerShape],
    w: &[Vec<f32>],
    norms: &Norms,
) -> Model {
    let nw = w.len();
    let inv_top = 1.0 / input_top(&input.encoding) as f64;
    let mut wi = 0;
    let layers = shapes
        .iter()
        .map(|shape| {
            let conv = match shape {
                LayerShape::Pool(p) => return Layer::MaxPool(*p),
                LayerShape::Conv { conv, .. } => Some(*conv),
                LayerShape::Dense { .. } => None,
            };
            let (l, wl) = (wi, &w[wi]);
            wi += 1;
            let (n, m) = (shape.fan_in(), shape.neurons());
            let u = if l == 0 { inv_top } else { 1.0 };
            let (scale, shift): (Vec<f32>, Vec<f32>) = if l + 1 < nw {
                (0..m)
                    .map(|i| {
                        let (k, c) = norms.hidden[l].affine(i);
                        ((k * u) as f32, c as f32)
                    })
                    .unzip()
            } else {
                let alpha = norms.head.scale() as f64;
                (vec![(alpha * u) as f32; m], norms.head.params[1..].to_vec())
            };
            Layer::Float(FloatLayer {
                inputs: n,
                outputs: m,
                weights: wl.clone(),
                scale,
                shift,
                conv,
            })
        })
        .collect();
    Model {
        input: input.clone(),
        layers,
        meta: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::rng::Stream;
    use crate::train::TrainData;

    #[test]
    fn gemm_matches_naive_product_for_all_layouts() {
        let mut s = Stream::new(9, 9);
        for &(m, n, k) in &[
            (4, 16, 3),
            (10, 37, 5),
            (9, 64, 33),
            (1, 3, 1),
            (8, 48, 100),
        ] {
            let a: Vec<f32> = (0..m * k).map(|_| s.normal()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| s.normal()).collect();
            for transposed in [false, true] {
                let (ars, acs) = if transposed { (1, m) } else { (k, 1) };
                let mut c = vec![1f32; m * n];
                gemm(m, n, k, &a, ars, acs, &b, &mut c, true);
                for r in 0..m {
                    for q in 0..n {
                        let want: f32 = 1.0
                            + (0..k)
                                .map(|p| a[r * ars + p * acs] * b[p * n + q])
                                .sum::<f32>();
                        assert!((c[r * n + q] - want).abs() < 1e-4, "{m}x{n}x{k}");
                    }
                }
            }
        }
    }

    /// `cargo test --release -p flip gemm_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn gemm_speed() {
        let mut s = Stream::new(1, 1);
        let (m, n, k) = (256, 784, 100);
        let a: Vec<f32> = (0..m * k).map(|_| s.normal()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| s.normal()).collect();
        let mut c = vec![0f32; m * n];
        for (ars, acs) in [(1, m), (k, 1)] {
            let t = std::time::Instant::now();
            for _ in 0..50 {
                gemm(m, n, k, &a, ars, acs, &b, &mut c, false);
            }
            let secs = t.elapsed().as_secs_f64() / 50.0;
            eprintln!(
                "ars={ars}: {:.3} ms, {:.1} GMAC/s",
                secs * 1e3,
                (m * n * k) as f64 / secs / 1e9
            );
        }
    }

    /// A float conv net with random weights: the pass's weight gradients (im2col, col2im,
    /// pool, per-channel batch norm) agree with central differences of its loss.
    #[test]
    fn conv_and_pool_gradients_match_finite_differences() {
        use crate::model::arch::{parse, shapes};
        let input = InputSpec {
            width: 6,
            height: 6,
            channels: 1,
            pixel_bits: 8,
            encoding: Encoding::BitPlanes(3),
        };
        let arch = shapes(&parse("c3-p-c4k2-5-3", 36).unwrap(), &input, 3).unwrap();
        let mut s = Stream::new(3, 1);
        let images: Vec<u8> = (0..36 * 12).map(|_| (s.next_u64() & 255) as u8).collect();
        let labels: Vec<u8> = (0..12).map(|_| (s.next_u64() % 3) as u8).collect();
        let data = TrainData::new(&input, &images, &labels, 3);
        let batch: Vec<u32> = (0..12).collect();
        let mut w: Vec<Vec<f32>> = weighted(&arch)
            .iter()
            .map(|&(n, m)| (0..n * m).map(|_| s.normal()).collect())
            .collect();
        let mut norms = Norms::new(&arch, 0.0, 0.1);
        // Small gammas keep hardtanh in its linear range, so the loss is smooth around the
        // weights (pool winners can still switch, rarely).
        for bn in &mut norms.hidden {
            let m = bn.run_mean.len();
            for i in 0..m {
                bn.params[i] = 0.3 + 0.1 * s.next_f32();
                bn.params[m + i] = 0.2 * s.normal();
            }
        }
        let mut grads = Vec::new();
        let mut loss = |w: &[Vec<f32>], grads: &mut Vec<Vec<f32>>| {
            let ws: Vec<Weights> = w.iter().map(|v| Weights::Float(v)).collect();
            let p = pass(
                &mut norms,
                &arch,
                &ws,
                &data,
                &batch,
                grads,
                PassMode::TrainOnly,
            );
            p.stats.loss / batch.len() as f64
        };
        loss(&w, &mut grads);
        let analytic = grads.clone();
        let (mut checked, mut bad) = (0, 0);
        for l in 0..w.len() {
            for _ in 0..15 {
                let j = (s.next_u64() % w[l].len() as u64) as usize;
                let eps = 1e-2f32;
                let v = w[l][j];
                w[l][j] = v + eps;
                let up = loss(&w, &mut grads);
                w[l][j] = v - eps;
                let down = loss(&w, &mut grads);
                w[l][j] = v;
                let num = (up - down) / (2.0 * eps as f64);
                let ana = analytic[l][j] as f64;
                checked += 1;
                if (num - ana).abs() > 0.05 * num.abs().max(ana.abs()) + 2e-4 {
                    bad += 1;
                    eprintln!("layer {l} weight {j}: numeric {num:.5}, pass {ana:.5}");
                }
            }
        }
        assert!(bad <= 2, "{bad} of {checked} gradients disagree");
        assert!(analytic.iter().all(|g| g.iter().any(|&v| v.abs() > 1e-3)));
    }

    /// The network's eval-mode function in f64 (running statistics, `sign` or `hardtanh`):
    /// the logits of image `i` for weights `w` (row-major, f32).
    fn eval_logits(
        arch: &[LayerShape],
        w: &[Vec<f32>],
        norms: &Norms,
        data: &TrainData,
        i: usize,
        binary: bool,
    ) -> Vec<f64> {
        let mut x: Vec<f64> = first_inputs(data, &[i as u32], data.input.encoded_inputs())
            .iter()
            .map(|&v| v as f64)
            .collect();
        let mut wi = 0;
        for shape in arch {
            let (n, m) = (shape.fan_in(), shape.neurons());
            let rows: Vec<Vec<f64>> = match shape {
                LayerShape::Pool(p) => {
                    let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                    x = crate::reference::float_pool(p, &xf)
                        .iter()
                        .map(|&v| v as f64)
                        .collect();
                    continue;
                }
                LayerShape::Conv { conv, .. } => {
                    // Windows gathered by coordinates, independently of `im2col`.
                    let (k, c) = (conv.kernel, conv.channels);
                    let mut rows = Vec::new();
                    for y in 0..conv.out_height() {
                        for xo in 0..conv.out_width() {
                            rows.push(
                                (0..n)
                                    .map(|j| {
                                        let (ky, kx, ch) = (j / (k * c), j / c % k, j % c);
                                        x[((y + ky) * conv.width + xo + kx) * c + ch]
                                    })
                                    .collect(),
                            );
                        }
                    }
                    rows
                }
                LayerShape::Dense { .. } => vec![x.clone()],
            };
            let last = wi + 1 == w.len();
            let mut out = Vec::new();
            for row in &rows {
                for o in 0..m {
                    let z: f64 = (0..n).map(|j| w[wi][o * n + j] as f64 * row[j]).sum();
                    if last {
                        out.push(norms.head.scale() as f64 * z + norms.head.params[1 + o] as f64);
                        continue;
                    }
                    let (a, b) = norms.hidden[wi].affine(o);
                    let y = a * z + b;
                    out.push(if binary {
                        if y >= 0.0 {
                            1.0
                        } else {
                            -1.0
                        }
                    } else {
                        y.clamp(-1.0, 1.0)
                    });
                }
            }
            x = out;
            wi += 1;
        }
        x
    }

    /// Random norms with running statistics on the scale of each layer's sums.
    fn randomise(norms: &mut Norms, arch: &[LayerShape], s: &mut Stream) {
        let w = weighted(arch);
        for (bn, &(n, _)) in norms.hidden.iter_mut().zip(&w) {
            let m = bn.run_mean.len();
            let n = n as f32;
            for i in 0..m {
                let g = s.normal();
                bn.params[i] = if s.next_f32() < 0.33 {
                    -g.abs()
                } else {
                    g.abs()
                };
                bn.params[m + i] = s.normal() * 0.3;
                bn.run_mean[i] = s.normal() * n.sqrt() * 0.3;
                bn.run_var[i] = n * (0.2 + s.next_f32());
            }
        }
        norms.head.params[0] = -2.0;
        for b in norms.head.params[1..].iter_mut() {
            *b = s.normal();
        }
    }

    /// Exported conv nets compute what the trained network computes in eval mode: the binary
    /// model's class wherever the float logits are not within one rounding step of a tie,
    /// the float model's scores to rounding.
    #[test]
    fn exported_conv_models_reproduce_the_eval_forward() {
        use crate::bits::BitMatrix;
        use crate::model::arch::{parse, shapes};
        use crate::reference::{binary_scores, float_scores};
        let input = InputSpec {
            width: 7,
            height: 7,
            channels: 1,
            pixel_bits: 8,
            encoding: Encoding::BitPlanes(3),
        };
        let arch = shapes(&parse("c8k2-p-c6k2-9-4", 49).unwrap(), &input, 4).unwrap();
        let mut s = Stream::new(5, 5);
        let images: Vec<u8> = (0..49 * 300).map(|_| (s.next_u64() & 255) as u8).collect();
        let labels = vec![0u8; 300];
        let data = TrainData::new(&input, &images, &labels, 4);
        let w: Vec<Vec<f32>> = weighted(&arch)
            .iter()
            .map(|&(n, m)| (0..n * m).map(|_| s.normal()).collect())
            .collect();
        let mut norms = Norms::new(&arch, 0.0, 0.1);
        randomise(&mut norms, &arch, &mut s);
        let bits: Vec<BitMatrix> = w
            .iter()
            .zip(weighted(&arch))
            .map(|(v, (n, m))| crate::train::binaryconnect::binarise(v, m, n, None))
            .collect();
        let signs: Vec<Vec<f32>> = bits.iter().map(signs_of).collect();
        let bm = export_binary(&input, &arch, &bits, &norms);
        let fm = export_float(&input, &arch, &w, &norms);
        bm.check().unwrap();
        fm.check().unwrap();
        assert_eq!(bm.arch(), "c8k2-p-c6k2-9-4");
        let alpha = norms.head.scale() as f64;
        let (mut checked, mut classes) = (0, [0; 4]);
        for i in 0..300 {
            let px = data.image(i);
            let logits = eval_logits(&arch, &signs, &norms, &data, i, true);
            let best = argmax(&logits);
            classes[best] += 1;
            let margin = (0..4)
                .filter(|&c| c != best)
                .map(|c| logits[best] - logits[c])
                .fold(f64::INFINITY, f64::min);
            // One unit of a last-layer sum moves a logit by 2 alpha; rounding the offsets moves
            // a score difference by at most one unit.
            if margin > 2.0 * alpha * 1.0001 {
                assert_eq!(argmax(&binary_scores(&bm, px)), best, "image {i}");
                checked += 1;
            }
            let want = eval_logits(&arch, &w, &norms, &data, i, false);
            for (g, v) in float_scores(&fm, px).iter().zip(&want) {
                assert!((*g as f64 - v).abs() < 1e-3 * (1.0 + v.abs()), "{g} vs {v}");
            }
        }
        assert!(checked > 100, "{checked}");
        // Not a constant network.
        assert!(
            classes.iter().filter(|&&c| c > 10).count() >= 2,
            "{classes:?}"
        );
    }

    #[test]
    fn adam_moves_against_the_gradient_and_clips() {
        let mut a = Adam::new(2);
        let mut p = vec![0.5f32, -0.999];
        a.update(&mut p, &[1.0, -1.0], 0.01, 1, Some(1.0));
        assert!((p[0] - 0.49).abs() < 1e-5);
        assert!((p[1] + 0.989).abs() < 1e-5);
        let mut p = vec![0.995f32];
        let mut a = Adam::new(1);
        a.update(&mut p, &[-1.0], 0.01, 1, Some(1.0));
        assert_eq!(p[0], 1.0);
    }
}

#[cfg(test)]
mod optimizer_tests {
    use crate::encoding::Encoding;
    use crate::model::arch::{parse, shapes, LayerShape};
    use crate::model::InputSpec;
    use crate::train::rng::Stream;
    use crate::train::{
        binaryconnect::BinaryConnect, bop::Bop, float::FloatOptimizer, Optimizer, TrainData,
    };

    fn make(kind: usize, input: &InputSpec, arch: &[LayerShape], seed: u64) -> Box<dyn Optimizer> {
        let p: Vec<(String, String)> = if kind == 1 {
            vec![("stochastic".into(), "1".into())]
        } else {
            Vec::new()
        };
        match kind {
            0 | 1 => Box::new(BinaryConnect::new(input.clone(), arch, seed, &p).unwrap()),
            2 => Box::new(Bop::new(input.clone(), arch, seed, &p).unwrap()),
            _ => Box::new(FloatOptimizer::new(input.clone(), arch, seed, &p).unwrap()),
        }
    }

    /// Dense and convolutional nets: threads, and a resume halfway, change no bit of the state
    /// or the exported model.
    #[test]
    fn state_round_trips_and_threads_do_not_matter() {
        for (side, arch) in [(4, "16-24-12-3"), (6, "c6-p-c4k2-8-3")] {
            let input = InputSpec {
                width: side,
                height: side,
                channels: 1,
                pixel_bits: 8,
                encoding: Encoding::BitPlanes(2),
            };
            let px = side * side;
            let arch = shapes(&parse(arch, px).unwrap(), &input, 3).unwrap();
            let mut s = Stream::new(4, 4);
            let images: Vec<u8> = (0..px * 64).map(|_| (s.next_u64() & 255) as u8).collect();
            let labels: Vec<u8> = (0..64).map(|_| (s.next_u64() % 3) as u8).collect();
            let data = TrainData::new(&input, &images, &labels, 3);
            let batches: Vec<Vec<u32>> = (0..6)
                .map(|b| (0..16).map(|i| ((b * 16 + i) % 64) as u32).collect())
                .collect();
            for kind in 0..4 {
                let boxed = |seed| make(kind, &input, &arch, seed);
                let run = |threads, split| {
                    crate::train::run_steps(&boxed, &data, &batches, threads, split)
                };
                let (a, ma) = run(1, None);
                let (b, mb) = run(3, None);
                let (c, mc) = run(2, Some(3));
                assert!(
                    a == b && ma == mb,
                    "optimizer {kind}: thread count changed the result"
                );
                assert!(
                    a == c && ma == mc,
                    "optimizer {kind}: resume changed the result"
                );
                ma.check().unwrap();
                assert_eq!(ma.layers.len(), arch.len());
                assert!(make(kind, &input, &arch, 9)
                    .load_state(&a[..a.len() / 2])
                    .is_err());
            }
        }
    }
}
