//! The AIG of a datapath harness, written by Yosys with a script of our own (not a one-cycle
//! SymbiYosys run): read, flatten, drop what no assertion reads, then map to gates.
//!
//! Two things keep it cheap. Every `$add` is mapped to a ripple of full adders
//! ([`compiler::equiv::adder_map`]) instead of Yosys's default carry-lookahead map, whose lookahead units and
//! constant carry inputs leave several times as many cells for later passes to sweep; the
//! adders of a popcount tree are 1 to 10 bits wide, where lookahead buys a prover nothing.
//! And no optimisation pass runs on the gates: constants and duplicate gates are folded by
//! ABC's structural hashing, which the proof runs anyway, in a fraction of the time.
//!
//! Both sides of a miter are mapped by the same rules, so a wrong adder map could hide a wrong
//! design: the map's own tests prove it equal to Yosys's map for a range of widths and
//! signedness.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use compiler::equiv::harness::Harness;

/// The Yosys script that writes `aig` for the harness `top` (in `harness`), the design files
/// and the specification, with the adder map in `map`.
pub fn script(
    design_files: &[PathBuf],
    spec: &Path,
    harness: &Path,
    h: &Harness,
    cut: bool,
    map: &Path,
    aig: &Path,
) -> String {
    let top = &h.top;
    let design: Vec<String> = design_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let sums = format!("{}*", compiler::equiv::spec::SUM_PREFIX);
    format!(
        "# Written by flipchip prove --datapath: the miter {top} as an AIG.\n\
         read_verilog -defer {}\n\
         read_verilog -defer {}\n\
         read_verilog -sv -formal {}\n\
         hierarchy -check -top {top}\n\
         proc\n\
         # The specification's sum modules hold no weights: each is mapped to gates once, here,\n\
         # and copied per neuron by the last flatten.\n\
         setattr -mod -set keep_hierarchy 1 {sums}\n\
         {}\
         flatten\n\
         {}\
         # Only what an assertion reads stays: a part's other outputs go here.\n\
         opt_clean\n\
         async2sync\n\
         memory_collect\n\
         memory_map\n\
         opt_expr\n\
         opt_clean\n\
         stat\n\
         techmap -map {}\n\
         techmap\n\
         dffunmap\n\
         aigmap\n\
         # A sum module's constants (the carry into each ripple, the zero bits that widen its\n\
         # operands) folded once rather than in every copy.\n\
         opt_expr {sums}\n\
         opt_clean {sums}\n\
         setattr -mod -unset keep_hierarchy {sums}\n\
         flatten\n\
         # Drops the sum modules, now copied into the top, so that `stat` counts the top alone.\n\
         hierarchy -top {top}\n\
         # Undefined bits are free inputs, as they are in a bounded check.\n\
         setundef -undriven -anyseq\n\
         opt_clean\n\
         stat\n\
         write_aiger -zinit -L -map {} {}\n",
        design.join(" "),
        spec.display(),
        harness.display(),
        cuts(h, cut),
        taps(h),
        map.display(),
        aig.with_extension("aim").display(),
        aig.display(),
    )
}

/// The commands that drive `h`'s taps from the flattened design, under a comment that says
/// why (nothing without taps).
pub fn taps(h: &Harness) -> String {
    let commands = h.tap_commands();
    if commands.is_empty() {
        return commands;
    }
    format!("# The hand-overs the harness captures, from inside the flattened top.\n{commands}")
}

/// The commands that cut `h`'s cut ports before `flatten`, with `cut` (nothing otherwise).
pub fn cuts(h: &Harness, cut: bool) -> String {
    let commands = h.cut_commands();
    if !cut || commands.is_empty() {
        return String::new();
    }
    format!(
        "# Cut: these ports lose their drivers and their nets become free inputs, so the miter\n\
         # holds nothing of the logic before them.\n{commands}"
    )
}

/// Writes the AIG of harness `h` (with `cut`, its cut ports free) into
/// `work/{top}_aig/design.aig` with Yosys (`yosys`), within `timeout`; `Ok(None)` when it ran out of time. The script and log sit beside it.
#[allow(clippy::too_many_arguments)]
pub fn write(
    yosys: &Path,
    work: &Path,
    design_files: &[PathBuf],
    spec: &Path,
    harness: &Path,
    h: &Harness,
    cut: bool,
    timeout: u64,
) -> anyhow::Result<Option<PathBuf>> {
    let top = &h.top;
    let dir = work.join(format!("{top}_aig"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let map = work.join("ripple_add.v");
    std::fs::write(&map, compiler::equiv::adder_map::RIPPLE_MAP)
        .with_context(|| format!("writing {}", map.display()))?;
    let aig = dir.join("design.aig");
    // A stale AIG must not pass for this run's.
    std::fs::remove_file(&aig).ok();
    let ys = dir.join("design.ys");
    std::fs::write(&ys, script(design_files, spec, harness, h, cut, &map, &aig))
        .with_context(|| format!("writing {}", ys.display()))?;
    let ran = tools::Run::new(
        &format!("prove datapath {top} (AIG)"),
        yosys,
        dir.join("yosys.log"),
    )
    .args(["-s", "design.ys"])
    .current_dir(&dir)
    .timeout(Duration::from_secs(timeout.max(1)))
    .run_with_progress(&mut |line| {
        // The pass running now ("12. Executing TECHMAP pass ..."), not its messages.
        if line.contains(". Executing ") {
            eprintln!("  {top}: {line}");
        }
    });
    match ran {
        Ok(_) if aig.is_file() => Ok(Some(aig)),
        Ok(_) => anyhow::bail!(
            "prove datapath {top}: Yosys wrote no AIG; see {}",
            dir.join("yosys.log").display()
        ),
        Err(tools::ToolError::TimedOut { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The cells of the last `stat` in a Yosys log: (and gates, latches), for the report.
pub fn gate_counts(log: &str) -> Option<(u64, u64)> {
    let last = log.rfind("Number of cells:")?;
    let tail = &log[last..];
    let count = |kind: &str| -> u64 {
        tail.lines()
            .filter(|l| l.trim_start().starts_with(kind))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    };
    Some((count("$_AND_"), count("$_DFF") + count("$_SDFF")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_counts_come_from_the_last_stat() {
        let log = "   Number of cells:   9\n     $add  9\n\
                   === l1 ===\n   Number of cells:  120\n     $_AND_   70\n     $_DFF_P_  8\n     \
                   $_NOT_   42\n";
        assert_eq!(gate_counts(log), Some((70, 8)));
        assert_eq!(gate_counts("nothing"), None);
    }
}
