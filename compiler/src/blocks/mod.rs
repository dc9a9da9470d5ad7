//! Block kinds. Each kind is one module that owns everything about it: its cycle count, its
//! latency, its resource estimate, its Verilog and its cycle model, side by side so that a
//! reader can hold the Rust model against the Verilog it stands for.
//!
//! Stream convention shared by every block (and checked against the RTL by `flipchip verify`):
//! - `out_valid` and `out_data` are registers;
//! - `in_ready` is a function of the block's registers and, for the input adapter and a
//!   single-class argmax, of its own `out_ready`, which is then the next block's
//!   registers-only `in_ready` or the top's `m_ready` (so the ready path never crosses more
//!   than one block);
//! - a beat moves when valid and ready are both high in a cycle; the receiver captures it on
//!   the rising edge that ends the cycle.

pub mod argmax;
pub mod collect;
pub mod fifo;
pub mod input_adapter;
pub mod mvtu;
pub mod pool;
#[cfg(test)]
mod rtl_check;
pub mod skid;
pub mod swu;

pub mod cost;

pub use cost::{Family, Features};

use crate::ir::{Argmax, InputAdapter, Mvtu};

impl Clone for Beat {
    fn clone(&self) -> Beat {
        match self {
            Beat::Pixels(w) => Beat::Pixels(*w),
            Beat::Bits(b) => Beat::Bits(b.clone()),
            Beat::Scores(v) => Beat::Scores(v.clone()),
            Beat::Result { class, scores } => Beat::Result {
                class: *class,
                scores: scores.clone(),
            },
        }
    }

    /// Copies into the buffer already there when both are of one kind: a FIFO entry is
    /// overwritten with every beat it takes, and a derived `clone_from` would allocate each
    /// time.
    fn clone_from(&mut self, source: &Beat) {
        match (self, source) {
            (Beat::Bits(d), Beat::Bits(s)) => d.clone_from(s),
            (Beat::Scores(d), Beat::Scores(s)) => d.clone_from(s),
            (d, s) => *d = s.clone(),
        }
    }
}

impl Beat {
    /// An input beat of the words `words` (at most [`BEAT_WORDS`], the lowest first).
    pub fn pixels(words: &[u64]) -> Beat {
        let mut w = [0u64; BEAT_WORDS];
        w[..words.len()].copy_from_slice(words);
        Beat::Pixels(w)
    }
}

/// FPGA cost of a block for one [`Family`]: 4-input LUTs, flip-flops, constant-memory bits and
/// the block RAMs Yosys is expected to put some of those bits in (see [`cost`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Estimate {
    /// 4-input look-up tables (including those that hold ROMs Yosys leaves in logic).
    pub luts: u64,
    /// Flip-flops.
    pub ffs: u64,
    /// Bits of constant memory (weights, thresholds, offsets), wherever they end up.
    pub memory_bits: u64,
    /// Block RAMs of the family holding the ROMs that go to block RAM.
    pub brams: u64,
    /// Large RAM blocks (iCE40 SPRAM) holding weights loaded after power-up.
    pub sprams: u64,
}

impl std::ops::Add for Estimate {
    type Output = Estimate;
    fn add(self, o: Estimate) -> Estimate {
        Estimate {
            luts: self.luts + o.luts,
            ffs: self.ffs + o.ffs,
            memory_bits: self.memory_bits + o.memory_bits,
            brams: self.brams + o.brams,
            sprams: self.sprams + o.sprams,
        }
    }
}

