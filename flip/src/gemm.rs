//! The software reference for many samples at once: a blocked bit-GEMM.
//!
//! [`crate::reference::binary_scores`] is the readable specification, one image at a time. This
//! module computes the same integers for a batch: the batch is cut into chunks of
//! [`CHUNK`] samples, one rayon task each; a task encodes its chunk once and runs every layer on
//! it, so a chunk's activations (a few KiB) and the layer's weights (at most a few hundred KiB
//! for the models flipchip builds) stay in L1/L2 between layers.
//!
//! Within a layer the popcounts run in register tiles of 4 samples x 4 neurons
//! ([`crate::popcount`]). With the AVX-512 kernel the forward pass instead keeps a chunk in the
//! sample-sliced layout of [`crate::sliced`] (eight samples per vector), which needs no
//! horizontal sums and runs close to the kernel's peak; [`batch_layer_sums`], whose callers
//! want sample-major sums, always uses the tiles.

use rayon::prelude::*;

use crate::bits::{words_for, BitMatrix, WORD_BITS};
use crate::encoding::Encoding;
use crate::featuremap;
use crate::model::{class_score, Activation, BinaryLayer, InputSpec, Layer, Model};
use crate::popcount::{self, Kernel, Shape};
use crate::reference::argmax;

/// Samples per rayon task: large enough that a task's weight loads are shared by many samples,
/// small enough that 10,000 images still make over a hundred tasks for the work stealing.
pub const CHUNK: usize = 64;

/// Samples per rayon task in a convolutional model.
const CONV_CHUNK: usize = 4;

/// Popcount words per sample (`rows x words`) below which a layer runs on the calling thread.
const SMALL_WORK: usize = 1 << 12;

/// Popcount sums of one layer for a batch: `x` holds the batch's inputs back to back, `words`
/// u64 words each (`planes` planes of `words_for(inputs)` words); `sums` gets
/// `batch x weights.rows()` sums, sample-major, equal to [`crate::reference::layer_sums`] per
/// sample. Runs on all rayon threads with the [`popcount::selected`] kernel.
///
/// Panics if `words` is not `planes * words_for(inputs)`, if `weights` is not `inputs` wide, or
/// if `x` and `sums` disagree about the batch size.
pub fn batch_layer_sums(
    weights: &BitMatrix,
    inputs: usize,
    x: &[u64],
    words: usize,
    planes: usize,
    sums: &mut [i32],
) {
    batch_layer_sums_with(
        popcount::selected(),
        weights,
        inputs,
        x,
        words,
        planes,
        sums,
    )
}

/// [`batch_layer_sums`] with a given kernel (for tests and benchmarks that compare kernels).
pub fn batch_layer_sums_with(
    kernel: Kernel,
    weights: &BitMatrix,
    inputs: usize,
    x: &[u64],
    words: usize,
    planes: usize,
    sums: &mut [i32],
) {
    assert_eq!(weights.cols(), inputs, "weights are not `inputs` wide");
    assert_eq!(words, planes * words_for(inputs), "words per sample");
    let rows = weights.rows();
    if words == 0 || rows == 0 {
        // No inputs: every sum is zero; no rows: nothing to write.
        sums.fill(0);
        return;
    }
    assert_eq!(x.len() % words, 0, "x is not whole samples");
    let batch = x.len() / words;
    assert_eq!(sums.len(), batch * rows, "sums is not batch x rows");
    if rows * words < SMALL_WORK {
        // Too little work per sample to be worth waking other threads for (a last layer of
        // ten classes, say): the calling thread does it.
        let mut scratch = Vec::new();
        for (x, sums) in x.chunks(CHUNK * words).zip(sums.chunks_mut(CHUNK * rows)) {
            chunk_sums(
                kernel,
                weights,
                inputs,
                x,
                words,
                planes,
                sums,
                &mut scratch,
            );
        }
        return;
    }
    x.par_chunks(CHUNK * words)
        .zip(sums.par_chunks_mut(CHUNK * rows))
        .for_each(|(x, sums)| {
            let mut scratch = Vec::new();
            chunk_sums(
                kernel,
                weights,
                inputs,
                x,
                words,
                planes,
                sums,
                &mut scratch,
            );
        });
}

