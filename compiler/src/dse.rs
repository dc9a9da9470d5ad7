//! Design-space exploration: which foldings of a model are worth building on a device.
//!
//! [`explore`] enumerates per-layer foldings, costs each candidate with the blocks' own
//! [`Block::cycles`], [`Block::latency`] and [`Block::estimate_for`] (the device's family),
//! and marks the Pareto front of throughput (frames/s) against LUTs.
//!
//! Candidates:
//! - **balanced**: for every cycles-per-frame target in the set of cycle counts some layer can
//!   reach (at or above the floor of the input at its most pixels per beat, below which nothing
//!   gets faster), the input takes the fewest pixels per beat and each layer the cheapest
//!   `PE x SIMD` meeting it ([`auto_pixels_per_beat`], [`auto_fold`]: the folding pass's own
//!   choice);
//! - **unbalanced**: from each balanced design, one layer at a time moved one step faster (the
//!   cheapest folding below its current cycles) or one step slower (the cheapest folding at
//!   its next larger reachable cycle count);
//! - **split**: from each balanced design, one layer's `PE x SIMD` lanes divided differently
//!   between PE and SIMD at no loss of speed (the folding pass prefers few PEs; per-PE logic
//!   and popcount trees trade against each other differently on each family).
//!
//! Each folding also comes with its memory variants: tables of three inputs in block RAM
//! (in every set of a few layers, or in the layers that save the most LUTs per block RAM
//! first, see [`table_layer_sets`] and [`crate::passes::tables`]),
//! and on the ECP5 its wide, deep weight ROMs in block RAM rather than logic
//! ([`wide_logic_roms`]).
//!
//! Duplicates are merged; the candidates come out in a fixed order (by folding), so the
//! output files are the same on every run.
//!
//! Throughput is the device's clock model ([`Device::clock_mhz`]) over the cycles per frame.
//! The Fmax of a real design depends on its placement, which only a place-and-route run
//! knows, and the placer seed alone moves it by 5-20%: the clock model's points are what
//! `flipchip build --seeds 1,2,3` keeps (the fastest of three placements) where that was
//! measured, and the device files say which points are single builds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use flip::model::Model;
use serde_json::json;

use crate::blocks::{Block, Estimate, Family};
use crate::ir::InputFormat;
use crate::ir::{Design, Mvtu, Stage};
use crate::passes::folding::{
    auto_fold, auto_pixels_per_beat, auto_values_per_beat, FoldFile, FoldSpec, LayerFold,
};
use crate::passes::input_buffer::{ram_chunk, MIN_RAM_BITS};
use crate::passes::pipelining::{default_clock_mhz, Pipelining};
use crate::passes::vector_ram::{vector_ram, MIN_VECTOR_RAM_BITS};
use crate::passes::Pass;
use crate::CompileError;

/// A device as the exploration sees it: capacity, family and a typical clock.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Short name (`up5k`, `ecp5-85k`).
    pub name: String,
    /// Full name.
    pub description: String,
    /// Family (LUT costs, block RAM shapes, Yosys synthesis command).
    pub family: Family,
    /// 4-input LUTs.
    pub luts: u64,
    /// Flip-flops.
    pub ffs: u64,
    /// Block RAMs.
    pub brams: u64,
    /// Bits of one block RAM.
    pub bram_bits: u64,
    /// Large RAM blocks for weights loaded at power-up (iCE40 SPRAM); 0 if none.
    #[serde(default)]
    pub sprams: u64,
    /// Typical achievable clock of a streaming design on this device, MHz.
    pub fmax_mhz: f64,
    /// Measured clocks by the logic levels of the slowest popcount stage, ascending; a design
    /// runs at the first entry whose depth covers its own (the last entry beyond). Empty:
    /// `fmax_mhz` for every design.
    #[serde(default)]
    pub clock: Vec<ClockPoint>,
    /// Measured clocks of large designs: a design with at least `min_luts` estimated LUTs and
    /// at least `min_brams` block RAMs runs at most at `mhz`, whatever its popcount depth. A
    /// design spread over much of the device has long nets that no stage depth shows (weight
    /// words gathered from many block RAMs, the wait that reaches every pipeline register).
    /// Empty: no such limit.
    #[serde(default)]
    pub size_clock: Vec<SizeClockPoint>,
    /// Standard-cell library of an ASIC device (`osu018`; family `asic`): candidates are
    /// costed in cell area ([`crate::asic_area`]) and have no LUT or block RAM limit.
    #[serde(default)]
    pub tech: Option<String>,
    /// The largest cell area (um^2) a candidate may have to count as fitting (ASIC devices;
    /// `None`: any area).
    #[serde(default)]
    pub max_area_um2: Option<f64>,
    /// MHz times PEs: a design whose widest layer has `pe` PEs runs at most at
    /// `pe_clock_mhz / pe` (measured on standard cells, where control registers drive every
    /// PE's logic through one unbuffered net; `None`: no such limit).
    #[serde(default)]
    pub pe_clock_mhz: Option<f64>,
    /// Designs measured to place and route on this device: a design fits only where it is no
    /// larger, in estimated LUTs and in block RAMs, than one of them, however many the device
    /// has (empty: the device's own resources decide). Routing, not the LUT count, is what
    /// stops large designs first, and how far depends on both.
    #[serde(default)]
    pub routed: Vec<Routed>,
}

/// The size of a design measured to place and route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routed {
    /// Estimated LUTs.
    pub luts: u64,
    /// Block RAMs.
    pub brams: u64,
}

/// Inputs per table lookup of the exploration's table variants: three, whose 2-bit counts are
/// what the ternary first popcount level builds in LUTs (see [`crate::passes::tables`]).
const TABLE_INPUTS: usize = 3;

/// Up to this many layers that can take tables, every set of them is costed; beyond, only the
/// best first (see [`table_layer_sets`]).
const TABLE_SUBSET_LAYERS: usize = 4;

/// The sets of table layers costed for a folding with `n` layers that can take them, as
/// positions in their order of LUTs saved per block RAM: every non-empty set for `n` up to
/// [`TABLE_SUBSET_LAYERS`], else the best one, the best two, and so on.
fn table_layer_sets(n: usize) -> Vec<Vec<usize>> {
    if n <= TABLE_SUBSET_LAYERS {
        (1..1usize << n)
            .map(|mask| (0..n).filter(|k| mask >> k & 1 == 1).collect())
            .collect()
    } else {
        (1..=n).map(|m| (0..m).collect()).collect()
    }
}

/// PEs whose counts from a table of [`TABLE_INPUTS`] inputs (two bits each) fill one port of an
/// ECP5 DP16KD (18 bits wide at 1024 words): up to this many, two tables of 64 steps or fewer
/// share one block RAM (see [`crate::ir::Mvtu::table_memories`]); the folding pass prefers few
/// PEs and many SIMD lanes, whose tables take a block RAM each.
const TABLE_PORT_PES: usize = 9;

/// The device files, embedded (`compiler/devices/*.toml`).
const DEVICE_FILES: &[(&str, &str)] = &[
    ("up5k.toml", include_str!("../devices/up5k.toml")),
    (
        "ice40-hx8k.toml",
        include_str!("../devices/ice40-hx8k.toml"),
    ),
    ("ecp5-25k.toml", include_str!("../devices/ecp5-25k.toml")),
    ("ecp5-85k.toml", include_str!("../devices/ecp5-85k.toml")),
    (
        "asic-osu018.toml",
        include_str!("../devices/asic-osu018.toml"),
    ),
    (
        "asic-osu035.toml",
        include_str!("../devices/asic-osu035.toml"),
    ),
    (
        "asic-osu050.toml",
        include_str!("../devices/asic-osu050.toml"),
    ),
];

/// Every known device, in file order.
pub fn devices() -> Vec<Device> {
    DEVICE_FILES
        .iter()
        .map(|(file, text)| {
            toml::from_str(text)
                .unwrap_or_else(|e| panic!("embedded device file {file} is invalid: {e}"))
        })
        .collect()
}

/// The device called `name`.
pub fn device(name: &str) -> Option<Device> {
    devices().into_iter().find(|d| d.name == name)
}

/// A measured clock for designs whose popcount stages are at most `stage_levels` deep.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClockPoint {
    /// Logic levels of the slowest popcount stage ([`crate::ir::Mvtu::logic_levels`]).
    pub stage_levels: usize,
    /// Clock reached (nextpnr Fmax), MHz.
    pub mhz: f64,
}

/// Sliding window units in `design`.
fn windows(design: &Design) -> u64 {
    design
        .stages
        .iter()
        .filter(|s| matches!(s, Stage::Window(_)))
        .count() as u64
}

/// What the clock model ([`Device::clock_mhz`]) reads of a design.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockFeatures {
    /// Logic levels of the slowest popcount stage.
    pub stage_levels: usize,
    /// Estimated LUTs.
    pub luts: u64,
    /// Block RAMs.
    pub brams: u64,
    /// Block RAMs holding tables ([`crate::passes::tables`]).
    pub table_brams: u64,
    /// Sliding window units.
    pub windows: u64,
    /// Weight ROMs in logic that are wide and deep ([`wide_logic_roms`]).
    pub wide_logic_roms: u64,
    /// Layers that apply each weight word to several frames ([`crate::passes::mmv`]).
    pub mmv_layers: u64,
}

/// Words from which a weight ROM in LUT4s takes more than one LUT level per bit.
const LUT_ROM_WORDS: u64 = 16;

/// Bits from which a weight word is wide enough that a ROM of it in logic spreads its address
/// decoding over much of the device.
const WIDE_ROM_BITS: u64 = 1024;