/// What one block kind knows about itself.
pub trait Block {
    /// Instance and module name (`input`, `l2_mvtu`, `argmax`).
    fn name(&self) -> String;
    /// Cycles between two frames this block can accept when never stalled (its II).
    fn cycles(&self) -> u64;
    /// Cycles from the handshake of a frame's first input beat to its output beat becoming
    /// valid, when never stalled.
    fn latency(&self) -> u64;
    /// The sizes the block's LUT count is modelled on, for `family` (ROM placement differs).
    fn features(&self, family: Family) -> Features;
    /// Resource estimate for `family`, calibrated against Yosys (see [`cost`]); LUTs are
    /// `family.costs().luts(&self.features(family))`.
    fn estimate_for(&self, family: Family) -> Estimate;
    /// Resource estimate for the default family (iCE40).
    fn estimate(&self) -> Estimate {
        self.estimate_for(Family::default())
    }
    /// Width of the input stream's data.
    fn in_width(&self) -> usize;
    /// Width of the output stream's data.
    fn out_width(&self) -> usize;
    /// The Verilog module (one file, named after [`Block::name`]).
    fn emit_verilog(&self, header: &str) -> String;
    /// A cycle-accurate model of that module, just out of reset.
    fn cycle_model(&self) -> StageModel;
    /// Short name for the stream wires around the block in the top (`input`, `l2`, `argmax`:
    /// `input_to_l1_valid`); the instance name unless the kind says otherwise.
    fn wire_name(&self) -> String {
        self.name()
    }
    /// `(pe, simd)` of a block folded onto XNOR-popcount lanes, for tables and headers.
    fn folding(&self) -> Option<(usize, usize)> {
        None
    }
    /// Kind-specific entries of the block's `report.json` record (sizes, folding).
    fn report_fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        Vec::new()
    }
    /// Words the block takes on the top's weight-load port (0: it has no such port; see
    /// [`crate::ir::Mvtu::load_words`]).
    fn load_words(&self) -> usize {
        0
    }
    /// The words of the weight-load port, in load order (empty without such a port).
    fn load_image(&self) -> Vec<u16> {
        Vec::new()
    }
}

/// The registry of block kinds: one variant per kind, each owning its block's parameters. A
/// design is a list of these ([`crate::ir::Design::stages`]); backends, passes and the DSE
/// reach a stage through [`Stage::block`] and never need to name its kind. A new kind is a
/// module implementing [`Block`] (with a [`StageModel`] variant for its cycle model) plus one
/// variant here and one arm in `each_stage!`.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// Pixels in, bits out (see [`input_adapter`]).
    Input(InputAdapter),
    /// A binary layer folded onto XNOR-popcount lanes (see [`mvtu`]).
    Mvtu(Mvtu),
    /// Scores in, class and scores out (see [`argmax`]).
    Argmax(Argmax),
    /// Pixels in, a convolution's windows out (see [`swu`]).
    Window(swu::SlidingWindow),
    /// Pixels in, max-pooled pixels out (see [`pool`]).
    Pool(pool::MaxPoolUnit),
    /// Pixels in, the flattened feature map out (see [`collect`]).
    Collect(collect::Collect),
    /// Beats in, the same beats out, buffered (see [`fifo`]).
    Fifo(fifo::Fifo),
}

/// `$e` evaluated with `$b` bound to the block inside any [`Stage`].
macro_rules! each_stage {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            Stage::Input($b) => $e,
            Stage::Mvtu($b) => $e,
            Stage::Argmax($b) => $e,
            Stage::Window($b) => $e,
            Stage::Pool($b) => $e,
            Stage::Collect($b) => $e,
            Stage::Fifo($b) => $e,
        }
    };
}

impl Stage {
    /// The block behind this stage.
    pub fn block(&self) -> &dyn Block {
        each_stage!(self, b => b)
    }
}

/// Words of a [`Beat::Pixels`]: enough for the widest input beat ([`crate::ir::MAX_INPUT_BITS`]).
pub const BEAT_WORDS: usize = crate::ir::MAX_INPUT_BITS / 64;

