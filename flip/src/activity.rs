//! How often each hidden channel of a binary model is on.
//!
//! A channel (a dense neuron, or a convolution's or pool's output channel) that is on, or off,
//! at nearly every position of every image passes nothing to the layers above: its threshold
//! has left the range of its sums. The count of such channels per layer is the first thing to
//! look at when a trained network underfits.

use rayon::prelude::*;

use crate::bits::get_bit;
use crate::model::{Layer, Model};
use crate::reference::binary_forward;

/// A channel is constant when it is on, or off, at more than this share of its positions.
pub const CONSTANT_SHARE: f64 = 0.98;

/// One hidden layer's activity over a set of images.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerActivity {
    /// Index in `model.layers`.
    pub layer: usize,
    /// `dense`, `conv` or `pool`.
    pub kind: &'static str,
    pub channels: usize,
    /// Share of on bits over all channels and positions.
    pub mean_on: f64,
    /// The least and most active channel's share of on bits.
    pub min_on: f64,
    pub max_on: f64,
    /// Channels on at more than [`CONSTANT_SHARE`] of their positions.
    pub always_on: usize,
    /// Channels off at more than [`CONSTANT_SHARE`] of their positions.
    pub always_off: usize,
}

/// Activity of every hidden layer of a binary model over `images` (raw pixels, one image
/// after another). Counts are integers added per channel, so the result does not depend on
/// the thread count.
pub fn activity(model: &Model, images: &[u8]) -> Vec<LayerActivity> {
    let px = model.input.pixels();
    let n = images.len() / px.max(1);
    // Per layer: bits per image and channels, from one image's pass (every image's is alike).
    let mut shape: Vec<Option<(usize, usize)>> = vec![None; model.layers.len()];
    if n > 0 {
        binary_forward(model, &images[..px], |l, _, size, ch| {
            shape[l] = Some((size, ch))
        });
    }
    let zero = || -> Vec<Vec<u64>> {
        shape
            .iter()
            .map(|s| vec![0u64; s.map_or(0, |(_, ch)| ch)])
            .collect()
    };
    let on = (0..n)
        .into_par_iter()
        .fold(zero, |mut acc, i| {
            binary_forward(model, &images[i * px..(i + 1) * px], |l, bits, size, ch| {
                let counts = &mut acc[l];
                for b in 0..size {
                    counts[b % ch] += get_bit(bits, b) as u64;
                }
            });
            acc
        })
        .reduce(zero, |mut a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                x.iter_mut().zip(y).for_each(|(p, q)| *p += q);
            }
            a
        });
    shape
        .iter()
        .enumerate()
        .filter_map(|(l, s)| {
            let (size, ch) = (*s)?;
            let per_channel = (n * size / ch) as f64;
            let shares: Vec<f64> = on[l].iter().map(|&c| c as f64 / per_channel).collect();
            let kind = match &model.layers[l] {
                Layer::MaxPool(_) => "pool",
                Layer::Binary(b) if b.conv.is_some() => "conv",
                _ => "dense",
            };
            Some(LayerActivity {
                layer: l,
                kind,
                channels: ch,
                mean_on: shares.iter().sum::<f64>() / ch as f64,
                min_on: shares.iter().copied().fold(1.0, f64::min),
                max_on: shares.iter().copied().fold(0.0, f64::max),
                always_on: shares.iter().filter(|&&v| v > CONSTANT_SHARE).count(),
                always_off: shares.iter().filter(|&&v| v < 1.0 - CONSTANT_SHARE).count(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::Encoding;
    use crate::model::{arch, random, Activation, InputSpec};
    use crate::train::rng::Stream;

    #[test]
    fn planted_constant_channels_are_found_and_shares_are_counted() {
        let input = InputSpec {
            width: 6,
            height: 6,
            channels: 1,
            pixel_bits: 8,
            encoding: Encoding::BitPlanes(2),
        };
        let specs = arch::parse("c4-p-6-3", input.pixels()).unwrap();
        let mut model = random::binary(3, input, &specs, 3);
        // Convolution channel 0 always on (every sum is >= 0), channel 1 always off (no sum
        // reaches the threshold); dense neuron 2 always off.
        let set = |layer: &mut Layer, i: usize, t: i32| {
            let Layer::Binary(b) = layer else { panic!() };
            let Activation::Threshold { thresholds, invert } = &mut b.activation else {
                panic!()
            };
            thresholds[i] = t;
            invert[i] = false;
        };
        set(&mut model.layers[0], 0, 0);
        set(&mut model.layers[0], 1, 1 << 20);
        set(&mut model.layers[2], 2, 1 << 20);
        let mut s = Stream::new(7, 1);
        let images: Vec<u8> = (0..36 * 50).map(|_| s.next_u64() as u8).collect();
        let a = activity(&model, &images);
        let kinds: Vec<_> = a.iter().map(|l| (l.layer, l.kind, l.channels)).collect();
        assert_eq!(kinds, [(0, "conv", 4), (1, "pool", 4), (2, "dense", 6)]);
        assert!(a[0].always_on >= 1 && a[0].always_off >= 1, "{:?}", a[0]);
        assert!(a[1].always_on >= 1 && a[1].always_off >= 1, "{:?}", a[1]);
        assert!(a[2].always_off >= 1, "{:?}", a[2]);
        assert_eq!((a[0].max_on, a[0].min_on), (1.0, 0.0));
        // The mean share against a plain count over every image.
        let (mut on, mut total) = (0u64, 0u64);
        for img in images.chunks_exact(36) {
            binary_forward(&model, img, |l, bits, size, _| {
                if l == 2 {
                    on += (0..size).filter(|&b| get_bit(bits, b)).count() as u64;
                    total += size as u64;
                }
            });
        }
        assert!((a[2].mean_on - on as f64 / total as f64).abs() < 1e-12);
    }
}
