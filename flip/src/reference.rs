//! The software reference: the integer semantics every flipchip hardware design reproduces
//! bit for bit.
//!
//! For a binary layer with `n` inputs, neuron `i` computes its popcount sum
//! `s_i = sum_k 2^k * popcount(xnor(x_k, w_i))` over the input planes `x_k` (one plane except
//! for a bit-plane encoded first layer), which is `(dot + (2^P - 1) n) / 2` for the +-1 dot
//! product `dot`. Hidden neurons emit `(s_i >= T_i) XOR invert_i`; the last layer emits scores
//! `s_i + bias_i` and the class is the first index of the largest score.
//!
//! A convolution (see [`crate::model::Conv`] for its bit orders) computes the same sum for
//! every output pixel and output channel over that pixel's window, and applies its channel's
//! threshold; its output bits form the next feature map, output pixel after output pixel,
//! channel within pixel. A max-pool ORs each window of bits. A dense layer after them reads
//! the last feature map as it is stored (flattened row-major, channels innermost).
//!
//! The functions here are the specification, written for reading. [`accuracy`] runs binary
//! models through the batched [`crate::gemm`], whose tests hold it to [`binary_scores`].

use rayon::prelude::*;

use crate::bits::{agreements, set_bit, words_for, BitMatrix};
use crate::featuremap;
use crate::model::{class_score, Activation, Conv, FloatLayer, Layer, MaxPool, Model};

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
    binary_forward(model, pixels, |_, _, _, _| ())
}

