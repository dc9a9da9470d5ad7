//! The backward pass of a binary max-pool in the flip optimizer.
//!
//! A pool's output bit is the OR of its window, so of the window's bits at most one flip
//! upstream matters at a time: the signal of an output bit goes to one position of its window
//! and the others get none. The position is the one whose popcount sum `s` (of the
//! convolution below) is largest, the first in row-major order on a tie. Within one channel
//! every position shares the threshold `T`, so this is the largest `s - T`: where the window
//! has a bit set, one of the set bits (the one that produced the max, and the one that stays
//! on longest when the signal says "lower"); where every bit is clear, the position closest to
//! switching on, the one a signal saying "raise" moves first. The convolution's own window of
//! step 3 then weights that position's signal by its distance to the threshold.

use rayon::prelude::*;

use crate::model::MaxPool;

/// The signal at the pool's input (`batch x pool.input_size()`, zero except at one position
/// per output bit) from the signal `g` at its output (`batch x pool.output_size()`) and the
/// popcount sums `sums` of the convolution below (`batch x pool.input_size()`, the order of
/// its output map).
pub(super) fn route(pool: &MaxPool, sums: &[i32], g: &[i32], batch: usize) -> Vec<i32> {
    let (isz, osz) = (pool.input_size(), pool.output_size());
    assert_eq!(sums.len(), batch * isz, "sums are not batch x pool input");
    assert_eq!(g.len(), batch * osz, "signal is not batch x pool output");
    let mut out = vec![0i32; batch * isz];
    out.par_chunks_mut(isz.max(1))
        .zip(sums.par_chunks(isz.max(1)))
        .zip(g.par_chunks(osz.max(1)))
        .for_each(|((o, s), g)| route_one(pool, s, g, o));
    out
}

/// [`route`] for one sample; `out` is zero on entry.
fn route_one(pool: &MaxPool, sums: &[i32], g: &[i32], out: &mut [i32]) {
    let c = pool.channels;
    for oy in 0..pool.out_height() {
        for ox in 0..pool.out_width() {
            let at = (oy * pool.out_width() + ox) * c;
            for ch in 0..c {
                let mut best = usize::MAX;
                for dy in 0..pool.size {
                    for dx in 0..pool.size {
                        let px = (oy * pool.size + dy) * pool.width + ox * pool.size + dx;
                        let k = px * c + ch;
                        if best == usize::MAX || sums[k] > sums[best] {
                            best = k;
                        }
                    }
                }
                out[best] = g[at + ch];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_goes_to_the_largest_sum_of_each_window_the_first_on_ties() {
        // A 4x2 map of two channels, pooled to 2x1: two windows of four positions each.
        let pool = MaxPool {
            height: 4,
            width: 2,
            channels: 2,
            size: 2,
        };
        // Sums at (y, x, channel), written row by row. Threshold 5, say:
        //  window 0, channel 0: 7 at (0,1) is the only bit on; it takes the signal.
        //  window 0, channel 1: all off (2, 4, 3, 1): (0,1) with 4 is closest to switching on.
        //  window 1, channel 0: 9 and 9 on at (2,0) and (3,1): the first, (2,0).
        //  window 1, channel 1: all equal: the first position, (2,0).
        #[rustfmt::skip]
        let sums = [
            1, 2,   7, 4,   // y = 0
            3, 3,   0, 1,   // y = 1
            9, 6,   5, 6,   // y = 2
            2, 6,   9, 6,   // y = 3
        ];
        let g = [10, -20, 30, -40];
        let out = route(&pool, &sums, &g, 1);
        #[rustfmt::skip]
        let want = [
            0, 0,   10, -20,
            0, 0,   0, 0,
            30, -40, 0, 0,
            0, 0,   0, 0,
        ];
        assert_eq!(out, want);

        // Two samples: each routes by its own sums.
        let mut sums2 = sums.to_vec();
        let mut other = sums.to_vec();
        other[0] = 100; // (0,0) channel 0 now wins window 0.
        sums2.extend_from_slice(&other);
        let g2 = [g, g].concat();
        let out2 = route(&pool, &sums2, &g2, 2);
        assert_eq!(&out2[..16], &want);
        assert_eq!(out2[16], 10);
        assert_eq!(out2[16 + 2], 0);
    }
}
