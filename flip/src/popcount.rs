//! XOR-popcount kernels for blocks of samples against blocks of weight rows, chosen at run time
//! from the CPU's features.
//!
//! Every kernel computes the same integers: for sample `i` and row `n`, the weighted count of
//! disagreeing bits `D = sum_k 2^k popcount(x_{i,k} XOR w_n)` over the sample's planes `k`.
//! Padding bits are zero on both sides, so they never disagree and the agreements the reference
//! counts follow as `(2^P - 1) * inputs - D`.
//!
//! The kernels work on tiles of up to 4 samples x 4 rows so that each loaded word is used four
//! times from a register; what limits them is the vector ALU, not memory.

use std::sync::atomic::{AtomicU8, Ordering};

/// Environment variable that forces a kernel: `portable`, `avx2` or `avx512`.
pub const ENV: &str = "FLIPCHIP_POPCOUNT";

/// One implementation of the XOR-popcount tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `u64::count_ones` in plain Rust; runs everywhere and is the specification.
    Portable,
    /// 256-bit nibble lookup (`vpshufb`) summed with `vpsadbw`.
    Avx2,
    /// 512-bit `vpopcntq` (AVX-512 VPOPCNTDQ, with BW and VL), masked loads for the last words
    /// of a row; the batched forward pass uses the sample-sliced layout of [`crate::sliced`].
    Avx512,
}

/// A kernel name that is unknown or that this CPU cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// Not one of the kernel names.
    #[error("unknown popcount kernel '{0}' (portable, avx2, avx512)")]
    Unknown(String),
    /// A kernel whose instructions this CPU lacks.
    #[error("popcount kernel '{0}' needs CPU features this machine lacks")]
    Unsupported(&'static str),
}

impl Kernel {
    /// Every kernel, slowest first.
    pub const ALL: [Kernel; 3] = [Kernel::Portable, Kernel::Avx2, Kernel::Avx512];

    /// The name used by [`ENV`] and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
        }
    }

    /// Whether this CPU has the instructions the kernel uses.
    pub fn supported(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vpopcntdq")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The kernels this CPU can run, slowest first.
    pub fn available() -> Vec<Kernel> {
        Kernel::ALL.into_iter().filter(|k| k.supported()).collect()
    }

    /// The fastest kernel this CPU can run.
    pub fn best() -> Kernel {
        *Kernel::available().last().expect("portable always runs")
    }

    /// The kernel named `name`, if it exists and this CPU can run it.
    pub fn choose(name: &str) -> Result<Kernel, KernelError> {
        let k = name.parse::<Kernel>()?;
        if k.supported() {
            Ok(k)
        } else {
            Err(KernelError::Unsupported(k.name()))
        }
    }
}

impl std::str::FromStr for Kernel {
    type Err = KernelError;

    fn from_str(s: &str) -> Result<Self, KernelError> {
        Kernel::ALL
            .into_iter()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| KernelError::Unknown(s.to_string()))
    }
}

impl std::fmt::Display for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The chosen kernel: 0 while undecided, else its index in [`Kernel::ALL`] plus one. An atomic
/// rather than a `OnceLock` so that [`force`] can still change it after the first use.
static SELECTED: AtomicU8 = AtomicU8::new(0);

/// The kernel the batch evaluation uses: the one [`force`]d, else the one named by [`ENV`], else
/// the fastest this CPU runs. An unknown or unsupported name in [`ENV`] prints a warning once and
/// falls back to the fastest kernel.
pub fn selected() -> Kernel {
    let s = SELECTED.load(Ordering::Relaxed);
    if s != 0 {
        return Kernel::ALL[s as usize - 1];
    }
    let k = match std::env::var(ENV) {
        Ok(name) => Kernel::choose(&name).unwrap_or_else(|e| {
            let best = Kernel::best();
            eprintln!("warning: {ENV}: {e}; using '{best}'");
            best
        }),
        Err(_) => Kernel::best(),
    };
    store(k);
    k
}

/// Makes every later batch evaluation use `kernel`; fails if this CPU cannot run it.
pub fn force(kernel: Kernel) -> Result<(), KernelError> {
    if !kernel.supported() {
        return Err(KernelError::Unsupported(kernel.name()));
    }
    store(kernel);
    Ok(())
}

