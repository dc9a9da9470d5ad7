//! Pipelining: how many adder levels of each popcount tree go between two pipeline
//! registers, chosen from the target family and clock.
//!
//! An MVTU registers its weight read, then its popcount trees every `stage_levels` adder
//! levels (the XNOR folds into the first level: two XNORs and their sum are one LUT4; with
//! stages of at most two levels the first level sums threes, see
//! [`crate::blocks::mvtu::TERNARY_MAX_STAGE_LEVELS`]). A
//! deeper stage saves flip-flops and a cycle of latency; a shallower one clocks faster. The
//! pass takes the deepest stage whose delay, by the family's [`LevelTiming`], fits the clock
//! period.

use super::Pass;
use crate::blocks::Family;
use crate::ir::{Design, Mvtu};
use crate::CompileError;

/// Adder levels per stage of a design compiled without a target clock (iCE40 at
/// [`default_clock_mhz`]).
pub const DEFAULT_STAGE_LEVELS: usize = 4;

/// Deepest stage the pass chooses: beyond this the slowest path of an MVTU is elsewhere (its
/// counters, the accumulate and threshold compare) whatever the clock.
pub const MAX_STAGE_LEVELS: usize = 8;

/// Delay model of one popcount pipeline stage on a family: `fixed_ns` (clock to out, setup,
/// the first net) plus `level_ns` per adder level (a LUT, its carry chain and the net to the
/// next level); and of a block RAM read into a register.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LevelTiming {
    /// Delay of a stage without logic, ns.
    pub fixed_ns: f64,
    /// Delay each adder level adds, ns.
    pub level_ns: f64,
    /// A block RAM's clock to data out plus the net to a register, ns. Yosys maps block RAMs
    /// without their output registers and makes the register after a ROM the RAM's own read
    /// register, so whatever follows that register starts with this delay.
    pub ram_read_ns: f64,
}

/// The family's stage delay model, from nextpnr's timing reports of built designs (see the
/// README's table of builds).
pub fn level_timing(family: Family) -> LevelTiming {
    match family {
        Family::Ice40 => LevelTiming {
            fixed_ns: 5.0,
            level_ns: 6.8,
            ram_read_ns: 6.0,
        },
        Family::Ecp5 => LevelTiming {
            fixed_ns: 2.5,
            level_ns: 2.0,
            ram_read_ns: 8.5,
        },
        // OSU018 standard cells before layout: a few-bit ripple adder level in about a
        // nanosecond and a bit; no block RAM to wait for (ROMs are logic, RAMs flip-flops).
        // The slower OSU035/050 libraries keep the same stage depth and run at their own,
        // measured clock (`compiler/devices/asic-*.toml`).
        Family::Asic => LevelTiming {
            fixed_ns: 2.5,
            level_ns: 1.2,
            ram_read_ns: 0.0,
        },
    }
}

/// The clock a design is pipelined for when no clock is given: about what the family's
/// routing reaches with shallow stages.
pub fn default_clock_mhz(family: Family) -> f64 {
    match family {
        Family::Ice40 => 40.0,
        Family::Ecp5 => 125.0,
        Family::Asic => 150.0,
    }
}

/// The deepest stage (in adder levels, 1..=[`MAX_STAGE_LEVELS`]) that fits `clock_mhz` on
/// `family`; 1 if even one level does not.
pub fn levels_for(family: Family, clock_mhz: f64) -> usize {
    let t = level_timing(family);
    let period = 1e3 / clock_mhz;
    let fit = ((period - t.fixed_ns) / t.level_ns).floor();
    if fit.is_finite() && fit >= 1.0 {
        (fit as usize).min(MAX_STAGE_LEVELS)
    } else {
        1
    }
}

/// Registers after the weight read for `clock_mhz` on `family`: two where a block RAM read
/// and the popcount stage after it ([`levels_for`] adder levels) do not fit one period
/// together, so that the RAM's own read register is followed by one in the fabric before any
/// logic; else one. With one, the first tree stage starts at the RAM's data out: the trained
/// Fashion-MNIST CNN at 55 MHz on the ULX3S (7 levels per stage) failed there at 52 MHz, its
/// dense layer's DP16KD taking 5.6 ns clock to out and 1.8 ns to the tree.
pub fn read_registers_for(family: Family, clock_mhz: f64) -> usize {
    let t = level_timing(family);
    let first_stage = t.ram_read_ns + levels_for(family, clock_mhz) as f64 * t.level_ns;
    if first_stage > 1e3 / clock_mhz {
        2
    } else {
        1
    }
}

/// Registers after `layer`'s read when the pass gives every layer `read_registers`: one more
/// for a table layer with two. Its tables are block RAMs wherever the exploration puts tables,
/// and on the ECP5 the build moves the second register into each block's output register
/// (`boards::outreg`: 0.97 ns from the clock to data out instead of 5.83), while the third, in
/// the fabric, takes the route from the block to the trees, so that neither that route nor the
/// block's slow output lies in front of logic. Only table layers get it: their tables fill a
/// hundred blocks spread over the device (the SFC design `7px 8x196t3 8x64t3 8x64t3 1x32`
/// reached 87.2 MHz on the ULX3S, its critical path a DP16KD output routed 5.9 ns to its
/// register). Weight ROMs do not: up to 512 words they take the DP16KD's 36-bit mode, whose
/// registers the build leaves in the fabric, so a third register would only add a cycle and a
/// word of flip-flops (the Fashion-MNIST design `4px 8x392 1x256 5x2` tried so: 7 of its 191
/// read ports took their output registers). The rule reads nothing of the device, so that a design rebuilt from its fold file
/// (which records the pass's `read_registers`) has the same registers.
pub fn read_registers_of(layer: &Mvtu, read_registers: usize) -> usize {
    if read_registers == 2 && layer.table > 0 {
        3
    } else {
        read_registers
    }
}

