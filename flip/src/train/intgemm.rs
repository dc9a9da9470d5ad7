//! Exact 16-bit integer matrix products for the flip optimizer's backward pass and weight
//! signal.
//!
//! Both products the flip optimizer needs per step have the shape `C = A B` with small signed
//! integers on both sides: the backward signal (`delta` of the layer above times its +-1
//! weights) and the weight signal (`delta^T` times the layer's inputs, +-1 or grey levels).
//! Every factor fits in an `i16` and every sum in an `i32` (the caller keeps the operands
//! within the bound documented on [`gemm`]), so the products are exact and their result does
//! not depend on the order of additions, on the code path, or on the thread count.
//!
//! The layout is the one x86's `vpmaddwd` / `vpdpwssd` consume: the reduction dimension is
//! taken in pairs `(2p, 2p + 1)`. `A` stores each pair as one `u32` (low half the even
//! element), `B` stores for each pair `p` a row of `ld` columns, each column the two `i16`
//! values of rows `2p` and `2p + 1`. A pair of products and their sum is then one instruction
//! lane. An AVX-512 VNNI kernel (`vpdpwssd`) is chosen at run time where the CPU has it, else
//! an AVX2 kernel (`vpmaddwd` and an add, the same pair products in eight lanes); the portable
//! kernel computes the same integers.

use rayon::prelude::*;

/// Column padding of [`Pairs`]: one 512-bit register holds 16 `i32` results.
pub const LANES: usize = 16;

/// The right-hand factor `B` (`k x cols`) of a product, stored as pairs of rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pairs {
    /// Number of row pairs, `ceil(k / 2)`.
    pub kp: usize,
    /// Real columns.
    pub cols: usize,
    /// Stored columns, `cols` rounded up to [`LANES`]; padding columns are zero.
    pub ld: usize,
    /// `kp * ld * 2` values: pair `p`, column `j` at `2 * (p * ld + j)` (row `2p`) and the
    /// next index (row `2p + 1`).
    pub data: Vec<i16>,
}

impl Pairs {
    /// `B[r][j] = value(r, j)` for `r < k`, `j < cols`; an odd `k` is padded with a zero row.
    pub fn from_fn(k: usize, cols: usize, value: impl Fn(usize, usize) -> i16) -> Self {
        Pairs::from_rows(k, cols, |r, out| {
            for (j, o) in out.iter_mut().enumerate() {
                *o = value(r, j);
            }
        })
    }

    /// `B` with row `r` written by `fill(r, row)` (`row` has `cols` entries, zero on entry);
    /// an odd `k` is padded with a zero row.
    pub fn from_rows(k: usize, cols: usize, mut fill: impl FnMut(usize, &mut [i16])) -> Self {
        let kp = k.div_ceil(2);
        let ld = cols.div_ceil(LANES) * LANES;
        let mut data = vec![0i16; kp * ld * 2];
        let (mut even, mut odd) = (vec![0i16; cols], vec![0i16; cols]);
        if ld > 0 {
            for (p, row) in data.chunks_exact_mut(2 * ld).enumerate() {
                even.fill(0);
                odd.fill(0);
                fill(2 * p, &mut even);
                if 2 * p + 1 < k {
                    fill(2 * p + 1, &mut odd);
                }
                for ((pair, &e), &o) in row.chunks_exact_mut(2).zip(&even).zip(&odd) {
                    pair[0] = e;
                    pair[1] = o;
                }
            }
        }
        Pairs { kp, cols, ld, data }
    }
}

