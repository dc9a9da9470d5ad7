//! The flip optimizer: binary weights trained directly in the Boolean domain.
//!
//! There are no latent real-valued weights. Each weight is one bit plus a small signed
//! accumulator (8 bits by default). One step on a mini-batch:
//!
//! 1. **Forward** with exactly the integer semantics of [`crate::reference`]: popcount sums
//!    `s`, hidden bits `s >= T`, class scores `s + b`.
//! 2. **Output error.** The scores, scaled by `temperature / (sqrt(n) / 2)` (the spread of a
//!    popcount over `n` inputs), go through a softmax; the error `softmax - onehot` is rounded
//!    to an integer in -127..127. This is the only place real numbers appear: ten values per
//!    sample, never a weight.
//! 3. **Backward, in integers.** A neuron's signal is `delta_i = sum_c E_c * w_ci` over the
//!    layer above (weights as +-1), kept only where the neuron is undecided: `|s - T|` within
//!    `r = window` times the layer's running spread of `s - T`, and weighted by
//!    `(r - |s - T| + 1) / r` there. Far from its threshold a flip upstream cannot change the
//!    neuron's output, so the neuron passes no signal; the triangle is the Boolean counterpart
//!    of the derivative of a piecewise-quadratic sign approximation (Bi-Real Net's ApproxSign),
//!    which trusts a neuron's signal more the closer it is to switching. On Fashion-MNIST it
//!    gave +0.5 points over a box window of the same support. Signals are shifted right as
//!    needed to stay in 16 bits.
//! 4. **Weight signal** `q_ij = sum_b delta_bi * x_bj` (integer; `x` is +-1, or the centred
//!    grey level `2v - (2^P - 1)` on a bit-plane first layer). `q_ij` has the sign of
//!    `dLoss/dw_ij`, so a weight whose accumulated `q` agrees with its own sign wants to flip.
//! 5. **Accumulate, flip, reset.** `m <- round(beta * m + eta * q / rms_l)`, with stochastic
//!    rounding in fixed point and saturation to the accumulator's range; `rms_l` is a running
//!    root-mean-square of the layer's `q`, which plays the role Adam's second moment plays for
//!    latent weights but per layer, so one learning rate fits every layer. Then flip `w` where
//!    `m * w >= threshold`, and set `m = 0` there.
//! 6. **Thresholds and score offsets** move the same way with a running-RMS-normalised step
//!    (`T += eta_t * sum_b delta_b / rms`), kept as fixed point with 8 fractional bits; the
//!    forward pass and the exported model use the integer part.
//!
//! Relation to BOLD (Boolean Logic Deep Learning, NeurIPS 2024): steps 4-5 are its
//! `m <- beta m + eta q`, flip where `m w >= 1`, reset. The changes, and why:
//! - `beta` defaults to BOLD's rule, the share of the layer's weights the last step left
//!   unchanged (`decay=auto`); a fixed value can be given.
//! - The threshold is an integer of the accumulator (`threshold`), so the rule runs on 8-bit
//!   state; stochastic rounding keeps small, consistent signals from vanishing at that width.
//! - Per-layer RMS normalisation of `q` replaces hand-tuning `eta` per layer.
//! - `eta` follows a cosine schedule to `lr_end * eta`: early steps explore with many flips,
//!   late steps settle, as a decaying learning rate does for latent weights.
//! - Thresholds start from the first batch's mean popcount, so every neuron begins undecided
//!   on about half the data, as batch norm would arrange.
//!
//! Settings (`--set key=value`): `threshold` (default 16), `lr` (1.0), `lr_end` (0.05),
//! `lr_threshold` (0.05), `window` (0.7), `temperature` (0.35), `ste` (`triangle` or `box`),
//! `decay` (`auto` or a number),
//! `acc_bits` (8 or 16; at 16 the threshold and steps scale by 256, so the two differ only in
//! resolution). The defaults come from sweeps on Fashion-MNIST 784-256-256-10; a low softmax
//! temperature keeps an error signal on samples that are right but close to the margin.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::rng::{mix, random_bits, Stream};
use super::{check_params, param, BatchStats, Optimizer, TrainData};
use crate::bits::{get_bit, set_bit, words_for, BitMatrix, WORD_BITS};
use crate::model::{Activation, BinaryLayer, InputSpec, Layer, Model};
use crate::reference::{argmax, layer_sums};

