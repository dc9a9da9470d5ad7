//! Bit-packed feature maps: the windows a convolution reads and the OR a binary max-pool takes.
//!
//! A feature map of `height` x `width` pixels and `channels` bits per pixel is stored
//! row-major with a pixel's channels adjacent: bit `(y * width + x) * channels + c` (see
//! [`crate::model::Conv`]). A convolution's window at output pixel `(y, x)` is the `kernel` rows
//! of `kernel * channels` consecutive bits starting at input pixel `(y + ky, x)`, placed one
//! after another; so a window is a few bit-range copies, and a whole layer becomes one dense
//! bit-GEMM over all windows ("im2col"), which is how the batched reference runs it.

use crate::bits::{words_for, WORD_BITS};
use crate::model::{Conv, MaxPool};

/// `n` bits of `src` from bit `from` written into `dst` from bit `to`; bits of `dst` outside
/// that range are kept.
pub fn copy_bits(src: &[u64], from: usize, dst: &mut [u64], to: usize, n: usize) {
    let mut done = 0;
    while done < n {
        let (s, d) = (from + done, to + done);
        // The largest piece that neither crosses a source nor a destination word boundary.
        let take = (n - done)
            .min(WORD_BITS - s % WORD_BITS)
            .min(WORD_BITS - d % WORD_BITS);
        let mask = if take == WORD_BITS {
            u64::MAX
        } else {
            (1u64 << take) - 1
        };
        let v = (src[s / WORD_BITS] >> (s % WORD_BITS)) & mask;
        let w = &mut dst[d / WORD_BITS];
        *w = (*w & !(mask << (d % WORD_BITS))) | (v << (d % WORD_BITS));
        done += take;
    }
}

/// Writes the window of output pixel `(y, x)` of one plane `map` into `out` (at least
/// `words_for(conv.window())` words; padding bits are cleared).
pub fn window(conv: &Conv, map: &[u64], y: usize, x: usize, out: &mut [u64]) {
    let run = conv.kernel * conv.channels;
    out[..words_for(conv.window())].fill(0);
    for ky in 0..conv.kernel {
        let from = ((y + ky) * conv.width + x) * conv.channels;
        copy_bits(map, from, out, ky * run, run);
    }
}

/// Every window of one sample, output pixel after output pixel (row-major), each as `planes`
/// planes of `words_for(conv.window())` words: the rows of the convolution's bit-GEMM.
/// `map` holds `planes` planes of `words_for(conv.input_size())` words. `out` must hold
/// `conv.output_pixels() * planes * words_for(conv.window())` words.
pub fn windows(conv: &Conv, map: &[u64], planes: usize, out: &mut [u64]) {
    let (in_w, win_w) = (words_for(conv.input_size()), words_for(conv.window()));
    let mut at = 0;
    for y in 0..conv.out_height() {
        for x in 0..conv.out_width() {
            for k in 0..planes {
                window(
                    conv,
                    &map[k * in_w..(k + 1) * in_w],
                    y,
                    x,
                    &mut out[at..at + win_w],
                );
                at += win_w;
            }
        }
    }
}

/// Binary max-pool of one map: each output bit is the OR of its `size` x `size` window. `out`
/// must hold `words_for(pool.output_size())` words.
pub fn max_pool(pool: &MaxPool, map: &[u64], out: &mut [u64]) {
    let c = pool.channels;
    out[..words_for(pool.output_size())].fill(0);
    let mut acc = vec![0u64; words_for(c)];
    let mut row = vec![0u64; words_for(c)];
    for oy in 0..pool.out_height() {
        for ox in 0..pool.out_width() {
            acc.fill(0);
            for dy in 0..pool.size {
                for dx in 0..pool.size {
                    let px = (oy * pool.size + dy) * pool.width + ox * pool.size + dx;
                    row.fill(0);
                    copy_bits(map, px * c, &mut row, 0, c);
                    for (a, r) in acc.iter_mut().zip(&row) {
                        *a |= r;
                    }
                }
            }
            copy_bits(&acc, 0, out, (oy * pool.out_width() + ox) * c, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::{get_bit, set_bit};
    use crate::train::rng::splitmix as next;

    fn random_bits(n: usize, s: &mut u64) -> Vec<u64> {
        let mut v = vec![0u64; words_for(n)];
        for i in 0..n {
            set_bit(&mut v, i, next(s) & 1 == 1);
        }
        v
    }

    #[test]
    fn copies_match_bit_by_bit() {
        let mut s = 3;
        let src = random_bits(300, &mut s);
        for (from, to, n) in [
            (0, 0, 64),
            (5, 61, 70),
            (63, 1, 130),
            (17, 64, 1),
            (0, 3, 0),
        ] {
            let mut dst = random_bits(300, &mut s);
            let before = dst.clone();
            copy_bits(&src, from, &mut dst, to, n);
            for i in 0..300 {
                let want = if (to..to + n).contains(&i) {
                    get_bit(&src, from + i - to)
                } else {
                    get_bit(&before, i)
                };
                assert_eq!(get_bit(&dst, i), want, "from {from} to {to} n {n} bit {i}");
            }
        }
    }

    #[test]
    fn windows_read_rows_then_pixels_then_channels() {
        let conv = Conv {
            height: 5,
            width: 6,
            channels: 3,
            kernel: 3,
        };
        let mut s = 11;
        let map = random_bits(conv.input_size(), &mut s);
        let mut w = vec![0u64; words_for(conv.window())];
        for (y, x) in [(0, 0), (2, 3), (1, 2)] {
            window(&conv, &map, y, x, &mut w);
            for ky in 0..3 {
                for kx in 0..3 {
                    for c in 0..3 {
                        let bit = (ky * 3 + kx) * 3 + c;
                        let src = ((y + ky) * 6 + x + kx) * 3 + c;
                        assert_eq!(get_bit(&w, bit), get_bit(&map, src));
                    }
                }
            }
        }
    }

    #[test]
    fn pool_is_an_or_over_each_window() {
        let pool = MaxPool {
            height: 4,
            width: 6,
            channels: 5,
            size: 2,
        };
        let mut s = 5;
        let map = random_bits(pool.input_size(), &mut s);
        let mut out = vec![0u64; words_for(pool.output_size())];
        max_pool(&pool, &map, &mut out);
        for oy in 0..2 {
            for ox in 0..3 {
                for c in 0..5 {
                    let any = (0..2).any(|dy| {
                        (0..2).any(|dx| get_bit(&map, ((2 * oy + dy) * 6 + 2 * ox + dx) * 5 + c))
                    });
                    assert_eq!(get_bit(&out, (oy * 3 + ox) * 5 + c), any);
                }
            }
        }
    }
}