/// Weight ROMs among `layers` that stay in logic on `family` although they are at least
/// [`WIDE_ROM_BITS`] wide and deeper than [`LUT_ROM_WORDS`]: Yosys shares such a ROM's address
/// decoding across the whole word (the CNN `32x9 8x288 8x96 2x576 1x128 1x2` of 32 words of
/// 1,152 bits: 3-5 LUT levels spread over the ULX3S, its critical path), where a block RAM
/// reads it in one.
pub fn wide_logic_roms<'a>(layers: impl IntoIterator<Item = &'a Mvtu>, family: Family) -> u64 {
    layers
        .into_iter()
        .filter(|l| wide_logic_rom(l, family))
        .count() as u64
}

/// `l` folded as `f`.
fn folded_as(l: &Mvtu, f: &LayerFold) -> Mvtu {
    let mut l = l.clone();
    l.pe = f.pe;
    l.simd = f.simd;
    l
}

/// The frames per weight read worth trying for `l`: each `F` (a power of two) with which it
/// reads its weights through fewer block RAMs than with any smaller one, 1 first. Each
/// doubling halves the word and doubles the depth, which saves blocks until the depth fills a
/// block's.
fn useful_mmv(l: &Mvtu, family: Family) -> Vec<usize> {
    let brams = |f: usize| {
        let mut l = l.clone();
        l.mmv = f as u8;
        l.weight_blocks(family).0
    };
    let mut useful = vec![1];
    let mut least = brams(1);
    let mut f = 2;
    while least > 0 && f <= crate::passes::mmv::MAX_MMV && crate::passes::mmv::check(l, f).is_ok() {
        let b = brams(f);
        if b < least {
            useful.push(f);
            least = b;
        }
        f *= 2;
    }
    useful
}

fn wide_logic_rom(l: &Mvtu, family: Family) -> bool {
    let (d, w) = l.weight_shape();
    l.table == 0
        && !l.is_loaded()
        && l.weight_blocks(family).0 == 0
        && d > LUT_ROM_WORDS
        && w >= WIDE_ROM_BITS
}

/// A measured clock for designs of at least `min_luts` estimated LUTs and `min_brams` block
/// RAMs.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeClockPoint {
    /// Estimated LUTs from which the point applies.
    #[serde(default)]
    pub min_luts: u64,
    /// Block RAMs from which the point applies.
    #[serde(default)]
    pub min_brams: u64,
    /// Block RAMs holding tables ([`crate::passes::tables`]) from which the point applies.
    #[serde(default)]
    pub min_table_brams: u64,
    /// Block RAMs holding tables up to which the point applies (`None`: any number): a point
    /// measured on weight ROMs need not hold for tables, which read through the blocks' output
    /// registers.
    #[serde(default)]
    pub max_table_brams: Option<u64>,
    /// Sliding window units (convolutions) from which the point applies.
    #[serde(default)]
    pub min_windows: u64,
    /// Wide, deep weight ROMs left in logic ([`wide_logic_roms`]) from which the point
    /// applies.
    #[serde(default)]
    pub min_wide_logic_roms: u64,
    /// Layers with frames per weight read ([`crate::passes::mmv`]) from which the point
    /// applies.
    #[serde(default)]
    pub min_mmv_layers: u64,
    /// Layers with frames per weight read up to which the point applies (`None`: any number):
    /// a point measured on designs that read their weights once per frame need not hold for
    /// those, whose block RAMs and registers are laid out differently.
    #[serde(default)]
    pub max_mmv_layers: Option<u64>,
    /// Clock reached (nextpnr Fmax), MHz.
    pub mhz: f64,
}

impl Device {
    /// The area model of an ASIC device's library (`None` for an FPGA).
    pub fn area_model(&self) -> Option<&'static crate::asic_area::AreaModel> {
        self.tech.as_deref().and_then(crate::asic_area::model)
    }

    /// [`Device::clock_mhz`]'s clock for a design whose widest layer has `max_pe` PEs,
    /// limited by [`Device::pe_clock_mhz`].
    pub fn clock_with_pes(&self, mhz: f64, max_pe: usize) -> f64 {
        self.pe_clock_mhz
            .map_or(mhz, |c| mhz.min(c / max_pe.max(1) as f64))
    }

    /// Whether candidates are costed in cell area rather than LUTs.
    pub fn is_asic(&self) -> bool {
        self.family == Family::Asic
    }

    /// The clock a design of features `f` is expected to reach: the slowest of the measured
    /// clock for its depth ([`Device::clock`]) and of those for its size
    /// ([`Device::size_clock`]).
    pub fn clock_mhz(&self, f: &ClockFeatures) -> f64 {
        let by_depth = self
            .clock
            .iter()
            .find(|p| p.stage_levels >= f.stage_levels)
            .or(self.clock.last())
            .map_or(self.fmax_mhz, |p| p.mhz.min(self.fmax_mhz));
        let by_size = self
            .size_clock
            .iter()
            .filter(|p| {
                f.luts >= p.min_luts
                    && f.brams >= p.min_brams
                    && f.table_brams >= p.min_table_brams
                    && p.max_table_brams.is_none_or(|m| f.table_brams <= m)
                    && f.windows >= p.min_windows
                    && f.wide_logic_roms >= p.min_wide_logic_roms
                    && f.mmv_layers >= p.min_mmv_layers
                    && p.max_mmv_layers.is_none_or(|m| f.mmv_layers <= m)
            })
            .map(|p| p.mhz)
            .fold(f64::INFINITY, f64::min);
        by_depth.min(by_size)
    }

    /// Whether a design of estimate `e` (and cell area, on a standard-cell device) fits: on an
    /// FPGA logic cells (LUTs plus the flip-flops that need a cell of their own), flip-flops
    /// and RAM blocks, and LUTs and block RAMs within those of a design measured to route
    /// ([`Device::routed`]); on standard cells the area limit, if any.
    pub fn fits(&self, e: &Estimate, area_um2: Option<f64>) -> bool {
        match area_um2 {
            Some(area) => self.max_area_um2.is_none_or(|max| area <= max),
            None => {
                self.family.costs().logic_cells(e.luts, e.ffs) <= self.luts
                    && e.ffs <= self.ffs
                    && e.brams <= self.brams
                    && e.sprams <= self.sprams
                    && (self.routed.is_empty()
                        || self
                            .routed
                            .iter()
                            .any(|r| e.luts <= r.luts && e.brams <= r.brams))
            }
        }
    }

    /// What "fits" means on this device, for reports: the routing limits where it has them.
    pub fn routing_limits(&self) -> Option<String> {
        let sizes: Vec<String> = self
            .routed
            .iter()
            .map(|r| format!("{} LUTs with {} block RAMs", r.luts, r.brams))
            .collect();
        (!sizes.is_empty()).then(|| {
            format!(
                "fits: within the device and no larger than a design measured to route on it ({})",
                sizes.join(", ")
            )
        })
    }

    /// The weight placement that fits this device: ROMs, with the largest moved into loaded
    /// RAM while the block RAMs overflow (only where the device has such RAM).
    pub fn placement(&self) -> crate::passes::memory::Placement {
        if self.sprams == 0 {
            return crate::passes::memory::Placement::Rom;
        }
        crate::passes::memory::Placement::Fit {
            family: self.family,
            brams: self.brams,
            rams: self.sprams,
        }
    }
}

/// How a candidate was derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Every layer at its cheapest folding for a common target.
    Balanced,
    /// A balanced design with one layer one step faster or slower.
    Unbalanced,
    /// A balanced design with one layer's lanes split differently between PE and SIMD.
    Split,
    /// A balanced design with every layer's lanes split for tables that pair in two-port
    /// block RAMs: the most PEs up to 9, whose two-bit counts fill an 18-bit port.
    #[serde(rename = "table_split")]
    TableSplit,
    /// Hidden layers widened with idle neurons (see [`explore_padded`]).
    Padded,
}

/// One folding of the model, costed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Candidate {
    /// Pixels per input beat.
    pub pixels_per_beat: usize,
    /// Per-layer folding, input first.
    pub folds: Vec<LayerFold>,
    /// Layers (1-based) whose weights go into the device's large RAMs (loaded at power-up).
    pub load_weights: Vec<usize>,
    /// Adder levels per popcount pipeline stage.
    pub stage_levels: usize,
    /// Registers after each weight read.
    pub read_registers: usize,
    /// The threshold compare in a stage of its own.
    pub activation_stage: bool,
    /// The first layer's input frame in RAM (`Some(true)`) or registers, as the input buffer
    /// pass would choose; `None` where the folding leaves no choice.
    pub input_ram: Option<bool>,
    /// The later layers whose input vector is in RAM, as the vector RAM pass would choose
    /// them; `None` where no layer has the choice.
    pub input_ram_layers: Option<Vec<usize>>,
    /// Inputs per table lookup of each layer (see [`crate::passes::tables`]); empty: none.
    pub table_inputs: Vec<usize>,
    /// Its table layers read their tables in pairs through two-port block RAMs (see
    /// [`crate::ir::Mvtu::dual_port_tables`]).
    pub dual_port_tables: bool,
    /// Block RAMs of its tables (part of the estimate's).
    pub table_brams: u64,
    /// Layers (numbers from 1) whose weight ROMs it puts in block RAM, as a fold file's
    /// `block_rom_layers`.
    pub block_rom_layers: Vec<usize>,
    /// Frames per weight read of each layer, as a fold file's `mmv` (empty: 1 everywhere).
    pub mmv: Vec<usize>,
    /// How it was derived (balanced wins if both apply).
    pub origin: Origin,
    /// Steady-state cycles between frames (the slowest stage's cycles).
    pub cycles_per_frame: u64,
    /// Cycles from a frame's first pixel to its result.
    pub latency_cycles: u64,
    /// Summed block estimates for the device's family.
    pub estimate: Estimate,
    /// Estimated cell area, um^2 (ASIC devices only).
    pub area_um2: Option<f64>,
    /// The clock expected for it on the device ([`Device::clock_mhz`]).
    pub clock_mhz: f64,
    /// Clock / cycles per frame.
    pub frames_per_second: f64,
    /// Logic cells (LUTs plus the flip-flops that need a cell of their own), flip-flops and
    /// block RAMs within the device.
    pub fits: bool,
    /// The deepest popcount tree's logic levels (what the clock model reads).
    pub logic_levels: usize,
    /// The FIFOs that sizing by simulation put into the design, once sized
    /// ([`Exploration::add_fifos`]); included in `estimate`.
    pub fifos: Option<Estimate>,
    /// Not dominated: no other candidate is at least as fast with at most as many LUTs and
    /// better in one of them.
    pub pareto: bool,
}