/// The data of one stream beat, as the cycle models pass it on.
#[derive(Debug, PartialEq, Eq)]
pub enum Beat {
    /// The top's input stream: `s_data` as words, the lowest first (pixel bytes with the
    /// earliest pixel in the low byte, or packed pixel bits with the earliest in bit 0); a
    /// fixed array, so that handing a beat to the adapter allocates nothing.
    Pixels([u64; BEAT_WORDS]),
    /// Packed bits, plane after plane, each plane starting on a fresh u64 word.
    Bits(Vec<u64>),
    /// Signed scores, class 0 first.
    Scores(Vec<i64>),
    /// The top's output: class and scores.
    Result {
        /// Argmax class.
        class: u32,
        /// Scores, class 0 first.
        scores: Vec<i64>,
    },
}

/// The cycle model of any block kind. An enum rather than a trait object so that the simulator's
/// per-cycle calls dispatch statically and inline.
// A design holds a handful of these for a whole run; boxing the large variant would only put
// an indirection into every simulated cycle.
#[allow(clippy::large_enum_variant)]
pub enum StageModel {
    /// See [`input_adapter`].
    Adapter(input_adapter::AdapterModel),
    /// See [`mvtu`].
    Mvtu(mvtu::MvtuModel),
    /// See [`argmax`].
    Argmax(argmax::ArgmaxModel),
    /// See [`swu`].
    Swu(swu::SwuModel),
    /// See [`pool`].
    Pool(pool::PoolModel),
    /// See [`collect`].
    Collect(collect::CollectModel),
    /// See [`fifo`].
    Fifo(fifo::FifoModel),
}

macro_rules! each {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            StageModel::Adapter($m) => $e,
            StageModel::Mvtu($m) => $e,
            StageModel::Argmax($m) => $e,
            StageModel::Swu($m) => $e,
            StageModel::Pool($m) => $e,
            StageModel::Collect($m) => $e,
            StageModel::Fifo($m) => $e,
        }
    };
}

impl CycleModel for StageModel {
    #[inline]
    fn in_ready(&self, out_ready: bool) -> bool {
        each!(self, m => m.in_ready(out_ready))
    }
    #[inline]
    fn out_valid(&self) -> bool {
        each!(self, m => m.out_valid())
    }
    #[inline]
    fn out_data(&self) -> &Beat {
        each!(self, m => m.out_data())
    }
    #[inline]
    fn clock(&mut self, input: Option<&Beat>, out_ready: bool) {
        each!(self, m => m.clock(input, out_ready))
    }
    #[inline]
    fn quiet_cycles(&self) -> u64 {
        each!(self, m => m.quiet_cycles())
    }
    #[inline]
    fn skip(&mut self, cycles: u64) {
        each!(self, m => m.skip(cycles))
    }
    #[inline]
    fn quiet_inputs(&self) -> u64 {
        each!(self, m => m.quiet_inputs())
    }
    #[inline]
    fn signals(&self) -> Signals {
        each!(self, m => m.signals())
    }
    #[inline]
    fn advance(&mut self, pending: u64, input: Option<&Beat>, out_ready: bool) -> Signals {
        each!(self, m => m.advance(pending, input, out_ready))
    }
}

/// What a driver reads of a block after an edge: its handshake signals and how long they
/// hold (see [`CycleModel::signals`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signals {
    /// [`CycleModel::out_valid`].
    pub out_valid: bool,
    /// [`CycleModel::in_ready`] with `out_ready` low.
    pub ready_lo: bool,
    /// [`CycleModel::in_ready`] with `out_ready` high.
    pub ready_hi: bool,
    /// [`CycleModel::quiet_cycles`].
    pub quiet: u64,
}

