//! Random binary models and foldings for tests and benchmarks (deterministic per seed).

use flip::bits::BitMatrix;
use flip::encoding::Encoding;
use flip::model::arch::LayerSpec;
use flip::model::{Activation, BinaryLayer, InputSpec, Layer, Metadata, Model};

use crate::blocks::mvtu::PES_PER_INPUT_COPY;
use crate::ir::InputFormat;
use crate::passes::fifos::FifoDepth;
use crate::passes::folding::{FoldFile, LayerFold};

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
                // Per-class multipliers (an imported model's last batch norm) one time in
                // three.
                scale: if rng.range(0, 2) == 0 {
                    (0..outputs).map(|_| rng.range(1, 300) as u32).collect()
                } else {
                    Vec::new()
                },
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

/// A random legal folding of every binary layer of `model` (dense or convolution); a model with
/// a one-bit encoding takes packed input one time in three.
pub fn random_folding(rng: &mut Rng, model: &Model) -> FoldFile {
    let div = |rng: &mut Rng, n: usize, most: usize| {
        let d: Vec<usize> = (1..=n.min(most)).filter(|d| n.is_multiple_of(*d)).collect();
        *rng.pick(&d)
    };
    // A model that starts with a convolution streams one image pixel per beat, whose values
    // an input beat must divide.
    let values = if model.is_convolutional() {
        model.input.channels
    } else {
        model.input.pixels()
    };
    let enc = &model.input.encoding;
    let one_bit = enc.bits_per_pixel() == 1 && enc.planes() == 1;
    let input = if one_bit && rng.range(0, 2) == 0 {
        InputFormat::Packed
    } else {
        InputFormat::Pixels
    };
    let pixels_per_beat = div(rng, values, input.max_pixels_per_beat());
    // The binary layers (dense and convolutions, not pools) with their layer numbers: of a
    // convolution, outputs are its channels and inputs its window.
    let binary: Vec<(usize, &BinaryLayer)> = model
        .layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| match l {
            Layer::Binary(b) => Some((i + 1, b)),
            _ => None,
        })
        .collect();
    let layers: Vec<LayerFold> = binary
        .iter()
        .map(|(_, l)| LayerFold {
            pe: div(rng, l.outputs, usize::MAX),
            simd: div(rng, l.inputs, usize::MAX),
        })
        .collect();
    // About one layer in three with more than one weight word loads its weights into RAM.
    let load_weights = binary
        .iter()
        .zip(&layers)
        .filter(|((_, l), f)| (l.outputs / f.pe) * (l.inputs / f.simd) > 1)
        .filter(|_| rng.range(0, 2) == 0)
        .map(|((i, _), _)| *i)
        .collect();
    let mut fold = FoldFile {
        pixels_per_beat,
        input,
        layers,
        load_weights,
        fifos: None,
        // Every pipeline depth, from a register after each adder level to one tree stage.
        stage_levels: Some(rng.range(1, 6) as usize),
        read_registers: Some(rng.range(1, 2) as usize),
        activation_stage: Some(rng.range(0, 1) == 1),
        input_ram: None,
        input_ram_layers: None,
        table_inputs: Vec::new(),
        dual_port_tables: None,
        block_rom_layers: Vec::new(),
        mmv: Vec::new(),
    };
    // A dense first layer whose chunks the input can deliver buffers its input in RAM one
    // time in two (see `passes::input_buffer`).
    if input_ram_allowed(model, &fold) {
        fold.input_ram = Some(rng.range(0, 1) == 1);
    }
    fold
}

/// True if `fold` lets `model`'s first layer buffer its input in RAM: a dense first layer of
/// at least two SIMD chunks, each a whole number of input beats of encoded pixels.
pub fn input_ram_allowed(model: &Model, fold: &FoldFile) -> bool {
    let bits = model.input.encoding.bits_per_pixel();
    match (model.layers.first(), fold.layers.first()) {
        (Some(Layer::Binary(l)), Some(f)) => {
            l.conv.is_none()
                && f.simd > 0
                && l.inputs / f.simd >= 2
                && f.simd.is_multiple_of(bits)
                && (f.simd / bits).is_multiple_of(fold.pixels_per_beat.max(1))
        }
        _ => false,
    }
}