impl Candidate {
    /// Frames/s per LUT, the efficiency figure (`frames_per_second / luts`).
    pub fn frames_per_second_per_lut(&self) -> f64 {
        self.frames_per_second / self.estimate.luts.max(1) as f64
    }

    /// What the front trades against frames/s: cell area in um^2 (rounded) on an ASIC
    /// device, estimated LUTs on an FPGA.
    pub fn cost(&self) -> u64 {
        match self.area_um2 {
            Some(a) => a.round() as u64,
            None => self.estimate.luts,
        }
    }

    /// Frames/s per mm^2 of cell area (ASIC devices; 0 without an area).
    pub fn frames_per_second_per_mm2(&self) -> f64 {
        self.area_um2
            .map_or(0.0, |a| self.frames_per_second / (a / 1e6).max(1e-12))
    }

    /// The folding as pixels per beat (if more than one) and `pe x simd` per layer
    /// (`64x16 1x128 1x4`, `8px 64x64 4x128 1x64`).
    pub fn fold_label(&self) -> String {
        fold_label(&self.fold_file())
    }

    /// The folding as a fold file.
    pub fn fold_file(&self) -> FoldFile {
        FoldFile {
            pixels_per_beat: self.pixels_per_beat,
            input: Default::default(),
            layers: self.folds.clone(),
            load_weights: self.load_weights.clone(),
            fifos: None,
            stage_levels: Some(self.stage_levels),
            read_registers: Some(self.read_registers),
            activation_stage: Some(self.activation_stage),
            input_ram: self.input_ram,
            input_ram_layers: self.input_ram_layers.clone(),
            table_inputs: self.table_inputs.clone(),
            dual_port_tables: (!self.table_inputs.is_empty()).then_some(self.dual_port_tables),
            block_rom_layers: self.block_rom_layers.clone(),
            mmv: self.mmv.clone(),
        }
    }
}

/// Pixels per beat (if more than one), `pe x simd` per layer (with `tK` for a layer that reads
/// tables of `K` inputs, `mF` for one that applies each weight word to `F` frames) and the
/// layers whose weights are loaded into RAM (if any), space separated (`8px 16x784 4x256
/// 1x32`, `4x16 1x32 1x1 ram:1`, `8x64t3 5x4`, `28px 64x98m4 32x64m4 64x32m4 5x32`).
pub fn fold_label(f: &FoldFile) -> String {
    let mut parts: Vec<String> = f
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut p = match f.table_inputs.get(i) {
                Some(&k) if k > 0 => format!("{}x{}t{k}", l.pe, l.simd),
                _ => format!("{}x{}", l.pe, l.simd),
            };
            if let Some(&m) = f.mmv.get(i).filter(|&&m| m > 1) {
                p.push_str(&format!("m{m}"));
            }
            p
        })
        .collect();
    if f.pixels_per_beat > 1 {
        parts.insert(0, format!("{}px", f.pixels_per_beat));
    }
    for (key, layers) in [("ram", &f.load_weights), ("rom", &f.block_rom_layers)] {
        if !layers.is_empty() {
            let l: Vec<String> = layers.iter().map(|i| i.to_string()).collect();
            parts.push(format!("{key}:{}", l.join("+")));
        }
    }
    parts.join(" ")
}

/// The result of an exploration.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Exploration {
    /// The model's one-line description.
    pub model: String,
    /// The device explored for.
    pub device: Device,
    /// Every candidate, in a fixed order.
    pub candidates: Vec<Candidate>,
    /// Indices of the Pareto front, fastest first.
    pub front: Vec<usize>,
    /// Hidden layers were also tried wider, with idle neurons ([`explore_padded`]).
    pub padded: bool,
}

impl Exploration {
    /// The fastest candidate that fits (fewest LUTs among equals), if any fits.
    pub fn best(&self) -> Option<usize> {
        (0..self.candidates.len())
            .filter(|&i| self.candidates[i].fits)
            .min_by(|&a, &b| {
                let (x, y) = (&self.candidates[a], &self.candidates[b]);
                y.frames_per_second
                    .total_cmp(&x.frames_per_second)
                    .then(x.cost().cmp(&y.cost()))
            })
    }

    /// Front members that fit the device, fastest first.
    pub fn fitting_front(&self) -> Vec<usize> {
        self.front
            .iter()
            .copied()
            .filter(|&i| self.candidates[i].fits)
            .collect()
    }

    /// Adds the FIFOs of `sized`, candidate `i`'s design after sizing by simulation, to its
    /// estimate, clock and fit (once; a second call changes nothing). Exploration cannot cost them: their depths come from
    /// simulating the design. The front stays as the estimates without FIFOs ranked it.
    pub fn add_fifos(&mut self, i: usize, sized: &Design) {
        let family = self.device.family;
        let blocks: Vec<&dyn Block> = sized
            .stages
            .iter()
            .filter(|s| matches!(s, Stage::Fifo(_)))
            .map(Stage::block)
            .collect();
        let fifos = blocks
            .iter()
            .fold(Estimate::default(), |e, b| e + b.estimate_for(family));
        let area_model = self.device.area_model();
        let c = &mut self.candidates[i];
        if c.fifos.is_some() {
            return;
        }
        c.fifos = Some(fifos);
        c.estimate = c.estimate + fifos;
        if let (Some(area), Some(m)) = (c.area_um2.as_mut(), area_model) {
            *area += blocks
                .iter()
                .map(|b| m.area_um2(&crate::asic_area::block_features(*b)))
                .sum::<f64>();
        }
        let max_pe = c.folds.iter().map(|f| f.pe).max().unwrap_or(1);
        c.clock_mhz = self.device.clock_with_pes(
            self.device.clock_mhz(&ClockFeatures {
                stage_levels: c.logic_levels,
                luts: c.estimate.luts,
                brams: c.estimate.brams,
                table_brams: c.table_brams,
                windows: windows(sized),
                wide_logic_roms: wide_logic_roms(sized.mvtus(), family),
                mmv_layers: sized.mvtus().filter(|l| l.frames_per_read() > 1).count() as u64,
            }),
            max_pe,
        );
        c.frames_per_second = c.clock_mhz * 1e6 / c.cycles_per_frame as f64;
        c.fits = self.device.fits(&c.estimate, c.area_um2);
    }

    /// The compiled design of candidate `i`.
    pub fn design(&self, model: &Model, i: usize) -> Result<Design, CompileError> {
        let mut d = crate::compile(model, &FoldSpec::Manual(self.candidates[i].fold_file()))?;
        d.family = self.device.family;
        Ok(d)
    }
}

/// Every legal `(pe, simd)` of a layer with its cycles per frame, fastest first.
pub fn layer_foldings(l: &Mvtu) -> Vec<(u64, LayerFold)> {
    let div = |n: usize| (1..=n).filter(move |d| n.is_multiple_of(*d));
    let mut v: Vec<(u64, LayerFold)> = div(l.outputs)
        .flat_map(|pe| div(l.inputs).map(move |simd| LayerFold { pe, simd }))
        .map(|f| {
            let c = (l.vectors * (l.outputs / f.pe) * l.planes * (l.inputs / f.simd)) as u64;
            (c, f)
        })
        .collect();
    v.sort_by_key(|&(c, f)| (c, f.pe * f.simd, f.pe));
    v
}

/// A folding of the input and every layer and how it was derived.
pub type Folding = (FoldFile, Origin);

/// Cycles per frame, latency and estimate of one layer at one folding.
/// What one layer at one folding costs, with its weights as ROMs and loaded into RAM.
#[derive(Clone, Copy)]
struct LayerCost {
    cycles: u64,
    latency: u64,
    rom: Estimate,
    loaded: Estimate,
    /// Block RAMs of the weight ROM alone.
    weight_brams: u64,
    /// Large RAM blocks the weights take loaded (`None`: the family has none).
    rams: Option<u64>,
    /// Cell-area features ([`crate::asic_area`]; zero on an FPGA).
    area: [f64; crate::asic_area::N],
    /// Its weight ROM is one of [`wide_logic_roms`] (unless loaded).
    wide_logic_rom: bool,
}