/// [`binary_scores`], handing every hidden layer's output bits to `visit` on the way:
/// `visit(layer, bits, size, channels)` with the layer's index in `model.layers`, its
/// output (a feature map in stored order for a convolution or pool), the output's bits and
/// its channels (neurons of a dense layer).
pub fn binary_forward(
    model: &Model,
    pixels: &[u8],
    mut visit: impl FnMut(usize, &[u64], usize, usize),
) -> Vec<i32> {
    let enc = &model.input.encoding;
    let mut x = vec![0u64; enc.encoded_words(model.input.pixels())];
    enc.encode(model.input.pixel_bits, pixels, &mut x);
    let mut planes = enc.planes();
    let mut sums = Vec::new();
    for (index, layer) in model.layers.iter().enumerate() {
        let l = match layer {
            Layer::Binary(l) => l,
            Layer::MaxPool(p) => {
                let mut out = vec![0u64; words_for(p.output_size())];
                featuremap::max_pool(p, &x, &mut out);
                x = out;
                visit(index, &x, p.output_size(), p.channels);
                continue;
            }
            Layer::Float(_) => panic!("binary_scores called on a float model"),
        };
        if let Some(conv) = &l.conv {
            let Activation::Threshold { thresholds, invert } = &l.activation else {
                panic!("a checked model's convolutions have thresholds")
            };
            let in_words = words_for(conv.input_size());
            let mut win = vec![0u64; planes * words_for(conv.window())];
            let mut out = vec![0u64; words_for(conv.output_pixels() * l.outputs)];
            let mut pixel = vec![0u64; words_for(l.outputs)];
            sums.resize(l.outputs, 0);
            for y in 0..conv.out_height() {
                for xo in 0..conv.out_width() {
                    let w = words_for(conv.window());
                    for k in 0..planes {
                        let plane = &x[k * in_words..(k + 1) * in_words];
                        featuremap::window(conv, plane, y, xo, &mut win[k * w..(k + 1) * w]);
                    }
                    layer_sums(&l.weights, l.inputs, &win, planes, &mut sums);
                    threshold_bits(thresholds, invert, &sums, &mut pixel);
                    let at = (y * conv.out_width() + xo) * l.outputs;
                    featuremap::copy_bits(&pixel, 0, &mut out, at, l.outputs);
                }
            }
            x = out;
            planes = 1;
            visit(index, &x, conv.output_pixels() * l.outputs, l.outputs);
            continue;
        }
        sums.resize(l.outputs, 0);
        layer_sums(&l.weights, l.inputs, &x, planes, &mut sums);
        match &l.activation {
            Activation::Threshold { thresholds, invert } => {
                x = vec![0u64; words_for(l.outputs)];
                threshold_bits(thresholds, invert, &sums, &mut x);
                planes = 1;
                visit(index, &x, l.outputs, l.outputs);
            }
            Activation::Scores { bias, scale } => {
                return sums
                    .iter()
                    .enumerate()
                    .map(|(c, &s)| class_score(scale, bias, c, s))
                    .collect();
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

/// Forward pass of one float convolution over a row-major, channel-innermost map (hardtanh
/// after, as a convolution is never last).
pub fn float_conv(l: &FloatLayer, conv: &Conv, x: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(conv.output_pixels() * l.outputs);
    let mut win = Vec::with_capacity(conv.window());
    let run = conv.kernel * conv.channels;
    for y in 0..conv.out_height() {
        for xo in 0..conv.out_width() {
            win.clear();
            for ky in 0..conv.kernel {
                let from = ((y + ky) * conv.width + xo) * conv.channels;
                win.extend_from_slice(&x[from..from + run]);
            }
            out.extend(float_layer(l, &win, false));
        }
    }
    out
}

/// Max-pool of a float map.
pub fn float_pool(p: &MaxPool, x: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(p.output_size());
    for oy in 0..p.out_height() {
        for ox in 0..p.out_width() {
            for c in 0..p.channels {
                let mut m = f32::NEG_INFINITY;
                for dy in 0..p.size {
                    for dx in 0..p.size {
                        let px = (oy * p.size + dy) * p.width + ox * p.size + dx;
                        m = m.max(x[px * p.channels + c]);
                    }
                }
                out.push(m);
            }
        }
    }
    out
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
        x = match layer {
            Layer::Float(l) => match &l.conv {
                Some(conv) => float_conv(l, conv, &x),
                None => float_layer(l, &x, i == last),
            },
            Layer::MaxPool(p) => float_pool(p, &x),
            Layer::Binary(_) => panic!("float_scores called on a binary model"),
        };
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
                    conv: None,
                    inputs: 4,
                    outputs: 2,
                    weights: w1,
                    activation: Activation::Threshold {
                        thresholds: vec![3, 3],
                        invert: vec![false, false],
                    },
                }),
                Layer::Binary(BinaryLayer {
                    conv: None,
                    inputs: 2,
                    outputs: 2,
                    weights: w2,
                    activation: Activation::Scores {
                        bias: vec![0, 0],
                        scale: Vec::new(),
                    },
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
            conv: None,
            inputs: 2,
            outputs: 1,
            weights: w,
            activation: Activation::Scores {
                bias: vec![0],
                scale: Vec::new(),
            },
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

    /// The conv/pool semantics written out with coordinates, independently of the packed
    /// windows: the +-1 dot product of each window, the threshold, the OR of each pool window.
    #[test]
    fn conv_and_pool_follow_their_coordinates() {
        use crate::bits::get_bit;
        use crate::model::arch::parse;
        let input = InputSpec {
            width: 7,
            height: 7,
            channels: 2,
            pixel_bits: 8,
            encoding: Encoding::Thermometer(vec![60, 180]),
        };
        let specs = parse("c5k2-p-c3k2-4", input.pixels()).unwrap();
        let m = crate::model::random::binary(21, input.clone(), &specs, 4);
        let mut s = 8u64;
        for _ in 0..20 {
            let px: Vec<u8> = (0..input.pixels())
                .map(|_| (crate::train::rng::splitmix(&mut s) % 256) as u8)
                .collect();
            // Encoded input: 7x7 pixels, 2 image channels x 2 levels = 4 channels.
            let mut x = vec![0u64; input.encoding.encoded_words(input.pixels())];
            input.encoding.encode(8, &px, &mut x);
            let mut map: Vec<bool> = (0..7 * 7 * 4).map(|i| get_bit(&x, i)).collect();
            let (mut h, mut w, mut c) = (7usize, 7usize, 4usize);
            let mut scores = Vec::new();
            for layer in &m.layers {
                match layer {
                    Layer::MaxPool(_) => {
                        let mut out = Vec::new();
                        for y in 0..h / 2 {
                            for xx in 0..w / 2 {
                                for ch in 0..c {
                                    let at = |dy: usize, dx: usize| {
                                        map[((2 * y + dy) * w + 2 * xx + dx) * c + ch]
                                    };
                                    out.push(at(0, 0) || at(0, 1) || at(1, 0) || at(1, 1));
                                }
                            }
                        }
                        map = out;
                        h /= 2;
                        w /= 2;
                    }
                    Layer::Binary(l) => {
                        let k = l.conv.map_or(0, |cv| cv.kernel);
                        let dot = |o: usize, bits: &dyn Fn(usize) -> bool| -> i32 {
                            (0..l.inputs)
                                .map(|j| if bits(j) == l.weights.get(o, j) { 1 } else { 0 })
                                .sum()
                        };
                        match &l.activation {
                            Activation::Threshold { thresholds, invert } => {
                                let mut out = Vec::new();
                                for y in 0..h + 1 - k {
                                    for xx in 0..w + 1 - k {
                                        for o in 0..l.outputs {
                                            let bit = |j: usize| {
                                                let (ky, kx, ch) = (j / (k * c), j / c % k, j % c);
                                                map[((y + ky) * w + xx + kx) * c + ch]
                                            };
                                            out.push((dot(o, &bit) >= thresholds[o]) ^ invert[o]);
                                        }
                                    }
                                }
                                map = out;
                                h = h + 1 - k;
                                w = w + 1 - k;
                                c = l.outputs;
                            }
                            Activation::Scores { bias, scale } => {
                                scores = (0..l.outputs)
                                    .map(|o| {
                                        let s = dot(o, &|j: usize| map[j]);
                                        class_score(scale, bias, o, s)
                                    })
                                    .collect();
                            }
                        }
                    }
                    Layer::Float(_) => unreachable!(),
                }
            }
            assert_eq!(binary_scores(&m, &px), scores);
        }
    }
}
