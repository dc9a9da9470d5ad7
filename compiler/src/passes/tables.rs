//! Tables: an MVTU's XNORs and first adder levels read from block RAM instead of built in
//! LUTs.
//!
//! A weight ROM spends its block RAMs on bandwidth, not capacity: a layer folded to `NF * SF`
//! steps reads `PE * SIMD` weight bits per step, so its words are as wide as the lanes and only
//! `NF * SF` deep (128 of a DP16KD's 512 or 1024 in the SFC designs), and every lane still
//! costs its XNOR and its share of the popcount tree in LUTs. A table layer splits each step's
//! input chunk into groups of `k` bits and gives each group a ROM addressed by the step and
//! the group's `k` input bits, whose word holds, for every PE, the popcount of those bits'
//! XNORs with the neuron's `k` weights (`2^k` entries per step of `PE * bits(k)` bits). The
//! tree then starts from `ceil(SIMD / k)` counts per PE instead of `SIMD` XNOR bits. With
//! `k = 3` the counts are what the ternary first level builds from LUTs
//! ([`crate::blocks::mvtu::ternary_first`]): a 784-lane tree registered every two levels took
//! 1,019 LUT4 and 74 carry cells from 2-bit counts against 2,020 and 146 from XNOR bits
//! (`synth_ecp5 -nowidelut`, Yosys 0.70), for `16/3` table bits per weight against one.
//!
//! The group's input bits are part of the table's address, so they must be known when stage A
//! issues the read: the layer keeps its input in the rotating register (the input buffer and
//! vector RAM passes, which run after this one, leave it there and refuse to move it), and its
//! weights are ROMs (the memory pass does not load them after power-up; a fully unrolled layer,
//! whose weights are constants in logic, needs no memory at all and takes no tables).
//!
//! A table is read every cycle, so its block RAM is sized by read ports, not bits: where the
//! family's block RAMs have two read ports (the ECP5's DP16KD, see [`dual_port_for`]), two
//! tables share one memory, each read through a port of its own
//! ([`crate::ir::Mvtu::table_memories`]; fold-file key `dual_port_tables`, which `compile`
//! fills from the target family and records).

use super::Pass;
use crate::blocks::Family;
use crate::ir::Design;
use crate::CompileError;

/// Most inputs per table lookup: `2^k` entries per step grow past a block RAM's depth beyond.
pub const MAX_TABLE_INPUTS: usize = 4;

/// The tables pass: layer `i` (from 0) looks its popcounts up in tables of `inputs[i]` input
/// bits each (0: XNOR lanes); a list shorter than the layers leaves the rest as they are.
pub struct Tables(pub Vec<usize>);

/// The table inputs of every layer of `design` as a fold file lists them: empty where no
/// layer uses tables.
pub fn listed(design: &Design) -> Vec<usize> {
    let t: Vec<usize> = design.mvtus().map(|l| l.table).collect();
    if t.iter().all(|&k| k == 0) {
        Vec::new()
    } else {
        t
    }
}

/// Sets whether `design`'s table layers read their tables in pairs through two-port memories
/// (see [`crate::ir::Mvtu::dual_port_tables`]).
pub fn set_dual_port(design: &mut Design, dual: bool) {
    for l in design.mvtus_mut() {
        l.dual_port_tables = dual && l.table > 0;
    }
}

/// The choice [`set_dual_port`] made, as a fold file records it: absent without table layers.
pub fn dual_port_listed(design: &Design) -> Option<bool> {
    let mut tables = design.mvtus().filter(|l| l.table > 0).peekable();
    tables.peek()?;
    Some(tables.any(|l| l.dual_port_tables))
}

/// Whether table layers for `family` read their tables in pairs: where its block RAMs have two
/// read ports of the widths the tables need (the ECP5's DP16KD; the iCE40's SB_RAM40_4K has
/// one read port, and standard cells have no block RAM).
pub fn dual_port_for(family: Family) -> bool {
    family == Family::Ecp5
}

impl Pass for Tables {
    fn name(&self) -> &'static str {
        "tables"
    }

    fn description(&self) -> &'static str {
        "reads the XNOR popcounts of a few inputs at a time from block RAM tables"
    }

    fn run(&self, design: &mut Design) -> Result<(), CompileError> {
        let layers = design.mvtus().count();
        if self.0.len() > layers {
            return Err(CompileError::Folding(format!(
                "table_inputs lists {} layers but the model has {layers}",
                self.0.len()
            )));
        }
        for (l, &k) in design.mvtus_mut().zip(&self.0) {
            if k == 0 {
                l.table = 0;
                continue;
            }
            let i = l.index;
            let why = if !(2..=MAX_TABLE_INPUTS).contains(&k) {
                Some(format!(
                    "{k} inputs per table lookup (0 for XNOR lanes, or 2 to {MAX_TABLE_INPUTS})"
                ))
            } else if l.neuron_folds() * l.synapse_folds() == 1 {
                Some("it is fully unrolled: its weights are constants in logic".into())
            } else {
                None
            };
            if let Some(why) = why {
                return Err(CompileError::Folding(format!(
                    "table_inputs: layer {i} cannot use tables: {why}"
                )));
            }
            l.table = k;
        }
        Ok(())
    }
}
