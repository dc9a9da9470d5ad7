//! Random binary models and foldings for tests and benchmarks (deterministic per seed).

use flip::bits::BitMatrix;
use flip::encoding::Encoding;
use flip::model::{Activation, BinaryLayer, InputSpec, Layer, Metadata, Model};

use crate::passes::folding::{FoldFile, LayerFold, MAX_PIXELS_PER_BEAT};

/// A SplitMix64 stream.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Uniform in `lo..=hi`, signed.
    pub fn irange(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next_u64() as usize % items.len()]
    }
}

/// A binary model of the given `pixels`, hidden and class widths with random weights,
/// thresholds mostly around the middle of each neuron's range (one in ten beyond either end),
/// random direction bits and offsets (one in ten large).
pub fn random_model(
    rng: &mut Rng,
    pixels: usize,
    pixel_bits: u8,
    encoding: Encoding,
    widths: &[usize],
) -> Model {
    let mut layers = Vec::new();
    let mut inputs = pixels * encoding.bits_per_pixel();
    let mut planes = encoding.planes();
    for (i, &outputs) in widths.iter().enumerate() {
        let mut weights = BitMatrix::zeros(outputs, inputs);
        for r in 0..outputs {
            let words: Vec<u64> = (0..weights.words_per_row())
                .map(|_| rng.next_u64())
                .collect();
            weights.set_row(r, &words);
        }
        let max = (inputs * ((1 << planes) - 1)) as i64;
        let activation = if i + 1 == widths.len() {
            Activation::Scores {
                bias: (0..outputs)
                    .map(|_| match rng.range(0, 9) {
                        0 => rng.irange(-100_000, 100_000) as i32,
                        _ => rng.irange(-40, 40) as i32,
                    })
                    .collect(),
            }
        } else {
            Activation::Threshold {
                // Mostly around the mean, sometimes out of range on either side.
                thresholds: (0..outputs)
                    .map(|_| match rng.range(0, 9) {
                        0 => rng.irange(-1000, 0) as i32,
                        1 => rng.irange(max, max + 1000) as i32,
                        _ => rng.irange(max / 4 - 2, max * 3 / 4 + 2) as i32,
                    })
                    .collect(),
                invert: (0..outputs).map(|_| rng.next_u64() & 1 == 1).collect(),
            }
        };
        layers.push(Layer::Binary(BinaryLayer {
            inputs,
            outputs,
            weights,
            activation,
            conv: None,
        }));
        inputs = outputs;
        planes = 1;
    }
    Model {
        input: InputSpec {
            width: pixels,
            height: 1,
            channels: 1,
            pixel_bits,
            encoding,
        },
        layers,
        meta: Metadata::default(),
    }
}

/// A random legal folding of every layer of `model`.
pub fn random_folding(rng: &mut Rng, model: &Model) -> FoldFile {
    let div = |rng: &mut Rng, n: usize, most: usize| {
        let d: Vec<usize> = (1..=n.min(most)).filter(|d| n.is_multiple_of(*d)).collect();
        *rng.pick(&d)
    };
    let pixels_per_beat = div(rng, model.input.pixels(), MAX_PIXELS_PER_BEAT);
    let layers: Vec<LayerFold> = model
        .layers
        .iter()
        .map(|l| LayerFold {
            pe: div(rng, l.outputs(), usize::MAX),
            simd: div(rng, l.inputs(), usize::MAX),
        })
        .collect();
    // About one layer in three with more than one weight word loads its weights into RAM.
    let load_weights = model
        .layers
        .iter()
        .zip(&layers)
        .enumerate()
        .filter(|(_, (l, f))| (l.outputs() / f.pe) * (l.inputs() / f.simd) > 1)
        .filter(|_| rng.range(0, 2) == 0)
        .map(|(i, _)| i + 1)
        .collect();
    FoldFile {
        pixels_per_beat,
        layers,
        load_weights,
    }
}

/// Random pixels of `pixel_bits` bits for `frames` frames.
pub fn random_pixels(rng: &mut Rng, model: &Model, frames: usize) -> Vec<u8> {
    let max = (1u64 << model.input.pixel_bits) - 1;
    (0..frames * model.input.pixels())
        .map(|_| rng.range(0, max) as u8)
        .collect()
}

/// A random encoding valid for `pixel_bits`-bit pixels.
pub fn random_encoding(rng: &mut Rng, pixel_bits: u8) -> Encoding {
    let max = (1u64 << pixel_bits) - 1;
    match rng.range(0, 2) {
        0 => Encoding::Threshold(rng.range(0, max) as u16),
        1 => {
            let n = rng.range(1, 3) as usize;
            Encoding::Thermometer((0..n).map(|_| rng.range(0, max) as u16).collect())
        }
        _ => Encoding::BitPlanes(rng.range(1, pixel_bits.min(4) as u64) as u8),
    }
}