/// Whether the threshold compare gets a stage of its own on `family`: on both. Plane shift,
/// accumulator add and compare in one stage were the critical path of the iCEBreaker digits
/// design at 40 MHz (31.6 ns) and of the ULX3S Fashion-MNIST design at 125 MHz (9.7 ns). On
/// ECP5 this needs `synth_ecp5 -nowidelut` (see [`crate::blocks::Family::synth_command`]):
/// with wide LUTs Yosys 0.70 maps a compare that reads the accumulator registers into wide mux
/// trees (the Fashion-MNIST auto design's first layer: 30,279 LUT4, 7,666 without them).
pub fn activation_stage_for(_family: Family) -> bool {
    true
}

/// Whether `layer`'s weight read is a block RAM's (or a RAM's loaded at power-up) on
/// `family`: only such a read is slow enough to need a second register. A ROM in LUTs is one
/// LUT level before its register, so a second one would only double the weight word's
/// flip-flops (12,544 of them in the SFC design's first layer).
pub fn slow_weight_read(layer: &Mvtu, family: Family) -> bool {
    layer.is_loaded() || layer.weight_blocks(family).0 > 0
}

/// Whether `layer` reads a block RAM in its first pipeline stage: its weights
/// ([`slow_weight_read`]) or its input buffer (a RAM of two frames, see
/// [`super::input_buffer`]).
pub fn slow_read(layer: &Mvtu, family: Family) -> bool {
    layer.input_ram() || slow_weight_read(layer, family)
}

/// The pipelining pass: every MVTU gets `stage_levels` adder levels per stage and
/// `read_registers` registers after its weight read.
pub struct Pipelining {
    /// Adder levels per popcount stage.
    pub stage_levels: usize,
    /// Registers after the weight read (1 or 2).
    pub read_registers: usize,
    /// The threshold compare in a stage of its own after the accumulators.
    pub activation_stage: bool,
}

impl Pipelining {
    /// The pipelining for `clock_mhz` on `family`.
    pub fn for_clock(family: Family, clock_mhz: f64) -> Pipelining {
        Pipelining {
            stage_levels: levels_for(family, clock_mhz),
            read_registers: read_registers_for(family, clock_mhz),
            activation_stage: activation_stage_for(family),
        }
    }

    /// The pipelining for `clock_mhz` of `design` on its family: as [`Pipelining::for_clock`],
    /// but one register after the weight read where no weight memory is a block RAM.
    pub fn for_design(design: &Design, clock_mhz: f64) -> Pipelining {
        let mut p = Pipelining::for_clock(design.family, clock_mhz);
        if !design.mvtus().any(|l| slow_read(l, design.family)) {
            p.read_registers = 1;
        }
        p
    }

    /// The pipelining of `design` (the pass gives every MVTU the same), if it has an MVTU.
    pub fn of(design: &Design) -> Option<Pipelining> {
        design.mvtus().next().map(|l| Pipelining {
            stage_levels: l.stage_levels,
            // A table layer's third register is the layer's own (see [`read_registers_of`]).
            read_registers: l.read_registers.min(2),
            activation_stage: l.activation_stage,
        })
    }
}

impl Pass for Pipelining {
    fn name(&self) -> &'static str {
        "pipelining"
    }

    fn description(&self) -> &'static str {
        "registers each popcount tree every few adder levels, as the target clock needs"
    }

    fn run(&self, design: &mut Design) -> Result<(), CompileError> {
        if self.stage_levels == 0 {
            return Err(CompileError::Folding(
                "stage_levels must be at least 1 (adder levels per pipeline stage)".into(),
            ));
        }
        if !(1..=2).contains(&self.read_registers) {
            return Err(CompileError::Folding(format!(
                "read_registers must be 1 or 2 (registers after the weight read), not {}",
                self.read_registers
            )));
        }
        for l in design.mvtus_mut() {
            l.stage_levels = self.stage_levels;
            l.read_registers = read_registers_of(l, self.read_registers);
            l.activation_stage = self.activation_stage;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faster_clocks_get_shallower_stages() {
        for family in [Family::Ice40, Family::Ecp5] {
            let mut last = usize::MAX;
            for mhz in [6.0, 12.0, 24.0, 40.0, 60.0, 100.0, 125.0, 200.0, 400.0] {
                let l = levels_for(family, mhz);
                assert!((1..=MAX_STAGE_LEVELS).contains(&l));
                assert!(l <= last, "{family:?} {mhz} MHz: {l} > {last}");
                last = l;
            }
            assert_eq!(levels_for(family, 1e6), 1);
        }
        assert_eq!(levels_for(Family::Ice40, 12.0), MAX_STAGE_LEVELS);
        assert!(levels_for(Family::Ecp5, 125.0) < levels_for(Family::Ecp5, 50.0));
        // An ECP5 block RAM read (8.5 ns to a register) leaves too little of an 8 ns period.
        assert_eq!(read_registers_for(Family::Ecp5, 125.0), 2);
        assert_eq!(read_registers_for(Family::Ecp5, 25.0), 1);
        // At 50 MHz the read fits half the period, but not with the 8 levels after it.
        assert_eq!(levels_for(Family::Ecp5, 50.0), 8);
        assert_eq!(read_registers_for(Family::Ecp5, 50.0), 2);
        assert_eq!(read_registers_for(Family::Ice40, 12.0), 1);
        assert_eq!(read_registers_for(Family::Ice40, 40.0), 1);
    }
}