/// One chunk of [`batch_layer_sums`] on the calling thread; `scratch` holds the disagreement
/// counts between calls so that a task allocates once.
#[allow(clippy::too_many_arguments)]
fn chunk_sums(
    kernel: Kernel,
    weights: &BitMatrix,
    inputs: usize,
    x: &[u64],
    words: usize,
    planes: usize,
    sums: &mut [i32],
    scratch: &mut Vec<u32>,
) {
    let samples = x.len() / words;
    let rows = weights.rows();
    scratch.resize(samples * rows, 0);
    let shape = Shape {
        samples,
        x_stride: words,
        rows,
        words: weights.words_per_row(),
        planes,
    };
    popcount::disagreements(kernel, shape, x, weights.words(), scratch);
    // Agreements from disagreements: every real bit of every plane either agrees or not.
    // `Model::check` keeps this within i32.
    let full = (((1u64 << planes) - 1) * inputs as u64) as i32;
    for (s, &d) in sums.iter_mut().zip(scratch.iter()) {
        *s = full - d as i32;
    }
}

/// Class scores and classes of a binary model for many images, bit-identical to
/// [`crate::reference::binary_scores`] and [`crate::reference::argmax`] per image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outputs {
    /// `images x classes` scores, image-major.
    pub scores: Vec<i32>,
    /// One class per image.
    pub classes: Vec<usize>,
}

/// Forward pass of a binary model over `images` (concatenated raw pixels,
/// `model.input.pixels()` each) on all rayon threads with the [`popcount::selected`] kernel.
///
/// Panics on a float model or if `images` is not whole images.
pub fn forward(model: &Model, images: &[u8]) -> Outputs {
    forward_with(popcount::selected(), model, images)
}

/// [`forward`] with a given kernel.
pub fn forward_with(kernel: Kernel, model: &Model, images: &[u8]) -> Outputs {
    assert!(model.is_binary(), "gemm::forward called on a float model");
    let p = model.input.pixels();
    assert_eq!(images.len() % p, 0, "images is not whole images");
    let n = images.len() / p;
    let classes_n = model.classes();
    let mut out = Outputs {
        scores: vec![0; n * classes_n],
        classes: vec![0; n],
    };
    if model.is_convolutional() {
        // A sample's windows are hundreds of rows, so a few samples already make a large GEMM.
        images
            .par_chunks(CONV_CHUNK * p)
            .zip(out.scores.par_chunks_mut(CONV_CHUNK * classes_n))
            .zip(out.classes.par_chunks_mut(CONV_CHUNK))
            .for_each_init(Buffers::default, |buf, ((img, scores), classes)| {
                conv_chunk_forward(kernel, model, img, buf, scores, classes)
            });
        return out;
    }
    images
        .par_chunks(CHUNK * p)
        .zip(out.scores.par_chunks_mut(CHUNK * classes_n))
        .zip(out.classes.par_chunks_mut(CHUNK))
        .for_each_init(Buffers::default, |buf, ((img, scores), classes)| {
            chunk_forward(kernel, model, img, buf, scores, classes)
        });
    out
}

/// The classes of `images` only (see [`forward`]).
pub fn classify(model: &Model, images: &[u8]) -> Vec<usize> {
    forward(model, images).classes
}

/// Per-thread buffers reused across chunks.
#[derive(Default)]
struct Buffers {
    x: Vec<u64>,
    next: Vec<u64>,
    sums: Vec<i32>,
    scratch: Vec<u32>,
    windows: Vec<u64>,
    #[cfg(target_arch = "x86_64")]
    sliced: crate::sliced::Buffers,
}

