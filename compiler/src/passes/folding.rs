//! Folding: how many pixels the input takes per beat, and how many neurons (PE) and input
//! bits per neuron (SIMD) each layer computes per cycle.
//!
//! `auto` takes the fewest pixels per beat (at most [`MAX_PIXELS_PER_BEAT`] pixel bytes, or
//! [`MAX_INPUT_BITS`] packed pixels, dividing the frame) whose `pixels / pixels_per_beat` cycles meet the target, then picks per layer the
//! cheapest folding (fewest XNOR lanes `pe * simd`, then fewest PEs) whose
//! `vectors * (outputs / pe) * planes * (inputs / simd)` cycles meet it (`vectors`: the
//! windows of a convolution per frame, 1 for a dense layer). The default target is one pixel
//! per cycle (`pixels` cycles per frame): no layer is made faster than the stream that feeds
//! it, which keeps LUTs modest. A layer that cannot meet the target even fully parallel is made
//! fully parallel.

use super::fifos::FifoDepth;
use super::Pass;
use crate::ir::{Design, InputFormat, MAX_INPUT_BITS};
use crate::CompileError;

/// Folding of one layer, as written in a fold file (`{"layers":[{"pe":..,"simd":..},..]}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerFold {
    /// Neurons in parallel (divides the layer's outputs).
    pub pe: usize,
    /// Input bits per neuron per cycle (divides the layer's inputs).
    pub simd: usize,
}

/// Most pixel bytes one input beat carries: 64, a 512-bit `s_data` ([`MAX_INPUT_BITS`]). Packed
/// input ([`InputFormat::Packed`]) carries up to 512 pixels in a beat of the same width.
pub const MAX_PIXELS_PER_BEAT: usize = MAX_INPUT_BITS / 8;

/// The fold file (`{"pixels_per_beat":..,"input":"pixels"|"packed","layers":[{"pe":..,"simd":..},..]}`;
/// without `pixels_per_beat`, one pixel per beat; without `input`, pixel bytes).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoldFile {
    /// Pixels per input beat (divides the frame's pixels, at most [`MAX_PIXELS_PER_BEAT`], or
    /// [`MAX_INPUT_BITS`] when packed).
    #[serde(default = "one")]
    pub pixels_per_beat: usize,
    /// How the pixels arrive: `pixels` (one byte each, default) or `packed` (one bit each,
    /// binarised by the sender; one-bit encodings only).
    #[serde(default, skip_serializing_if = "is_pixels")]
    pub input: InputFormat,
    /// One entry per layer, input first.
    pub layers: Vec<LayerFold>,
    /// Layers (1-based) whose weights are loaded into RAM after power-up (iCE40 SPRAM)
    /// instead of being ROMs; absent or empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_weights: Vec<usize>,
    /// The FIFOs between stages (see [`super::fifos`]); absent: the compiler sizes them for a
    /// design with pixel streams (by simulation) and a dense design needs none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fifos: Option<Vec<FifoDepth>>,
    /// Adder levels of the popcount trees per pipeline stage (see [`super::pipelining`]);
    /// absent: chosen from the target family and clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_levels: Option<usize>,
    /// Registers after each weight read (1 or 2; absent: 1, or chosen with `stage_levels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_registers: Option<usize>,
    /// The threshold compare in a stage of its own after the accumulators (absent: yes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_stage: Option<bool>,
    /// A dense first layer's input frame in a RAM of two frames (true) or in registers (false)
    /// (see [`super::input_buffer`]); absent: RAM for frames of at least
    /// [`super::input_buffer::MIN_RAM_BITS`] bits where the folding allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_ram: Option<bool>,
    /// The later dense layers (numbers from 1, each fed by the layer before it) that keep their
    /// input vector in a RAM of two vectors, written in chunks by that layer; every other later
    /// layer keeps it in registers (see [`super::input_buffer`]). Absent: RAM for the layers
    /// the input buffer pass picks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_ram_layers: Option<Vec<usize>>,
    /// Inputs per table lookup of each layer, input first (0: XNOR lanes; 2 to
    /// [`super::tables::MAX_TABLE_INPUTS`]: see [`super::tables`]); absent or empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub table_inputs: Vec<usize>,
    /// Table layers read their tables in pairs through the two ports of one memory (see
    /// [`crate::ir::Mvtu::dual_port_tables`]); absent: where the target family's block RAMs
    /// have two read ports (the ECP5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual_port_tables: Option<bool>,
    /// Layers (numbers from 1) whose weight ROM goes to block RAM whatever its size (see
    /// [`crate::ir::Mvtu::block_rom`]); absent or empty: where Yosys's cost rule puts it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_rom_layers: Vec<usize>,
    /// Frames per weight read of each layer, input first (see [`super::mmv`]); absent or
    /// empty: 1 everywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mmv: Vec<usize>,
}

