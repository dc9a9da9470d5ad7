//! Random binary models of a given architecture, for tests that hold two implementations of
//! the integer semantics against each other (reference against batched reference, simulator
//! against RTL). Thresholds lie around the middle of each layer's sum range, so both outputs of
//! a neuron occur, and score offsets are small.

use super::arch::{self, LayerShape, LayerSpec};
use super::{Activation, BinaryLayer, InputSpec, Layer, Metadata, Model};
use crate::bits::BitMatrix;
use crate::train::rng::splitmix as next;

/// A checked random binary model with the layers `specs` on `input`, `classes` classes.
/// Panics if the architecture does not fit the input (callers pass known-good shapes).
pub fn binary(seed: u64, input: InputSpec, specs: &[LayerSpec], classes: usize) -> Model {
    let shapes = arch::shapes(specs, &input, classes).expect("a fitting architecture");
    let mut s = seed ^ 0x5eed_f1a1_1b17;
    let mut top = ((1i64 << input.encoding.planes()) - 1) as i32;
    let last = shapes.len() - 1;
    let mut layers = Vec::new();
    for (i, shape) in shapes.iter().enumerate() {
        let (n, outputs, conv) = match *shape {
            LayerShape::Pool(p) => {
                layers.push(Layer::MaxPool(p));
                continue;
            }
            LayerShape::Dense { inputs, outputs } => (inputs, outputs, None),
            LayerShape::Conv { conv, outputs } => (conv.window(), outputs, Some(conv)),
        };
        let mut weights = BitMatrix::zeros(outputs, n);
        for r in 0..outputs {
            let words: Vec<u64> = (0..weights.words_per_row()).map(|_| next(&mut s)).collect();
            weights.set_row(r, &words);
        }
        let mid = top * n as i32 / 2;
        // About the spread of a popcount of random bits, so that outputs vary with the input.
        let spread = ((top as f64) * (n as f64).sqrt()).ceil() as i32;
        let around = |s: &mut u64| mid + (next(s) % (2 * spread as u64 + 1)) as i32 - spread;
        let activation = if i == last {
            let bias = (0..outputs).map(|_| around(&mut s) - mid).collect();
            // Per-class scales (as an imported model's last batch norm gives) one time in three.
            let scale = if next(&mut s).is_multiple_of(3) {
                (0..outputs)
                    .map(|_| 1 + (next(&mut s) % 40) as u32)
                    .collect()
            } else {
                Vec::new()
            };
            Activation::Scores { bias, scale }
        } else {
            Activation::Threshold {
                thresholds: (0..outputs).map(|_| around(&mut s)).collect(),
                invert: (0..outputs).map(|_| next(&mut s) & 1 == 1).collect(),
            }
        };
        layers.push(Layer::Binary(BinaryLayer {
            inputs: n,
            outputs,
            weights,
            activation,
            conv,
        }));
        top = 1;
    }
    let m = Model {
        input,
        layers,
        meta: Metadata::default(),
    };
    m.check().expect("a random model is consistent");
    m
}