const KNOWN: &[&str] = &[
    "threshold",
    "lr",
    "lr_end",
    "lr_threshold",
    "window",
    "temperature",
    "decay",
    "acc_bits",
    "ste",
];

/// Fractional bits of thresholds and score offsets.
const FRAC: u32 = 8;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Settings {
    threshold: i32,
    lr: f64,
    lr_end: f64,
    lr_threshold: f64,
    window: f64,
    temperature: f64,
    /// `None` = BOLD's automatic rule.
    decay: Option<f64>,
    acc_bits: u32,
    /// Weight the backward signal by closeness to the threshold (triangle) instead of a box.
    triangle: bool,
}

/// Per-weight accumulators at the chosen width.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Acc {
    I8(Vec<i8>),
    I16(Vec<i16>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct FlipLayer {
    inputs: usize,
    outputs: usize,
    planes: usize,
    weights: BitMatrix,
    acc: Acc,
    /// Thresholds (hidden) or score offsets (last), fixed point with [`FRAC`] fraction bits.
    bias: Vec<i64>,
    /// Running mean square of this layer's weight signal.
    q_ms: f64,
    /// Running mean square of the per-neuron threshold signal.
    t_ms: f64,
    /// Running spread of `s - T` (hidden layers), for the backward window.
    spread: f64,
    /// Share of weights flipped by the last step (for `decay=auto`).
    flipped_share: f64,
}

impl FlipLayer {
    fn int_bias(&self, i: usize) -> i32 {
        (self.bias[i] >> FRAC) as i32
    }
}

/// The flip optimizer's whole state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FlipOptimizer {
    input: InputSpec,
    settings: Settings,
    seed: u64,
    layers: Vec<FlipLayer>,
    initialised: bool,
}

/// Per-layer data of one batch kept for the backward pass.
struct LayerPass {
    /// Popcount sums, `batch x outputs`.
    sums: Vec<i32>,
    /// Integer input values (+-1 or grey levels), `batch x inputs`.
    x: Vec<i16>,
}

impl FlipOptimizer {
    /// A randomly initialised network with layer widths `widths` (encoded input first).
    pub fn new(
        input: InputSpec,
        widths: &[usize],
        seed: u64,
        params: &[(String, String)],
    ) -> Result<Self, String> {
        check_params(params, KNOWN, "flip")?;
        let decay = match params
            .iter()
            .rev()
            .find(|(k, _)| k == "decay")
            .map(|(_, v)| v.as_str())
        {
            None | Some("auto") => None,
            Some(v) => Some(
                v.parse::<f64>()
                    .map_err(|_| format!("setting decay={v}: expected auto or a number"))?,
            ),
        };
        let settings = Settings {
            threshold: param(params, "threshold", 16)?,
            lr: param(params, "lr", 1.0)?,
            lr_end: param(params, "lr_end", 0.05)?,
            lr_threshold: param(params, "lr_threshold", 0.05)?,
            window: param(params, "window", 0.7)?,
            temperature: param(params, "temperature", 0.35)?,
            decay,
            acc_bits: param(params, "acc_bits", 8)?,
            triangle: match param(params, "ste", "triangle".to_string())?.as_str() {
                "box" => false,
                "triangle" => true,
                v => return Err(format!("setting ste={v}: expected box or triangle")),
            },
        };
        let limit = match settings.acc_bits {
            8 => i8::MAX as i32,
            16 => i8::MAX as i32, // compared before scaling by 256
            b => return Err(format!("setting acc_bits={b}: expected 8 or 16")),
        };
        if settings.threshold < 1 || settings.threshold > limit {
            return Err(format!(
                "setting threshold={}: expected 1..={limit}",
                settings.threshold
            ));
        }
        let mut layers = Vec::new();
        for (l, pair) in widths.windows(2).enumerate() {
            let (n, m) = (pair[0], pair[1]);
            let weights = random_bits(m, n, seed, 0x1417 + l as u64);
            let acc = if settings.acc_bits == 8 {
                Acc::I8(vec![0; n * m])
            } else {
                Acc::I16(vec![0; n * m])
            };
            layers.push(FlipLayer {
                inputs: n,
                outputs: m,
                planes: if l == 0 { input.encoding.planes() } else { 1 },
                weights,
                acc,
                bias: vec![0; m],
                q_ms: 0.0,
                t_ms: 0.0,
                spread: 0.0,
                flipped_share: 0.0,
            });
        }
        Ok(FlipOptimizer {
            input,
            settings,
            seed,
            layers,
            initialised: false,
        })
    }