fn one() -> usize {
    1
}

fn is_pixels(f: &InputFormat) -> bool {
    *f == InputFormat::Pixels
}

impl From<Vec<LayerFold>> for FoldFile {
    /// Layer foldings with one pixel per beat.
    fn from(layers: Vec<LayerFold>) -> FoldFile {
        FoldFile {
            pixels_per_beat: 1,
            input: InputFormat::Pixels,
            layers,
            load_weights: Vec::new(),
            fifos: None,
            stage_levels: None,
            read_registers: None,
            activation_stage: None,
            input_ram: None,
            input_ram_layers: None,
            table_inputs: Vec::new(),
            dual_port_tables: None,
            block_rom_layers: Vec::new(),
            mmv: Vec::new(),
        }
    }
}

/// How to fold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FoldSpec {
    /// Balance every layer to `target_cycles` (default: the input pixels per frame).
    Auto {
        /// Cycles per frame to meet.
        target_cycles: Option<u64>,
        /// How the pixels arrive (packed input allows more pixels per beat).
        input: InputFormat,
    },
    /// Exactly these foldings.
    Manual(FoldFile),
}

impl FoldSpec {
    /// Balanced to `target_cycles`, pixels arriving one value per byte.
    pub fn auto(target_cycles: Option<u64>) -> FoldSpec {
        FoldSpec::Auto {
            target_cycles,
            input: InputFormat::default(),
        }
    }
}

/// The folding pass.
pub struct Folding(pub FoldSpec);

fn divisors(n: usize) -> Vec<usize> {
    (1..=n).filter(|d| n.is_multiple_of(*d)).collect()
}

/// The fewest pixel bytes per beat (dividing `pixels`, at most [`MAX_PIXELS_PER_BEAT`]) whose
/// `pixels / pixels_per_beat` cycles meet `target`, or the most if none does.
pub fn auto_pixels_per_beat(pixels: usize, target: u64) -> usize {
    auto_pixels_per_beat_in(InputFormat::Pixels, pixels, target)
}

/// [`auto_pixels_per_beat`] for pixels arriving as `format` (at most
/// [`InputFormat::max_pixels_per_beat`] per beat).
pub fn auto_pixels_per_beat_in(format: InputFormat, pixels: usize, target: u64) -> usize {
    let ok: Vec<usize> = divisors(pixels)
        .into_iter()
        .filter(|&k| k <= format.max_pixels_per_beat())
        .collect();
    ok.iter()
        .copied()
        .find(|&k| (pixels / k) as u64 <= target)
        .unwrap_or_else(|| ok.last().copied().unwrap_or(1))
}

/// For an adapter streaming image pixels of `channels` values arriving as `format`: the fewest
/// values per input beat (dividing `channels`, at most [`InputFormat::max_pixels_per_beat`])
/// whose `values / k` cycles meet `target`, or the most if none does.
pub fn auto_values_per_beat(
    format: InputFormat,
    values: usize,
    channels: usize,
    target: u64,
) -> usize {
    let ok: Vec<usize> = divisors(channels)
        .into_iter()
        .filter(|&k| k <= format.max_pixels_per_beat())
        .collect();
    ok.iter()
        .copied()
        .find(|&k| (values / k) as u64 <= target)
        .unwrap_or_else(|| ok.last().copied().unwrap_or(1))
}

