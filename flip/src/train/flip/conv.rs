//! Convolutions in the flip optimizer: a convolution is a dense layer whose samples are the
//! windows of every output pixel of every image in the batch.
//!
//! - **Forward** (the integer semantics of [`crate::reference::binary_scores`]): the windows of
//!   each image ([`crate::featuremap::windows`]) are the rows of one bit-GEMM
//!   ([`crate::gemm::batch_layer_sums`]); its sums come out pixel-major, channel-minor, the
//!   order of the output map, which is thresholded per output channel and, where the
//!   architecture says so, max-pooled ([`crate::featuremap::max_pool`]).
//! - **Signal** of a convolution, per image x output pixel x channel: the signal at its output
//!   map (from the dense layer above through the implicit flatten, from the convolution above
//!   by col2im, or routed through a pool by [`super::pool`]) kept and weighted by the same
//!   triangle window around the channel's threshold as a dense neuron's (step 3).
//! - **Signal passed down**: per window, `sum_o c_o * w_o` over the output channels (a 16-bit
//!   integer product, as a dense layer's), and col2im: each input bit of the layer below gets
//!   the sum over the windows that read it.
//! - **Weight signal** `q = sum over batch x output pixels of c * x` (centred signal times the
//!   window's inputs, grey levels on a bit-plane first layer): 16-bit products over chunks of
//!   [`ROWS`] windows on all threads, added in `i64`. Integer sums do not depend on their
//!   order, so neither does `q` on the thread count.
//!
//! # Integer ranges
//! A convolution's signal gets the bits [`super::signal_bits`] allows for all its windows of
//! the batch (not a chunk of samples as a dense layer): `windows * top * 2^bits < 2^31`, so
//! every `q` fits an `i32` exactly (batch 200 on 28x28 images: 135,200 windows of grey levels
//! up to 15 leave 10 bits; on feature maps, 115,200 windows leave 14). Past `2^31` windows
//! times levels the signal keeps 0 bits and `q`, summed in `i64`, saturates at the `i32`
//! range. Within one window's product the +-1 weights of at most [`super::MAX_WIDTH`]
//! channels add signals below `2^15`; an input bit lies in up to `kernel^2` windows, and
//! [`super::FlipOptimizer::new`] keeps `kernel^2 x channels <= MAX_WIDTH`, so col2im is exact
//! in `i32` too.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::intgemm::{self, Kernel, Pairs};
use super::{
    backward_signal, fit_bits, hidden_delta, input_top, passed_down, sample_pairs, sign_pairs,
    signal_bits, signs, update_layers, BatchStats, FlipOptimizer, LayerPass, StepCtx, TrainData,
    FRAC, SIGNAL_CHUNK,
};
use crate::bits::{words_for, BitMatrix, WORD_BITS};
use crate::featuremap;
use crate::gemm::batch_layer_sums;
use crate::model::{Conv, MaxPool};

/// Windows per product of the weight signal: a chunk's inputs (`ROWS x window` 16-bit values,
/// 1.2 MB for a 3x3x32 window) stay in cache while every channel's row of `q` is summed.
pub(super) const ROWS: usize = 2048;

/// Where a convolution slides, and the pool after it, as the optimizer's state keeps them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Geometry {
    /// Input height, width, channels and kernel side.
    conv: [usize; 4],
    /// Input height, width, channels and window side of the pool after the convolution.
    pool: Option<[usize; 4]>,
}

impl Geometry {
    pub(super) fn new(c: Conv, pool: Option<MaxPool>) -> Geometry {
        let mut g = Geometry {
            conv: [c.height, c.width, c.channels, c.kernel],
            pool: None,
        };
        if let Some(p) = pool {
            g.set_pool(p);
        }
        g
    }

    pub(super) fn conv(&self) -> Conv {
        let [height, width, channels, kernel] = self.conv;
        Conv {
            height,
            width,
            channels,
            kernel,
        }
    }

    pub(super) fn pool(&self) -> Option<MaxPool> {
        self.pool.map(|[height, width, channels, size]| MaxPool {
            height,
            width,
            channels,
            size,
        })
    }

    pub(super) fn set_pool(&mut self, p: MaxPool) {
        self.pool = Some([p.height, p.width, p.channels, p.size]);
    }
}

/// A convolution's inputs of one batch, kept for its weight signal.
pub(super) enum ConvPass {
    /// The windows' bits, `windows x words` (one plane).
    Bits { windows: Vec<u64>, words: usize },
    /// The first layer's input values (grey levels or +-1), `batch x conv.input_size()`; its
    /// windows are gathered from them chunk by chunk.
    Values { maps: Vec<i16> },
}

/// A whole weight signal: `q`, `outputs x ld`.
pub(super) struct Ready {
    pub(super) q: Vec<i32>,
    pub(super) ld: usize,
}