/// The candidate foldings of a lowered design (see the module documentation), deduplicated,
/// in a fixed order, each with how it was derived.
pub fn enumerate(design: &Design) -> Vec<Folding> {
    let pixels = design.input().pixels;
    let pipelining = Pipelining::of(design);
    // As the folding pass chooses: a streaming adapter (a convolution or pool first) takes at
    // most one image pixel's values per beat.
    let beat = |t: u64| match design.input().stream {
        Some(channels) => auto_values_per_beat(InputFormat::Pixels, pixels, channels, t),
        None => auto_pixels_per_beat(pixels, t),
    };
    let floor = (pixels / beat(1)) as u64;
    let options: Vec<Vec<(u64, LayerFold)>> = design.mvtus().map(layer_foldings).collect();
    let per_layer: Vec<Vec<u64>> = options
        .iter()
        .map(|o| {
            let mut c: Vec<u64> = o.iter().map(|x| x.0).collect();
            c.dedup();
            c
        })
        .collect();
    let mut targets: Vec<u64> = per_layer.iter().flatten().copied().collect();
    targets.push(floor);
    targets.retain(|&t| t >= floor);
    targets.sort_unstable();
    targets.dedup();
    // The folding pass's choice: fewest lanes, then fewest PEs.
    let cheapest =
        |l: &Mvtu, t: u64| auto_fold(l.outputs, l.inputs, l.planes, t / l.vectors as u64);
    let cycles = |l: &Mvtu, f: LayerFold| {
        (l.vectors * (l.outputs / f.pe) * l.planes * (l.inputs / f.simd)) as u64
    };
    let mut out: BTreeMap<(usize, Vec<(usize, usize)>), Folding> = BTreeMap::new();
    for &t in &targets {
        let k = beat(t);
        let key = |f: &[LayerFold]| (k, f.iter().map(|x| (x.pe, x.simd)).collect::<Vec<_>>());
        let file = |layers: Vec<LayerFold>| FoldFile {
            pixels_per_beat: k,
            input: Default::default(),
            layers,
            load_weights: Vec::new(),
            fifos: None,
            stage_levels: pipelining.as_ref().map(|p| p.stage_levels),
            read_registers: pipelining.as_ref().map(|p| p.read_registers),
            activation_stage: pipelining.as_ref().map(|p| p.activation_stage),
            input_ram: None,
            input_ram_layers: None,
            table_inputs: Vec::new(),
            dual_port_tables: None,
            block_rom_layers: Vec::new(),
            mmv: Vec::new(),
        };
        let base: Vec<LayerFold> = design.mvtus().map(|l| cheapest(l, t)).collect();
        out.insert(key(&base), (file(base.clone()), Origin::Balanced));
        for (i, l) in design.mvtus().enumerate() {
            let c = cycles(l, base[i]);
            let mut variants = Vec::new();
            if c > 1 {
                variants.push(cheapest(l, c - 1));
            }
            if let Some(&up) = per_layer[i].iter().find(|&&x| x > c) {
                variants.push(cheapest(l, up));
            }
            for f in variants {
                let mut v = base.clone();
                v[i] = f;
                out.entry(key(&v)).or_insert((file(v), Origin::Unbalanced));
            }
            // The same lanes split differently between PE and SIMD, still meeting the target:
            // the folding pass prefers few PEs, which is not always the cheapest split.
            let lanes = base[i].pe * base[i].simd;
            for &(fc, f) in &options[i] {
                if f.pe * f.simd == lanes && f != base[i] && fc <= t.max(c) {
                    let mut v = base.clone();
                    v[i] = f;
                    out.entry(key(&v)).or_insert((file(v), Origin::Split));
                }
            }
        }
        // Every layer split at once for tables that pair in block RAMs (the costing adds the
        // tables).
        let for_tables: Vec<LayerFold> = design
            .mvtus()
            .zip(&base)
            .zip(&options)
            .map(|((l, &b), o)| {
                let c = cycles(l, b);
                o.iter()
                    .filter(|&&(fc, f)| {
                        f.pe * f.simd == b.pe * b.simd && fc <= t.max(c) && f.pe <= TABLE_PORT_PES
                    })
                    .max_by_key(|(_, f)| f.pe)
                    .map_or(b, |&(_, f)| f)
            })
            .collect();
        out.entry(key(&for_tables))
            .or_insert((file(for_tables), Origin::TableSplit));
    }
    out.into_values().collect()
}

/// Marks the non-dominated points of `(throughput, luts)` (higher throughput and fewer LUTs
/// are better); of identical points only the first is marked.
pub fn pareto(points: &[(f64, u64)]) -> Vec<bool> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[b]
            .0
            .total_cmp(&points[a].0)
            .then(points[a].1.cmp(&points[b].1))
            .then(a.cmp(&b))
    });
    let mut marks = vec![false; points.len()];
    let mut least = u64::MAX;
    for i in order {
        if points[i].1 < least {
            marks[i] = true;
            least = points[i].1;
        }
    }
    marks
}

