//! Bop (Helwegen et al., "Latent Weights Do Not Exist", NeurIPS 2019): binary weights with no
//! latent values, flipped on an exponential moving average of their gradient.
//!
//! Per weight there is one bit `w` and one f32 `m`. Each step, with `g` the straight-through
//! gradient of the binary weight (the same forward and backward pass as
//! [`super::binaryconnect`]: popcount forward, batch norm, `sign` with the hard-tanh window):
//!
//! ```text
//! m <- (1 - gamma) m + gamma g
//! flip w  where  |m| > tau  and  sign(m) == sign(w)
//! ```
//!
//! `sign(m) == sign(w)` means the gradient keeps pushing the weight towards the other sign.
//! `m` is not reset by a flip (as in the paper). Batch norms and the score head are trained by
//! Adam, and export folds them as for BinaryConnect.
//!
//! Convolutions and max-pools train and export as for BinaryConnect (see [`super::latent`]).
//!
//! `tau` is compared with a gradient, so it depends on the gradient's scale: the default suits
//! nets with hidden (batch-normed) layers; a net without hidden layers (`--arch 64-10`) sees
//! larger gradients and needs about `tau=1e-3`, or weights keep flipping back and forth.
//!
//! Settings (`--set key=value`): `gamma` (adaptivity rate, default 1e-3, decayed by a cosine
//! to `gamma_end * gamma`), `gamma_end` (default 0.1), `tau` (flip threshold, default 1e-7),
//! `lr` (Adam rate of batch norms and head, default 0.005), `lr_end` (default 0.01),
//! `momentum` (running statistics, default 0.1). Valid ranges: `0 < gamma <= 1`;
//! `0 <= gamma_end <= 1`; `tau >= 0`; `lr > 0`; `0 <= lr_end <= 1`; `0 < momentum <= 1`;
//! anything else (NaN and infinities included) is an error that gives the range.
//!
//! The defaults were checked on validation data (`scripts/sweep-flip.sh fmnist-bop`,
//! Fashion-MNIST 784-256-256-10, 10 epochs, mean validation accuracy over seeds 1-3): `tau`
//! 0: 87.25%, 1e-8: 87.74%, **1e-7: 88.21%**, 1e-6: 87.48%, 1e-5: 85.26%; `gamma` (at tau
//! 1e-6) 5e-4: 88.06%, **1e-3: 87.48%**, 2e-3: 87.62%, and 5e-4 with tau 1e-7: 88.05%; batch
//! 200: 87.52% against 87.48% at 100. So `tau` moved from 1e-6 to 1e-7 and the rest stayed.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::latent::{
    check_shapes, cosine, export_binary, pass, shapes_of, signs_above_first, weighted, Norms,
    PassMode, Stage, Weights,
};
use super::rng::random_bits;
use super::{check_params, param_in, BatchStats, Optimizer, Range, TrainData};
use crate::bits::{BitMatrix, WORD_BITS};
use crate::model::arch::LayerShape;
use crate::model::{InputSpec, Model};

const KNOWN: &[&str] = &["gamma", "gamma_end", "tau", "lr", "lr_end", "momentum"];

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Settings {
    gamma: f64,
    gamma_end: f64,
    tau: f32,
    lr: f64,
    lr_end: f64,
    momentum: f32,
}

/// The Bop optimizer's whole state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bop {
    input: InputSpec,
    settings: Settings,
    /// The layers.
    stages: Vec<Stage>,
    /// Binary weights per convolution or dense layer.
    bits: Vec<BitMatrix>,
    /// Gradient moving averages, row-major like the weights.
    m: Vec<Vec<f32>>,
    norms: Norms,
    /// Gradient buffers reused from step to step (not state).
    #[serde(skip)]
    grads: Vec<Vec<f32>>,
}

/// One Bop step on one weight row: updates `m` and flips bits; returns the number of flips.
pub(crate) fn bop_row(row: &mut [u64], m: &mut [f32], g: &[f32], gamma: f32, tau: f32) -> usize {
    let mut flips = 0;
    for (j, (mj, &gj)) in m.iter_mut().zip(g).enumerate() {
        let v = (1.0 - gamma) * *mj + gamma * gj;
        *mj = v;
        let word = &mut row[j / WORD_BITS];
        let bit = 1u64 << (j % WORD_BITS);
        let positive = *word & bit != 0;
        if v.abs() > tau && (v > 0.0) == positive {
            *word ^= bit;
            flips += 1;
        }
    }
    flips
}