/// Writes the inputs of window `r` (image `r / pixels`, output pixel `r % pixels`) as
/// integers into `row` (`conv.window()` entries).
fn window_values(conv: &Conv, pass: &ConvPass, r: usize, row: &mut [i16]) {
    match pass {
        ConvPass::Bits { windows, words } => signs(&windows[r * words..(r + 1) * words], row),
        ConvPass::Values { maps } => gather(conv, maps, r, row),
    }
}

/// Window `r` of the input values `maps` (`batch x conv.input_size()`) into `row`.
fn gather(conv: &Conv, maps: &[i16], r: usize, row: &mut [i16]) {
    let px = conv.output_pixels();
    let (b, p) = (r / px, r % px);
    let (y, x) = (p / conv.out_width(), p % conv.out_width());
    let map = &maps[b * conv.input_size()..(b + 1) * conv.input_size()];
    let run = conv.kernel * conv.channels;
    for (ky, dst) in row.chunks_exact_mut(run).enumerate() {
        let from = ((y + ky) * conv.width + x) * conv.channels;
        dst.copy_from_slice(&map[from..from + run]);
    }
}

/// Packs `A[r][k] = value(r, k)` (`rows x k`) into `out` as [`intgemm::pack_a`] does, reusing
/// its allocation.
fn pack_into(out: &mut Vec<u32>, rows: usize, k: usize, value: impl Fn(usize, usize) -> i16) {
    let kp = k.div_ceil(2);
    out.clear();
    out.resize(rows * kp, 0);
    if kp == 0 {
        return;
    }
    for (r, row) in out.chunks_exact_mut(kp).enumerate() {
        for (p, v) in row.iter_mut().enumerate() {
            let lo = value(r, 2 * p) as u16 as u32;
            let hi = if 2 * p + 1 < k {
                value(r, 2 * p + 1) as u16 as u32
            } else {
                0
            };
            *v = lo | hi << 16;
        }
    }
}

/// The weight signal of a convolution of `m` channels: `q_ij = sum_r c_ri * x_rj` over every
/// window `r` of the batch (`c` is `windows x m`).
pub(super) fn weight_signal(conv: &Conv, pass: &ConvPass, c: &[i32], m: usize) -> Ready {
    let n = conv.window();
    let windows = c.len() / m.max(1);
    let ld = n.div_ceil(intgemm::LANES) * intgemm::LANES;
    let kernel = Kernel::detect();
    let total = (0..windows.div_ceil(ROWS))
        .into_par_iter()
        .fold(
            || (vec![0i64; m * ld], Vec::new(), vec![0i32; m * ld]),
            |(mut acc, mut a, mut part), chunk| {
                let r0 = chunk * ROWS;
                let rows = ROWS.min(windows - r0);
                let x = Pairs::from_rows(rows, n, |k, row| window_values(conv, pass, r0 + k, row));
                pack_into(&mut a, m, rows, |i, k| c[(r0 + k) * m + i] as i16);
                intgemm::gemm_block(&a, m, &x, &mut part, kernel);
                acc.iter_mut().zip(&part).for_each(|(s, &v)| *s += v as i64);
                (acc, a, part)
            },
        )
        .map(|(acc, _, _)| acc)
        .reduce(
            || vec![0i64; m * ld],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(s, &v)| *s += v);
                a
            },
        );
    let q = total
        .into_iter()
        .map(|v| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
        .collect();
    Ready { q, ld }
}

/// The signal passed below a convolution: for each window `sum_o down_o * w_o` over its `m`
/// channels (`down` is `batch x pixels x m`), added by col2im into the input map of each
/// image: `batch x conv.input_size()`. Exact in `i32` (see the module doc).
pub(super) fn backward(conv: &Conv, down: &[i32], weights: &BitMatrix, batch: usize) -> Vec<i32> {
    let m = weights.rows();
    let w = sign_pairs(weights);
    let (px, size) = (conv.output_pixels(), conv.input_size());
    let run = conv.kernel * conv.channels;
    let kernel = Kernel::detect();
    let mut out = vec![0i32; batch * size];
    if m == 0 || size == 0 {
        return out;
    }
    out.par_chunks_mut(size)
        .zip(down.par_chunks(px * m))
        .for_each_init(
            || (Vec::new(), Vec::new()),
            |(a, g), (o, d)| {
                pack_into(a, px, m, |p, i| d[p * m + i] as i16);
                g.resize(px * w.ld, 0);
                intgemm::gemm_block(a, px, &w, g, kernel);
                for p in 0..px {
                    let (y, x) = (p / conv.out_width(), p % conv.out_width());
                    let gp = &g[p * w.ld..p * w.ld + conv.window()];
                    for (ky, src) in gp.chunks_exact(run).enumerate() {
                        let from = ((y + ky) * conv.width + x) * conv.channels;
                        for (v, &s) in o[from..from + run].iter_mut().zip(src) {
                            *v += s;
                        }
                    }
                }
            },
        );
    out
}