fn chunk_forward(
    kernel: Kernel,
    model: &Model,
    images: &[u8],
    buf: &mut Buffers,
    scores: &mut [i32],
    classes: &mut [usize],
) {
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Avx512 {
        assert!(kernel.supported(), "{kernel} kernel on a CPU without it");
        // Safety: the CPU has what the kernel needs (asserted above: F, BW, VL, VPOPCNTDQ).
        unsafe { crate::sliced::chunk_forward(model, images, &mut buf.sliced, scores, classes) };
        return;
    }
    let samples = classes.len();
    let mut words = model.input.encoding.encoded_words(model.input.pixels());
    buf.x.resize(samples * words, 0);
    encode_batch(&model.input, images, &mut buf.x);
    let mut planes = model.input.encoding.planes();
    for layer in &model.layers {
        let Layer::Binary(l) = layer else {
            unreachable!("checked binary above")
        };
        match dense_layer(kernel, l, buf, words, planes, scores, classes) {
            Some(w) => (words, planes) = (w, 1),
            None => return,
        }
    }
    unreachable!("a checked model ends in a scores layer")
}

/// One dense layer of a chunk: sums of `buf.x` (`words` per sample, `planes` planes), then
/// either the hidden bits into `buf.x` (returning their words per sample) or, for the scores
/// layer, `scores` and `classes` (returning `None`: the chunk is done).
fn dense_layer(
    kernel: Kernel,
    l: &BinaryLayer,
    buf: &mut Buffers,
    words: usize,
    planes: usize,
    scores: &mut [i32],
    classes: &mut [usize],
) -> Option<usize> {
    let samples = classes.len();
    buf.sums.resize(samples * l.outputs, 0);
    if words == 0 {
        buf.sums.fill(0);
    } else {
        chunk_sums(
            kernel,
            &l.weights,
            l.inputs,
            &buf.x,
            words,
            planes,
            &mut buf.sums,
            &mut buf.scratch,
        );
    }
    match &l.activation {
        Activation::Threshold { thresholds, invert } => {
            let words = words_for(l.outputs);
            buf.next.resize(samples * words, 0);
            for (s, o) in buf
                .sums
                .chunks_exact(l.outputs)
                .zip(buf.next.chunks_exact_mut(words))
            {
                threshold_words(thresholds, invert, s, o);
            }
            std::mem::swap(&mut buf.x, &mut buf.next);
            Some(words)
        }
        Activation::Scores { bias, scale } => {
            for ((s, sc), c) in buf
                .sums
                .chunks_exact(l.outputs)
                .zip(scores.chunks_exact_mut(l.outputs))
                .zip(classes.iter_mut())
            {
                for (k, (o, &v)) in sc.iter_mut().zip(s).enumerate() {
                    *o = class_score(scale, bias, k, v);
                }
                *c = argmax(sc);
            }
            None
        }
    }
}

/// [`chunk_forward`] for a model with convolutions and pools: each convolution is one bit-GEMM
/// over the windows of every output pixel of every sample in the chunk
/// ([`featuremap::windows`]), whose sums come out pixel-major, channel-minor: the order of the
/// output feature map.
fn conv_chunk_forward(
    kernel: Kernel,
    model: &Model,
    images: &[u8],
    buf: &mut Buffers,
    scores: &mut [i32],
    classes: &mut [usize],
) {
    let samples = classes.len();
    let mut words = model.input.encoding.encoded_words(model.input.pixels());
    buf.x.resize(samples * words, 0);
    encode_batch(&model.input, images, &mut buf.x);
    let mut planes = model.input.encoding.planes();
    for layer in &model.layers {
        let l = match layer {
            Layer::Binary(l) => l,
            Layer::MaxPool(p) => {
                let out_words = words_for(p.output_size());
                buf.next.resize(samples * out_words, 0);
                for (x, o) in buf
                    .x
                    .chunks_exact(words)
                    .zip(buf.next.chunks_exact_mut(out_words))
                {
                    featuremap::max_pool(p, x, o);
                }
                std::mem::swap(&mut buf.x, &mut buf.next);
                words = out_words;
                continue;
            }
            Layer::Float(_) => unreachable!("checked binary above"),
        };
        let Some(conv) = &l.conv else {
            // Dense layers read the flattened map as it is.
            match dense_layer(kernel, l, buf, words, planes, scores, classes) {
                Some(w) => (words, planes) = (w, 1),
                None => return,
            }
            continue;
        };
        let Activation::Threshold { thresholds, invert } = &l.activation else {
            unreachable!("a checked model's convolutions have thresholds")
        };
        let pixels = conv.output_pixels();
        let win_words = planes * words_for(conv.window());
        buf.windows.resize(samples * pixels * win_words, 0);
        for (x, w) in buf
            .x
            .chunks_exact(words)
            .zip(buf.windows.chunks_exact_mut(pixels * win_words))
        {
            featuremap::windows(conv, x, planes, w);
        }
        buf.sums.resize(samples * pixels * l.outputs, 0);
        chunk_sums(
            kernel,
            &l.weights,
            l.inputs,
            &buf.windows,
            win_words,
            planes,
            &mut buf.sums,
            &mut buf.scratch,
        );
        let out_words = words_for(pixels * l.outputs);
        let pixel_words = words_for(l.outputs);
        buf.next.resize(samples * out_words, 0);
        let mut pixel = vec![0u64; pixel_words];
        for (s, o) in buf
            .sums
            .chunks_exact(pixels * l.outputs)
            .zip(buf.next.chunks_exact_mut(out_words))
        {
            o.fill(0);
            for (px, s) in s.chunks_exact(l.outputs).enumerate() {
                threshold_words(thresholds, invert, s, &mut pixel);
                featuremap::copy_bits(&pixel, 0, o, px * l.outputs, l.outputs);
            }
        }
        std::mem::swap(&mut buf.x, &mut buf.next);
        words = out_words;
        planes = 1;
    }
    unreachable!("a checked model ends in a scores layer")
}