/// Explores the foldings of `model` for `device`.
pub fn explore(model: &Model, device: &Device) -> Result<Exploration, CompileError> {
    let family = device.family;
    // One compiled design supplies the widths the estimates need (accumulator, threshold and
    // score widths do not depend on the folding); each layer is then costed per folding.
    let mut base = crate::compile(model, &FoldSpec::auto(None))?;
    // Every candidate is pipelined for the clock the family's builds reach.
    let pipelining = Pipelining::for_clock(family, default_clock_mhz(family));
    let (levels, read_registers, activation_stage) = (
        pipelining.stage_levels,
        pipelining.read_registers,
        pipelining.activation_stage,
    );
    pipelining.run(&mut base)?;
    let input = |k: usize| {
        let mut a = base.input().clone();
        a.pixels_per_beat = k;
        a.chunk = None;
        a
    };
    // Every stage but the input and the MVTUs keeps its cost whatever the folding.
    let others: Vec<&dyn Block> = base
        .stages
        .iter()
        .filter(|s| !matches!(s, Stage::Input(_) | Stage::Mvtu(_)))
        .map(Stage::block)
        .collect();
    let layers: Vec<&Mvtu> = base.mvtus().collect();
    // Which layers the layer before feeds directly (the pairs the vector RAM pass looks at).
    let fed: Vec<bool> = base
        .stages
        .windows(2)
        .filter_map(|w| match w {
            [prev, Stage::Mvtu(_)] => Some(matches!(prev, Stage::Mvtu(_))),
            _ => None,
        })
        .collect();
    // Costs per layer, folding, registers after the weight read, input chunk interval and
    // output chunk.
    type Key = (usize, usize, usize, bool, usize, usize, usize, usize);
    let mut layer_cost: Vec<BTreeMap<Key, LayerCost>> = vec![BTreeMap::new(); layers.len()];
    let mut cost_of = |i: usize,
                       f: &LayerFold,
                       (table, block_rom, mmv): (usize, bool, usize),
                       rr: usize,
                       (interval, out_chunk)|
     -> LayerCost {
        *layer_cost[i]
            .entry((f.pe, f.simd, table, block_rom, mmv, rr, interval, out_chunk))
            .or_insert_with(|| {
                let mut l = folded_as(layers[i], f);
                l.table = table;
                l.mmv = mmv as u8;
                l.block_rom = block_rom;
                l.dual_port_tables = table > 0 && crate::passes::tables::dual_port_for(family);
                l.read_registers = crate::passes::pipelining::read_registers_of(&l, rr);
                l.chunk_interval = interval;
                l.out_chunk = out_chunk;
                let rom = l.estimate_for(family);
                let area = if family == Family::Asic {
                    crate::asic_area::block_features(&l)
                } else {
                    [0.0; crate::asic_area::N]
                };
                let (weight_brams, rams) = l.weight_blocks(family);
                let wide_logic_rom = wide_logic_rom(&l, family);
                if let Some(m) = l.memory.as_mut() {
                    m.loaded = true;
                }
                LayerCost {
                    cycles: l.cycles(),
                    latency: l.latency(),
                    rom,
                    loaded: l.estimate_for(family),
                    weight_brams,
                    rams,
                    area,
                    wide_logic_rom,
                }
            })
    };
    let mut candidates = Vec::new();
    // Each folding as it is and with tables of three inputs in the layers that can take them
    // (more than one weight word) in block RAM: in every set of up to [`TABLE_SUBSET_LAYERS`]
    // such layers (a fast design may have block RAMs for the tables of the first two layers
    // but not of all three, and the first may save fewer LUTs per block RAM than the others);
    // with more, in the one that saves the most LUTs per block RAM it adds, the two best, and
    // so on up to all of them. Tables in logic (too shallow for a
    // block RAM, or standard cells, which have none) cost more LUTs than the XNORs they replace.
    // On the ECP5, where it was measured, also with its wide, deep weight ROMs in logic put in
    // block RAM ([`wide_logic_roms`]).
    let variants = enumerate(&base).into_iter().flat_map(|(file, origin)| {
        let roms: Vec<bool> = layers
            .iter()
            .zip(&file.layers)
            .map(|(l, f)| family == Family::Ecp5 && wide_logic_rom(&folded_as(l, f), family))
            .collect();
        let mut eligible: Vec<(std::cmp::Reverse<u64>, usize)> = if family == Family::Asic {
            Vec::new()
        } else {
            file.layers
                .iter()
                .zip(&layers)
                .enumerate()
                .filter(|(_, (f, l))| (l.outputs / f.pe) * (l.inputs / f.simd) > 1)
                .filter_map(|(i, (f, l))| {
                    let mut l = folded_as(l, f);
                    let plain = (l.estimate_for(family).luts, l.weight_blocks(family).0);
                    l.table = TABLE_INPUTS;
                    l.dual_port_tables = crate::passes::tables::dual_port_for(family);
                    let brams = l.weight_blocks(family).0;
                    // LUTs saved per block RAM added, in thousandths.
                    let saved = plain.0.saturating_sub(l.estimate_for(family).luts) * 1000
                        / brams.saturating_sub(plain.1).max(1);
                    (brams > 0).then_some((std::cmp::Reverse(saved), i))
                })
                .collect()
        };
        eligible.sort();
        let n = layers.len();
        let with_tables: Vec<_> = table_layer_sets(eligible.len())
            .into_iter()
            .map(|set| {
                let mut table = vec![0; n];
                for k in set {
                    table[eligible[k].1] = TABLE_INPUTS;
                }
                (file.clone(), origin, table, vec![false; n])
            })
            .collect();
        let block_roms = roms
            .iter()
            .any(|&r| r)
            .then(|| (file.clone(), origin, vec![0; n], roms.clone(), vec![1; n]));
        // On the ECP5, where it was measured, also with frames per weight read: each layer
        // reads each weight word for several frames where that saves it block RAMs. Its wide
        // weight ROMs go to block RAM for it, as in the variant above: a ROM in logic has no
        // block RAMs to save, but in block RAM and read in parts it takes few.
        let useful: Vec<Vec<usize>> = layers
            .iter()
            .zip(&file.layers)
            .zip(&roms)
            .map(|((l, f), &rom)| {
                let mut l = folded_as(l, f);
                l.block_rom = rom;
                if family == Family::Ecp5 {
                    useful_mmv(&l, family)
                } else {
                    vec![1]
                }
            })
            .collect();
        // One variant per `F` up to 16, each layer at the largest of its useful ones up to it:
        // the slots cost flip-flops and a multiplexer per input bit each, so the fewest block
        // RAMs is not always the design that fits.
        let mut shared: Vec<Vec<usize>> = (1..=crate::passes::mmv::MAX_MMV.trailing_zeros())
            .map(|k| {
                let mut v: Vec<usize> = useful
                    .iter()
                    .map(|u| {
                        u.iter()
                            .copied()
                            .filter(|&f| f <= 1 << k)
                            .max()
                            .unwrap_or(1)
                    })
                    .collect();
                // A layer after one with frames per weight read gets its frames in bursts of
                // that layer's `F`: with more slots than a burst it would start on part of a
                // batch, and keep doing so (`14px 64x56m8 8x256m16 1x64` ran at 51 to 64
                // cycles per frame instead of 56), so it takes no more.
                for i in 1..v.len() {
                    if v[i - 1] > 1 {
                        v[i] = v[i].min(v[i - 1]);
                    }
                }
                v
            })
            .filter(|v| v.iter().any(|&f| f > 1))
            .collect();
        shared.dedup();
        let shared: Vec<_> = shared
            .into_iter()
            .map(|mmv| (file.clone(), origin, vec![0; n], roms.clone(), mmv))
            .collect();
        let with_tables = with_tables
            .into_iter()
            .map(move |(file, origin, table, rom)| (file, origin, table, rom, vec![1; n]));
        std::iter::once((file, origin, vec![0; n], vec![false; n], vec![1; n]))
            .chain(block_roms)
            .chain(shared)
            .chain(with_tables)
    });
    for (file, origin, table, block_rom, mmv) in variants {
        let tables = table.iter().any(|&k| k > 0);
        let mut a = input(file.pixels_per_beat);
        // The first layer's input buffer, as the input buffer pass chooses it.
        let (input_ram, interval) = match (base.stages.get(1), file.layers.first()) {
            // A layer with frames per weight read holds its frames in registers.
            (Some(Stage::Mvtu(_)), Some(_)) if mmv[0] > 1 => (None, 0),
            (Some(Stage::Mvtu(l1)), Some(f)) => {
                let mut l1 = l1.clone();
                l1.pe = f.pe;
                l1.simd = f.simd;
                l1.table = table[0];
                match ram_chunk(&a, &l1) {
                    Ok(values) if l1.inputs * l1.planes >= MIN_RAM_BITS => {
                        a.chunk = Some(values);
                        (Some(true), values / a.pixels_per_beat)
                    }
                    Ok(_) => (Some(false), 0),
                    Err(_) => (None, 0),
                }
            }
            _ => (None, 0),
        };
        // The later layers' input vectors, as the vector RAM pass chooses them.
        let folded = |i: usize| {
            let mut l = folded_as(layers[i], &file.layers[i]);
            l.table = table[i];
            l.mmv = mmv[i] as u8;
            l
        };
        // Neither end of a vector RAM works on several frames at once.
        let can_vram = |i: usize| {
            fed[i]
                && vector_ram(&folded(i - 1), &folded(i)).is_ok()
                && mmv[i] == 1
                && mmv[i - 1] == 1
        };
        let vram: Vec<bool> = (0..layers.len())
            .map(|i| i > 0 && layers[i].inputs >= MIN_VECTOR_RAM_BITS && can_vram(i))
            .collect();
        let input_ram_layers = (1..layers.len()).any(can_vram).then(|| {
            (0..layers.len())
                .filter(|&i| vram[i])
                .map(|i| layers[i].index)
                .collect::<Vec<_>>()
        });
        // Per layer: input chunk interval and output chunk bits.
        let interval_of = |i: usize| {
            let input = if i == 0 {
                interval
            } else {
                usize::from(vram[i])
            };
            let out = if vram.get(i + 1) == Some(&true) {
                file.layers[i + 1].simd
            } else {
                0
            };
            (input, out)
        };
        let fixed = others
            .iter()
            .fold(a.estimate_for(family), |e, b| e + b.estimate_for(family));

        let mut costs: Vec<LayerCost> = file
            .layers
            .iter()
            .enumerate()
            .map(|(i, f)| {
                cost_of(
                    i,
                    f,
                    (table[i], block_rom[i], mmv[i]),
                    read_registers,
                    interval_of(i),
                )
            })
            .collect();
        // Weights that overflow the block RAMs go to the device's large RAMs, as the memory
        // pass would place them for this device.
        let rom_total = costs.iter().fold(fixed, |e, c| e + c.rom);
        let weights: Vec<(u64, Option<u64>)> =
            costs.iter().map(|c| (c.weight_brams, c.rams)).collect();
        let other = rom_total.brams - weights.iter().map(|w| w.0).sum::<u64>();
        // Tables are ROMs: a design with them loads nothing.
        let load = if device.sprams > 0 && !tables {
            crate::passes::memory::fit_loaded(&weights, other, device.brams, device.sprams)
        } else {
            None
        }
        .unwrap_or_else(|| vec![false; costs.len()]);
        // As [`Pipelining::for_design`]: no second read register without a block RAM read.
        let slow = input_ram == Some(true)
            || vram.iter().any(|&v| v)
            || costs
                .iter()
                .zip(&load)
                .any(|(c, &l)| l || c.weight_brams > 0);
        let rr = if slow { read_registers } else { 1 };
        if rr != read_registers {
            costs = file
                .layers
                .iter()
                .enumerate()
                .map(|(i, f)| cost_of(i, f, (table[i], block_rom[i], mmv[i]), rr, interval_of(i)))
                .collect();
        }
        let cycles = costs
            .iter()
            .map(|c| c.cycles)
            .chain(others.iter().map(|b| b.cycles()))
            .fold(a.cycles(), u64::max);
        let latency = a.latency()
            + others.iter().map(|b| b.latency()).sum::<u64>()
            + costs.iter().map(|c| c.latency).sum::<u64>();
        let e = costs
            .iter()
            .zip(&load)
            .fold(fixed, |e, (c, &l)| e + if l { c.loaded } else { c.rom });
        let area_um2 = device.area_model().map(|m| {
            let f = others
                .iter()
                .map(|b| crate::asic_area::block_features(*b))
                .chain(costs.iter().map(|c| c.area))
                .fold(crate::asic_area::block_features(&a), crate::asic_area::add);
            m.area_um2(&f)
        });
        // Layer numbers, as a fold file's `load_weights` names them (not positions: a CNN's
        // MVTUs are numbered among its window, pool and collect units).
        let load_weights: Vec<usize> = (0..load.len())
            .filter(|&i| load[i])
            .map(|i| layers[i].index)
            .collect();
        let depth = file
            .layers
            .iter()
            .zip(&layers)
            .zip(&table)
            .map(|((f, l), &k)| {
                let mut l = (*l).clone();
                l.simd = f.simd;
                l.table = k;
                l.logic_levels()
            })
            .max()
            .unwrap_or(0);
        let max_pe = file.layers.iter().map(|f| f.pe).max().unwrap_or(1);
        let table_brams = costs
            .iter()
            .zip(&table)
            .filter(|(_, &k)| k > 0)
            .map(|(c, _)| c.weight_brams)
            .sum();
        let clock_mhz = device.clock_with_pes(
            device.clock_mhz(&ClockFeatures {
                stage_levels: depth,
                luts: e.luts,
                brams: e.brams,
                table_brams,
                windows: windows(&base),
                wide_logic_roms: costs
                    .iter()
                    .zip(&load)
                    .filter(|(c, &l)| c.wide_logic_rom && !l)
                    .count() as u64,
                mmv_layers: mmv.iter().filter(|&&f| f > 1).count() as u64,
            }),
            max_pe,
        );
        let fps = clock_mhz * 1e6 / cycles as f64;
        let fits = device.fits(&e, area_um2);
        // A table variant that does not fit is never worth building (its folding without
        // tables takes fewer block RAMs), and its few LUTs would only hide designs that do.
        if tables && !fits {
            continue;
        }
        candidates.push(Candidate {
            pixels_per_beat: file.pixels_per_beat,
            load_weights,
            stage_levels: levels,
            read_registers: rr,
            activation_stage,
            input_ram,
            input_ram_layers,
            table_inputs: if tables { table } else { Vec::new() },
            dual_port_tables: tables && crate::passes::tables::dual_port_for(family),
            table_brams,
            block_rom_layers: (0..layers.len())
                .filter(|&i| block_rom[i])
                .map(|i| layers[i].index)
                .collect(),
            mmv: if mmv.iter().any(|&f| f > 1) {
                mmv
            } else {
                Vec::new()
            },
            folds: file.layers,
            origin,
            cycles_per_frame: cycles,
            latency_cycles: latency,
            estimate: e,
            area_um2,
            clock_mhz,
            frames_per_second: fps,
            fits,
            logic_levels: depth,
            fifos: None,
            pareto: false,
        });
    }
    Ok(with_front(base.model.clone(), device, candidates))
}