    fn forward(&mut self, data: &TrainData, batch: &[u32]) -> Vec<LayerPass> {
        let nl = self.layers.len();
        let mut passes = Vec::with_capacity(nl);
        // Input of the current layer: packed planes per sample.
        let mut words = data.words;
        let mut packed: Vec<u64> = batch
            .iter()
            .flat_map(|&i| data.encoded(i as usize).iter().copied())
            .collect();
        for l in 0..nl {
            let layer = &self.layers[l];
            let (n, m, planes) = (layer.inputs, layer.outputs, layer.planes);
            let mut sums = vec![0i32; batch.len() * m];
            sums.par_chunks_mut(m)
                .zip(packed.par_chunks(words))
                .for_each(|(s, x)| {
                    layer_sums(&layer.weights, n, x, planes, s);
                });
            let mut x = vec![0i16; batch.len() * n];
            if l == 0 {
                x.par_chunks_mut(n)
                    .zip(batch.par_iter())
                    .for_each(|(xv, &i)| {
                        self.input.encoding.input_values(
                            self.input.pixel_bits,
                            data.image(i as usize),
                            xv,
                        );
                    });
            } else {
                x.par_chunks_mut(n)
                    .zip(packed.par_chunks(words))
                    .for_each(|(xv, p)| {
                        for (j, v) in xv.iter_mut().enumerate() {
                            *v = if get_bit(p, j) { 1 } else { -1 };
                        }
                    });
            }
            if !self.initialised {
                // Start every threshold at the batch's mean sum, as batch norm would centre it.
                let layer = &mut self.layers[l];
                for i in 0..m {
                    let mean = (0..batch.len())
                        .map(|b| sums[b * m + i] as i64)
                        .sum::<i64>()
                        / batch.len() as i64;
                    layer.bias[i] = if l + 1 < nl { mean << FRAC } else { 0 };
                }
            }
            if l + 1 < nl {
                let layer = &self.layers[l];
                let t: Vec<i32> = (0..m).map(|i| layer.int_bias(i)).collect();
                let ow = words_for(m);
                let mut next = vec![0u64; batch.len() * ow];
                next.par_chunks_mut(ow)
                    .zip(sums.par_chunks(m))
                    .for_each(|(o, s)| {
                        for i in 0..m {
                            if s[i] >= t[i] {
                                set_bit(o, i, true);
                            }
                        }
                    });
                packed = next;
                words = ow;
            }
            passes.push(LayerPass { sums, x });
        }
        self.initialised = true;
        passes
    }
}

/// `out[j] += d` where `mask[j] == 0` and `out[j] -= d` where `mask[j] == -1`.
#[inline(never)]
fn signed_add(out: &mut [i32], mask: &[i32], d: i32) {
    for (o, &s) in out.iter_mut().zip(mask) {
        *o += (d ^ s) - s;
    }
}

/// Fills `q` with neuron `i`'s weight signal `q_j = sum_b delta_bi * x_bj` and returns
/// `sum_b delta_bi` (its threshold signal).
#[inline(never)]
fn weight_signal(q: &mut [i32], delta: &[i32], x: &[i16], i: usize, m: usize, n: usize) -> i64 {
    q.fill(0);
    let mut dsum = 0i64;
    for (b, xb) in x.chunks_exact(n).enumerate() {
        let d = delta[b * m + i];
        if d == 0 {
            continue;
        }
        dsum += d as i64;
        for (qj, &xj) in q.iter_mut().zip(xb) {
            *qj += d * xj as i32;
        }
    }
    dsum
}

/// Cosine decay from 1 to `end` over `progress` 0..1.
fn cosine(progress: f64, end: f64) -> f64 {
    end + (1.0 - end) * 0.5 * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos())
}