/// Thresholds a convolution's sums (`batch x pixels x m`) into its output maps, `words` words
/// per image.
fn threshold_maps(sums: &[i32], t: &[i32], per_image: usize, words: usize, out: &mut [u64]) {
    let m = t.len();
    out.par_chunks_mut(words)
        .zip(sums.par_chunks(per_image))
        .for_each(|(o, s)| {
            o.fill(0);
            for (px, sp) in s.chunks_exact(m).enumerate() {
                for (k, (&v, &ti)) in sp.iter().zip(t).enumerate() {
                    let bit = px * m + k;
                    o[bit / WORD_BITS] |= ((v >= ti) as u64) << (bit % WORD_BITS);
                }
            }
        });
}

/// Popcount sums of a first-layer convolution (`batch x pixels x outputs`) and the batch's
/// input values (`batch x conv.input_size()`).
///
/// A popcount sum over `P` bit planes is `(dot + (2^P - 1) n) / 2` for the dot product of the
/// +-1 weights with the centred grey levels `2v - (2^P - 1)` (with `P = 1`, the +-1 bits), so
/// the sums come from one 16-bit integer product of the windows' values with the weights:
/// exact (`n (2^P - 1) < 2^30`, checked by [`FlipOptimizer::new`]), and a few multiply-adds
/// per window where the bit-plane popcount takes a word per plane.
fn first_sums(
    opt: &FlipOptimizer,
    data: &TrainData,
    batch: &[u32],
    conv: &Conv,
) -> (Vec<i32>, Vec<i16>) {
    let layer = &opt.layers[0];
    let (n, m) = (layer.inputs, layer.outputs);
    let (enc, bits) = (&opt.input.encoding, opt.input.pixel_bits);
    let size = conv.input_size();
    let px = conv.output_pixels();
    let bsz = batch.len();
    let mut maps = vec![0i16; bsz * size];
    maps.par_chunks_mut(size.max(1))
        .zip(batch.par_iter())
        .for_each(|(o, &i)| enc.input_values(bits, data.image(i as usize), o));
    let w = Pairs::from_rows(n, m, |j, row| {
        for (o, v) in row.iter_mut().enumerate() {
            *v = if layer.weights.get(o, j) { 1 } else { -1 };
        }
    });
    let full = (((1i64 << layer.planes) - 1) * n as i64) as i32;
    let mut sums = vec![0i32; bsz * px * m];
    if m == 0 || px == 0 {
        return (sums, maps);
    }
    let kernel = Kernel::detect();
    sums.par_chunks_mut(px * m).enumerate().for_each_init(
        || (Vec::new(), Vec::new(), vec![0i16; n]),
        |(a, c, row), (b, out)| {
            pack_into(a, px, n, |_, _| 0);
            let kp = n.div_ceil(2);
            for p in 0..px {
                gather(conv, &maps, b * px + p, row);
                for (q, v) in a[p * kp..(p + 1) * kp].iter_mut().enumerate() {
                    let lo = row[2 * q] as u16 as u32;
                    let hi = row.get(2 * q + 1).map_or(0, |&h| h as u16 as u32);
                    *v = lo | hi << 16;
                }
            }
            c.resize(px * w.ld, 0);
            intgemm::gemm_block(a, px, &w, c, kernel);
            for (o, cr) in out.chunks_exact_mut(m).zip(c.chunks_exact(w.ld)) {
                for (s, &d) in o.iter_mut().zip(cr) {
                    *s = (d + full) / 2;
                }
            }
        },
    );
    (sums, maps)
}