fn store(k: Kernel) {
    let i = Kernel::ALL.iter().position(|&a| a == k).expect("listed");
    SELECTED.store(i as u8 + 1, Ordering::Relaxed);
}

/// Shape of one call of [`disagreements`]: `samples` samples of `planes` planes, plane `k` of
/// sample `i` at `x[i * x_stride + k * words..]`, `words` words per plane, against `rows` rows,
/// row `n` at `w[n * words..]`.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Samples in the block.
    pub samples: usize,
    /// Words between the starts of two samples (at least `planes * words`).
    pub x_stride: usize,
    /// Weight rows.
    pub rows: usize,
    /// Words per plane and per weight row.
    pub words: usize,
    /// Planes per sample.
    pub planes: usize,
}

/// Weighted disagreement counts of every sample of a block against every row:
/// `out[i * rows + n] = sum_k 2^k popcount(x_{i,k} XOR w_n)`, with `kernel`.
///
/// Panics if the slices are shorter than `shape` says or if `kernel` cannot run on this CPU.
pub fn disagreements(kernel: Kernel, shape: Shape, x: &[u64], w: &[u64], out: &mut [u32]) {
    let Shape {
        samples,
        x_stride,
        rows,
        words,
        planes,
    } = shape;
    assert!(x_stride >= planes * words, "samples overlap");
    if samples == 0 || rows == 0 {
        return;
    }
    assert!(
        x.len() >= (samples - 1) * x_stride + planes * words,
        "x too short"
    );
    assert!(w.len() >= rows * words, "w too short");
    assert!(out.len() >= samples * rows, "out too short");
    assert!(kernel.supported(), "{} kernel on a CPU without it", kernel);
    // Safety: the slices cover every word the tiles read and every count they write (asserted
    // above), and the CPU has the kernel's features (asserted above).
    unsafe {
        match kernel {
            Kernel::Portable => blocks_portable(shape, x.as_ptr(), w.as_ptr(), out.as_mut_ptr()),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => x86::blocks_avx2(shape, x.as_ptr(), w.as_ptr(), out.as_mut_ptr()),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => x86::blocks_avx512(shape, x.as_ptr(), w.as_ptr(), out.as_mut_ptr()),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the portable kernel is supported here"),
        }
    }
}