/// Running mean-square update (first value taken as is).
fn ema(old: f64, new: f64) -> f64 {
    if old == 0.0 {
        new
    } else {
        0.9 * old + 0.1 * new
    }
}

/// Applies one step of accumulate / flip / reset to one weight row. Returns flips done.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn update_row<A: AccInt>(
    acc: &mut [A],
    row: &mut [u64],
    q: &[i32],
    gain: i64,
    beta: i64,
    threshold: i32,
    rng: &mut Stream,
) -> usize {
    let mut flips = 0;
    for (j, (a, &qj)) in acc.iter_mut().zip(q).enumerate() {
        // m' = floor(beta * m + gain * q + u), all in 32.32 fixed point: stochastic rounding.
        let u = (rng.next_u64() >> 32) as i64;
        let v = (beta * a.get() as i64 + gain * qj as i64 + u) >> 32;
        let mut m = v.clamp(A::MIN as i64, A::MAX as i64) as i32;
        let word = &mut row[j / WORD_BITS];
        let bit = 1u64 << (j % WORD_BITS);
        let w = if *word & bit != 0 { 1 } else { -1 };
        if m * w >= threshold {
            *word ^= bit;
            m = 0;
            flips += 1;
        }
        a.set(m);
    }
    flips
}

/// The accumulator integer types.
trait AccInt: Copy + Send + Sync {
    const MIN: i32;
    const MAX: i32;
    fn get(self) -> i32;
    fn set(&mut self, v: i32);
}

impl AccInt for i8 {
    const MIN: i32 = i8::MIN as i32;
    const MAX: i32 = i8::MAX as i32;
    fn get(self) -> i32 {
        self as i32
    }
    fn set(&mut self, v: i32) {
        *self = v as i8;
    }
}

impl AccInt for i16 {
    const MIN: i32 = i16::MIN as i32;
    const MAX: i32 = i16::MAX as i32;
    fn get(self) -> i32 {
        self as i32
    }
    fn set(&mut self, v: i32) {
        *self = v as i16;
    }
}