/// The forward pass of a network with convolutions, keeping what the backward pass needs.
pub(super) fn forward(opt: &mut FlipOptimizer, data: &TrainData, batch: &[u32]) -> Vec<LayerPass> {
    let bsz = batch.len();
    let nl = opt.layers.len();
    let mut words = data.words;
    let mut packed: Vec<u64> = Vec::with_capacity(bsz * words);
    for &i in batch {
        packed.extend_from_slice(data.encoded(i as usize));
    }
    let mut planes = opt.layers[0].planes;
    let mut passes = Vec::with_capacity(nl);
    for l in 0..nl {
        let layer = &opt.layers[l];
        let (n, m) = (layer.inputs, layer.outputs);
        let geometry = layer.geometry.clone();
        let (sums, x, conv_pass) = match &geometry {
            None => {
                let mut sums = vec![0i32; bsz * m];
                batch_layer_sums(&layer.weights, n, &packed, words, planes, &mut sums);
                let x = sample_pairs(bsz, n, |b, row| {
                    signs(&packed[b * words..(b + 1) * words], row)
                });
                (sums, x, None)
            }
            Some(g) if l == 0 => {
                let (sums, maps) = first_sums(opt, data, batch, &g.conv());
                (sums, Vec::new(), Some(ConvPass::Values { maps }))
            }
            Some(g) => {
                let conv = g.conv();
                let px = conv.output_pixels();
                let ww = planes * words_for(conv.window());
                let mut windows = vec![0u64; bsz * px * ww];
                windows
                    .par_chunks_mut((px * ww).max(1))
                    .zip(packed.par_chunks(words.max(1)))
                    .for_each(|(w, x)| featuremap::windows(&conv, x, planes, w));
                let mut sums = vec![0i32; bsz * px * m];
                batch_layer_sums(&layer.weights, n, &windows, ww, planes, &mut sums);
                (
                    sums,
                    Vec::new(),
                    Some(ConvPass::Bits { windows, words: ww }),
                )
            }
        };
        if !opt.initialised {
            // Start every threshold at the batch's mean sum (over its windows, for a
            // convolution), as batch norm would centre it.
            let rows = (sums.len() / m) as i64;
            let mut mean = vec![0i64; m];
            for r in sums.chunks_exact(m) {
                mean.iter_mut().zip(r).for_each(|(a, &v)| *a += v as i64);
            }
            let layer = &mut opt.layers[l];
            for (b, t) in layer.bias.iter_mut().zip(&mean) {
                *b = if l + 1 < nl { (t / rows) << FRAC } else { 0 };
            }
        }
        if l + 1 < nl {
            let layer = &opt.layers[l];
            let t: Vec<i32> = (0..m).map(|i| layer.int_bias(i)).collect();
            let per_image = sums.len() / bsz.max(1);
            let out_words = words_for(per_image);
            let mut next = vec![0u64; bsz * out_words];
            threshold_maps(&sums, &t, per_image.max(1), out_words.max(1), &mut next);
            (packed, words) = match geometry.as_ref().and_then(|g| g.pool()) {
                Some(p) => {
                    let pw = words_for(p.output_size());
                    let mut pooled = vec![0u64; bsz * pw];
                    pooled
                        .par_chunks_mut(pw.max(1))
                        .zip(next.par_chunks(out_words.max(1)))
                        .for_each(|(o, x)| featuremap::max_pool(&p, x, o));
                    (pooled, pw)
                }
                None => (next, out_words),
            };
            planes = 1;
        }
        passes.push(LayerPass {
            sums,
            x,
            conv: conv_pass,
        });
    }
    opt.initialised = true;
    passes
}

/// One step of a network with convolutions (see the module doc and [`super`]'s steps 1-6).
pub(super) fn step(
    opt: &mut FlipOptimizer,
    data: &TrainData,
    batch: &[u32],
    step: u64,
    progress: f64,
) -> BatchStats {
    let mut passes = forward(opt, data, batch);
    let nl = opt.layers.len();
    let bsz = batch.len();
    let s = opt.settings.clone();
    let rows: Vec<usize> = opt
        .layers
        .iter()
        .map(|l| bsz * l.geometry.as_ref().map_or(1, |g| g.conv().output_pixels()))
        .collect();
    let bits: Vec<u32> = (0..nl)
        .map(|l| {
            let top = input_top(&opt.input.encoding, l);
            if opt.layers[l].geometry.is_some() {
                signal_bits(rows[l], top)
            } else {
                signal_bits(rows[l].min(SIGNAL_CHUNK), top)
            }
        })
        .collect();
    let (mut delta, stats) = opt.output_error(data, batch, &passes[nl - 1].sums);
    fit_bits(&mut delta, bits[nl - 1]);
    // A layer's sums are done with once its signal is known (the update reads only the
    // inputs), so each is freed on the way down, before the signals below it are built.
    passes[nl - 1].sums = Vec::new();
    let ctx = StepCtx {
        lr: s.lr * super::cosine(progress, s.lr_end),
        progress,
        step,
        seed: opt.seed,
        nl,
        bits: bits.clone(),
        settings: s,
    };
    let mut deltas: Vec<Vec<i32>> = vec![Vec::new(); nl];
    deltas[nl - 1] = delta;
    for l in (0..nl - 1).rev() {
        let above = &opt.layers[l + 1];
        let ma = above.outputs;
        // The centred copy passed down goes as soon as its product is taken.
        let mut g = {
            let down = passed_down(&deltas[l + 1], ma, bits[l + 1], &ctx.settings);
            match &above.geometry {
                None => backward_signal(&down, &sign_pairs(&above.weights), bsz, ma),
                Some(geo) => backward(&geo.conv(), &down, &above.weights, bsz),
            }
        };
        let sums = std::mem::take(&mut passes[l].sums);
        if let Some(p) = opt.layers[l].geometry.as_ref().and_then(Geometry::pool) {
            g = super::pool::route(&p, &sums, &g, bsz);
        }
        deltas[l] = hidden_delta(
            &mut opt.layers[l],
            &sums,
            g,
            rows[l],
            bits[l],
            &ctx.settings,
        );
    }
    let refs: Vec<&[i32]> = deltas.iter().map(Vec::as_slice).collect();
    update_layers(&mut opt.layers, 0, &passes, &refs, &ctx);
    stats
}

