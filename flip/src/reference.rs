//! The software reference: the integer semantics every flipchip hardware design reproduces
//! bit for bit.
//!
//! For a binary layer with `n` inputs, neuron `i` computes its popcount sum
//! `s_i = sum_k 2^k * popcount(xnor(x_k, w_i))` over the input planes `x_k` (one plane except
//! for a bit-plane encoded first layer), which is `(dot + (2^P - 1) n) / 2` for the +-1 dot
//! product `dot`. Hidden neurons emit `(s_i >= T_i) XOR invert_i`; the last layer emits scores
//! `s_i + bias_i` and the class is the first index of the largest score.
//!
//! The functions here are the specification, written for reading. [`accuracy`] runs binary
//! models through the batched [`crate::gemm`], whose tests hold it to [`binary_scores`].

use rayon::prelude::*;

use crate::bits::{agreements, set_bit, words_for, BitMatrix};
use crate::model::{Activation, FloatLayer, Layer, Model};

/// Popcount sums of one layer (`weights`, `inputs` wide) for one encoded input of `planes`
/// planes; one sum per entry of `sums`.
pub fn layer_sums(
    weights: &BitMatrix,
    inputs: usize,
    input: &[u64],
    planes: usize,
    sums: &mut [i32],
) {
    let w = words_for(inputs);
    for (i, s) in sums.iter_mut().enumerate() {
        let row = weights.row(i);
        let mut acc = 0i32;
        for k in 0..planes {
            acc += (agreements(&input[k * w..(k + 1) * w], row, inputs) as i32) << k;
        }
        *s = acc;
    }
}

/// Hidden-layer output bits from popcount sums.
pub fn threshold_bits(thresholds: &[i32], invert: &[bool], sums: &[i32], out: &mut [u64]) {
    out.fill(0);
    for (i, ((&s, &t), &inv)) in sums.iter().zip(thresholds).zip(invert).enumerate() {
        if (s >= t) ^ inv {
            set_bit(out, i, true);
        }
    }
}

/// Index of the largest score; the lowest index wins a tie.
pub fn argmax<T: PartialOrd + Copy>(scores: &[T]) -> usize {
    let mut best = 0;
    for (i, &v) in scores.iter().enumerate() {
        if v > scores[best] {
            best = i;
        }
    }
    best
}

/// Class scores of a binary model for one image of raw pixels.
pub fn binary_scores(model: &Model, pixels: &[u8]) -> Vec<i32> {
    let enc = &model.input.encoding;
    let mut x = vec![0u64; enc.encoded_words(model.input.pixels())];
    enc.encode(model.input.pixel_bits, pixels, &mut x);
    let mut planes = enc.planes();
    let mut sums = Vec::new();
    for layer in &model.layers {
        let Layer::Binary(l) = layer else {
            panic!("binary_scores called on a float model")
        };
        sums.resize(l.outputs, 0);
        layer_sums(&l.weights, l.inputs, &x, planes, &mut sums);
        match &l.activation {
            Activation::Threshold { thresholds, invert } => {
                x = vec![0u64; words_for(l.outputs)];
                threshold_bits(thresholds, invert, &sums, &mut x);
                planes = 1;
            }
            Activation::Scores { bias } => {
                return sums.iter().zip(bias).map(|(s, b)| s + b).collect();
            }
        }
    }
    unreachable!("a checked model ends in a scores layer")
}

/// Forward pass of one float layer (hardtanh unless `last`).
pub fn float_layer(l: &FloatLayer, x: &[f32], last: bool) -> Vec<f32> {
    (0..l.outputs)
        .map(|i| {
            let row = &l.weights[i * l.inputs..(i + 1) * l.inputs];
            let dot: f32 = row.iter().zip(x).map(|(w, v)| w * v).sum();
            let y = l.scale[i] * dot + l.shift[i];
            if last {
                y
            } else {
                y.clamp(-1.0, 1.0)
            }
        })
        .collect()
}

/// Class scores of a float model for one image.
pub fn float_scores(model: &Model, pixels: &[u8]) -> Vec<f32> {
    let mut v = vec![0i16; model.input.encoded_inputs()];
    model
        .input
        .encoding
        .input_values(model.input.pixel_bits, pixels, &mut v);
    let mut x: Vec<f32> = v.iter().map(|&q| q as f32).collect();
    let last = model.layers.len() - 1;
    for (i, layer) in model.layers.iter().enumerate() {
        let Layer::Float(l) = layer else {
            panic!("float_scores called on a binary model")
        };
        x = float_layer(l, &x, i == last);
    }
    x
}