/// The exploration of `candidates`, their Pareto front marked and listed fastest first.
fn with_front(model: String, device: &Device, mut candidates: Vec<Candidate>) -> Exploration {
    let points: Vec<(f64, u64)> = candidates
        .iter()
        .map(|c| (c.frames_per_second, c.cost()))
        .collect();
    for (c, p) in candidates.iter_mut().zip(pareto(&points)) {
        c.pareto = p;
    }
    let mut front: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].pareto)
        .collect();
    front.sort_by(|&a, &b| {
        candidates[b]
            .frames_per_second
            .total_cmp(&candidates[a].frames_per_second)
    });
    Exploration {
        model,
        device: device.clone(),
        candidates,
        front,
        padded: false,
    }
}

/// Widths tried per layer by [`explore_padded`], besides the layer's own.
pub const PADDED_WIDTHS: usize = 3;

/// The widths a layer of `width` neurons is tried at with idle neurons: the
/// [`PADDED_WIDTHS`] with the most divisors up to a quarter wider (the fewest on ties), so
/// that the exploration sees neuron steps the divisors of `width` do not offer.
pub fn padded_widths(width: usize) -> Vec<usize> {
    let most = (width as f64 * crate::passes::padding::MAX_IDLE_SHARE).floor() as usize;
    let divisors = |n: usize| (1..=n).filter(|d| n.is_multiple_of(*d)).count();
    let mut w: Vec<(std::cmp::Reverse<usize>, usize)> = (width + 1..=width + most)
        .map(|n| (std::cmp::Reverse(divisors(n)), n))
        .collect();
    w.sort();
    w.into_iter().take(PADDED_WIDTHS).map(|(_, n)| n).collect()
}