#[cfg(test)]
mod tests {
    use super::super::tests::{dense, sets};
    use super::super::{Acc, Optimizer, MAX_WIDTH};
    use super::*;
    use crate::encoding::Encoding;
    use crate::model::arch::{self, LayerShape};
    use crate::model::{InputSpec, Layer};
    use crate::train::rng::Stream;
    use crate::train::run_steps;

    /// An 8x8 three-class task: a bright horizontal bar (class 0), vertical bar (1) or 2x2
    /// block (2) at a random place, on noise.
    fn toy8(samples: usize, seed: u64) -> (InputSpec, Vec<u8>, Vec<u8>) {
        let input = InputSpec {
            width: 8,
            height: 8,
            channels: 1,
            pixel_bits: 8,
            encoding: Encoding::BitPlanes(2),
        };
        let mut s = Stream::new(seed, 88);
        let mut images = Vec::with_capacity(samples * 64);
        let mut labels = Vec::with_capacity(samples);
        for _ in 0..samples {
            let c = (s.next_u64() % 3) as u8;
            let (y0, x0) = ((s.next_u64() % 6) as usize, (s.next_u64() % 6) as usize);
            let mut img: Vec<u8> = (0..64).map(|_| (s.next_u64() % 100) as u8).collect();
            let lit: Vec<(usize, usize)> = match c {
                0 => (0..3).map(|d| (y0, x0 + d)).collect(),
                1 => (0..3).map(|d| (y0 + d, x0)).collect(),
                _ => vec![(y0, x0), (y0 + 1, x0), (y0, x0 + 1), (y0 + 1, x0 + 1)],
            };
            for (y, x) in lit {
                img[y * 8 + x] = 200 + (s.next_u64() % 56) as u8;
            }
            images.extend(img);
            labels.push(c);
        }
        (input, images, labels)
    }

    fn net(input: &InputSpec, a: &str, classes: usize) -> Vec<LayerShape> {
        let specs = arch::parse(a, input.encoded_inputs()).unwrap();
        arch::shapes(&specs, input, classes).unwrap()
    }

    /// Scores of `batch` under the trainer's own forward pass.
    fn trainer_scores(opt: &mut FlipOptimizer, data: &TrainData, batch: &[u32]) -> Vec<i32> {
        let passes = forward(opt, data, batch);
        let last = &opt.layers[opt.layers.len() - 1];
        let c = last.outputs;
        passes[passes.len() - 1]
            .sums
            .chunks_exact(c)
            .flat_map(|s| (0..c).map(move |k| s[k] + last.int_bias(k)))
            .collect()
    }

    fn loss(opt: &mut FlipOptimizer, data: &TrainData, batch: &[u32]) -> f64 {
        let passes = forward(opt, data, batch);
        opt.output_error(data, batch, &passes[passes.len() - 1].sums)
            .1
            .loss
    }

    #[test]
    fn exported_conv_model_reproduces_the_trainers_forward() {
        let (input, images, labels) = toy8(120, 1);
        let data = TrainData::new(&input, &images, &labels, 3);
        // Conv, pool, conv straight into a dense layer, dense.
        let shapes = net(&input, "c4-p-c6-12-3", 3);
        let mut opt = FlipOptimizer::new(input.clone(), &shapes, 3, &[]).unwrap();
        for t in 0..6u64 {
            let batch: Vec<u32> = (0..20).map(|i| ((t * 20 + i) % 120) as u32).collect();
            opt.step(&data, &batch, t, t as f64 / 6.0);
        }
        let model = opt.export();
        model.check().unwrap();
        assert_eq!(model.arch(), "c4-p-c6-12-3");
        assert!(matches!(model.layers[1], Layer::MaxPool(_)));
        let all: Vec<u32> = (0..120).collect();
        let ours = trainer_scores(&mut opt, &data, &all);
        let batched = crate::gemm::forward(&model, &images).scores;
        assert_eq!(ours, batched);
        for i in 0..120 {
            let want = crate::reference::binary_scores(&model, &images[i * 64..(i + 1) * 64]);
            assert_eq!(&ours[i * 3..i * 3 + 3], &want[..], "sample {i}");
        }
        // The scores are not all alike, so the comparison compares something.
        assert!(ours.chunks(3).any(|s| s != &ours[..3]));
    }

