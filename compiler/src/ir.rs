//! The dataflow IR: a straight pipeline of blocks joined by valid/ready streams.
//!
//! A [`Design`] is what every backend reads: the Verilog emitter prints it, the cycle models in
//! [`crate::blocks`] simulate it, the report sums its estimates. Stage `i`'s output stream is
//! stage `i + 1`'s input stream; the first stage reads the top's `s_*` port and the last one
//! drives `m_*`.

use flip::bits::BitMatrix;
use flip::encoding::Encoding;

pub use crate::blocks::Stage;
use crate::blocks::{Block, StageModel};

/// One compiled accelerator.
#[derive(Clone, Debug, PartialEq)]
pub struct Design {
    /// Name of the top module.
    pub top: String,
    /// One line describing the model (architecture and encoding) for headers and reports.
    pub model: String,
    /// The pipeline in stream order: an input adapter first, an argmax last (see
    /// [`crate::check::check`]).
    pub stages: Vec<Stage>,
    /// The FPGA family whose costs `report.json`'s estimates use (the target device's when
    /// compiled for one).
    pub family: crate::blocks::Family,
}

/// Widest input beat (`s_data`) a design may have: 64 pixel bytes, or 512 packed pixels.
pub const MAX_INPUT_BITS: usize = 512;

/// How pixels arrive on the top's input stream (`s_data`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// One byte per pixel, pixel `j` of a beat in bits `8j .. 8j + 8`; the adapter applies the
    /// model's encoding.
    #[default]
    Pixels,
    /// One bit per pixel, already binarised by the sender (pixel `j` of a beat in bit `j`):
    /// only for a one-bit encoding (`threshold:T`), whose compare the adapter then skips.
    Packed,
}

impl InputFormat {
    /// Bits of `s_data` per pixel.
    pub fn bits_per_pixel(self) -> usize {
        match self {
            InputFormat::Pixels => 8,
            InputFormat::Packed => 1,
        }
    }

    /// Most pixels one beat can carry: as many as fit [`MAX_INPUT_BITS`].
    pub fn max_pixels_per_beat(self) -> usize {
        MAX_INPUT_BITS / self.bits_per_pixel()
    }

    /// The name used in fold files and `ports.json` (`pixels`, `packed`).
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Pixels => "pixels",
            InputFormat::Packed => "packed",
        }
    }
}

impl std::fmt::Display for InputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The input adapter: `pixels_per_beat` pixels per beat (bytes, or bits when packed), encoded
/// and packed into one first-layer beat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputAdapter {
    /// Pixels per frame.
    pub pixels: usize,
    /// Pixels per input beat (set by the folding pass; divides `pixels`).
    pub pixels_per_beat: usize,
    /// How the pixels of a beat arrive (set by the folding pass).
    pub format: InputFormat,
    /// Meaningful bits of a pixel byte.
    pub pixel_bits: u8,
    /// How pixels become bits.
    pub encoding: Encoding,
    /// `Some(channels)`: one output beat per image pixel of `channels` values (the stream a
    /// sliding window unit reads); `None`: one output beat per frame.
    pub stream: Option<usize>,
    /// `Some(values)`: the frame handed on in chunks of `values` values (one SIMD-wide word per
    /// plane), for a first layer that buffers its input in RAM (see the input buffer pass);
    /// only without `stream`.
    pub chunk: Option<usize>,
}