impl Bop {
    /// A network of layers `shapes` (which must chain from `input`, see [`check_shapes`]) with
    /// random binary weights.
    pub fn new(
        input: InputSpec,
        shapes: &[LayerShape],
        seed: u64,
        params: &[(String, String)],
    ) -> Result<Self, String> {
        check_params(params, KNOWN, "bop")?;
        check_shapes(&input, shapes)?;
        let settings = Settings {
            gamma: param_in(params, "gamma", 1e-3, Range::UnitPositive)?,
            gamma_end: param_in(params, "gamma_end", 0.1, Range::Unit)?,
            tau: param_in(params, "tau", 1e-7, Range::NonNegative)?,
            lr: param_in(params, "lr", 0.005, Range::Positive)?,
            lr_end: param_in(params, "lr_end", 0.01, Range::Unit)?,
            momentum: param_in(params, "momentum", 0.1, Range::UnitPositive)?,
        };
        let mut bits = Vec::new();
        let mut m = Vec::new();
        let layers = weighted(shapes);
        for (l, &(n, rows)) in layers.iter().enumerate() {
            bits.push(random_bits(rows, n, seed, 0xB0B0 + l as u64));
            m.push(vec![0f32; n * rows]);
        }
        let log_scale = -0.5 * (layers[layers.len() - 1].0 as f32).ln();
        let norms = Norms::new(shapes, log_scale, settings.momentum);
        Ok(Bop {
            input,
            settings,
            stages: shapes.iter().map(Stage::of).collect(),
            bits,
            m,
            norms,
            grads: Vec::new(),
        })
    }
}

impl Optimizer for Bop {
    fn step(&mut self, data: &TrainData, batch: &[u32], step: u64, progress: f64) -> BatchStats {
        let s = self.settings.clone();
        let signs = signs_above_first(&self.bits);
        let weights: Vec<Weights> = self
            .bits
            .iter()
            .zip(&signs)
            .map(|(b, s)| Weights::Binary { bits: b, signs: s })
            .collect();
        let shapes = shapes_of(&self.stages);
        let layers = weighted(&shapes);
        let p = pass(
            &mut self.norms,
            &shapes,
            &weights,
            data,
            batch,
            &mut self.grads,
            PassMode::Train,
        );
        drop(weights);
        let gamma = (s.gamma * cosine(progress, s.gamma_end)) as f32;
        let lr = (s.lr * cosine(progress, s.lr_end)) as f32;
        for (l, (w, m)) in self.bits.iter_mut().zip(&mut self.m).enumerate() {
            let n = layers[l].0;
            let g = &self.grads[l];
            let rows: Vec<&mut [u64]> = w.rows_mut().collect();
            rows.into_par_iter()
                .zip(m.par_chunks_mut(n))
                .zip(g.par_chunks(n))
                .for_each(|((row, mr), gr)| {
                    bop_row(row, mr, gr, gamma, s.tau);
                });
        }
        self.norms.update(&p.norm_grads, lr, step + 1);
        p.stats
    }

    fn export(&self) -> Model {
        export_binary(
            &self.input,
            &shapes_of(&self.stages),
            &self.bits,
            &self.norms,
        )
    }

    fn state_bytes(&self) -> usize {
        let bits: usize = self
            .bits
            .iter()
            .map(|b| b.rows() * b.words_per_row() * 8)
            .sum();
        let m: usize = self.m.iter().map(|v| 4 * v.len()).sum();
        bits + m + self.norms.bytes()
    }

    fn save_state(&self) -> Vec<u8> {
        super::checkpoint::encode_state(self)
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String> {
        *self = super::checkpoint::decode_state(bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_rule_on_a_hand_worked_row() {
        // Weights: w0 = +1, w1 = -1, w2 = +1, w3 = -1 (bits 0b0101).
        let mut row = vec![0b0101u64];
        // m starts at [0, 0, 0.02, 0]; gamma = 0.5, tau = 0.01.
        let mut m = vec![0.0f32, 0.0, 0.02, 0.0];
        // g = [0.1, 0.1, -0.01, -0.01]:
        // m0 = 0.05 > tau, sign + == w0 + -> flip w0 to -1.
        // m1 = 0.05 > tau, sign + != w1 - -> keep (descent moves w1 = -1 further down).
        // m2 = 0.5 * 0.02 - 0.005 = 0.005 <= tau -> keep.
        // m3 = -0.005, |m3| <= tau -> keep.
        let flips = bop_row(&mut row, &mut m, &[0.1, 0.1, -0.01, -0.01], 0.5, 0.01);
        assert_eq!(flips, 1);
        assert_eq!(row[0], 0b0100);
        assert_eq!(m, vec![0.05, 0.05, 0.005, -0.005]);
        // Next g = [0.1, -0.2, -0.1, -0.1]: m0 = 0.075 (w0 = -1, no flip); m1 = -0.075,
        // sign - == w1 - -> flip to +1; m2 = -0.0475, w2 = +1 -> keep; m3 = -0.0525,
        // w3 = -1 -> flip to +1.
        let flips = bop_row(&mut row, &mut m, &[0.1, -0.2, -0.1, -0.1], 0.5, 0.01);
        assert_eq!(flips, 2);
        assert_eq!(row[0], 0b1110);
        // m is not reset by a flip.
        assert!((m[1] + 0.075).abs() < 1e-6 && (m[3] + 0.0525).abs() < 1e-6);
    }
}