/// The cheapest `(pe, simd)` for an `outputs` x `inputs` layer of `planes` planes meeting
/// `target` cycles per frame.
pub fn auto_fold(outputs: usize, inputs: usize, planes: usize, target: u64) -> LayerFold {
    let mut best: Option<(usize, usize, LayerFold)> = None;
    for pe in divisors(outputs) {
        for simd in divisors(inputs) {
            let cycles = ((outputs / pe) * planes * (inputs / simd)) as u64;
            if cycles > target {
                continue;
            }
            let key = (pe * simd, pe);
            if best.as_ref().is_none_or(|b| key < (b.0, b.1)) {
                best = Some((key.0, key.1, LayerFold { pe, simd }));
            }
        }
    }
    best.map_or(
        LayerFold {
            pe: outputs,
            simd: inputs,
        },
        |b| b.2,
    )
}

impl Pass for Folding {
    fn name(&self) -> &'static str {
        "folding"
    }

    fn description(&self) -> &'static str {
        "sets each layer's PE and SIMD, from a fold file or balanced to a cycle target"
    }

    fn run(&self, design: &mut Design) -> Result<(), CompileError> {
        match &self.0 {
            FoldSpec::Auto {
                target_cycles,
                input,
            } => {
                let pixels = design.input().pixels;
                let target = target_cycles.unwrap_or(pixels as u64);
                design.input_mut().format = *input;
                // A streaming adapter hands on one image pixel per beat and takes at most
                // that pixel's values per input beat: the fewest of those meeting the target.
                design.input_mut().pixels_per_beat = match design.input().stream {
                    Some(channels) => auto_values_per_beat(*input, pixels, channels, target),
                    None => auto_pixels_per_beat_in(*input, pixels, target),
                };
                for l in design.mvtus_mut() {
                    // A convolution computes `vectors` windows per frame, each in the same
                    // fold steps: each window gets its share of the target.
                    let f = auto_fold(l.outputs, l.inputs, l.planes, target / l.vectors as u64);
                    l.pe = f.pe;
                    l.simd = f.simd;
                }
            }
            FoldSpec::Manual(file) => {
                let folds = &file.layers;
                design.input_mut().pixels_per_beat = file.pixels_per_beat;
                design.input_mut().format = file.input;
                let layers = design.mvtus().count();
                if folds.len() != layers {
                    return Err(CompileError::Folding(format!(
                        "the fold file has {} layers but the model has {layers}",
                        folds.len(),
                    )));
                }
                for (l, f) in design.mvtus_mut().zip(folds) {
                    l.pe = f.pe;
                    l.simd = f.simd;
                }
                super::padding::pad(design)?;
            }
        }
        crate::check::check_folding(design)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_meets_the_target_cheaply() {
        let f = auto_fold(1024, 784, 1, 784);
        assert!((1024 / f.pe) * (784 / f.simd) <= 784);
        assert_eq!(f.pe * f.simd, 1024);
        assert_eq!(auto_fold(10, 7, 1, 1), LayerFold { pe: 10, simd: 7 });
        assert_eq!(auto_fold(10, 7, 1, 1000), LayerFold { pe: 1, simd: 1 });
        // Impossible targets fall back to fully parallel.
        assert_eq!(auto_fold(3, 5, 4, 2), LayerFold { pe: 3, simd: 5 });
    }

    #[test]
    fn auto_pixels_per_beat_takes_the_fewest_that_meet_the_target() {
        assert_eq!(auto_pixels_per_beat(784, 784), 1);
        assert_eq!(auto_pixels_per_beat(784, 400), 2);
        assert_eq!(auto_pixels_per_beat(784, 112), 7);
        assert_eq!(auto_pixels_per_beat(784, 98), 8);
        assert_eq!(auto_pixels_per_beat(784, 60), 14);
        assert_eq!(auto_pixels_per_beat(784, 16), 49);
        // Faster than 64 pixels per cycle cannot be had: the most there is (56 of 784).
        assert_eq!(auto_pixels_per_beat(784, 10), 56);
        assert_eq!(auto_pixels_per_beat(4096, 1), 64);
        assert_eq!(auto_pixels_per_beat(13, 5), 13);
        assert_eq!(auto_pixels_per_beat(67, 5), 1);
        // Packed, up to 512 pixels (bits) per beat.
        let packed = |p, t| auto_pixels_per_beat_in(InputFormat::Packed, p, t);
        assert_eq!(packed(784, 784), 1);
        assert_eq!(packed(784, 10), 98);
        assert_eq!(packed(784, 1), 392);
        assert_eq!(packed(4096, 1), 512);
    }
}