    #[test]
    fn one_step_on_one_sample_lowers_its_loss_in_a_conv_net() {
        let (input, images, labels) = toy8(40, 9);
        let data = TrainData::new(&input, &images, &labels, 3);
        let shapes = net(&input, "c4-p-c6-12-3", 3);
        // As in the dense test: thresholds fixed, flips only where the signal is large and
        // agrees with the weight's sign. A flipped convolution weight moves a whole channel's
        // map (every pixel of it, some far from the small linear step the signal describes),
        // so unlike the dense test not every step lowers the loss: most do, and together
        // they do.
        let params = sets(&[
            ("center", "off"),
            ("lr_threshold", "0"),
            ("decay", "1"),
            ("threshold", "60"),
            ("lr", "30"),
        ]);
        let (mut lower, mut higher, mut change) = (0, 0, 0.0);
        for i in 0..40u32 {
            let mut opt = FlipOptimizer::new(input.clone(), &shapes, i as u64, &params).unwrap();
            let weights = |o: &FlipOptimizer| -> Vec<BitMatrix> {
                o.layers.iter().map(|l| l.weights.clone()).collect()
            };
            let before = weights(&opt);
            opt.step(&data, &[i], 0, 0.0);
            assert_eq!(before, weights(&opt), "the first step sets scales only");
            let l0 = loss(&mut opt, &data, &[i]);
            opt.step(&data, &[i], 1, 0.0);
            let l1 = loss(&mut opt, &data, &[i]);
            change += l1 - l0;
            if l1 < l0 {
                lower += 1;
            } else if l1 > l0 {
                higher += 1;
            }
        }
        assert!(lower >= 10, "only {lower} steps lowered the loss");
        assert!(
            lower >= 3 * higher,
            "{lower} steps lowered the loss, {higher} raised it"
        );
        assert!(change < 0.0, "the loss rose by {change} in total");
    }

    #[test]
    fn threads_and_resume_do_not_change_a_conv_model() {
        let (input, images, labels) = toy8(64, 11);
        let data = TrainData::new(&input, &images, &labels, 3);
        let shapes = net(&input, "c4-p-c6-12-3", 3);
        let batches: Vec<Vec<u32>> = (0..6)
            .map(|b| (0..17).map(|i| ((b * 17 + i) % 64) as u32).collect())
            .collect();
        for params in [
            sets(&[]),
            sets(&[("acc_bits", "16"), ("ste", "box"), ("center", "off")]),
            sets(&[("conv_acc_bits", "16")]),
        ] {
            let make = |seed| FlipOptimizer::new(input.clone(), &shapes, seed, &params);
            let boxed = |seed| Box::new(make(seed).unwrap()) as Box<dyn Optimizer>;
            let run = |threads, split| run_steps(&boxed, &data, &batches, threads, split);
            let (a, ma) = run(1, None);
            let (b, mb) = run(2, None);
            let (c, mc) = run(3, Some(3));
            assert!(
                a == b && ma == mb,
                "{params:?}: thread count changed the result"
            );
            assert!(a == c && ma == mc, "{params:?}: resume changed the result");
            assert_ne!(make(9).unwrap().export(), ma, "training changed nothing");
        }
    }

    #[test]
    fn conv_acc_bits_sets_the_accumulators_of_convolutions_only() {
        let (input, _, _) = toy8(8, 1);
        let shapes = net(&input, "c4-p-c6-12-3", 3);
        let widths = |params: &[(&str, &str)]| -> Vec<u32> {
            let opt = FlipOptimizer::new(input.clone(), &shapes, 1, &sets(params)).unwrap();
            opt.layers
                .iter()
                .map(|l| match l.acc {
                    Acc::I8(_) => 8,
                    Acc::I16(_) => 16,
                })
                .collect()
        };
        assert_eq!(widths(&[("conv_acc_bits", "8")]), [8, 8, 8, 8]);
        assert_eq!(widths(&[("conv_acc_bits", "16")]), [16, 16, 8, 8]);
        assert_eq!(
            widths(&[("conv_acc_bits", "8"), ("acc_bits", "16")]),
            [8, 8, 16, 16]
        );
        // The state counts each layer at its own width: one more byte per convolution weight.
        let state = |bits: &str| {
            FlipOptimizer::new(input.clone(), &shapes, 1, &sets(&[("conv_acc_bits", bits)]))
                .unwrap()
                .state_bytes()
        };
        let conv_weights: usize = shapes
            .iter()
            .filter_map(|s| match s {
                LayerShape::Conv { conv, outputs } => Some(conv.window() * outputs),
                _ => None,
            })
            .sum();
        assert_eq!(state("16") - state("8"), conv_weights);
        let err = FlipOptimizer::new(input.clone(), &shapes, 1, &sets(&[("conv_acc_bits", "12")]))
            .unwrap_err();
        assert!(err.contains("conv_acc_bits=12: expected 8 or 16"), "{err}");
    }