/// A binary layer folded onto `pe` x `simd` XNOR-popcount lanes. A dense layer takes one input
/// vector per frame; a convolution takes one window per output pixel (`vectors` of them) and
/// computes that pixel's output channels from each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mvtu {
    /// Layer number, 1-based (names: `l{index}_mvtu`).
    pub index: usize,
    /// Input bits per plane (of a convolution: the window, `kernel * kernel * channels`).
    pub inputs: usize,
    /// Neurons (of a convolution: output channels).
    pub outputs: usize,
    /// Input beats per frame, each computed independently: 1 for a dense layer, the output
    /// pixels of a convolution.
    pub vectors: usize,
    /// Input planes (bit planes of the first layer, else 1); plane `k` weighs `2^k`.
    pub planes: usize,
    /// Neurons added to the model's so that PE and the next layer's SIMD divide `outputs`
    /// (see [`crate::passes::padding`]); counted in `outputs`.
    pub idle_outputs: u32,
    /// Processing elements: neurons computed in parallel (divides `outputs`).
    pub pe: usize,
    /// Input bits per PE per cycle (divides `inputs`).
    pub simd: usize,
    /// `outputs` x `inputs` weights, bit set = +1.
    pub weights: BitMatrix,
    /// What the neurons emit.
    pub activation: MvtuActivation,
    /// Adder levels of the popcount tree per pipeline stage (set by the pipelining pass from
    /// the target family and clock; at least 1).
    pub stage_levels: usize,
    /// Registers after the weight read (1, or 2 where a block RAM read is slow for the clock).
    pub read_registers: usize,
    /// The threshold compare (or score offset) in a stage of its own after the accumulators,
    /// rather than in the accumulators' stage.
    pub activation_stage: bool,
    /// The folded weight memory, filled by the memory pass.
    pub memory: Option<WeightMemory>,
    /// The input arrives in chunks of `simd` bits per plane, one beat every `chunk_interval`
    /// cycles, into a RAM holding two frames, instead of a whole frame per beat into a register
    /// (set by the input buffer pass; 0: a whole frame per beat).
    pub chunk_interval: usize,
    /// Bits per output beat when the next layer buffers its input in RAM: the result is handed
    /// on in `outputs / out_chunk` chunks of the next layer's SIMD bits, lowest first, instead
    /// of in one beat (set by the input buffer pass; 0: the whole result per beat).
    pub out_chunk: usize,
    /// Inputs per table lookup (set by the tables pass; 0: XNOR lanes). With `k > 0` the
    /// weight memory is replaced by `ceil(simd / k)` tables, each addressed by the step and
    /// `k` input bits and holding, per PE, the popcount of those bits' XNORs with the weights:
    /// the XNORs and the first adder levels are read from block RAM instead of built in LUTs.
    pub table: usize,
    /// A table layer reads its tables in pairs through the two ports of one memory (a true
    /// dual-port block RAM, as the ECP5's DP16KD), so that a block RAM serves two tables: see
    /// [`Mvtu::table_memories`].
    pub dual_port_tables: bool,
    /// The weight ROM goes to block RAM whatever Yosys's cost rule would choose (fold-file key
    /// `block_rom_layers`; Verilog: `rom_style = "block"` on its case statement). A wide ROM
    /// more than 16 words deep left in LUTs is read through three to five LUT levels whose
    /// decoding ABC shares across the word, spread over the device: the Fashion-MNIST CNN's
    /// 32 x 1152 ROM of layer 5 limited its design to 89-96 MHz on the ECP5, and in 32 DP16KD
    /// 107-108 MHz with 2,500 fewer LUT4.
    pub block_rom: bool,
    /// Frames per weight read (fold-file key `mmv`; 1: one). With `F > 1` the layer works on
    /// up to `F` frames at once, each step's weight word serving `F` consecutive steps, one
    /// per frame, so that its ROM is `F` times deeper and `F` times narrower: the same
    /// cycles per frame from a fraction of the block RAMs (see [`crate::passes::mmv`]).
    pub mmv: u8,
}

/// What an MVTU does with a neuron's popcount sum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MvtuActivation {
    /// Hidden layer: bit `(s >= thresholds[i]) XOR invert[i]`.
    Threshold {
        /// Per-neuron thresholds as given by the model.
        thresholds: Vec<i32>,
        /// Per-neuron direction bits.
        invert: Vec<bool>,
    },
    /// Last layer: signed score `scale[i] * s + bias[i]`.
    Scores {
        /// Per-class offsets.
        bias: Vec<i32>,
        /// Per-class multipliers, or empty: 1 for every class (no multiplier in hardware).
        scale: Vec<u32>,
    },
}

