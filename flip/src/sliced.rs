//! The AVX-512 forward pass in sample-sliced layout: each vector holds the same word of eight
//! samples.
//!
//! With rows of a dozen words (a 784-input layer) a vector along the row is partly empty and
//! every sample-row pair ends in a horizontal sum. Along the samples instead, a weight word is
//! broadcast to all eight lanes and XORed with the same word of eight samples, so every lane
//! does useful work, the popcounts of a sample-row pair accumulate in one lane and no
//! horizontal sum is needed: a layer is then one XOR, one popcount and one add per eight
//! sample-words, the rate of the kernel's inner loop.
//!
//! Layout of a group of 8 samples: word `c` of plane `k` of lane (sample) `j` is at
//! `(k * words + c) * 8 + j`. Groups follow each other; a short last group is padded with zero
//! samples whose results are dropped.

use std::arch::x86_64::*;

use crate::bits::words_for;
use crate::encoding::Encoding;
use crate::model::{class_score, Activation, InputSpec, Layer, Model};
use crate::reference::argmax;

/// Samples per group: one 64-bit lane each in a 512-bit vector.
pub const LANES: usize = 8;

/// Per-thread buffers, reused across chunks.
#[derive(Default)]
pub struct Buffers {
    x: Vec<u64>,
    next: Vec<u64>,
    disagreements: Vec<u32>,
    bytes: Vec<u8>,
}

/// Forward pass of a chunk of raw images (`model.input.pixels()` bytes each) into `scores`
/// and `classes`.
///
/// # Safety
/// The CPU must have AVX-512 F, BW, VL and VPOPCNTDQ ([`crate::popcount::Kernel::Avx512`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq")]
pub unsafe fn chunk_forward(
    model: &Model,
    images: &[u8],
    buf: &mut Buffers,
    scores: &mut [i32],
    classes: &mut [usize],
) {
    let samples = classes.len();
    let groups = samples.div_ceil(LANES);
    let mut planes = model.input.encoding.planes();
    let mut words = words_for(model.input.encoded_inputs());
    buf.x.clear();
    buf.x.resize(groups * planes * words * LANES, 0);
    encode(&model.input, images, &mut buf.x, &mut buf.next);
    for layer in &model.layers {
        let Layer::Binary(l) = layer else {
            unreachable!("gemm::forward checks for a binary model")
        };
        let rows = l.outputs;
        buf.disagreements.resize(groups * rows * LANES, 0);
        sums(
            groups,
            &buf.x,
            l.weights.words(),
            rows,
            words,
            planes,
            &mut buf.disagreements,
        );
        let full = (((1u64 << planes) - 1) * l.inputs as u64) as i32;
        match &l.activation {
            Activation::Threshold { thresholds, invert } => {
                let out_words = words_for(rows);
                buf.next.clear();
                buf.next.resize(groups * out_words * LANES, 0);
                buf.bytes.clear();
                buf.bytes.resize(out_words * 64, 0);
                for g in 0..groups {
                    let d = &buf.disagreements[g * rows * LANES..][..rows * LANES];
                    threshold_group(
                        full,
                        thresholds,
                        invert,
                        d,
                        &mut buf.bytes,
                        &mut buf.next[g * out_words * LANES..][..out_words * LANES],
                    );
                }
                std::mem::swap(&mut buf.x, &mut buf.next);
                words = out_words;
                planes = 1;
            }
            Activation::Scores { bias, scale } => {
                for (i, (sc, c)) in scores
                    .chunks_exact_mut(rows)
                    .zip(classes.iter_mut())
                    .enumerate()
                {
                    let d = &buf.disagreements[i / LANES * rows * LANES..];
                    for (n, o) in sc.iter_mut().enumerate() {
                        let s = full - d[n * LANES + i % LANES] as i32;
                        *o = class_score(scale, bias, n, s);
                    }
                    *c = argmax(sc);
                }
                return;
            }
        }
    }
    unreachable!("a checked model ends in a scores layer")
}

/// Encodes images straight into the sliced layout, exactly as [`Encoding::encode`] does one
/// at a time. Threshold and bit-plane encodings take one compare or test per 64 pixels and
/// plane; a thermometer goes through `Encoding::encode` and `scratch`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn encode(input: &InputSpec, images: &[u8], out: &mut [u64], scratch: &mut Vec<u64>) {
    let p = input.pixels();
    let planes = input.encoding.planes();
    let words = words_for(input.encoded_inputs());
    let group = planes * words * LANES;
    for (i, img) in images.chunks_exact(p).enumerate() {
        let g = &mut out[i / LANES * group..][..group];
        let lane = i % LANES;
        match input.encoding {
            Encoding::Threshold(t) => {
                // `Encoding::check` keeps t within the pixel range, so it fits a byte.
                let tv = _mm512_set1_epi8(t as u8 as i8);
                for (c, px) in img.chunks(64).enumerate() {
                    let (v, real) = load_bytes(px);
                    // Past the image the zeros would pass a threshold of 0; padding stays 0.
                    g[c * LANES + lane] = _mm512_mask_cmpge_epu8_mask(real, v, tv);
                }
            }
            Encoding::BitPlanes(n) => {
                let shift = input.pixel_bits - n;
                for (c, px) in img.chunks(64).enumerate() {
                    let (v, _) = load_bytes(px);
                    for k in 0..n as usize {
                        let bit = _mm512_set1_epi8((1u8 << (shift as usize + k)) as i8);
                        g[(k * words + c) * LANES + lane] = _mm512_test_epi8_mask(v, bit);
                    }
                }
            }
            Encoding::Thermometer(_) => {
                scratch.clear();
                scratch.resize(planes * words, 0);
                input.encoding.encode(input.pixel_bits, img, scratch);
                for (q, &v) in scratch.iter().enumerate() {
                    g[q * LANES + lane] = v;
                }
            }
        }
    }
}