    #[test]
    fn a_small_conv_net_learns_the_digits() {
        let d = crate::data::optdigits().unwrap();
        let input = InputSpec {
            width: d.width,
            height: d.height,
            channels: d.channels,
            pixel_bits: d.pixel_bits,
            encoding: Encoding::default_for(d.pixel_bits),
        };
        let data = TrainData::new(&input, &d.train.images, &d.train.labels, d.classes);
        let shapes = net(&input, "c16-p-c32-64-10", d.classes);
        let params = sets(&[("lr", "0.5"), ("temperature", "1")]);
        let mut opt = FlipOptimizer::new(input.clone(), &shapes, 1, &params).unwrap();
        let (n, epochs, bsz) = (d.train.len(), 8, 30);
        let steps = epochs * n.div_ceil(bsz);
        let mut t = 0;
        for e in 0..epochs {
            let order = crate::train::rng::permutation(n, e as u64 + 7);
            for b in order.chunks(bsz) {
                opt.step(&data, b, t as u64, t as f64 / steps as f64);
                t += 1;
            }
        }
        let acc = crate::reference::accuracy(&opt.export(), &d.test.images, &d.test.labels);
        assert!(acc > 0.85, "test accuracy {acc}");
    }

    /// `q` of a convolution in `i64`, one window at a time.
    fn naive_q(conv: &Conv, pass: &ConvPass, c: &[i32], m: usize) -> Vec<i64> {
        let n = conv.window();
        let mut q = vec![0i64; m * n];
        let mut row = vec![0i16; n];
        for r in 0..c.len() / m {
            window_values(conv, pass, r, &mut row);
            for i in 0..m {
                for j in 0..n {
                    q[i * n + j] += c[r * m + i] as i64 * row[j] as i64;
                }
            }
        }
        q
    }

    fn ready_rows(r: &Ready, m: usize, n: usize) -> Vec<i64> {
        (0..m)
            .flat_map(|i| r.q[i * r.ld..i * r.ld + n].iter().map(|&v| v as i64))
            .collect()
    }

    #[test]
    fn weight_signal_is_exact_over_a_batch_of_windows_at_the_edge() {
        // Batch 200 of 28x28 grey levels up to 15 on a bit-plane first layer: 135,200 windows
        // leave the signal 10 bits, and every product at its largest with one sign sums to
        // just under 2^31.
        let conv = Conv {
            height: 28,
            width: 28,
            channels: 1,
            kernel: 3,
        };
        let (bsz, m, top) = (200usize, 3usize, 15i64);
        let windows = bsz * conv.output_pixels();
        assert_eq!(windows, 135_200);
        let bits = signal_bits(windows, top);
        assert_eq!(bits, 10);
        let mut s = Stream::new(4, 4);
        let maps: Vec<i16> = (0..bsz * 784)
            .map(|k| {
                if k % 2 == 0 {
                    15
                } else {
                    -15 - 2 * (s.next_u64() % 2) as i16 + 2
                }
            })
            .collect();
        // Channel 0: -2^bits everywhere (against the +15 of every even pixel); channel 1:
        // 2^bits - 1; channel 2: random.
        let c: Vec<i32> = (0..windows * m)
            .map(|k| match k % m {
                0 => -(1 << bits),
                1 => (1 << bits) - 1,
                _ => (s.next_u64() % 2001) as i32 - 1000,
            })
            .collect();
        let mut all15 = maps.clone();
        all15.iter_mut().for_each(|v| *v = 15);
        for maps in [maps, all15] {
            let pass = ConvPass::Values { maps };
            let got = ready_rows(&weight_signal(&conv, &pass, &c, m), m, 9);
            let want = naive_q(&conv, &pass, &c, m);
            assert_eq!(got, want);
        }
        let edge = -(windows as i64) * (1 << bits) * top;
        // Within an i32, and past three quarters of its negative range.
        assert!(edge >= i32::MIN as i64 && edge < -(3i64 << 29));
        let pass = ConvPass::Values {
            maps: vec![15; bsz * 784],
        };
        assert_eq!(
            weight_signal(&conv, &pass, &c, m).q[0] as i64,
            edge,
            "the edge is tested"
        );
    }

    #[test]
    fn weight_signal_of_window_bits_matches_the_naive_sum() {
        let conv = Conv {
            height: 7,
            width: 6,
            channels: 5,
            kernel: 3,
        };
        let (bsz, m) = (9usize, 7usize);
        let mut s = Stream::new(5, 5);
        let words = words_for(conv.window());
        let windows = bsz * conv.output_pixels();
        let mut bits_of = vec![0u64; windows * words];
        let maps: Vec<u64> = (0..bsz * words_for(conv.input_size()))
            .map(|_| s.next_u64())
            .collect();
        let mw = words_for(conv.input_size());
        for b in 0..bsz {
            let mut map = maps[b * mw..(b + 1) * mw].to_vec();
            crate::bits::clear_padding(&mut map, conv.input_size());
            let per = conv.output_pixels() * words;
            featuremap::windows(&conv, &map, 1, &mut bits_of[b * per..(b + 1) * per]);
        }
        let c: Vec<i32> = (0..windows * m)
            .map(|_| (s.next_u64() % 65535) as i32 - 32767)
            .collect();
        let pass = ConvPass::Bits {
            windows: bits_of,
            words,
        };
        let got = ready_rows(&weight_signal(&conv, &pass, &c, m), m, conv.window());
        assert_eq!(got, naive_q(&conv, &pass, &c, m));
    }