impl From<&flip::model::Activation> for MvtuActivation {
    fn from(a: &flip::model::Activation) -> Self {
        match a {
            flip::model::Activation::Threshold { thresholds, invert } => {
                MvtuActivation::Threshold {
                    thresholds: thresholds.clone(),
                    invert: invert.clone(),
                }
            }
            flip::model::Activation::Scores { bias, scale } => MvtuActivation::Scores {
                bias: bias.clone(),
                scale: scale.clone(),
            },
        }
    }
}

impl From<&MvtuActivation> for flip::model::Activation {
    fn from(a: &MvtuActivation) -> Self {
        match a {
            MvtuActivation::Threshold { thresholds, invert } => {
                flip::model::Activation::Threshold {
                    thresholds: thresholds.clone(),
                    invert: invert.clone(),
                }
            }
            MvtuActivation::Scores { bias, scale } => flip::model::Activation::Scores {
                bias: bias.clone(),
                scale: scale.clone(),
            },
        }
    }
}

/// The weight ROM of one MVTU as laid out for its folding, plus the widths derived from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightMemory {
    /// `neuron_folds * synapse_folds` words of `pe * simd` bits, address `nf * sf_count + sf`;
    /// bit `p * simd + j` of a word is the weight of neuron `nf * pe + p` on input
    /// `sf * simd + j`. Each word is `words_per_entry` u64s.
    pub words: Vec<u64>,
    /// u64s per ROM word.
    pub words_per_entry: usize,
    /// Bits of the per-PE accumulator: enough for `inputs * (2^planes - 1)`.
    pub acc_width: u32,
    /// Thresholds clamped into `0..=max_sum + 1` (same outcome, unsigned compare), hidden
    /// layers only.
    pub thresholds: Vec<u32>,
    /// Bits of a clamped threshold (`acc_width + 1`).
    pub threshold_width: u32,
    /// Bits of a signed score (last layer only; 0 otherwise).
    pub score_width: u32,
    /// The words live in a RAM written once after power-up through the top's `load_*` port
    /// (iCE40 SPRAM, which a bitstream cannot initialise) instead of a constant ROM.
    pub loaded: bool,
}

/// Bits of one word on the top's weight-load port.
pub const LOAD_WORD_BITS: usize = 16;

/// The class decision: registered argmax over the scores, lowest index on ties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Argmax {
    /// Number of classes.
    pub classes: usize,
    /// Bits of one signed score.
    pub score_width: u32,
}

/// Bits needed to count `0..=max` (at least 1).
pub fn bits_for(max: u64) -> u32 {
    (64 - max.leading_zeros()).max(1)
}

impl Mvtu {
    /// Neuron folds: how many PE groups the outputs are cut into.
    pub fn neuron_folds(&self) -> usize {
        self.outputs / self.pe
    }

    /// Synapse folds: how many SIMD chunks the inputs are cut into.
    pub fn synapse_folds(&self) -> usize {
        self.inputs / self.simd
    }

    /// Cycles of one input vector: `(outputs / pe) * planes * (inputs / simd)` fold steps.
    pub fn vector_cycles(&self) -> u64 {
        (self.neuron_folds() * self.planes * self.synapse_folds()) as u64
    }

    /// True for a convolution (more than one input vector per frame).
    pub fn is_conv(&self) -> bool {
        self.vectors > 1
    }

    /// True if the input arrives in chunks into a RAM (see [`Mvtu::chunk_interval`]).
    pub fn input_ram(&self) -> bool {
        self.chunk_interval > 0
    }

    /// True if the result is handed on in chunks (see [`Mvtu::out_chunk`]).
    pub fn chunked_output(&self) -> bool {
        self.out_chunk > 0
    }

    /// Output beats per frame: 1, or the chunks of a chunked result.
    pub fn out_beats(&self) -> usize {
        if self.chunked_output() {
            self.outputs / self.out_chunk
        } else {
            1
        }
    }

    /// Largest popcount sum of one neuron.
    pub fn max_sum(&self) -> u64 {
        self.inputs as u64 * ((1u64 << self.planes) - 1)
    }

    /// True for the last (scores) layer.
    pub fn is_scores(&self) -> bool {
        matches!(self.activation, MvtuActivation::Scores { .. })
    }