/// Packs the left-hand factor `A` (`rows x k`, `A[r][p] = value(r, p)`) as pairs along `k`.
pub fn pack_a(rows: usize, k: usize, value: impl Fn(usize, usize) -> i16) -> Vec<u32> {
    let kp = k.div_ceil(2);
    let mut a = vec![0u32; rows * kp];
    if kp > 0 {
        for (r, row) in a.chunks_exact_mut(kp).enumerate() {
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
    a
}

/// Rows of `C` one task computes.
const ROW_BLOCK: usize = 8;
/// Rows of the register tile.
const MR: usize = 4;
/// Columns of the widest register tile (four 512-bit registers).
const NR: usize = 4 * LANES;

/// `C = A B` for `A` packed by [`pack_a`] (`rows x b.kp` pairs) and `B`: `c` is `rows x b.ld`,
/// row-major, padding columns included (they come out zero). Parallel over blocks of rows.
///
/// The caller guarantees `sum_k |A[r][k]| * |B[k][j]| < 2^31` for every `r, j` (then every
/// partial sum fits an `i32` and the result is exact); `rows * kp` must equal `a.len()`.
pub fn gemm(a: &[u32], rows: usize, b: &Pairs, c: &mut [i32]) {
    gemm_with(a, rows, b, c, Kernel::detect())
}

/// Which kernel computes a tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Plain Rust, any target.
    Portable,
    /// AVX-512 BW + VNNI (`vpdpwssd`).
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
    /// AVX2 (`vpmaddwd`, `vpaddd`).
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                return Kernel::Avx512Vnni;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Kernel::Avx2;
            }
        }
        Kernel::Portable
    }
}

/// [`gemm`] with a chosen kernel (tests compare them).
pub fn gemm_with(a: &[u32], rows: usize, b: &Pairs, c: &mut [i32], kernel: Kernel) {
    let (kp, ld) = (b.kp, b.ld);
    assert_eq!(a.len(), rows * kp, "A is not rows x kp pairs");
    assert_eq!(c.len(), rows * ld, "C is not rows x ld");
    if kp == 0 {
        c.fill(0);
        return;
    }
    if ld == 0 || rows == 0 {
        return;
    }
    c.par_chunks_mut(ROW_BLOCK * ld)
        .zip(a.par_chunks(ROW_BLOCK * kp.max(1)))
        .for_each(|(cb, ab)| gemm_block(ab, cb.len() / ld, b, cb, kernel));
}

/// [`gemm`] on the calling thread only, for callers that split rows themselves.
pub fn gemm_block(a: &[u32], rows: usize, b: &Pairs, c: &mut [i32], kernel: Kernel) {
    let (kp, ld) = (b.kp, b.ld);
    assert_eq!(a.len(), rows * kp, "A is not rows x kp pairs");
    assert_eq!(c.len(), rows * ld, "C is not rows x ld");
    let mut j = 0;
    while j < ld {
        let width = if j + NR <= ld { NR } else { LANES };
        let mut r = 0;
        while r < rows {
            let mr = if r + MR <= rows { MR } else { 1 };
            let at = &a[r * kp..(r + mr) * kp];
            let ct = &mut c[r * ld..(r + mr) * ld];
            match (kernel, mr, width) {
                // SAFETY: this kernel is only chosen where the CPU has the features, and the
                // slices cover the tile (checked above and by the tile's debug asserts).
                #[cfg(target_arch = "x86_64")]
                (Kernel::Avx512Vnni, MR, NR) => unsafe {
                    avx512::tile::<MR, 4>(at, kp, &b.data, ld, j, ct)
                },
                #[cfg(target_arch = "x86_64")]
                (Kernel::Avx512Vnni, MR, _) => unsafe {
                    avx512::tile::<MR, 1>(at, kp, &b.data, ld, j, ct)
                },
                #[cfg(target_arch = "x86_64")]
                (Kernel::Avx512Vnni, _, NR) => unsafe {
                    avx512::tile::<1, 4>(at, kp, &b.data, ld, j, ct)
                },
                #[cfg(target_arch = "x86_64")]
                (Kernel::Avx512Vnni, _, _) => unsafe {
                    avx512::tile::<1, 1>(at, kp, &b.data, ld, j, ct)
                },
                // SAFETY: as above; AVX2 tiles are 16 columns wide, four per widest tile.
                #[cfg(target_arch = "x86_64")]
                (Kernel::Avx2, MR, _) => unsafe {
                    for t in (0..width).step_by(LANES) {
                        avx2::tile::<MR>(at, kp, &b.data, ld, j + t, ct)
                    }
                },
                #[cfg(target_arch = "x86_64")]
                (Kernel::Avx2, _, _) => unsafe {
                    for t in (0..width).step_by(LANES) {
                        avx2::tile::<1>(at, kp, &b.data, ld, j + t, ct)
                    }
                },
                (Kernel::Portable, _, _) => portable_tile(at, mr, kp, b, j, width, ct),
            }
            r += mr;
        }
        j += width;
    }
}