/// The register-level behaviour of one block, advanced one clock edge at a time.
pub trait CycleModel: Send {
    /// `in_ready` in the current cycle, given the block's `out_ready` in that cycle.
    fn in_ready(&self, out_ready: bool) -> bool;
    /// `out_valid` (a register).
    fn out_valid(&self) -> bool;
    /// `out_data` (a register); meaningful while `out_valid`.
    fn out_data(&self) -> &Beat;
    /// The rising edge: `input` is the beat taken this cycle (`in_valid && in_ready`), if any.
    fn clock(&mut self, input: Option<&Beat>, out_ready: bool);
    /// Clock edges this block can take with no beat in and none out before its `in_ready` or
    /// `out_valid` could change (`u64::MAX`: never). A driver may skip that many cycles with
    /// [`CycleModel::skip`] when no stream can move meanwhile. 0 is always a safe answer.
    fn quiet_cycles(&self) -> u64 {
        0
    }
    /// Takes `cycles` (at most [`CycleModel::quiet_cycles`]) edges with no beat in or out.
    fn skip(&mut self, cycles: u64) {
        let _ = cycles;
    }
    /// Input beats this block can take, at most one per edge and none out, before its
    /// `in_ready` or `out_valid` could change. 0 is always a safe answer.
    fn quiet_inputs(&self) -> u64 {
        0
    }
    /// `out_valid`, `in_ready` both ways and `quiet_cycles` at once: what the event-driven
    /// driver reads after every edge a block takes, in one dispatch rather than four.
    #[inline]
    fn signals(&self) -> Signals {
        Signals {
            out_valid: self.out_valid(),
            ready_lo: self.in_ready(false),
            ready_hi: self.in_ready(true),
            quiet: self.quiet_cycles(),
        }
    }
    /// [`CycleModel::skip`] of `pending` edges (none if 0), this cycle's
    /// [`CycleModel::clock`], then [`CycleModel::signals`]: what an event-driven driver does
    /// to a block it visits, in one dispatch.
    #[inline]
    fn advance(&mut self, pending: u64, input: Option<&Beat>, out_ready: bool) -> Signals {
        if pending > 0 {
            self.skip(pending);
        }
        self.clock(input, out_ready);
        self.signals()
    }
}

/// The module header of a block with one input and one output stream (`in_*`, `out_*`), the
/// data `in_width` and `out_width` bits wide.
pub(crate) fn stream_module(name: &str, in_width: usize, out_width: usize) -> String {
    format!(
        "module {name} (\n    input  wire clk,\n    input  wire rst,\n    input  wire in_valid,\n    \
         output wire in_ready,\n    input  wire [{}:0] in_data,\n    output reg  out_valid,\n    \
         input  wire out_ready,\n    output reg  [{}:0] out_data\n);\n",
        in_width - 1,
        out_width - 1
    )
}

/// Appends `text` with every line indented by `n` spaces.
pub(crate) fn indent(out: &mut String, n: usize, text: &str) {
    for line in text.lines() {
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', n));
        }
        out.push_str(line);
        out.push('\n');
    }
}

/// `width'd value` (Verilog sized decimal literal).
pub(crate) fn lit(width: u32, value: u64) -> String {
    format!("{width}'d{value}")
}

/// Bits `off..off + n` (n <= 64) of a packed slice, as the low bits of a word.
#[inline]
pub(crate) fn get_bits(words: &[u64], off: usize, n: usize) -> u64 {
    let (w, s) = (off / 64, off % 64);
    let mut v = words[w] >> s;
    if s != 0 && s + n > 64 {
        v |= words[w + 1] << (64 - s);
    }
    if n == 64 {
        v
    } else {
        v & ((1u64 << n) - 1)
    }
}

/// Hex digits of the low `bits` bits of a packed slice, most significant first.
pub(crate) fn hex(words: &[u64], bits: usize) -> String {
    let digits = bits.div_ceil(4).max(1);
    let mut s = String::with_capacity(digits);
    for d in (0..digits).rev() {
        let n = (bits - d * 4).min(4);
        let v = get_bits(words, d * 4, n);
        s.push(char::from_digit(v as u32, 16).expect("a nibble is a hex digit"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_helpers() {
        let w = [0xF0F0_0000_0000_000Fu64, 0x3];
        assert_eq!(get_bits(&w, 0, 4), 0xF);
        assert_eq!(get_bits(&w, 60, 6), 0b11_1111);
        assert_eq!(get_bits(&w, 0, 64), w[0]);
        assert_eq!(hex(&w, 66), "3f0f000000000000f");
        assert_eq!(hex(&[5], 3), "5");
    }
}