    /// Bits of the largest per-class score multiplier; 0 if the scores are not scaled.
    pub fn scale_width(&self) -> u32 {
        match &self.activation {
            MvtuActivation::Scores { scale, .. } if !scale.is_empty() => {
                bits_for(scale.iter().copied().max().unwrap_or(1) as u64)
            }
            _ => 0,
        }
    }

    /// The folded memory; panics if the memory pass has not run (a compiler bug).
    pub fn mem(&self) -> &WeightMemory {
        self.memory
            .as_ref()
            .expect("memory pass runs before the memory is read")
    }

    /// True if the weights are loaded into RAM after power-up (see [`WeightMemory::loaded`]).
    pub fn is_loaded(&self) -> bool {
        self.memory.as_ref().is_some_and(|m| m.loaded)
    }

    /// Load-port words per weight word: the word's bits in 16-bit parts, lowest first.
    pub fn load_parts(&self) -> usize {
        (self.pe * self.simd).div_ceil(LOAD_WORD_BITS)
    }

    /// Words this layer takes on the load port (0 if its weights are a ROM).
    pub fn load_words(&self) -> usize {
        if self.is_loaded() {
            self.neuron_folds() * self.synapse_folds() * self.load_parts()
        } else {
            0
        }
    }

    /// The words this layer takes on the load port, in load order: weight word 0's parts
    /// (lowest 16 bits first), then word 1's, and so on; empty if its weights are a ROM.
    pub fn load_image(&self) -> Vec<u16> {
        if !self.is_loaded() {
            return Vec::new();
        }
        let m = self.mem();
        let lanes = self.pe * self.simd;
        let mut out = Vec::with_capacity(self.load_words());
        for word in m.words.chunks_exact(m.words_per_entry) {
            for part in 0..self.load_parts() {
                let off = part * LOAD_WORD_BITS;
                let n = (lanes - off).min(LOAD_WORD_BITS);
                out.push(crate::blocks::get_bits(word, off, n) as u16);
            }
        }
        out
    }

    /// Bits of one output element: 1 for hidden layers, the score width for the last.
    pub fn element_width(&self) -> u32 {
        if self.is_scores() {
            self.mem().score_width
        } else {
            1
        }
    }
}

impl Design {
    /// The input adapter (the first stage).
    pub fn input(&self) -> &InputAdapter {
        match self.stages.first() {
            Some(Stage::Input(a)) => a,
            _ => panic!("a design starts with its input adapter"),
        }
    }

    /// The input adapter, to change (the folding pass sets its pixels per beat).
    pub fn input_mut(&mut self) -> &mut InputAdapter {
        match self.stages.first_mut() {
            Some(Stage::Input(a)) => a,
            _ => panic!("a design starts with its input adapter"),
        }
    }

    /// The argmax (the last stage).
    pub fn argmax(&self) -> &Argmax {
        match self.stages.last() {
            Some(Stage::Argmax(a)) => a,
            _ => panic!("a design ends with its argmax"),
        }
    }

    /// The argmax, to change (the memory pass sets its score width).
    pub fn argmax_mut(&mut self) -> &mut Argmax {
        match self.stages.last_mut() {
            Some(Stage::Argmax(a)) => a,
            _ => panic!("a design ends with its argmax"),
        }
    }

