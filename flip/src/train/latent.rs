//! Dense float machinery shared by the latent-weight baselines (`binaryconnect`, `bop`,
//! `float`): a register-blocked matrix product, Adam, batch norm, the score head, and one
//! forward/backward pass over a mini-batch for nets whose weights are either bits (forward by
//! popcount, exactly the reference's integer sums) or f32.
//!
//! Conventions, identical for the three optimizers:
//! - The first layer reads the encoding's input values (`+-1`, or the centred level
//!   `2q - (2^P - 1)` for bit planes) divided by `top` (`2^P - 1`, or 1), so its inputs lie in
//!   `[-1, 1]`. On binary weights its pre-activation is `z = (2s - top * n) / top` for the
//!   popcount sum `s` of the reference; on hidden layers `z = 2s - n`, the +-1 dot product.
//! - Hidden layers: batch norm (batch statistics in training, running statistics at export),
//!   then `sign` (binary nets, straight-through with the hard-tanh window `|y| <= 1`) or
//!   `hardtanh` (float net, same window as its derivative).
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
use crate::model::{Activation, BinaryLayer, FloatLayer, InputSpec, Layer, Model};
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
    /// Fresh norms for layer widths `widths` (encoded input first); `log_scale` initialises the
    /// head's scale.
    pub fn new(widths: &[usize], log_scale: f32, momentum: f32) -> Self {
        let nl = widths.len() - 1;
        Norms {
            hidden: widths[1..nl].iter().map(|&m| BatchNorm::new(m)).collect(),
            head: Head::new(widths[nl], log_scale),
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

/// One forward and backward pass of the net on `batch`: binary layers forward by popcount
/// (exactly the reference's sums), float layers by [`gemm`]. Fills `grads` with `dLoss/dW` per
/// layer, row-major like the weights (mean loss over the batch; the buffers are reused from
/// step to step). Updates the batch norms' running statistics as `mode` says; leaves every
/// parameter as it was.
pub fn pass(
    norms: &mut Norms,
    weights: &[Weights],
    data: &TrainData,
    batch: &[u32],
    grads: &mut Vec<Vec<f32>>,
    mode: PassMode,
) -> Pass {
    let nl = weights.len();
    let bsz = batch.len();
    let top = input_top(&data.input.encoding);
    let planes0 = data.input.encoding.planes();
    let mom = (mode != PassMode::TrainOnly).then_some(norms.momentum);
    // Layer inputs as f32 (for weight gradients), and packed for binary forwards.
    let n0 = data.input.encoded_inputs();
    let mut xs: Vec<Vec<f32>> = vec![first_inputs(data, batch, n0)];
    let mut packed: Vec<u64> = batch
        .iter()
        .flat_map(|&i| data.encoded(i as usize).iter().copied())
        .collect();
    let mut pwords = data.words;
    // Per hidden layer: xhat, y, inv_std.
    let mut saved: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = Vec::with_capacity(nl);
    let mut widths = vec![n0];
    let mut z_last = Vec::new();
    for (l, w) in weights.iter().enumerate() {
        let n = widths[l];
        let m = match w {
            Weights::Binary { bits, .. } => bits.rows(),
            Weights::Float(f) => f.len() / n,
        };
        widths.push(m);
        let mut z = vec![0f32; bsz * m];
        match w {
            Weights::Binary { bits, .. } => {
                let (planes, t) = if l == 0 { (planes0, top) } else { (1, 1) };
                let u = 1.0 / t as f32;
                let off = t * n as i32;
                let mut sums = vec![0i32; bsz * m];
                crate::gemm::batch_layer_sums(bits, n, &packed, pwords, planes, &mut sums);
                for (o, &v) in z.iter_mut().zip(&sums) {
                    *o = (2 * v - off) as f32 * u;
                }
            }
            Weights::Float(f) => {
                // z^T = W x^T: the inputs (a few hundred KB) stay in cache while the weight
                // rows stream past once, instead of streaming all weights per sample block.
                let xt = transpose(&xs[l], bsz, n);
                let mut zt = vec![0f32; m * bsz];
                gemm(m, bsz, n, f, n, 1, &xt, &mut zt, false);
                z = transpose(&zt, m, bsz);
            }
        }
        if l + 1 == nl {
            z_last = z;
            break;
        }
        let (xhat, y, inv) = bn_forward(&mut norms.hidden[l], &z, bsz, mom);
        // Next layer's input.
        let binary_next = matches!(weights[l + 1], Weights::Binary { .. });
        let binary_act = matches!(w, Weights::Binary { .. });
        let x: Vec<f32> = if binary_act {
            y.iter()
                .map(|&v| if v >= 0.0 { 1.0 } else { -1.0 })
                .collect()
        } else {
            y.iter().map(|&v| v.clamp(-1.0, 1.0)).collect()
        };
        if binary_next {
            let ow = words_for(m);
            let mut next = vec![0u64; bsz * ow];
            next.par_chunks_mut(ow)
                .zip(y.par_chunks(m))
                .for_each(|(o, yr)| {
                    for (i, &v) in yr.iter().enumerate() {
                        if v >= 0.0 {
                            set_bit(o, i, true);
                        }
                    }
                });
            packed = next;
            pwords = ow;
        }
        xs.push(x);
        saved.push((xhat, y, inv));
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
    let c = widths[nl];
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

    // Backward.
    grads.resize(nl, Vec::new());
    let mut hidden_g: Vec<Vec<f32>> = vec![Vec::new(); nl - 1];
    for l in (0..nl).rev() {
        let (n, m) = (widths[l], widths[l + 1]);
        grads[l].resize(m * n, 0.0);
        gemm(m, n, bsz, &dz, 1, m, &xs[l], &mut grads[l], false);
        if l == 0 {
            break;
        }
        let wf: &[f32] = match &weights[l] {
            Weights::Binary { signs, .. } => signs,
            Weights::Float(f) => f,
        };
        let mut dx = vec![0f32; bsz * n];
        gemm(bsz, n, m, &dz, m, 1, wf, &mut dx, false);
        let (xhat, y, inv) = &saved[l - 1];
        for (d, &v) in dx.iter_mut().zip(y) {
            if v.abs() > 1.0 {
                *d = 0.0;
            }
        }
        hidden_g[l - 1] = bn_backward(&norms.hidden[l - 1], xhat, inv, &mut dx, bsz);
        dz = dx;
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

/// The binary model a net with weights `bits` and norms `norms` stands for: batch norms fold
/// into thresholds and direction bits, the head into integer score offsets.
pub fn export_binary(input: &InputSpec, bits: &[BitMatrix], norms: &Norms) -> Model {
    let nl = bits.len();
    let top = input_top(&input.encoding) as f64;
    let layers = bits
        .iter()
        .enumerate()
        .map(|(l, w)| {
            let (n, m) = (w.cols(), w.rows());
            let t = if l == 0 { top } else { 1.0 };
            // z = u (2s - t n) with u = 1 / t.
            let u = 1.0 / t;
            let activation = if l + 1 < nl {
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
                }
            };
            Layer::Binary(BinaryLayer {
                inputs: n,
                outputs: m,
                weights: w.clone(),
                activation,
                conv: None,
            })
        })
        .collect();
    Model {
        input: input.clone(),
        layers,
        meta: Default::default(),
    }
}

/// The float model of a net with f32 weights `w` (row-major per layer): batch norms fold into
/// each layer's scale and shift, the first layer's scale absorbs the input scaling.
pub fn export_float(input: &InputSpec, w: &[Vec<f32>], norms: &Norms) -> Model {
    let nl = w.len();
    let inv_top = 1.0 / input_top(&input.encoding) as f64;
    let mut n = input.encoded_inputs();
    let mut layers = Vec::with_capacity(nl);
    for (l, wl) in w.iter().enumerate() {
        let m = wl.len() / n;
        let u = if l == 0 { inv_top } else { 1.0 };
        let (scale, shift): (Vec<f32>, Vec<f32>) = if l + 1 < nl {
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
        layers.push(Layer::Float(FloatLayer {
            inputs: n,
            outputs: m,
            weights: wl.clone(),
            scale,
            shift,
            conv: None,
        }));
        n = m;
    }
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
    use crate::model::InputSpec;
    use crate::train::rng::Stream;
    use crate::train::{
        binaryconnect::BinaryConnect, bop::Bop, float::FloatOptimizer, Optimizer, TrainData,
    };

    fn make(kind: usize, input: &InputSpec, seed: u64) -> Box<dyn Optimizer> {
        let widths = [16, 24, 12, 3];
        let p: Vec<(String, String)> = if kind == 1 {
            vec![("stochastic".into(), "1".into())]
        } else {
            Vec::new()
        };
        match kind {
            0 | 1 => Box::new(BinaryConnect::new(input.clone(), &widths, seed, &p).unwrap()),
            2 => Box::new(Bop::new(input.clone(), &widths, seed, &p).unwrap()),
            _ => Box::new(FloatOptimizer::new(input.clone(), &widths, seed, &p).unwrap()),
        }
    }

    #[test]
    fn state_round_trips_and_threads_do_not_matter() {
        let input = InputSpec {
            width: 4,
            height: 4,
            channels: 1,
            pixel_bits: 8,
            encoding: Encoding::BitPlanes(2),
        };
        let mut s = Stream::new(4, 4);
        let images: Vec<u8> = (0..16 * 64).map(|_| (s.next_u64() & 255) as u8).collect();
        let labels: Vec<u8> = (0..64).map(|_| (s.next_u64() % 3) as u8).collect();
        let data = TrainData::new(&input, &images, &labels, 3);
        let batches: Vec<Vec<u32>> = (0..6)
            .map(|b| (0..16).map(|i| ((b * 16 + i) % 64) as u32).collect())
            .collect();
        for kind in 0..4 {
            let run = |threads: usize, split: Option<usize>| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let mut opt = make(kind, &input, 9);
                    for (t, b) in batches.iter().enumerate() {
                        if Some(t) == split {
                            // Resume into a differently initialised optimizer.
                            let state = opt.save_state();
                            opt = make(kind, &input, 1234);
                            opt.load_state(&state).unwrap();
                        }
                        opt.step(&data, b, t as u64, t as f64 / 6.0);
                    }
                    (opt.save_state(), opt.export())
                })
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
            assert!(make(kind, &input, 9).load_state(&a[..a.len() / 2]).is_err());
        }
    }
}