/// A small dense model whose first layer buffers its input in RAM, and its folding: 8 to 200
/// pixels in any encoding, one to four pixels per beat, a first layer of 2 to 16 neurons cut
/// into 2 or more SIMD chunks, 2 to 10 classes, everything else folded at random.
pub fn random_input_ram(rng: &mut Rng) -> (Model, FoldFile) {
    loop {
        let pixel_bits = rng.range(2, 8) as u8;
        let enc = random_encoding(rng, pixel_bits);
        let pixels = rng.range(8, 200) as usize;
        let widths = [rng.range(2, 16) as usize, rng.range(2, 10) as usize];
        let model = random_model(rng, pixels, pixel_bits, enc, &widths);
        let mut fold = random_folding(rng, &model);
        let bits = model.input.encoding.bits_per_pixel();
        let divs = |n: usize| (1..=n).filter(move |d| n.is_multiple_of(*d));
        let k = *rng.pick(&divs(pixels).filter(|&k| k <= 4).collect::<Vec<_>>());
        // SIMD chunks of a whole number of beats' pixels, at least two per frame.
        let simds: Vec<usize> = divs(pixels)
            .filter(|&v| v % k == 0 && v < pixels)
            .map(|v| v * bits)
            .collect();
        if simds.is_empty() {
            continue;
        }
        fold.pixels_per_beat = k;
        fold.input = InputFormat::Pixels;
        fold.layers[0].simd = *rng.pick(&simds);
        let l = fold.layers[0];
        if model.layers.first().is_some_and(|f| match f {
            Layer::Binary(b) => (b.outputs / l.pe) * (b.inputs / l.simd) == 1,
            _ => false,
        }) {
            fold.load_weights.retain(|&i| i != 1);
        }
        fold.input_ram = Some(true);
        return (model, fold);
    }
}

/// A dense model of 4 to 40 pixels of `min_bits` to 8 bits in any encoding, `hidden` (lowest,
/// highest) hidden layers of `width` (lowest, highest) neurons and 2 to 10 classes, with its
/// layer widths.
fn random_dense(
    rng: &mut Rng,
    min_bits: u64,
    hidden: (u64, u64),
    width: (u64, u64),
) -> (Model, Vec<usize>) {
    let pixel_bits = rng.range(min_bits, 8) as u8;
    let enc = random_encoding(rng, pixel_bits);
    let pixels = rng.range(4, 40) as usize;
    let mut widths: Vec<usize> = (0..rng.range(hidden.0, hidden.1))
        .map(|_| rng.range(width.0, width.1) as usize)
        .collect();
    widths.push(rng.range(2, 10) as usize);
    (random_model(rng, pixels, pixel_bits, enc, &widths), widths)
}

/// Inputs per table lookup for layers of `words` weight words each: one time in two 2 to
/// [`crate::passes::tables::MAX_TABLE_INPUTS`] where there is more than one word, else 0.
fn random_tables_for(rng: &mut Rng, words: &[usize]) -> Vec<usize> {
    words
        .iter()
        .map(|&w| {
            if w > 1 && rng.range(0, 1) == 0 {
                rng.range(2, crate::passes::tables::MAX_TABLE_INPUTS as u64) as usize
            } else {
                0
            }
        })
        .collect()
}

/// A small dense model in which later layers keep their input vector in RAM, and its folding:
/// 4 to 40 pixels in any encoding, two or three hidden layers of 2 to 24 neurons and 2 to 10
/// classes, everything folded at random but every later layer cut into 2 or more SIMD chunks,
/// and each of them (at least one) buffered in RAM one time in two: chunks of 1 to 12 bits,
/// producers with and without output queues.
pub fn random_vector_ram(rng: &mut Rng) -> (Model, FoldFile) {
    let (model, _) = random_dense(rng, 2, (2, 3), (2, 24));
    let mut fold = random_folding(rng, &model);
    let divs = |n: usize| (1..n).filter(move |d| n.is_multiple_of(*d));
    let mut ram = Vec::new();
    for (i, l) in model.layers.iter().enumerate().skip(1) {
        let Layer::Binary(b) = l else {
            unreachable!("dense models")
        };
        let simds: Vec<usize> = divs(b.inputs).collect();
        if simds.is_empty() {
            continue;
        }
        fold.layers[i].simd = *rng.pick(&simds);
        if ram.is_empty() || rng.range(0, 1) == 0 {
            ram.push(i + 1);
        }
    }
    // A single weight word has nothing to load into RAM.
    let words = |i: usize| match &model.layers[i] {
        Layer::Binary(b) => (b.outputs / fold.layers[i].pe) * (b.inputs / fold.layers[i].simd),
        _ => 0,
    };
    let single: Vec<usize> = (0..model.layers.len()).filter(|&i| words(i) == 1).collect();
    fold.load_weights.retain(|i| !single.contains(&(i - 1)));
    fold.input_ram_layers = Some(ram);
    (model, fold)
}