/// Walks a block in tiles of 4 samples x 4 rows (smaller at the edges), calling `$tile` for each.
/// A macro rather than a generic function so that each kernel's walk is compiled with that
/// kernel's target features and its tiles inline into it.
macro_rules! blocks {
    ($(#[$attr:meta])* $vis:vis $name:ident, $tile:ident) => {
        $(#[$attr])*
        $vis unsafe fn $name(shape: Shape, x: *const u64, w: *const u64, out: *mut u32) {
            let Shape { samples, x_stride, rows, words, planes } = shape;
            let mut n0 = 0;
            while n0 < rows {
                let wn = w.add(n0 * words);
                let mut i0 = 0;
                let full_rows = rows - n0 >= 4;
                while i0 < samples {
                    let xi = x.add(i0 * x_stride);
                    let o = out.add(i0 * rows + n0);
                    match (samples - i0 >= 4, full_rows) {
                        (true, true) => $tile::<4, 4>(xi, x_stride, wn, words, planes, o, rows),
                        (true, false) => $tile::<4, 1>(xi, x_stride, wn, words, planes, o, rows),
                        (false, true) => $tile::<1, 4>(xi, x_stride, wn, words, planes, o, rows),
                        (false, false) => $tile::<1, 1>(xi, x_stride, wn, words, planes, o, rows),
                    }
                    i0 += if samples - i0 >= 4 { 4 } else { 1 };
                }
                n0 += if full_rows { 4 } else { 1 };
            }
        }
    };
}

blocks!(blocks_portable, tile_portable);

/// `I` samples x `N` rows with `count_ones`; the plane loop runs from the top plane down,
/// doubling the total before each lower plane, so plane `k` ends up weighted by `2^k`.
#[inline(always)]
unsafe fn tile_portable<const I: usize, const N: usize>(
    x: *const u64,
    x_stride: usize,
    w: *const u64,
    words: usize,
    planes: usize,
    out: *mut u32,
    out_stride: usize,
) {
    let mut total = [[0u32; N]; I];
    for k in (0..planes).rev() {
        for t in total.iter_mut().flatten() {
            *t *= 2;
        }
        for c in 0..words {
            let wv: [u64; N] = std::array::from_fn(|n| *w.add(n * words + c));
            for (i, ti) in total.iter_mut().enumerate() {
                let xv = *x.add(i * x_stride + k * words + c);
                for (t, wv) in ti.iter_mut().zip(wv) {
                    *t += (xv ^ wv).count_ones();
                }
            }
        }
    }
    for (i, ti) in total.iter().enumerate() {
        for (n, &t) in ti.iter().enumerate() {
            *out.add(i * out_stride + n) = t;
        }
    }
}

// A tile is a small 2-D array of registers; indices say which sample and row more plainly than
// zipped iterators.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Shape;
    use std::arch::x86_64::*;

    blocks!(
        #[target_feature(enable = "avx2,popcnt")]
        pub(super) blocks_avx2,
        tile_avx2
    );

    blocks!(
        #[target_feature(enable = "avx512f,avx512vpopcntdq")]
        blocks_avx512_tiles,
        tile_avx512
    );

    /// The AVX-512 walk. Blocks of back-to-back one-plane samples with four-word rows (hidden
    /// layers of 193..=256 neurons) would fill half a vector per sample; they go two samples to a
    /// vector instead, the rest through the ordinary tiles.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub(super) unsafe fn blocks_avx512(shape: Shape, x: *const u64, w: *const u64, out: *mut u32) {
        let Shape {
            samples,
            x_stride,
            rows,
            words,
            planes,
        } = shape;
        if !(words == 4 && planes == 1 && x_stride == 4) {
            return blocks_avx512_tiles(shape, x, w, out);
        }
        let paired = samples / 8 * 8;
        let mut n0 = 0;
        while n0 < rows {
            let wn = w.add(n0 * 4);
            let full_rows = rows - n0 >= 4;
            for i0 in (0..paired).step_by(8) {
                let xi = x.add(i0 * 4);
                let o = out.add(i0 * rows + n0);
                if full_rows {
                    tile_avx512_pairs::<4>(xi, wn, o, rows);
                } else {
                    tile_avx512_pairs::<1>(xi, wn, o, rows);
                }
            }
            n0 += if full_rows { 4 } else { 1 };
        }
        let rest = Shape {
            samples: samples - paired,
            ..shape
        };
        blocks_avx512_tiles(rest, x.add(paired * 4), w, out.add(paired * rows));
    }

    /// 8 samples x `N` rows of four words, one plane, samples back to back: each vector holds
    /// two samples and each row is broadcast to both halves.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    #[inline]
    unsafe fn tile_avx512_pairs<const N: usize>(
        x: *const u64,
        w: *const u64,
        out: *mut u32,
        out_stride: usize,
    ) {
        let wv: [__m512i; N] = std::array::from_fn(|n| {
            _mm512_broadcast_i64x4(_mm256_loadu_si256(w.add(n * 4) as *const __m256i))
        });
        let mut total = [[_mm512_setzero_si512(); N]; 4];
        for p in 0..4 {
            let xv = _mm512_loadu_si512(x.add(p * 8) as *const _);
            for n in 0..N {
                total[p][n] = _mm512_popcnt_epi64(_mm512_xor_si512(xv, wv[n]));
            }
        }
        for p in 0..4 {
            let (lo, hi) = (
                out.add(2 * p * out_stride),
                out.add((2 * p + 1) * out_stride),
            );
            if N == 4 {
                // The first two steps of `reduce8` leave [a.lo, b.lo, a.hi, b.hi, c.lo, d.lo,
                // c.hi, d.hi]; one permute puts the even sample's four sums first.
                let t = &total[p];
                let pair = |a, b| {
                    _mm512_add_epi64(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b))
                };
                let (ab, cd) = (pair(t[0], t[1]), pair(t[2], t[3]));
                let q = _mm512_add_epi64(
                    _mm512_shuffle_i64x2::<0b10_00_10_00>(ab, cd),
                    _mm512_shuffle_i64x2::<0b11_01_11_01>(ab, cd),
                );
                let q = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7), q);
                let narrow = _mm512_cvtepi64_epi32(q);
                _mm_storeu_si128(lo as *mut __m128i, _mm256_castsi256_si128(narrow));
                _mm_storeu_si128(hi as *mut __m128i, _mm256_extracti128_si256(narrow, 1));
            } else {
                for n in 0..N {
                    let t = total[p][n];
                    *lo.add(n) = _mm512_mask_reduce_add_epi64(0x0f, t) as u32;
                    *hi.add(n) = _mm512_mask_reduce_add_epi64(0xf0, t) as u32;
                }
            }
        }
    }

    /// Per-64-bit-lane popcount of `v`: two nibble lookups, bytes summed by `vpsadbw`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn popcount256(v: __m256i) -> __m256i {
        let lut = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2,
            3, 3, 4,
        );
        let low = _mm256_set1_epi8(0x0f);
        let lo = _mm256_and_si256(v, low);
        let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
        let bytes = _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
        _mm256_sad_epu8(bytes, _mm256_setzero_si256())
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn sum256(v: __m256i) -> u64 {
        let mut a = [0u64; 4];
        _mm256_storeu_si256(a.as_mut_ptr() as *mut __m256i, v);
        a.iter().sum()
    }

    /// Like `tile_portable`, four words at a time; the last `words % 4` words with `popcnt`.
    #[target_feature(enable = "avx2,popcnt")]
    #[inline]
    unsafe fn tile_avx2<const I: usize, const N: usize>(
        x: *const u64,
        x_stride: usize,
        w: *const u64,
        words: usize,
        planes: usize,
        out: *mut u32,
        out_stride: usize,
    ) {
        let mut vec = [[_mm256_setzero_si256(); N]; I];
        let mut tail = [[0u64; N]; I];
        let full = words / 4 * 4;
        for k in (0..planes).rev() {
            for i in 0..I {
                for n in 0..N {
                    vec[i][n] = _mm256_add_epi64(vec[i][n], vec[i][n]);
                    tail[i][n] *= 2;
                }
            }
            let mut c = 0;
            while c < full {
                let wv: [__m256i; N] =
                    std::array::from_fn(|n| _mm256_loadu_si256(w.add(n * words + c) as *const _));
                for i in 0..I {
                    let xv = _mm256_loadu_si256(x.add(i * x_stride + k * words + c) as *const _);
                    for n in 0..N {
                        let d = popcount256(_mm256_xor_si256(xv, wv[n]));
                        vec[i][n] = _mm256_add_epi64(vec[i][n], d);
                    }
                }
                c += 4;
            }
            for c in full..words {
                for i in 0..I {
                    let xv = *x.add(i * x_stride + k * words + c);
                    for n in 0..N {
                        tail[i][n] += u64::from((xv ^ *w.add(n * words + c)).count_ones());
                    }
                }
            }
        }
        for i in 0..I {
            for n in 0..N {
                *out.add(i * out_stride + n) = (sum256(vec[i][n]) + tail[i][n]) as u32;
            }
        }
    }

    /// Like `tile_portable`, eight words at a time with `vpopcntq`; the last `words % 8` words
    /// through a masked load, which reads nothing past the row and fills the lanes with zeros.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    #[inline]
    unsafe fn tile_avx512<const I: usize, const N: usize>(
        x: *const u64,
        x_stride: usize,
        w: *const u64,
        words: usize,
        planes: usize,
        out: *mut u32,
        out_stride: usize,
    ) {
        let mut total = [[_mm512_setzero_si512(); N]; I];
        let full = words / 8 * 8;
        let mask: __mmask8 = ((1u16 << (words - full)) - 1) as u8;
        for k in (0..planes).rev() {
            if k + 1 < planes {
                for i in 0..I {
                    for n in 0..N {
                        total[i][n] = _mm512_add_epi64(total[i][n], total[i][n]);
                    }
                }
            }
            let mut c = 0;
            while c < full {
                let wv: [__m512i; N] =
                    std::array::from_fn(|n| _mm512_loadu_si512(w.add(n * words + c) as *const _));
                for i in 0..I {
                    let xv = _mm512_loadu_si512(x.add(i * x_stride + k * words + c) as *const _);
                    for n in 0..N {
                        let d = _mm512_popcnt_epi64(_mm512_xor_si512(xv, wv[n]));
                        total[i][n] = _mm512_add_epi64(total[i][n], d);
                    }
                }
                c += 8;
            }
            if mask != 0 {
                let wv: [__m512i; N] = std::array::from_fn(|n| {
                    _mm512_maskz_loadu_epi64(mask, w.add(n * words + c) as *const i64)
                });
                for i in 0..I {
                    let xv = _mm512_maskz_loadu_epi64(
                        mask,
                        x.add(i * x_stride + k * words + c) as *const i64,
                    );
                    for n in 0..N {
                        let d = _mm512_popcnt_epi64(_mm512_xor_si512(xv, wv[n]));
                        total[i][n] = _mm512_add_epi64(total[i][n], d);
                    }
                }
            }
        }
        if N == 4 && I.is_multiple_of(2) {
            // Reducing two samples' four accumulators together takes 21 shuffles and adds for
            // eight sums, a third of what eight separate horizontal sums cost; with rows of a
            // dozen words that difference is most of the tile's time.
            for i in (0..I).step_by(2) {
                let a = &total[i];
                let b = &total[i + 1];
                let sums = reduce8([a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]);
                let narrow = _mm512_cvtepi64_epi32(sums);
                let o = out.add(i * out_stride);
                _mm_storeu_si128(o as *mut __m128i, _mm256_castsi256_si128(narrow));
                let o = out.add((i + 1) * out_stride);
                _mm_storeu_si128(o as *mut __m128i, _mm256_extracti128_si256(narrow, 1));
            }
        } else {
            for i in 0..I {
                for n in 0..N {
                    *out.add(i * out_stride + n) = _mm512_reduce_add_epi64(total[i][n]) as u32;
                }
            }
        }
    }

    /// Lane `j` of the result is the sum of the eight lanes of `v[j]`: a transposing add tree.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn reduce8(v: [__m512i; 8]) -> __m512i {
        // Pairs: lanes [a01, b01, a23, b23, a45, b45, a67, b67] (aXY = lanes X + Y of a).
        let pair =
            |a, b| _mm512_add_epi64(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
        let p = [
            pair(v[0], v[1]),
            pair(v[2], v[3]),
            pair(v[4], v[5]),
            pair(v[6], v[7]),
        ];
        // Quads: 128-bit blocks [ab half 1, ab half 2, cd half 1, cd half 2].
        let quad = |a, b| {
            _mm512_add_epi64(
                _mm512_shuffle_i64x2::<0b10_00_10_00>(a, b),
                _mm512_shuffle_i64x2::<0b11_01_11_01>(a, b),
            )
        };
        let q0 = quad(p[0], p[1]);
        let q1 = quad(p[2], p[3]);
        _mm512_add_epi64(
            _mm512_shuffle_i64x2::<0b10_00_10_00>(q0, q1),
            _mm512_shuffle_i64x2::<0b11_01_11_01>(q0, q1),
        )
    }
}