/// One `mr x width` tile of `C` at column `j0`.
fn portable_tile(
    a: &[u32],
    mr: usize,
    kp: usize,
    b: &Pairs,
    j0: usize,
    width: usize,
    c: &mut [i32],
) {
    let ld = b.ld;
    for r in 0..mr {
        let mut acc = [0i32; NR];
        let acc = &mut acc[..width];
        for p in 0..kp {
            let v = a[r * kp + p];
            let (lo, hi) = (v as u16 as i16 as i32, (v >> 16) as u16 as i16 as i32);
            let bp = &b.data[2 * (p * ld + j0)..2 * (p * ld + j0 + width)];
            for (o, pair) in acc.iter_mut().zip(bp.chunks_exact(2)) {
                // Wrapping like the vector instruction; the caller's bound makes it exact.
                *o = o.wrapping_add(lo * pair[0] as i32 + hi * pair[1] as i32);
            }
        }
        c[r * ld + j0..r * ld + j0 + width].copy_from_slice(acc);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// An `R x 16` tile: for each pair `p`, two registers of `B` are loaded once and each of
    /// the `R` rows' pair of `A` is broadcast against them (`vpmaddwd` multiplies the pairs
    /// and adds each pair's two products), `2R` accumulators in registers.
    ///
    /// # Safety
    /// The CPU must support AVX2; `a` holds `R * kp` pairs, `b` covers columns `j0..j0 + 16`
    /// of every pair row (stride `ld`), `c` holds `R` rows of `ld`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn tile<const R: usize>(
        a: &[u32],
        kp: usize,
        b: &[i16],
        ld: usize,
        j0: usize,
        c: &mut [i32],
    ) {
        debug_assert!(a.len() >= R * kp && c.len() >= (R - 1) * ld + j0 + 16);
        debug_assert!(kp == 0 || b.len() >= 2 * ((kp - 1) * ld + j0 + 16));
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        let bp = b.as_ptr();
        for p in 0..kp {
            let base = bp.add(2 * (p * ld + j0));
            let b0 = _mm256_loadu_si256(base as *const __m256i);
            let b1 = _mm256_loadu_si256(base.add(16) as *const __m256i);
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_epi32(*a.get_unchecked(r * kp + p) as i32);
                row[0] = _mm256_add_epi32(row[0], _mm256_madd_epi16(av, b0));
                row[1] = _mm256_add_epi32(row[1], _mm256_madd_epi16(av, b1));
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let out = c.as_mut_ptr().add(r * ld + j0);
            _mm256_storeu_si256(out as *mut __m256i, row[0]);
            _mm256_storeu_si256(out.add(8) as *mut __m256i, row[1]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// An `R x 16T` tile: for each pair `p`, `T` registers of `B` are loaded once and each of
    /// the `R` rows' pair of `A` is broadcast against them, `R * T` accumulators in registers.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VNNI; `a` holds `R * kp` pairs, `b` covers
    /// columns `j0..j0 + 16T` of every pair row (stride `ld`), `c` holds `R` rows of `ld`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn tile<const R: usize, const T: usize>(
        a: &[u32],
        kp: usize,
        b: &[i16],
        ld: usize,
        j0: usize,
        c: &mut [i32],
    ) {
        debug_assert!(a.len() >= R * kp && c.len() >= (R - 1) * ld + j0 + 16 * T);
        debug_assert!(kp == 0 || b.len() >= 2 * ((kp - 1) * ld + j0 + 16 * T));
        let mut acc = [[_mm512_setzero_si512(); T]; R];
        let bp = b.as_ptr();
        for p in 0..kp {
            let base = bp.add(2 * (p * ld + j0));
            let mut bv = [_mm512_setzero_si512(); T];
            for (t, v) in bv.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(base.add(32 * t) as *const _);
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_epi32(*a.get_unchecked(r * kp + p) as i32);
                for (o, v) in row.iter_mut().zip(&bv) {
                    *o = _mm512_dpwssd_epi32(*o, av, *v);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (t, v) in row.iter().enumerate() {
                _mm512_storeu_si512(c.as_mut_ptr().add(r * ld + j0 + 16 * t) as *mut _, *v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::rng::Stream;

    fn naive(av: &[i16], bv: &[i16], rows: usize, k: usize, cols: usize) -> Vec<i64> {
        let mut c = vec![0i64; rows * cols];
        for r in 0..rows {
            for j in 0..cols {
                c[r * cols + j] = (0..k)
                    .map(|p| av[r * k + p] as i64 * bv[p * cols + j] as i64)
                    .sum();
            }
        }
        c
    }

    /// Every kernel this CPU runs.
    fn kernels() -> Vec<Kernel> {
        let mut k = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            k.push(Kernel::Avx2);
        }
        if !k.contains(&Kernel::detect()) {
            k.push(Kernel::detect());
        }
        k
    }

    #[test]
    fn kernels_agree_with_the_naive_product_at_the_edges() {
        let mut s = Stream::new(12, 12);
        // Shapes with odd k, odd rows, columns off the tile sizes; values at the i16 extremes
        // (the caller's bound allows -32768 on one side against small values on the other).
        for &(rows, k, cols, amax, bmax) in &[
            (1usize, 1usize, 1usize, 32767i32, 1i32),
            (7, 3, 17, 32767, 255),
            (10, 256, 784, 127, 15),
            (13, 101, 65, 32767, 255),
            (256, 100, 256, 32767, 1),
            (5, 255, 130, 32767, 255),
        ] {
            let mut draw = |lim: i32| {
                let v = (s.next_u64() % (2 * lim as u64 + 2)) as i32 - lim - 1;
                v.clamp(-lim - 1, lim) as i16
            };
            let av: Vec<i16> = (0..rows * k).map(|_| draw(amax)).collect();
            let bv: Vec<i16> = (0..k * cols)
                .map(|_| draw(bmax).max(-bmax as i16))
                .collect();
            let want = naive(&av, &bv, rows, k, cols);
            let a = pack_a(rows, k, |r, p| av[r * k + p]);
            let b = Pairs::from_fn(k, cols, |p, j| bv[p * cols + j]);
            for kernel in kernels() {
                let mut c = vec![-1i32; rows * b.ld];
                gemm_with(&a, rows, &b, &mut c, kernel);
                for r in 0..rows {
                    for j in 0..b.ld {
                        let got = c[r * b.ld + j] as i64;
                        let w = if j < cols { want[r * cols + j] } else { 0 };
                        assert_eq!(got, w, "{kernel:?} {rows}x{k}x{cols} at ({r}, {j})");
                    }
                }
            }
        }
        // The largest sum the bound allows: 256 * 32767 * 255 = 2,139,029,760 < 2^31.
        let (rows, k, cols) = (4, 256, 16);
        let a = pack_a(rows, k, |_, _| 32767);
        let b = Pairs::from_fn(k, cols, |_, _| 255);
        for kernel in kernels() {
            let mut c = vec![0i32; rows * b.ld];
            gemm_with(&a, rows, &b, &mut c, kernel);
            assert!(c.iter().all(|&v| v == 2_139_029_760), "{kernel:?}");
        }
    }
}