impl Optimizer for FlipOptimizer {
    fn step(&mut self, data: &TrainData, batch: &[u32], step: u64, progress: f64) -> BatchStats {
        let passes = self.forward(data, batch);
        let nl = self.layers.len();
        let bsz = batch.len();
        let s = self.settings.clone();

        // Output error: softmax of temperature-scaled scores against the label.
        let last = &self.layers[nl - 1];
        let c = last.outputs;
        let scale = s.temperature / ((last.inputs as f64).sqrt() / 2.0);
        let mut delta = vec![0i32; bsz * c];
        let mut stats = BatchStats::default();
        for (b, &i) in batch.iter().enumerate() {
            let scores: Vec<i32> = (0..c)
                .map(|k| passes[nl - 1].sums[b * c + k] + last.int_bias(k))
                .collect();
            let label = data.labels[i as usize] as usize;
            if argmax(&scores) == label {
                stats.correct += 1;
            }
            let top = *scores.iter().max().unwrap_or(&0) as f64;
            let e: Vec<f64> = scores
                .iter()
                .map(|&v| ((v as f64 - top) * scale).exp())
                .collect();
            let z: f64 = e.iter().sum();
            stats.loss -= (e[label] / z).max(1e-12).ln();
            for k in 0..c {
                let err = e[k] / z - if k == label { 1.0 } else { 0.0 };
                delta[b * c + k] = (err * 127.0).round() as i32;
            }
        }

        let lr = s.lr * cosine(progress, s.lr_end);
        let unit = if s.acc_bits == 16 { 256 } else { 1 };
        let threshold = s.threshold * unit;
        let mut deltas: Vec<Vec<i32>> = vec![Vec::new(); nl];
        deltas[nl - 1] = delta;
        // Backward through hidden layers, top to bottom.
        for l in (0..nl - 1).rev() {
            let above = &self.layers[l + 1];
            let (m, ma) = (self.layers[l].outputs, above.outputs);
            let da = &deltas[l + 1];
            // The layer above's weights as sign masks (0 for +1, -1 for -1), so the signal
            // sum is a branch-free conditional negate that vectorises.
            let masks: Vec<i32> = (0..ma)
                .flat_map(|i| (0..m).map(move |j| if above.weights.get(i, j) { 0 } else { -1 }))
                .collect();
            let mut g = vec![0i32; bsz * m];
            g.par_chunks_mut(m).enumerate().for_each(|(b, gb)| {
                for i in 0..ma {
                    let d = da[b * ma + i];
                    if d != 0 {
                        signed_add(gb, &masks[i * m..(i + 1) * m], d);
                    }
                }
            });
            // Keep neurons inside the undecided band; measure the band's spread as we go.
            let layer = &mut self.layers[l];
            let sums = &passes[l].sums;
            let mut sq = 0f64;
            for b in 0..bsz {
                for i in 0..m {
                    let d = (sums[b * m + i] - layer.int_bias(i)) as f64;
                    sq += d * d;
                }
            }
            layer.spread = ema(layer.spread, (sq / (bsz * m) as f64).sqrt());
            let radius = (s.window * layer.spread).max(1.0) as i32;
            let mut maxabs = 0i32;
            for b in 0..bsz {
                for i in 0..m {
                    let k = b * m + i;
                    let dist = (sums[k] - layer.int_bias(i)).abs();
                    if dist > radius {
                        g[k] = 0;
                    } else if s.triangle {
                        g[k] = (g[k] as i64 * (radius - dist + 1) as i64 / radius as i64) as i32;
                    }
                    maxabs = maxabs.max(g[k].abs());
                }
            }
            let shift = (32 - (maxabs as u32).leading_zeros()).saturating_sub(15);
            if shift > 0 {
                g.iter_mut().for_each(|v| *v >>= shift);
            }
            deltas[l] = g;
        }

        // Weight and threshold updates, one row (neuron) at a time on all threads.
        for (l, (layer, pass)) in self.layers.iter_mut().zip(&passes).enumerate() {
            let (n, m) = (layer.inputs, layer.outputs);
            let d = &deltas[l];
            let x = &pass.x;
            let beta = match s.decay {
                Some(b) => b,
                None => 1.0 - layer.flipped_share,
            };
            let beta_fx = (beta * 4294967296.0) as i64;
            let rms = layer.q_ms.sqrt();
            let gain = if rms > 0.0 {
                (lr * unit as f64 / rms * 4294967296.0) as i64
            } else {
                0
            };
            let seed = mix(self.seed, mix(step, 0xF11F + l as u64));
            let acc_rows: Vec<AccRow> = match &mut layer.acc {
                Acc::I8(v) => v.chunks_mut(n).map(AccRow::I8).collect(),
                Acc::I16(v) => v.chunks_mut(n).map(AccRow::I16).collect(),
            };
            let wrows: Vec<&mut [u64]> = layer.weights.rows_mut().take(m).collect();
            let results: Vec<(f64, usize, i64)> = acc_rows
                .into_par_iter()
                .zip(wrows.into_par_iter())
                .enumerate()
                .map_init(
                    || vec![0i32; n],
                    |q, (i, (acc, row))| {
                        let dsum = weight_signal(q, d, x, i, m, n);
                        let sq: f64 = q.iter().map(|&v| (v as f64) * (v as f64)).sum();
                        let mut rng = Stream::new(seed, i as u64);
                        let flips = match acc {
                            AccRow::I8(a) => {
                                update_row(a, row, q, gain, beta_fx, threshold, &mut rng)
                            }
                            AccRow::I16(a) => {
                                update_row(a, row, q, gain, beta_fx, threshold, &mut rng)
                            }
                        };
                        (sq, flips, dsum)
                    },
                )
                .collect();
            let sq: f64 = results.iter().map(|r| r.0).sum();
            let flips: usize = results.iter().map(|r| r.1).sum();
            layer.q_ms = ema(layer.q_ms, sq / (n * m) as f64);
            layer.flipped_share = flips as f64 / (n * m) as f64;
            // Thresholds rise with the signal (a positive delta says the output should fall);
            // score offsets fall with it.
            let tsq: f64 = results.iter().map(|r| (r.2 as f64).powi(2)).sum::<f64>() / m as f64;
            layer.t_ms = ema(layer.t_ms, tsq);
            let trms = layer.t_ms.sqrt();
            if trms > 0.0 {
                let hidden = l + 1 < nl;
                let range = if hidden {
                    layer.spread.max(1.0)
                } else {
                    (layer.inputs as f64).sqrt() / 2.0
                };
                let step_scale =
                    s.lr_threshold * cosine(progress, s.lr_end) * range * (1u64 << FRAC) as f64
                        / trms;
                for (i, r) in results.iter().enumerate() {
                    let dt = (r.2 as f64 * step_scale).round() as i64;
                    layer.bias[i] += if hidden { dt } else { -dt };
                }
            }
        }
        stats
    }