/// A dense model whose hidden layers fold by PEs, and feed the next layer at SIMDs, that need
/// not divide their widths (see [`crate::passes::padding`]), with later layers' inputs in
/// registers or RAM and tables one time in three.
pub fn random_idle_neurons(rng: &mut Rng) -> (Model, FoldFile) {
    let (model, widths) = random_dense(rng, 1, (1, 3), (3, 40));
    let mut fold = random_folding(rng, &model);
    // Each layer's width once padded, and its inputs.
    let mut padded = widths.clone();
    for i in 0..widths.len() - 1 {
        let m = widths[i];
        // Any PE and next SIMD whose common multiple leaves at most a quarter idle.
        let (pe, simd, step) = loop {
            let (pe, simd) = (
                rng.range(1, m as u64) as usize,
                rng.range(1, m as u64) as usize,
            );
            let step = pe / gcd(pe, simd) * simd;
            if m.div_ceil(step) * step - m <= m / 4 {
                break (pe, simd, step);
            }
        };
        fold.layers[i].pe = pe;
        fold.layers[i + 1].simd = simd;
        padded[i] = m.div_ceil(step) * step;
    }
    let inputs = |i: usize| {
        if i == 0 {
            model.input.encoded_inputs()
        } else {
            padded[i - 1]
        }
    };
    let words: Vec<usize> = (0..widths.len())
        .map(|i| (padded[i] / fold.layers[i].pe) * (inputs(i) / fold.layers[i].simd))
        .collect();
    fold.load_weights.retain(|&l| words[l - 1] > 1);
    if rng.range(0, 2) == 0 {
        fold.table_inputs = random_tables_for(rng, &words);
        fold.load_weights.clear();
        if fold.table_inputs[0] > 0 && fold.input_ram.is_some() {
            fold.input_ram = Some(false);
        }
    } else if rng.range(0, 1) == 0 {
        fold.input_ram_layers = Some(
            (2..=widths.len())
                .filter(|&l| inputs(l - 1) > fold.layers[l - 1].simd && rng.range(0, 1) == 0)
                .collect(),
        );
    }
    (model, fold)
}