/// [`explore`], and the same for every combination of the hidden dense layers (those a dense
/// layer follows) at their own width or one of [`padded_widths`], keeping of each such
/// exploration the candidates whose folding widens the model to exactly those widths (as
/// `compile` pads it, [`crate::passes::padding`]), so each is costed as it is built.
pub fn explore_padded(model: &Model, device: &Device) -> Result<Exploration, CompileError> {
    use crate::passes::padding::{paddable_layers, padded_width, widened};
    let plain = explore(model, device)?;
    let base = crate::lower(model)?;
    let widths: Vec<usize> = base.mvtus().map(|l| l.outputs).collect();
    let layers = paddable_layers(&base);
    let mut candidates = plain.candidates;
    // Each combination: per paddable layer, its own width or one of its padded widths.
    let choices: Vec<Vec<usize>> = layers
        .iter()
        .map(|&k| {
            std::iter::once(widths[k])
                .chain(padded_widths(widths[k]))
                .collect()
        })
        .collect();
    let combinations = choices.iter().map(Vec::len).product::<usize>();
    // Combination `n` (0: every layer at its own width, the plain exploration), its
    // candidates that pad to exactly its widths.
    let variant = |n: usize| -> Result<Vec<Candidate>, CompileError> {
        let mut rest = n;
        let pick: Vec<(usize, usize)> = layers
            .iter()
            .zip(&choices)
            .map(|(&k, c)| {
                let w = c[rest % c.len()];
                rest /= c.len();
                (k, w)
            })
            .collect();
        let x = explore(&widened(model, &pick)?, device)?;
        let best = x.best();
        // Of each variant only its front and its best fitting design: the rest are dominated
        // there already, and a variant's thousands would swamp the plain exploration.
        Ok(x.candidates
            .into_iter()
            .enumerate()
            .filter(|(i, c)| {
                (c.pareto || Some(*i) == best)
                    && pick.iter().all(|&(k, w)| {
                        padded_width(widths[k], c.folds[k].pe, c.folds[k + 1].simd) == w
                    })
            })
            .map(|(_, mut c)| {
                c.origin = Origin::Padded;
                c
            })
            .collect())
    };
    // The variants are independent: spread over the cores, gathered in their order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let found: Vec<Result<Vec<Candidate>, CompileError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let variant = &variant;
                scope.spawn(move || {
                    (1 + t..combinations)
                        .step_by(threads)
                        .map(|n| (n, variant(n)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("an exploration thread panicked"))
            .collect();
        all.sort_by_key(|(n, _)| *n);
        all.into_iter().map(|(_, r)| r).collect()
    });
    for f in found {
        candidates.extend(f?);
    }
    let mut x = with_front(plain.model, device, candidates);
    x.padded = true;
    Ok(x)
}

/// Per-candidate columns of `dse.csv`.
pub const CSV_HEADER: &str = "id,folding,origin,cycles_per_frame,latency_cycles,clock_mhz,frames_per_second,est_luts,est_ffs,memory_bits,brams,sprams,frames_per_second_per_lut,fits,pareto";

/// Columns `dse.csv` adds after [`CSV_HEADER`] for an ASIC device.
pub const CSV_ASIC_COLUMNS: &str = ",tech,area_um2,frames_per_second_per_mm2";

/// `dse.csv`: one row per candidate.
pub fn csv(x: &Exploration) -> String {
    let mut s = String::from(CSV_HEADER);
    if x.device.is_asic() {
        s.push_str(CSV_ASIC_COLUMNS);
    }
    s.push('\n');
    for (i, c) in x.candidates.iter().enumerate() {
        let _ = writeln!(
            s,
            "{i},{},{},{},{},{},{:.1},{},{},{},{},{},{:.3},{},{}{}",
            c.fold_label(),
            match c.origin {
                Origin::Balanced => "balanced",
                Origin::Unbalanced => "unbalanced",
                Origin::Split => "split",
                Origin::TableSplit => "table_split",
                Origin::Padded => "padded",
            },
            c.cycles_per_frame,
            c.latency_cycles,
            c.clock_mhz,
            c.frames_per_second,
            c.estimate.luts,
            c.estimate.ffs,
            c.estimate.memory_bits,
            c.estimate.brams,
            c.estimate.sprams,
            c.frames_per_second_per_lut(),
            c.fits,
            c.pareto,
            match c.area_um2 {
                Some(a) => format!(
                    ",{},{a:.0},{:.1}",
                    x.device.tech.as_deref().unwrap_or_default(),
                    c.frames_per_second_per_mm2()
                ),
                None => String::new(),
            }
        );
    }
    s
}

/// One candidate as JSON (with its index).
pub fn candidate_json(x: &Exploration, i: usize) -> serde_json::Value {
    let c = &x.candidates[i];
    let mut v = json!({
        "id": i,
        "folding": c.fold_label(),
        "pixels_per_beat": c.pixels_per_beat,
        "layers": c.folds,
        "origin": c.origin,
        "cycles_per_frame": c.cycles_per_frame,
        "latency_cycles": c.latency_cycles,
        "clock_mhz": c.clock_mhz,
        "frames_per_second": c.frames_per_second,
        "est_luts": c.estimate.luts,
        "est_ffs": c.estimate.ffs,
        "memory_bits": c.estimate.memory_bits,
        "brams": c.estimate.brams,
        "sprams": c.estimate.sprams,
        "load_weights": c.load_weights,
        "table_inputs": c.table_inputs,
        "block_rom_layers": c.block_rom_layers,
        "fold": c.fold_file(),
        "input_ram": c.input_ram,
        "input_ram_layers": c.input_ram_layers,
        "stage_levels": c.stage_levels,
        "read_registers": c.read_registers,
        "activation_stage": c.activation_stage,
        "frames_per_second_per_lut": c.frames_per_second_per_lut(),
        "fifo_luts": c.fifos.map(|f| f.luts),
        "fifo_brams": c.fifos.map(|f| f.brams),
        "fits": c.fits,
        "pareto": c.pareto,
    });
    if let Some(a) = c.area_um2 {
        v["area_um2"] = json!(a);
        v["frames_per_second_per_mm2"] = json!(c.frames_per_second_per_mm2());
    }
    v
}

/// `dse.json`: the device, every candidate, the front (indices, fastest first) and the best
/// fitting design.
pub fn json(x: &Exploration) -> serde_json::Value {
    json!({
        "model": x.model,
        "device": x.device,
        "candidates": (0..x.candidates.len()).map(|i| candidate_json(x, i)).collect::<Vec<_>>(),
        "front": x.front,
        "best": x.best(),
    })
}

/// `dse.svg`: LUTs against frames/s on log-log axes; the front joined and highlighted,
/// candidates that do not fit drawn as grey crosses, the device's LUTs as a dashed line.
pub fn svg(x: &Exploration) -> String {
    let (w, h) = (760.0, 520.0);
    let (left, right, top, bottom) = (80.0, 30.0, 40.0, 60.0);
    let cs = &x.candidates;
    let asic = x.device.is_asic();
    let lut_of = |c: &Candidate| c.cost().max(1) as f64;
    // The capacity line: the device's LUTs, or an ASIC's area limit if it has one.
    let capacity = if asic {
        x.device.max_area_um2
    } else {
        Some(x.device.luts as f64)
    };
    let decade = |v: f64, up: bool| {
        let l = v.log10();
        10f64.powf(if up { l.ceil() } else { l.floor() })
    };
    let (mut x0, mut x1) = (f64::MAX, f64::MIN);
    let (mut y0, mut y1) = (f64::MAX, f64::MIN);
    for c in cs {
        x0 = x0.min(lut_of(c));
        x1 = x1.max(lut_of(c));
        y0 = y0.min(c.frames_per_second);
        y1 = y1.max(c.frames_per_second);
    }
    x1 = x1.max(capacity.unwrap_or(0.0));
    if cs.is_empty() {
        (x0, y0, y1) = (1.0, 1.0, 10.0);
    }
    let (x0, x1) = (
        decade(x0, false),
        decade(x1 * 1.0001, true).max(decade(x0, false) * 10.0),
    );
    let (y0, y1) = (
        decade(y0, false),
        decade(y1 * 1.0001, true).max(decade(y0, false) * 10.0),
    );
    let px =
        |v: f64| left + (v.log10() - x0.log10()) / (x1.log10() - x0.log10()) * (w - left - right);
    let py = |v: f64| {
        h - bottom - (v.log10() - y0.log10()) / (y1.log10() - y0.log10()) * (h - top - bottom)
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(s, "<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{} on {} (up to {} MHz): {} candidates, {} on the front</text>",
        w / 2.0,
        xml(&x.model),
        xml(&x.device.name),
        x.device.fmax_mhz,
        cs.len(),
        x.front.len()
    );
    // Axes, decade ticks and grid.
    let (pl, pr, pt, pb) = (left, w - right, top, h - bottom);
    let _ = writeln!(
        s,
        "<rect x=\"{pl}\" y=\"{pt}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>",
        pr - pl,
        pb - pt
    );
    for d in ticks(x0, x1) {
        let xp = px(d);
        let _ = writeln!(
            s,
            "<line x1=\"{xp:.1}\" y1=\"{pt}\" x2=\"{xp:.1}\" y2=\"{pb}\" stroke=\"#ddd\"/>"
        );
        let _ = writeln!(
            s,
            "<text x=\"{xp:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            pb + 16.0,
            tick(d)
        );
    }
    for d in ticks(y0, y1) {
        let yp = py(d);
        let _ = writeln!(
            s,
            "<line x1=\"{pl}\" y1=\"{yp:.1}\" x2=\"{pr}\" y2=\"{yp:.1}\" stroke=\"#ddd\"/>"
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            pl - 6.0,
            yp + 4.0,
            tick(d)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{} (log)</text>",
        (pl + pr) / 2.0,
        h - 18.0,
        if asic {
            "estimated cell area, um^2"
        } else {
            "estimated LUT4s"
        }
    );
    let _ = writeln!(
        s,
        "<text x=\"18\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {})\">frames/s at each design's expected clock (log)</text>",
        (pt + pb) / 2.0,
        (pt + pb) / 2.0
    );
    // Device capacity.
    if let Some(limit) = capacity {
        let cap = px(limit);
        let _ = writeln!(
            s,
            "<line x1=\"{cap:.1}\" y1=\"{pt}\" x2=\"{cap:.1}\" y2=\"{pb}\" stroke=\"#c00\" stroke-dasharray=\"6 4\"/>"
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" fill=\"#c00\" text-anchor=\"end\">{}</text>",
            cap - 4.0,
            pt + 14.0,
            if asic {
                format!("{limit:.0} um^2")
            } else {
                format!("{} LUTs", x.device.luts)
            }
        );
    }
    // Points: fitting as blue dots, not fitting as grey crosses.
    for c in cs.iter().filter(|c| !c.pareto) {
        let (a, b) = (px(lut_of(c)), py(c.frames_per_second));
        if c.fits {
            let _ = writeln!(s, "<circle cx=\"{a:.1}\" cy=\"{b:.1}\" r=\"2.5\" fill=\"#4a7bd0\" fill-opacity=\"0.6\"/>");
        } else {
            let _ = writeln!(
                s,
                "<path d=\"M{:.1} {:.1}l5 5m0 -5l-5 5\" stroke=\"#999\"/>",
                a - 2.5,
                b - 2.5
            );
        }
    }
    // The front, as a staircase through its points (slowest first).
    let mut f: Vec<&Candidate> = x.front.iter().map(|&i| &cs[i]).collect();
    f.reverse();
    if !f.is_empty() {
        let mut p = String::new();
        for (k, c) in f.iter().enumerate() {
            let (a, b) = (px(lut_of(c)), py(c.frames_per_second));
            if k == 0 {
                let _ = write!(p, "M{a:.1} {b:.1}");
            } else {
                let _ = write!(p, " H{a:.1} V{b:.1}");
            }
        }
        let _ = writeln!(
            s,
            "<path d=\"{p}\" fill=\"none\" stroke=\"#e07000\" stroke-width=\"1.5\"/>"
        );
    }
    for c in &f {
        let (a, b) = (px(lut_of(c)), py(c.frames_per_second));
        let fill = if c.fits { "#e07000" } else { "white" };
        let _ = writeln!(
            s,
            "<circle cx=\"{a:.1}\" cy=\"{b:.1}\" r=\"4.5\" fill=\"{fill}\" stroke=\"#e07000\" stroke-width=\"1.5\"><title>{} : {:.0} frames/s, {}</title></circle>",
            c.fold_label(),
            c.frames_per_second,
            if asic {
                format!("{} um^2", c.cost())
            } else {
                format!("{} LUTs", c.estimate.luts)
            }
        );
    }
    // Legend.
    let (lx, ly) = (pl + 12.0, pt + 16.0);
    let _ = writeln!(s, "<circle cx=\"{lx}\" cy=\"{ly}\" r=\"4.5\" fill=\"#e07000\"/><text x=\"{}\" y=\"{}\">Pareto front (hollow: does not fit)</text>", lx + 10.0, ly + 4.0);
    let _ = writeln!(s, "<circle cx=\"{lx}\" cy=\"{}\" r=\"2.5\" fill=\"#4a7bd0\"/><text x=\"{}\" y=\"{}\">fits the device</text>", ly + 18.0, lx + 10.0, ly + 22.0);
    let _ = writeln!(s, "<path d=\"M{} {}l5 5m0 -5l-5 5\" stroke=\"#999\"/><text x=\"{}\" y=\"{}\">does not fit</text>", lx - 2.5, ly + 33.5, lx + 10.0, ly + 40.0);
    s.push_str("</svg>\n");
    s
}

/// Tick values from decade `lo` to decade `hi`: every decade, and 2x and 5x within it when the
/// axis spans at most two decades.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let fine = hi / lo <= 100.5;
    let mut v = Vec::new();
    let mut d = lo;
    while d <= hi * 1.0001 {
        v.push(d);
        if fine && d * 2.0 < hi {
            v.extend([d * 2.0, d * 5.0]);
        }
        d *= 10.0;
    }
    v
}

/// A decade tick label (`100`, `10k`, `1M`).
fn tick(v: f64) -> String {
    let v = v.round() as u64;
    match v {
        v if v >= 1_000_000 && v.is_multiple_of(1_000_000) => format!("{}M", v / 1_000_000),
        v if v >= 1_000_000 && v.is_multiple_of(100_000) => format!("{:.1}M", v as f64 / 1e6),
        v if v >= 1000 && v.is_multiple_of(1000) => format!("{}k", v / 1000),
        v => v.to_string(),
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Writes `dse.csv`, `dse.json` and `dse.svg` into `dir` (created if needed); `extra` is merged
/// into the JSON's top level (measurements the caller added). Returns the paths written.
pub fn write(
    x: &Exploration,
    dir: &Path,
    extra: Option<&serde_json::Value>,
) -> Result<Vec<PathBuf>, CompileError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CompileError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut j = json(x);
    if let Some(serde_json::Value::Object(m)) = extra {
        for (k, v) in m {
            j[k] = v.clone();
        }
    }
    let mut text = serde_json::to_string_pretty(&j).expect("JSON values serialise");
    text.push('\n');
    let files = [("dse.csv", csv(x)), ("dse.json", text), ("dse.svg", svg(x))];
    let mut written = Vec::new();
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(io(&p))?;
        written.push(p);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clock features: depth, LUTs, block RAMs, table block RAMs, window units.
    fn at(
        stage_levels: usize,
        luts: u64,
        brams: u64,
        table_brams: u64,
        windows: u64,
    ) -> ClockFeatures {
        ClockFeatures {
            stage_levels,
            luts,
            brams,
            table_brams,
            windows,
            wide_logic_roms: 0,
            mmv_layers: 0,
        }
    }

    #[test]
    fn every_set_of_a_few_table_layers_is_costed_and_the_best_first_of_more() {
        assert_eq!(table_layer_sets(1), vec![vec![0]]);
        let three = table_layer_sets(3);
        assert_eq!(three.len(), 7);
        // The first two without the third: the set a fast SFC design fits with.
        assert!(three.contains(&vec![0, 1]) && three.contains(&vec![1, 2]));
        assert_eq!(table_layer_sets(4).len(), 15);
        assert_eq!(
            table_layer_sets(5),
            vec![
                vec![0],
                vec![0, 1],
                vec![0, 1, 2],
                vec![0, 1, 2, 3],
                vec![0, 1, 2, 3, 4]
            ]
        );
        assert!(table_layer_sets(0).is_empty());
    }

    #[test]
    fn deeper_popcount_trees_get_the_slower_measured_clock() {
        let d = device("ecp5-85k").unwrap();
        assert_eq!(d.clock_mhz(&at(0, 0, 0, 0, 0)), 129.0);
        assert_eq!(d.clock_mhz(&at(2, 0, 0, 0, 0)), 129.0);
        assert_eq!(d.clock_mhz(&at(3, 0, 0, 0, 0)), 75.0);
        assert_eq!(d.clock_mhz(&at(4, 0, 0, 0, 0)), 75.0);
        assert_eq!(d.clock_mhz(&at(5, 0, 0, 0, 0)), 68.4);
        assert_eq!(d.clock_mhz(&at(6, 0, 0, 0, 0)), 52.5);
        // Many block RAMs, or many LUTs: the measured large designs' clocks.
        assert_eq!(d.clock_mhz(&at(2, 12_900, 36, 0, 0)), 129.0);
        assert_eq!(d.clock_mhz(&at(2, 15_000, 36, 0, 0)), 110.6);
        assert_eq!(d.clock_mhz(&at(2, 15_000, 97, 0, 0)), 96.9);
        assert_eq!(d.clock_mhz(&at(2, 13_242, 34, 0, 0)), 110.6);
        // Fewer than 60 block RAMs: their words are not gathered from across the device.
        assert_eq!(d.clock_mhz(&at(2, 19_591, 40, 0, 0)), 110.6);
        assert_eq!(d.clock_mhz(&at(2, 16_570, 59, 0, 0)), 110.6);
        assert_eq!(d.clock_mhz(&at(2, 16_570, 60, 0, 0)), 96.9);
        assert_eq!(d.clock_mhz(&at(2, 12_765, 97, 0, 0)), 96.9);
        assert_eq!(d.clock_mhz(&at(2, 8_742, 76, 0, 0)), 110.6);
        assert_eq!(d.clock_mhz(&at(4, 46_683, 30, 0, 0)), 49.6);
        assert_eq!(d.clock_mhz(&at(2, 7_571, 108, 0, 0)), 110.6);
        // Convolutional designs: the clock measured on them, whatever their size.
        assert_eq!(d.clock_mhz(&at(2, 9_000, 20, 0, 4)), 102.0);
        assert_eq!(d.clock_mhz(&at(2, 9_000, 20, 0, 0)), 129.0);
        // ... unless a wide, deep weight ROM stays in logic.
        let rom = |windows| ClockFeatures {
            wide_logic_roms: 1,
            ..at(2, 16_570, 18, 0, windows)
        };
        assert_eq!(d.clock_mhz(&rom(4)), 92.8);
        assert_eq!(d.clock_mhz(&rom(0)), 110.6);
        // Tables in many block RAMs: the measured table designs' clock, whatever the total
        // (the point of 37 block RAMs and more is for weight ROMs).
        assert_eq!(d.clock_mhz(&at(2, 10_531, 110, 110, 0)), 129.0);
        assert_eq!(d.clock_mhz(&at(2, 7_825, 96, 67, 0)), 129.0);
        assert_eq!(d.clock_mhz(&at(2, 7_825, 96, 59, 0)), 110.6);
        assert_eq!(d.clock_mhz(&at(2, 7_825, 96, 1, 0)), 110.6);
        // Frames per weight read: the clock measured on such designs, not the large designs'
        // that read their weights once per frame.
        let shared = |luts, brams| ClockFeatures {
            mmv_layers: 3,
            ..at(2, luts, brams, 0, 0)
        };
        assert_eq!(d.clock_mhz(&shared(41_758, 74)), 103.7);
        assert_eq!(d.clock_mhz(&shared(9_000, 20)), 103.7);
        assert_eq!(d.clock_mhz(&at(2, 41_758, 74, 0, 0)), 49.6);
        // Beyond the measurements: the deepest one measured.
        assert_eq!(d.clock_mhz(&at(8, 0, 0, 0, 0)), 52.5);
        // Without measurements: the device's clock.
        assert_eq!(device("up5k").unwrap().clock_mhz(&at(9, 0, 0, 0, 0)), 52.0);
    }

    #[test]
    fn designs_beyond_the_largest_routed_do_not_fit() {
        let d = device("ecp5-85k").unwrap();
        let e = |luts, brams| Estimate {
            luts,
            ffs: luts,
            brams,
            ..Estimate::default()
        };
        // The designs that routed, and smaller ones in both LUTs and block RAMs.
        for (luts, brams) in [
            (49_300, 30),
            (15_891, 40),
            (12_674, 97),
            (11_734, 110),
            (11_434, 111),
            (16_568, 50),
        ] {
            assert!(d.fits(&e(luts, brams), None), "{luts} {brams}");
            assert!(d.fits(&e(luts / 2, brams / 2), None), "{luts} {brams}");
        }
        // Within the device's 83,640 LUTs and 208 block RAMs, beyond what has routed: larger
        // in one or the other, or as large as one routed design in LUTs and another in block
        // RAMs (the SFC topology's `28px 8x784 8x256t3 8x256 5x16t3`, ~47,100 estimated LUTs
        // and 90 block RAMs, did not route).
        assert!(!d.fits(&e(49_301, 30), None));
        assert!(!d.fits(&e(7_000, 112), None));
        assert!(!d.fits(&e(12_675, 98), None));
        assert!(!d.fits(&e(47_094, 90), None));
        assert!(!d.fits(&e(41_000, 114), None));
        assert!(!d.fits(&e(17_000, 146), None));
        assert!(d
            .routing_limits()
            .unwrap()
            .contains("49300 LUTs with 30 block RAMs, "));
        // Without limits a device's own resources decide.
        let mut open = d.clone();
        open.routed.clear();
        assert!(open.fits(&e(49_301, 146), None));
        assert!(open.routing_limits().is_none());
        assert!(!open.fits(&e(83_641, 0), None));
    }

    #[test]
    fn large_designs_get_the_clock_measured_at_their_size() {
        let mut d = device("ecp5-85k").unwrap();
        d.size_clock = vec![
            SizeClockPoint {
                min_luts: 0,
                min_brams: 40,
                min_table_brams: 0,
                max_table_brams: None,
                min_windows: 0,
                min_wide_logic_roms: 0,
                min_mmv_layers: 0,
                max_mmv_layers: None,
                mhz: 60.0,
            },
            SizeClockPoint {
                min_luts: 30_000,
                min_brams: 0,
                min_table_brams: 0,
                max_table_brams: None,
                min_windows: 0,
                min_wide_logic_roms: 0,
                min_mmv_layers: 0,
                max_mmv_layers: None,
                mhz: 50.0,
            },
        ];
        d.clock = vec![ClockPoint {
            stage_levels: 9,
            mhz: 70.0,
        }];
        assert_eq!(d.clock_mhz(&at(4, 29_999, 39, 0, 0)), 70.0);
        assert_eq!(d.clock_mhz(&at(4, 29_999, 40, 0, 0)), 60.0);
        assert_eq!(d.clock_mhz(&at(4, 30_000, 0, 0, 0)), 50.0);
        // Both apply: the slower.
        assert_eq!(d.clock_mhz(&at(4, 80_000, 100, 0, 0)), 50.0);
        // A deep tree slower than its size allows keeps its own clock.
        d.clock[0].mhz = 45.0;
        assert_eq!(d.clock_mhz(&at(4, 30_000, 40, 0, 0)), 45.0);
    }

    #[test]
    fn devices_parse() {
        let d = devices();
        assert!(d.len() >= 4);
        assert_eq!(device("up5k").unwrap().luts, 5280);
        assert_eq!(device("ecp5-85k").unwrap().family, Family::Ecp5);
        assert!(device("nope").is_none());
        for dev in &d {
            assert!(
                dev.size_clock.iter().all(|p| p.mhz > 0.0
                    && (p.min_luts > 0
                        || p.min_brams > 0
                        || p.min_table_brams > 0
                        || p.min_windows > 0
                        || p.min_mmv_layers > 0)),
                "{}: a size_clock point names a size or a kind of design",
                dev.name
            );
        }
    }

    #[test]
    fn asic_devices_cost_area_and_wide_layers_clock_slower() {
        for tech in ["osu018", "osu035", "osu050"] {
            let d = device(&format!("asic-{tech}")).unwrap();
            assert!(d.is_asic() && d.tech.as_deref() == Some(tech));
            assert_eq!(d.area_model().unwrap().tech, tech);
            let typical = d.clock_mhz(&at(3, 0, 0, 0, 0));
            assert_eq!(d.clock_with_pes(typical, 1), typical);
            // Many PEs: the PE limit; more PEs, never faster.
            let c64 = d.clock_with_pes(typical, 64);
            assert!(c64 < typical && c64 < d.clock_with_pes(typical, 32));
            assert_eq!(c64, d.pe_clock_mhz.unwrap() / 64.0);
        }
        // The slower libraries are slower.
        let mhz = |n: &str| device(n).unwrap().clock_with_pes(1e9, 16);
        assert!(mhz("asic-osu018") > mhz("asic-osu035") && mhz("asic-osu035") > mhz("asic-osu050"));
        assert!(!device("up5k").unwrap().is_asic());
        assert_eq!(device("up5k").unwrap().clock_with_pes(40.0, 64), 40.0);
    }

    #[test]
    fn pareto_marks_non_dominated() {
        let p = [
            (10.0, 100),
            (5.0, 50),
            (5.0, 60),
            (10.0, 100),
            (1.0, 200),
            (20.0, 300),
        ];
        assert_eq!(pareto(&p), [true, true, false, false, false, true]);
    }

    #[test]
    fn ticks() {
        assert_eq!(tick(1000.0), "1k");
        assert_eq!(tick(1e6), "1M");
        assert_eq!(tick(10.0), "10");
    }
}