    /// col2im of `sum_o down_o * w_o` in `i64`.
    fn naive_backward(conv: &Conv, down: &[i32], w: &BitMatrix, bsz: usize) -> Vec<i64> {
        let m = w.rows();
        let (k, ch) = (conv.kernel, conv.channels);
        let px = conv.output_pixels();
        let mut out = vec![0i64; bsz * conv.input_size()];
        for b in 0..bsz {
            for p in 0..px {
                let (y, x) = (p / conv.out_width(), p % conv.out_width());
                for ky in 0..k {
                    for kx in 0..k {
                        for c in 0..ch {
                            let col = (ky * k + kx) * ch + c;
                            let at = ((y + ky) * conv.width + x + kx) * ch + c;
                            for o in 0..m {
                                let sign = if w.get(o, col) { 1 } else { -1 };
                                out[b * conv.input_size() + at] +=
                                    down[(b * px + p) * m + o] as i64 * sign;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn backward_is_col2im_of_the_channel_sums() {
        let conv = Conv {
            height: 6,
            width: 7,
            channels: 3,
            kernel: 3,
        };
        let (bsz, m) = (3usize, 5usize);
        let w = crate::train::rng::random_bits(m, conv.window(), 3, 3);
        let mut s = Stream::new(6, 6);
        let down: Vec<i32> = (0..bsz * conv.output_pixels() * m)
            .map(|_| (s.next_u64() % 65536) as i32 - 32768)
            .collect();
        let got: Vec<i64> = backward(&conv, &down, &w, bsz)
            .into_iter()
            .map(i64::from)
            .collect();
        assert_eq!(got, naive_backward(&conv, &down, &w, bsz));
    }

    #[test]
    fn backward_is_exact_at_the_widest_fan_out() {
        // A 5x5 map of one channel under a 3x3 kernel: the centre bit lies in all nine
        // windows; 7281 channels make kernel^2 x channels = 65529 <= MAX_WIDTH, and every
        // signal at -2^15 against +1 weights sums to -65529 * 2^15, just inside an i32.
        let conv = Conv {
            height: 5,
            width: 5,
            channels: 1,
            kernel: 3,
        };
        let m = MAX_WIDTH / 9;
        assert!(9 * m <= MAX_WIDTH && 9 * (m + 1) > MAX_WIDTH);
        let mut w = BitMatrix::zeros(m, 9);
        for o in 0..m {
            for j in 0..9 {
                w.set(o, j, true);
            }
        }
        let down = vec![-32768i32; 9 * m];
        let got = backward(&conv, &down, &w, 1);
        let want = naive_backward(&conv, &down, &w, 1);
        assert_eq!(got.iter().map(|&v| v as i64).collect::<Vec<_>>(), want);
        assert_eq!(
            got[12] as i64,
            -(9 * m as i64) * 32768,
            "the edge is tested"
        );
        assert!(got[12] < i32::MIN / 2 - (1 << 29));
    }

    #[test]
    fn layers_the_optimizer_cannot_train_are_refused_with_the_reason() {
        let (input, ..) = toy8(1, 1);
        let conv = Conv {
            height: 8,
            width: 8,
            channels: 1,
            kernel: 3,
        };
        let pool = MaxPool {
            height: 6,
            width: 6,
            channels: 4,
            size: 2,
        };
        let mut shapes = vec![
            LayerShape::Conv { conv, outputs: 4 },
            LayerShape::Pool(pool),
        ];
        shapes.push(LayerShape::Pool(MaxPool {
            height: 3,
            width: 3,
            channels: 4,
            size: 1,
        }));
        shapes.extend(dense(&[36, 3]));
        let e = FlipOptimizer::new(input.clone(), &shapes, 1, &[]).unwrap_err();
        assert!(
            e.contains("layer 3") && e.contains("follow a convolution"),
            "{e}"
        );
        let wide = [
            LayerShape::Conv {
                conv,
                outputs: 7282,
            },
            LayerShape::Dense {
                inputs: 36 * 7282,
                outputs: 3,
            },
        ];
        let e = FlipOptimizer::new(input.clone(), &wide, 1, &[]).unwrap_err();
        assert!(e.contains("65538") && e.contains("65535"), "{e}");
        let trainable = [LayerShape::Conv { conv, outputs: 4 }, dense(&[144, 3])[0]];
        for (key, value) in [("center", "full"), ("noise", "0.1")] {
            let params = sets(&[(key, value)]);
            let e = FlipOptimizer::new(input.clone(), &trainable, 1, &params).unwrap_err();
            assert!(e.contains(key) && e.contains("dense networks only"), "{e}");
        }
        let last_conv = [LayerShape::Conv { conv, outputs: 3 }];
        let e = FlipOptimizer::new(input, &last_conv, 1, &[]).unwrap_err();
        assert!(e.contains("last layer must be dense"), "{e}");
    }
}