/// A small dense network and a random folding in which layers work on 2, 4 or 8 frames per
/// weight read (see [`crate::passes::mmv`]) where they can: every layer with more than one
/// weight word (and one input plane) one time in two, at least one layer. Hidden layers may
/// be padded with idle neurons (PE and the next SIMD not dividing the width), and the other
/// layers keep their RAM choices. One time in four a layer has more PEs than one copy of its
/// input chunk feeds (see [`crate::blocks::Mvtu::input_copies`]) and works on several frames.
pub fn random_mmv(rng: &mut Rng) -> (Model, FoldFile) {
    loop {
        let mut wide = None;
        let (model, fold) = if rng.range(0, 1) == 0 {
            random_idle_neurons(rng)
        } else {
            let (model, widths) = random_dense(rng, 1, (1, 3), (2, 40));
            let mut fold = random_folding(rng, &model);
            let i = rng.range(0, widths.len() as u64 - 1) as usize;
            let pes: Vec<usize> = (PES_PER_INPUT_COPY + 1..=widths[i])
                .filter(|d| widths[i].is_multiple_of(*d))
                .collect();
            if !pes.is_empty() && rng.range(0, 1) == 0 {
                fold.layers[i].pe = *rng.pick(&pes);
                wide = Some(i + 1);
            }
            (model, fold)
        };
        let mut fold = fold;
        // The layers' input widths once padded follow from the compiled design.
        let Ok(design) = crate::compile(&model, &crate::FoldSpec::Manual(fold.clone())) else {
            continue;
        };
        let mmv: Vec<usize> = design
            .mvtus()
            .map(|l| {
                let f = 1 << rng.range(1, 3);
                let eligible = l.planes == 1
                    && l.neuron_folds() * l.synapse_folds() > 1
                    && !fold.load_weights.contains(&l.index)
                    && fold.table_inputs.get(l.index - 1).copied().unwrap_or(0) == 0;
                if eligible && (wide == Some(l.index) || rng.range(0, 1) == 0) {
                    f
                } else {
                    1
                }
            })
            .collect();
        if mmv.iter().all(|&f| f == 1) {
            continue;
        }
        if mmv[0] > 1 && fold.input_ram == Some(true) {
            fold.input_ram = Some(false);
        }
        if let Some(layers) = fold.input_ram_layers.as_mut() {
            layers.retain(|&l| mmv[l - 1] == 1 && mmv[l - 2] == 1);
        }
        fold.mmv = mmv;
        return (model, fold);
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A small random network, dense or (one time in two) convolutional, at a random folding in
/// which every layer with more than one weight word looks its popcounts up in tables of 2 to
/// [`crate::passes::tables::MAX_TABLE_INPUTS`] inputs one time in two (at least one layer
/// does), its weights in ROM; the passes choose where the other layers keep their inputs.
pub fn random_tables(rng: &mut Rng) -> (Model, FoldFile) {
    loop {
        let model = if rng.range(0, 1) == 0 {
            random_conv_model(rng)
        } else {
            let pixel_bits = rng.range(2, 8) as u8;
            let enc = random_encoding(rng, pixel_bits);
            let pixels = rng.range(2, 40) as usize;
            let widths: Vec<usize> = (0..rng.range(1, 3))
                .map(|_| rng.range(2, 24) as usize)
                .collect();
            random_model(rng, pixels, pixel_bits, enc, &widths)
        };
        let mut fold = random_folding(rng, &model);
        let words: Vec<usize> = model
            .layers
            .iter()
            .filter_map(|l| match l {
                Layer::Binary(b) => Some(b),
                _ => None,
            })
            .zip(&fold.layers)
            .map(|(b, f)| (b.outputs / f.pe) * (b.inputs / f.simd))
            .collect();
        fold.table_inputs = random_tables_for(rng, &words);
        if fold.table_inputs.iter().all(|&k| k == 0) {
            continue;
        }
        fold.load_weights.clear();
        if fold.table_inputs[0] > 0 && fold.input_ram.is_some() {
            fold.input_ram = Some(false);
        }
        fold.input_ram_layers = None;
        // Two read registers give table layers a third (the block RAM's output register on
        // the ECP5, see `passes::pipelining::read_registers_of`): two times in three.
        if rng.range(0, 2) > 0 {
            fold.read_registers = Some(2);
        }
        return (model, fold);
    }
}

/// A dense model whose first layer reads tables large enough to pair in two-port block RAMs
/// (see [`crate::ir::Mvtu::dual_port_tables`]), and its folding: 90 one-bit pixels, 32 hidden
/// neurons at PE 4 and SIMD 10, 15, 18 or 30 (9, 6, 5 or 3 chunks per neuron group), tables of
/// 2 or 3 inputs (the last group of a chunk often shorter, paired with a longer one), 2 to 6
/// classes.
pub fn random_paired_tables(rng: &mut Rng) -> (Model, FoldFile) {
    let classes = rng.range(2, 6) as usize;
    let model = random_model(rng, 90, 1, Encoding::Threshold(1), &[32, classes]);
    let simd = *rng.pick(&[10, 15, 18, 30]);
    let mut fold = FoldFile::from(vec![
        LayerFold { pe: 4, simd },
        LayerFold {
            pe: 1,
            simd: if rng.range(0, 1) == 0 { 8 } else { 32 },
        },
    ]);
    fold.table_inputs = vec![rng.range(2, 3) as usize, 0];
    fold.dual_port_tables = Some(true);
    fold.stage_levels = Some(rng.range(1, 4) as usize);
    fold.read_registers = Some(rng.range(1, 2) as usize);
    (model, fold)
}

/// Pixels per beat of [`random_wide_input`]: pixel bytes up to 64 (a 512-bit beat), and packed
/// pixels up to 512.
const WIDE_PIXELS: [usize; 3] = [16, 49, 64];
const WIDE_PACKED: [usize; 6] = [8, 49, 64, 98, 392, 512];

/// A small dense binary model whose input arrives in beats wider than a word, and its folding:
/// 16, 49 or 64 pixel bytes per beat (any encoding), or with a threshold encoding one time in
/// two packed, 8 to 512 pixels per beat; one to three beats per frame, a hidden layer of 2 to 12
/// neurons and 2 to 10 classes, the layers folded at random.
pub fn random_wide_input(rng: &mut Rng) -> (Model, FoldFile) {
    let packed = rng.range(0, 1) == 0;
    let (k, enc) = if packed {
        (
            *rng.pick(&WIDE_PACKED),
            Encoding::Threshold(rng.range(0, 255) as u16),
        )
    } else {
        (*rng.pick(&WIDE_PIXELS), random_encoding(rng, 8))
    };
    let beats = if k > 64 {
        rng.range(1, 2)
    } else {
        rng.range(1, 3)
    };
    let widths = [rng.range(2, 12) as usize, rng.range(2, 10) as usize];
    let model = random_model(rng, k * beats as usize, 8, enc, &widths);
    let mut fold = random_folding(rng, &model);
    fold.pixels_per_beat = k;
    fold.input = if packed {
        InputFormat::Packed
    } else {
        InputFormat::Pixels
    };
    if !input_ram_allowed(&model, &fold) {
        fold.input_ram = None;
    }
    (model, fold)
}

/// A random convolutional binary model: an image of 3 to 11 rows and columns (odd sizes
/// included) of one channel, one or two convolutions with kernels 1, 3 or 5 (where they fit)
/// and 1 to 12 output channels or, one time in four, 60 to 70 (more than a u64 word per pixel,
/// not a multiple of 64), a 2x2 max-pool after a convolution half the times its map is even,
/// then no or one hidden dense layer and 1 to 12 classes. Feature maps are kept to at most
/// 1500 bits so that designs stay small enough for quick RTL runs.
pub fn random_conv_model(rng: &mut Rng) -> Model {
    let pixel_bits = rng.range(4, 8) as u8;
    let encoding = random_encoding(rng, pixel_bits);
    let (mut h, mut w) = (rng.range(3, 11) as usize, rng.range(3, 11) as usize);
    let input = InputSpec {
        width: w,
        height: h,
        channels: 1,
        pixel_bits,
        encoding,
    };
    let mut specs = Vec::new();
    for _ in 0..rng.range(1, 2) {
        let kernels: Vec<usize> = [1, 3, 5].into_iter().filter(|&k| k <= h.min(w)).collect();
        let kernel = *rng.pick(&kernels);
        h = h + 1 - kernel;
        w = w + 1 - kernel;
        let wide = rng.range(0, 3) == 0;
        let channels = if wide {
            rng.range(60, 70) as usize
        } else {
            rng.range(1, 12) as usize
        }
        .min(1500 / (h * w))
        .max(1);
        specs.push(LayerSpec::Conv { channels, kernel });
        if h % 2 == 0 && w % 2 == 0 && rng.range(0, 1) == 0 {
            specs.push(LayerSpec::Pool);
            h /= 2;
            w /= 2;
        }
    }
    if rng.range(0, 1) == 0 {
        specs.push(LayerSpec::Dense(rng.range(1, 16) as usize));
    }
    let classes = rng.range(1, 12) as usize;
    specs.push(LayerSpec::Dense(classes));
    flip::model::random::binary(rng.next_u64(), input, &specs, classes)
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

/// Random FIFOs for a design: after each stage but the last two, with probability 1/3, a
/// FIFO of 1 to 6 entries (shallow, so that they also fill up and push back).
pub fn random_fifos(rng: &mut Rng, design: &crate::ir::Design) -> Vec<FifoDepth> {
    let names = design.stage_names();
    let mut fifos = Vec::new();
    for n in &names[..names.len().saturating_sub(2)] {
        if rng.range(0, 2) == 0 {
            fifos.push(FifoDepth {
                after: n.clone(),
                depth: rng.range(1, 6) as usize,
            });
        }
    }
    fifos
}