/// The class a model (binary or float) assigns to one image.
pub fn classify(model: &Model, pixels: &[u8]) -> usize {
    if model.is_binary() {
        argmax(&binary_scores(model, pixels))
    } else {
        argmax(&float_scores(model, pixels))
    }
}

/// Fraction of `images` (concatenated, `model.input.pixels()` each) classified as `labels`,
/// on all threads. Binary models run through the batched [`crate::gemm::forward`], which
/// computes the same classes as [`classify`] image by image.
pub fn accuracy(model: &Model, images: &[u8], labels: &[u8]) -> f64 {
    let p = model.input.pixels();
    if labels.is_empty() {
        return 0.0;
    }
    let images = &images[..labels.len().min(images.len() / p) * p];
    let correct: usize = if model.is_binary() {
        crate::gemm::classify(model, images)
            .iter()
            .zip(labels)
            .filter(|(&c, &lab)| c == lab as usize)
            .count()
    } else {
        images
            .par_chunks(p)
            .zip(labels.par_iter())
            .filter(|(img, &lab)| classify(model, img) == lab as usize)
            .count()
    };
    correct as f64 / labels.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::BitMatrix;
    use crate::encoding::Encoding;
    use crate::model::{BinaryLayer, InputSpec, Metadata};

    /// Hand-worked 4-pixel network: one hidden layer of 2 neurons, 2 classes.
    fn tiny() -> Model {
        let mut w1 = BitMatrix::zeros(2, 4);
        // neuron 0 = [+1 +1 -1 -1], neuron 1 = [-1 +1 -1 +1]
        w1.set(0, 0, true);
        w1.set(0, 1, true);
        w1.set(1, 1, true);
        w1.set(1, 3, true);
        let mut w2 = BitMatrix::zeros(2, 2);
        w2.set(0, 0, true); // class 0 likes h0
        w2.set(1, 1, true); // class 1 likes h1
        Model {
            input: InputSpec {
                width: 2,
                height: 2,
                channels: 1,
                pixel_bits: 8,
                encoding: Encoding::Threshold(128),
            },
            layers: vec![
                Layer::Binary(BinaryLayer {
                    inputs: 4,
                    outputs: 2,
                    weights: w1,
                    activation: Activation::Threshold {
                        thresholds: vec![3, 3],
                        invert: vec![false, false],
                    },
                }),
                Layer::Binary(BinaryLayer {
                    inputs: 2,
                    outputs: 2,
                    weights: w2,
                    activation: Activation::Scores { bias: vec![0, 0] },
                }),
            ],
            meta: Metadata::default(),
        }
    }

    #[test]
    fn hand_worked_forward_pass() {
        let m = tiny();
        m.check().unwrap();
        // bits 1100: h0 agrees on 4 -> 1, h1 agrees on 2 -> 0; scores: c0 agrees 2, c1 agrees 0
        assert_eq!(binary_scores(&m, &[200, 200, 0, 0]), vec![2, 0]);
        // bits 0101: h0 agrees 0 -> 0, h1 agrees 4 -> 1
        assert_eq!(binary_scores(&m, &[0, 200, 0, 200]), vec![0, 2]);
        assert_eq!(classify(&m, &[0, 200, 0, 200]), 1);
    }

    #[test]
    fn argmax_takes_lowest_index_on_ties() {
        assert_eq!(argmax(&[3, 7, 7, 1]), 1);
        assert_eq!(argmax(&[5, 5]), 0);
    }

    #[test]
    fn bit_plane_sums_weight_planes_by_power_of_two() {
        let mut w = BitMatrix::zeros(1, 2);
        w.set(0, 0, true); // weights [+1, -1]
        let l = BinaryLayer {
            inputs: 2,
            outputs: 1,
            weights: w,
            activation: Activation::Scores { bias: vec![0] },
        };
        let e = Encoding::BitPlanes(2);
        let mut x = vec![0u64; e.encoded_words(2)];
        // pixels q = [3, 1] -> centred values [3, -1]; dot = 3*1 + (-1)*(-1) = 4
        e.encode(2, &[3, 1], &mut x);
        let mut s = [0i32];
        layer_sums(&l.weights, l.inputs, &x, 2, &mut s);
        // s = (dot + (2^P - 1) n) / 2 = (4 + 3*2) / 2 = 5
        assert_eq!(s[0], 5);
    }
}