/// [`crate::reference::threshold_bits`] a word at a time, so the comparisons vectorise.
fn threshold_words(thresholds: &[i32], invert: &[bool], sums: &[i32], out: &mut [u64]) {
    for (((o, s), t), inv) in out
        .iter_mut()
        .zip(sums.chunks(WORD_BITS))
        .zip(thresholds.chunks(WORD_BITS))
        .zip(invert.chunks(WORD_BITS))
    {
        let mut bits = 0u64;
        for (j, ((&s, &t), &inv)) in s.iter().zip(t).zip(inv).enumerate() {
            bits |= u64::from((s >= t) ^ inv) << j;
        }
        *o = bits;
    }
}

/// Encodes many images back to back, [`Encoding::encoded_words`] words each, exactly as
/// [`Encoding::encode`] does one at a time; threshold and bit-plane encodings are packed a word
/// (64 pixels) at a time, which the compiler turns into vector compares.
pub fn encode_batch(input: &InputSpec, images: &[u8], out: &mut [u64]) {
    let p = input.pixels();
    let words = input.encoding.encoded_words(p);
    let plane = words_for(p);
    for (img, o) in images.chunks_exact(p).zip(out.chunks_exact_mut(words)) {
        match input.encoding {
            Encoding::Threshold(t) => {
                for (w, px) in o.iter_mut().zip(img.chunks(WORD_BITS)) {
                    *w = pack(px, |v| u16::from(v) >= t);
                }
            }
            Encoding::BitPlanes(planes) => {
                let shift = input.pixel_bits - planes;
                for (k, o) in o.chunks_exact_mut(plane).enumerate() {
                    let bit = shift as u32 + k as u32;
                    for (w, px) in o.iter_mut().zip(img.chunks(WORD_BITS)) {
                        *w = pack(px, |v| (v >> bit) & 1 == 1);
                    }
                }
            }
            Encoding::Thermometer(_) => input.encoding.encode(input.pixel_bits, img, o),
        }
    }
}

/// Up to 64 pixels to one word, bit `j` = `f(px[j])`.
#[inline(always)]
fn pack(px: &[u8], f: impl Fn(u8) -> bool) -> u64 {
    let mut bits = 0u64;
    for (j, &v) in px.iter().enumerate() {
        bits |= u64::from(f(v)) << j;
    }
    bits
}