    fn export(&self) -> Model {
        let nl = self.layers.len();
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(l, fl)| {
                let ints: Vec<i32> = (0..fl.outputs).map(|i| fl.int_bias(i)).collect();
                Layer::Binary(BinaryLayer {
                    inputs: fl.inputs,
                    outputs: fl.outputs,
                    weights: fl.weights.clone(),
                    activation: if l + 1 < nl {
                        Activation::Threshold {
                            thresholds: ints,
                            invert: vec![false; fl.outputs],
                        }
                    } else {
                        Activation::Scores { bias: ints }
                    },
                })
            })
            .collect();
        Model {
            input: self.input.clone(),
            layers,
            meta: Default::default(),
        }
    }

    fn state_bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| {
                let acc = match &l.acc {
                    Acc::I8(v) => v.len(),
                    Acc::I16(v) => 2 * v.len(),
                };
                l.weights.rows() * l.weights.words_per_row() * 8 + acc + l.bias.len() * 8
            })
            .sum()
    }

    fn save_state(&self) -> Vec<u8> {
        super::checkpoint::encode_state(self)
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        *self = super::checkpoint::decode_state(bytes)?;
        Ok(())
    }
}

enum AccRow<'a> {
    I8(&'a mut [i8]),
    I16(&'a mut [i16]),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_rule_and_reset_on_a_hand_worked_row() {
        // Two weights: w0 = +1, w1 = -1; both start with m = 10, threshold 16, beta = 1.
        let mut acc: Vec<i8> = vec![10, 10];
        let mut row = vec![0b01u64];
        // gain 1.0 in 32.32; q = [+8, +8]: m0 = 18 -> 18 * (+1) >= 16 -> flip w0, reset m0;
        // m1 = 18 -> 18 * (-1) < 16 -> keep w1, m1 = 18.
        let one = 1i64 << 32;
        let mut rng = Stream::new(1, 1);
        // The random term is below one unit, so with integer products floor() is exact.
        let flips = update_row(&mut acc, &mut row, &[8, 8], one, one, 16, &mut rng);
        assert_eq!(flips, 1);
        assert_eq!(row[0], 0b00, "w0 flipped to -1, w1 kept at -1");
        assert_eq!(acc, vec![0, 18]);
        // Now q = [-20, -40]: m0 = -20, w0 = -1 -> 20 >= 16 flips back; m1 = 18 - 40 = -22,
        // w1 = -1 -> 22 >= 16 flips to +1; both reset.
        let flips = update_row(&mut acc, &mut row, &[-20, -40], one, one, 16, &mut rng);
        assert_eq!(flips, 2);
        assert_eq!(row[0], 0b11);
        assert_eq!(acc, vec![0, 0]);
    }

    #[test]
    fn accumulator_saturates_instead_of_wrapping() {
        let mut acc: Vec<i8> = vec![120];
        let mut row = vec![0b1u64];
        let one = 1i64 << 32;
        let mut rng = Stream::new(3, 3);
        // w = +1 and a negative signal: m goes down, no flip. Large positive would flip,
        // so test the other way: m = 120, q = -300 -> saturates at -128, w=+1 -> keep.
        update_row(&mut acc, &mut row, &[-300], one, one, 200, &mut rng);
        assert_eq!(acc[0], -128);
        assert_eq!(row[0], 1);
    }

    #[test]
    fn decay_shrinks_the_accumulator() {
        let mut acc: Vec<i8> = vec![100];
        let mut row = vec![0u64];
        let half = 1i64 << 31;
        let mut rng = Stream::new(5, 5);
        update_row(&mut acc, &mut row, &[0], 0, half, 127, &mut rng);
        assert_eq!(acc[0], 50);
    }
}