/// Measured ceiling of `kernel`: XOR-popcount words per second over all rayon threads in the
/// kernel's best case, one 4 x 4 tile of rows 256 words long (16 KiB, in L1), repeated for at
/// least `time`. The long rows make the tile's final reduction negligible, so this is the rate
/// of the inner loop alone: loads, XOR, popcount and add. Nothing real runs faster with this
/// kernel, which makes it the yardstick for the batch evaluation.
pub fn peak_words_per_second(kernel: Kernel, time: std::time::Duration) -> f64 {
    use rayon::prelude::*;
    let (samples, rows, words) = (4, 4, 256);
    let shape = Shape {
        samples,
        x_stride: words,
        rows,
        words,
        planes: 1,
    };
    let threads = rayon::current_num_threads();
    let start = std::time::Instant::now();
    let calls: u64 = (0..threads)
        .into_par_iter()
        .map(|t| {
            let x: Vec<u64> = (0..samples * words)
                .map(|i| (i as u64 + t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .collect();
            let w: Vec<u64> = (0..rows * words)
                .map(|i| (i as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9))
                .collect();
            let mut out = vec![0u32; samples * rows];
            let mut calls = 0u64;
            while start.elapsed() < time {
                for _ in 0..100 {
                    disagreements(kernel, shape, std::hint::black_box(&x), &w, &mut out);
                    std::hint::black_box(&out);
                }
                calls += 100;
            }
            calls
        })
        .sum();
    (calls * (samples * rows * words) as u64) as f64 / start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::train::rng::splitmix as next;

    /// Straight from the definition, one sample and row at a time.
    fn naive(shape: Shape, x: &[u64], w: &[u64]) -> Vec<u32> {
        let mut out = Vec::new();
        for i in 0..shape.samples {
            for n in 0..shape.rows {
                let mut d = 0;
                for k in 0..shape.planes {
                    for c in 0..shape.words {
                        let a = x[i * shape.x_stride + k * shape.words + c];
                        d += (a ^ w[n * shape.words + c]).count_ones() << k;
                    }
                }
                out.push(d);
            }
        }
        out
    }

    #[test]
    fn every_kernel_agrees_with_the_definition_on_odd_shapes() {
        let mut s = 12;
        let kernels = Kernel::available();
        assert!(kernels.contains(&Kernel::Portable));
        for case in 0..300 {
            let words = 1 + (next(&mut s) % 37) as usize;
            let planes = 1 + (next(&mut s) % 5) as usize;
            let samples = (next(&mut s) % 11) as usize;
            let rows = (next(&mut s) % 13) as usize;
            let gap = (next(&mut s) % 3) as usize;
            let shape = Shape {
                samples,
                x_stride: planes * words + gap,
                rows,
                words,
                planes,
            };
            let x: Vec<u64> = (0..samples * shape.x_stride)
                .map(|_| next(&mut s))
                .collect();
            let w: Vec<u64> = (0..rows * words).map(|_| next(&mut s)).collect();
            let want = naive(shape, &x, &w);
            for &k in &kernels {
                let mut got = vec![u32::MAX; samples * rows];
                disagreements(k, shape, &x, &w, &mut got);
                assert_eq!(got, want, "case {case}, kernel {k}, {shape:?}");
            }
        }
    }

    #[test]
    fn paired_four_word_rows_agree_with_the_definition() {
        // The AVX-512 walk has its own path for back-to-back one-plane samples of four words.
        let mut s = 4;
        for samples in 0..=26 {
            for rows in [1, 2, 3, 4, 5, 9, 10, 17] {
                for (words, gap) in [(4, 0), (4, 1), (3, 0), (5, 0)] {
                    let shape = Shape {
                        samples,
                        x_stride: words + gap,
                        rows,
                        words,
                        planes: 1,
                    };
                    let x: Vec<u64> = (0..samples * shape.x_stride)
                        .map(|_| next(&mut s))
                        .collect();
                    let w: Vec<u64> = (0..rows * words).map(|_| next(&mut s)).collect();
                    let want = naive(shape, &x, &w);
                    for k in Kernel::available() {
                        let mut got = vec![u32::MAX; samples * rows];
                        disagreements(k, shape, &x, &w, &mut got);
                        assert_eq!(got, want, "kernel {k}, {shape:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn kernel_names_parse_and_unknown_ones_fail() {
        for k in Kernel::ALL {
            assert_eq!(k.name().parse::<Kernel>(), Ok(k));
        }
        assert_eq!(
            Kernel::choose("sse9"),
            Err(KernelError::Unknown("sse9".into()))
        );
        assert!(Kernel::choose("portable").is_ok());
        assert!(Kernel::best().supported());
    }

    #[test]
    fn forcing_a_kernel_takes_effect_or_fails_cleanly() {
        // Other tests only read the choice, and every kernel gives the same results anyway.
        for k in Kernel::ALL {
            assert_eq!(force(k).is_ok(), k.supported(), "{k}");
            if k.supported() {
                assert_eq!(selected(), k);
            }
        }
        force(Kernel::best()).unwrap();
    }

    /// The tight in-cache loop whose rate is the ceiling for the batch evaluation: 4 x 4 tiles on
    /// a block that fits L1, all threads. Run with `cargo test --release -p flip popcount_peak
    /// -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn popcount_peak() {
        for k in Kernel::available() {
            let rate = peak_words_per_second(k, std::time::Duration::from_millis(500));
            println!("{k}: {:.3e} popcount words/s", rate);
        }
    }
}