    /// The matrix-vector-threshold units, input first: what the folding and memory passes and
    /// fold files are about.
    pub fn mvtus(&self) -> impl Iterator<Item = &Mvtu> + '_ {
        self.stages.iter().filter_map(|s| match s {
            Stage::Mvtu(l) => Some(l),
            _ => None,
        })
    }

    /// [`Design::mvtus`], to change.
    pub fn mvtus_mut(&mut self) -> impl Iterator<Item = &mut Mvtu> + '_ {
        self.stages.iter_mut().filter_map(|s| match s {
            Stage::Mvtu(l) => Some(l),
            _ => None,
        })
    }

    /// The blocks of every stage, in stream order.
    pub fn blocks(&self) -> impl Iterator<Item = &dyn Block> + '_ {
        self.stages.iter().map(Stage::block)
    }

    /// Stage names in stream order (the `dbg_fire` bit order).
    pub fn stage_names(&self) -> Vec<String> {
        self.blocks().map(|b| b.name()).collect()
    }

    /// Fresh (just reset) cycle models of every stage, in stream order.
    pub fn cycle_models(&self) -> Vec<StageModel> {
        self.blocks().map(|b| b.cycle_model()).collect()
    }

    /// Steady-state cycles between frames when nothing stalls: the slowest stage's.
    pub fn cycles_per_frame(&self) -> u64 {
        self.blocks().map(|b| b.cycles()).max().unwrap_or(1)
    }

    /// Cycles from the first input beat's handshake to the output handshake of the same
    /// frame when nothing stalls and the pipeline is empty: the sum of stage latencies.
    pub fn latency_cycles(&self) -> u64 {
        self.blocks().map(|b| b.latency()).sum()
    }

    /// The summed resource estimates of every stage for `family`.
    pub fn estimate_for(&self, family: crate::blocks::Family) -> crate::blocks::Estimate {
        self.blocks()
            .map(|b| b.estimate_for(family))
            .fold(crate::blocks::Estimate::default(), |a, b| a + b)
    }

    /// Every loading stage's [`Block::load_image`], stage after stage: what the top's load
    /// port takes after `load_rst`.
    pub fn load_image(&self) -> Vec<u16> {
        self.blocks().flat_map(|b| b.load_image()).collect()
    }

    /// Words the top's load port takes (see [`Design::load_image`]).
    pub fn load_words(&self) -> usize {
        self.blocks().map(|b| b.load_words()).sum()
    }

    /// True if some stage's weights are loaded after power-up.
    pub fn has_loaded_weights(&self) -> bool {
        self.blocks().any(|b| b.load_words() > 0)
    }

    /// Bits of `m_class`.
    pub fn class_width(&self) -> u32 {
        bits_for(self.argmax().classes.saturating_sub(1) as u64)
    }

    /// The interface description harnesses read (`ports.json`).
    pub fn ports(&self) -> Ports {
        Ports {
            top: self.top.clone(),
            files: self.file_names(),
            input_width: self.input().input_width() as u32,
            input_format: self.input().format,
            beats_per_frame: (self.input().pixels / self.input().pixels_per_beat) as u32,
            class_width: self.class_width(),
            classes: self.argmax().classes as u32,
            score_width: self.argmax().score_width,
            stages: self.stage_names(),
            load_words: self.load_words() as u64,
        }
    }

    /// Verilog files in compile order: one per block, the top last.
    pub fn file_names(&self) -> Vec<String> {
        let mut f: Vec<String> = self
            .stage_names()
            .iter()
            .map(|n| format!("{n}.v"))
            .collect();
        f.push(format!("{}.v", self.top));
        f
    }
}

/// The top-level interface of a generated design, written by the compiler as `ports.json` in
/// the build directory. Harnesses size their ports from it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ports {
    /// Name of the top module (file `<top>.v` in the build directory).
    pub top: String,
    /// Every Verilog file of the design, relative to the build directory, in compile order.
    pub files: Vec<String>,
    /// Width of `s_data` (bits of one input beat).
    pub input_width: u32,
    /// What `s_data` carries: `pixels` (one byte per pixel, the earliest pixel in the low
    /// byte) or `packed` (one already binarised bit per pixel, the earliest in bit 0).
    #[serde(default)]
    pub input_format: InputFormat,
    /// Input beats per frame.
    pub beats_per_frame: u32,
    /// Width of `m_class`.
    pub class_width: u32,
    /// Number of classes; `m_scores` is `classes * score_width` bits, class 0 in the low bits.
    pub classes: u32,
    /// Width of one signed (two's complement) score in `m_scores`.
    pub score_width: u32,
    /// Names of the pipeline stages; bit `i` of the `dbg_fire` output is high in a cycle in which
    /// stage `i` hands a beat to the next stage (its output valid and ready both high).
    pub stages: Vec<String>,
    /// Words the top takes on its weight-load port (`load_rst`, `load_valid`,
    /// `load_data[15:0]`, `loaded`) before it accepts frames, from `weights.hex`; 0 (and no
    /// such port) when every weight memory is a ROM.
    #[serde(default)]
    pub load_words: u64,
}