/// Up to 64 bytes into a vector, zeros past the end, and the mask of the real bytes.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn load_bytes(px: &[u8]) -> (__m512i, u64) {
    let mask = if px.len() >= 64 {
        u64::MAX
    } else {
        (1u64 << px.len()) - 1
    };
    (
        _mm512_maskz_loadu_epi8(mask, px.as_ptr() as *const i8),
        mask,
    )
}

/// Hidden-layer bits of one group: lane `j` of row `n` gives bit `n` of sample `j`. The
/// comparisons yield one byte per row (bit `j` for sample `j`); `vptestmb` then turns 64 such
/// bytes into one output word per sample, the 8 x 64 bit transpose in eight instructions.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[inline]
unsafe fn threshold_group(
    full: i32,
    thresholds: &[i32],
    invert: &[bool],
    disagreements: &[u32],
    bytes: &mut [u8],
    out: &mut [u64],
) {
    let fullv = _mm256_set1_epi32(full);
    for (n, ((b, &t), &inv)) in bytes.iter_mut().zip(thresholds).zip(invert).enumerate() {
        // Slicing keeps a model with more thresholds than rows (never checked) in bounds.
        let d = &disagreements[n * LANES..][..LANES];
        let d = _mm256_loadu_si256(d.as_ptr() as *const __m256i);
        let s = _mm256_sub_epi32(fullv, d);
        let ge = _mm256_cmpge_epi32_mask(s, _mm256_set1_epi32(t));
        *b = ge ^ if inv { 0xff } else { 0 };
    }
    for (c, o) in out.chunks_exact_mut(LANES).enumerate() {
        let v = _mm512_loadu_si512(bytes[c * 64..][..64].as_ptr() as *const _);
        for (j, o) in o.iter_mut().enumerate() {
            *o = _mm512_test_epi8_mask(v, _mm512_set1_epi8(1 << j));
        }
    }
}

/// Disagreement counts of `groups` groups against `rows` rows, `out[(g * rows + n) * 8 + j]`
/// for sample `j` of group `g`; tiles of 2 groups x 8 rows (16 accumulators) where they fit.
#[target_feature(enable = "avx512f,avx512vl,avx512vpopcntdq")]
unsafe fn sums(
    groups: usize,
    x: &[u64],
    w: &[u64],
    rows: usize,
    words: usize,
    planes: usize,
    out: &mut [u32],
) {
    assert!(x.len() >= groups * planes * words * LANES);
    assert!(w.len() >= rows * words);
    assert!(out.len() >= groups * rows * LANES);
    let gs = planes * words * LANES;
    let (x, w, out) = (x.as_ptr(), w.as_ptr(), out.as_mut_ptr());
    let mut n0 = 0;
    while n0 < rows {
        let full_rows = rows - n0 >= 8;
        let wn = w.add(n0 * words);
        let mut g0 = 0;
        while g0 < groups {
            let two = groups - g0 >= 2;
            let (xg, o) = (x.add(g0 * gs), out.add((g0 * rows + n0) * LANES));
            match (two, full_rows) {
                (true, true) => tile::<2, 8>(xg, gs, wn, words, planes, o, rows),
                (true, false) => tile::<2, 1>(xg, gs, wn, words, planes, o, rows),
                (false, true) => tile::<1, 8>(xg, gs, wn, words, planes, o, rows),
                (false, false) => tile::<1, 1>(xg, gs, wn, words, planes, o, rows),
            }
            g0 += if two { 2 } else { 1 };
        }
        n0 += if full_rows { 8 } else { 1 };
    }
}

/// `G` groups x `N` rows; planes from the top down with a doubling before each lower plane.
#[allow(clippy::needless_range_loop)] // a tile is a 2-D array of registers
#[target_feature(enable = "avx512f,avx512vl,avx512vpopcntdq")]
#[inline]
unsafe fn tile<const G: usize, const N: usize>(
    x: *const u64,
    group_stride: usize,
    w: *const u64,
    words: usize,
    planes: usize,
    out: *mut u32,
    rows: usize,
) {
    let mut acc = [[_mm512_setzero_si512(); N]; G];
    for k in (0..planes).rev() {
        if k + 1 < planes {
            for g in 0..G {
                for n in 0..N {
                    acc[g][n] = _mm512_add_epi64(acc[g][n], acc[g][n]);
                }
            }
        }
        for c in 0..words {
            let xv: [__m512i; G] = std::array::from_fn(|g| {
                _mm512_loadu_si512(x.add(g * group_stride + (k * words + c) * LANES) as *const _)
            });
            for n in 0..N {
                let wb = _mm512_set1_epi64(*w.add(n * words + c) as i64);
                for g in 0..G {
                    let d = _mm512_popcnt_epi64(_mm512_xor_si512(xv[g], wb));
                    acc[g][n] = _mm512_add_epi64(acc[g][n], d);
                }
            }
        }
    }
    for g in 0..G {
        for n in 0..N {
            let o = out.add((g * rows + n) * LANES) as *mut __m256i;
            _mm256_storeu_si256(o, _mm512_cvtepi64_epi32(acc[g][n]));
        }
    }
}