/// Popcount words per image of a binary model's forward pass: every layer's
/// `outputs x planes x words_for(inputs)`, the work the popcount kernels do.
pub fn popcount_words(model: &Model) -> usize {
    let mut planes = model.input.encoding.planes();
    let mut total = 0;
    for l in &model.layers {
        let Layer::Binary(b) = l else { continue };
        let pixels = b.conv.map_or(1, |c| c.output_pixels());
        total += pixels * b.outputs * planes * words_for(b.inputs);
        planes = 1;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BinaryLayer, Metadata};
    use crate::reference::{binary_scores, layer_sums};

    use crate::train::rng::splitmix as next;

    fn random_bits(s: &mut u64, rows: usize, cols: usize) -> BitMatrix {
        let mut m = BitMatrix::zeros(rows, cols);
        for r in 0..rows {
            let words: Vec<u64> = (0..m.words_per_row()).map(|_| next(s)).collect();
            m.set_row(r, &words);
        }
        m
    }

    /// A random binary model: odd and even widths, thresholds around the middle of each
    /// layer's sum range (so both outputs occur), small biases.
    fn random_model(s: &mut u64, encoding: Encoding, pixel_bits: u8) -> Model {
        let (width, height) = (1 + (next(s) % 12) as usize, 1 + (next(s) % 9) as usize);
        let input = InputSpec {
            width,
            height,
            channels: 1 + (next(s) % 2) as usize,
            pixel_bits,
            encoding,
        };
        let mut n = input.encoded_inputs();
        let mut top = ((1i64 << input.encoding.planes()) - 1) as i32;
        let depth = 1 + (next(s) % 3) as usize;
        let mut layers = Vec::new();
        for d in 0..depth {
            let last = d + 1 == depth;
            let outputs = 1 + (next(s) % if last { 12 } else { 140 }) as usize;
            let mid = top * n as i32 / 2;
            let spread = (n as i32).max(1);
            let around = |s: &mut u64| mid + (next(s) % (2 * spread as u64 + 1)) as i32 - spread;
            let activation = if last {
                let bias = (0..outputs).map(|_| around(s) - mid).collect();
                // Per-class scales one time in three.
                let scale = if next(s).is_multiple_of(3) {
                    (0..outputs).map(|_| 1 + (next(s) % 40) as u32).collect()
                } else {
                    Vec::new()
                };
                Activation::Scores { bias, scale }
            } else {
                Activation::Threshold {
                    thresholds: (0..outputs).map(|_| around(s)).collect(),
                    invert: (0..outputs).map(|_| next(s) & 1 == 1).collect(),
                }
            };
            layers.push(Layer::Binary(BinaryLayer {
                conv: None,
                inputs: n,
                outputs,
                weights: random_bits(s, outputs, n),
                activation,
            }));
            n = outputs;
            top = 1;
        }
        let m = Model {
            input,
            layers,
            meta: Metadata::default(),
        };
        m.check().unwrap();
        m
    }

    fn encodings(s: &mut u64) -> Vec<(Encoding, u8)> {
        let mut v = vec![
            (Encoding::Threshold(128), 8),
            (Encoding::Threshold(0), 8),
            (Encoding::Threshold(7), 4),
            (Encoding::Thermometer(vec![40, 120, 200]), 8),
            (Encoding::Thermometer(vec![3]), 5),
        ];
        for p in 1..=8 {
            v.push((Encoding::BitPlanes(p), 8));
        }
        v.push((Encoding::BitPlanes(2), 5));
        v.push((Encoding::Threshold((next(s) % 256) as u16), 8));
        v
    }

    #[test]
    fn batched_forward_matches_the_per_image_reference() {
        let mut s = 99;
        for round in 0..4 {
            for (enc, bits) in encodings(&mut s) {
                let m = random_model(&mut s, enc, bits);
                let p = m.input.pixels();
                let images =
                    [1, CHUNK - 1, CHUNK + 5, 2 * CHUNK + 3][round] - usize::from(round == 0);
                let max = 1u64 << bits;
                let px: Vec<u8> = (0..images * p)
                    .map(|_| (next(&mut s) % max) as u8)
                    .collect();
                let want: Vec<i32> = px.chunks(p).flat_map(|im| binary_scores(&m, im)).collect();
                for k in Kernel::available() {
                    let out = forward_with(k, &m, &px);
                    assert_eq!(out.scores, want, "{k}, {} {}", m.input.encoding, m.arch());
                    let classes: Vec<usize> = want.chunks(m.classes()).map(argmax).collect();
                    assert_eq!(out.classes, classes);
                }
            }
        }
    }

    #[test]
    fn batched_conv_forward_matches_the_per_image_reference() {
        use crate::model::arch::{parse, LayerSpec};
        let mut s = 17;
        let cases: [(&str, usize, usize, usize); 5] = [
            ("c5-p-7-3", 8, 8, 1),
            ("c3k1-c70k3-p-c9k2-12-4", 10, 12, 2),
            ("c4k5-p-5", 12, 10, 1),
            ("c66-c2-10", 5, 6, 1),
            ("c8-p-c8-p-6", 14, 14, 1),
        ];
        for (round, (arch, w, h, ch)) in cases.iter().enumerate() {
            for (enc, bits) in encodings(&mut s).into_iter().step_by(3) {
                let input = InputSpec {
                    width: *w,
                    height: *h,
                    channels: *ch,
                    pixel_bits: bits,
                    encoding: enc,
                };
                let specs: Vec<LayerSpec> = parse(arch, input.pixels()).unwrap();
                let classes = match specs.last() {
                    Some(LayerSpec::Dense(c)) => *c,
                    _ => unreachable!(),
                };
                let m = crate::model::random::binary(next(&mut s), input, &specs, classes);
                let p = m.input.pixels();
                let images = [1, 3, CONV_CHUNK + 1, 2 * CONV_CHUNK + 3, 5][round];
                let max = 1u64 << bits;
                let px: Vec<u8> = (0..images * p)
                    .map(|_| (next(&mut s) % max) as u8)
                    .collect();
                let want: Vec<i32> = px.chunks(p).flat_map(|im| binary_scores(&m, im)).collect();
                for k in Kernel::available() {
                    let out = forward_with(k, &m, &px);
                    assert_eq!(out.scores, want, "{k}, {} {}", m.input.encoding, m.arch());
                }
            }
        }
    }

    #[test]
    fn batch_layer_sums_match_layer_sums() {
        let mut s = 5;
        for case in 0..200 {
            let inputs = 1 + (next(&mut s) % 300) as usize;
            let rows = (next(&mut s) % 19) as usize;
            let planes = 1 + (next(&mut s) % 6) as usize;
            let batch = (next(&mut s) % (2 * CHUNK as u64 + 7)) as usize;
            let w = random_bits(&mut s, rows, inputs);
            let words = planes * words_for(inputs);
            let mut x = vec![0u64; batch * words];
            for sample in x.chunks_mut(words) {
                for plane in sample.chunks_mut(words_for(inputs)) {
                    for v in plane.iter_mut() {
                        *v = next(&mut s);
                    }
                    crate::bits::clear_padding(plane, inputs);
                }
            }
            let mut want = vec![0i32; batch * rows];
            for (xs, ws) in x.chunks(words).zip(want.chunks_mut(rows.max(1))) {
                layer_sums(&w, inputs, xs, planes, ws);
            }
            for k in Kernel::available() {
                let mut got = vec![i32::MIN; batch * rows];
                batch_layer_sums_with(k, &w, inputs, &x, words, planes, &mut got);
                assert_eq!(got, want, "case {case}, {k}");
            }
            let mut got = vec![i32::MIN; batch * rows];
            batch_layer_sums(&w, inputs, &x, words, planes, &mut got);
            assert_eq!(got, want);
        }
    }

    #[test]
    fn batch_encoding_matches_encode() {
        let mut s = 3;
        for (enc, bits) in encodings(&mut s) {
            let input = InputSpec {
                width: 29,
                height: 3,
                channels: 1,
                pixel_bits: bits,
                encoding: enc.clone(),
            };
            let p = input.pixels();
            let px: Vec<u8> = (0..5 * p)
                .map(|_| (next(&mut s) % (1 << bits)) as u8)
                .collect();
            let words = enc.encoded_words(p);
            let mut got = vec![u64::MAX; 5 * words];
            encode_batch(&input, &px, &mut got);
            for (im, g) in px.chunks(p).zip(got.chunks(words)) {
                let mut want = vec![0u64; words];
                enc.encode(bits, im, &mut want);
                assert_eq!(g, &want[..], "{enc}");
            }
        }
    }
}
