//! Reading the tools' reports: yosys `stat -json`, nextpnr `--report` JSON and nextpnr's log.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::board::Cells;

/// Cell counts by type from yosys `stat -json` output (the whole design, or the sum over its
/// modules when the output has no `design` section).
pub fn yosys_cells(stat: &Value) -> BTreeMap<String, u64> {
    let mut cells = BTreeMap::new();
    let mut add = |m: &Value| {
        if let Some(map) = m.get("num_cells_by_type").and_then(Value::as_object) {
            for (k, v) in map {
                *cells.entry(k.clone()).or_insert(0) += v.as_u64().unwrap_or(0);
            }
        }
    };
    if let Some(d) = stat.get("design") {
        add(d);
    } else if let Some(mods) = stat.get("modules").and_then(Value::as_object) {
        mods.values().for_each(&mut add);
    }
    cells
}

/// Cell counts by type from yosys's text `stat` output, for yosys builds without `stat -json`
/// (the parser the compiler's LUT calibration uses).
pub use compiler::blocks::cost::stat_cells as yosys_cells_text;

/// The weighted count of `cells` matching `pattern` (names ending in `*` match by prefix).
pub fn count(cells: &BTreeMap<String, u64>, patterns: &BTreeMap<String, u64>) -> u64 {
    patterns
        .iter()
        .map(|(p, weight)| {
            let n: u64 = match p.strip_suffix('*') {
                Some(prefix) => cells
                    .iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(_, v)| v)
                    .sum(),
                None => cells.get(p).copied().unwrap_or(0),
            };
            n * weight
        })
        .sum()
}

/// LUTs, flip-flops, block RAMs, large RAMs and DSPs by the board's cell names.
pub fn resources(cells: &BTreeMap<String, u64>, names: &Cells) -> BTreeMap<&'static str, u64> {
    BTreeMap::from([
        ("luts", count(cells, &names.luts)),
        ("ffs", count(cells, &names.ffs)),
        ("bram", count(cells, &names.bram)),
        ("spram", count(cells, &names.spram)),
        ("dsp", count(cells, &names.dsp)),
    ])
}

/// [`resources`], refusing a report in which no LUT cell was found: every design has LUTs, so
/// none counted means the report was not understood (a changed format), not an empty design.
pub fn resources_checked(
    cells: &BTreeMap<String, u64>,
    names: &Cells,
) -> Result<BTreeMap<&'static str, u64>, String> {
    let res = resources(cells, names);
    if res["luts"] == 0 {
        return Err(format!(
            "no LUT cells ({}) among the {} cell types read; Yosys's report format may have \
             changed",
            names.luts.keys().cloned().collect::<Vec<_>>().join(", "),
            cells.len()
        ));
    }
    Ok(res)
}

/// One resource's use on the device.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Use {
    /// nextpnr's cell type.
    pub cell: String,
    /// Cells used.
    pub used: u64,
    /// Cells the device has.
    pub available: u64,
}

impl Use {
    /// Percentage used.
    pub fn percent(&self) -> f64 {
        if self.available == 0 {
            0.0
        } else {
            100.0 * self.used as f64 / self.available as f64
        }
    }
}

/// nextpnr's `utilization` section of `--report`, by cell type.
pub fn nextpnr_utilisation(report: &Value) -> BTreeMap<String, Use> {
    let mut out = BTreeMap::new();
    if let Some(map) = report.get("utilization").and_then(Value::as_object) {
        for (cell, v) in map {
            let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
            out.insert(
                cell.clone(),
                Use {
                    cell: cell.clone(),
                    used: n("used"),
                    available: n("available"),
                },
            );
        }
    }
    out
}

/// One clock domain's timing after place and route.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClockTiming {
    /// nextpnr's name for the clock net (`core_clk`, `clk$SB_IO_IN_$glb_clk`).
    pub name: String,
    /// The highest frequency its paths allow.
    pub fmax_mhz: f64,
    /// The frequency it was constrained to.
    pub constraint_mhz: f64,
    /// `fmax_mhz >= constraint_mhz`.
    pub met: bool,
}

impl ClockTiming {
    fn new(name: &str, fmax_mhz: f64, constraint_mhz: f64) -> ClockTiming {
        ClockTiming {
            name: name.to_string(),
            fmax_mhz,
            constraint_mhz,
            met: fmax_mhz >= constraint_mhz,
        }
    }
}

/// Every clock in nextpnr's `fmax` section of `--report` (`{"clk": {"achieved": MHz,
/// "constraint": MHz}}`, the same in nextpnr 0.4 and 0.11), by name; an error naming what is
/// missing when the section is absent, empty or not numbers.
pub fn nextpnr_clocks(report: &Value) -> Result<Vec<ClockTiming>, String> {
    let map = report
        .get("fmax")
        .and_then(Value::as_object)
        .ok_or("no \"fmax\" section (an unknown nextpnr report format)")?;
    if map.is_empty() {
        return Err("an empty \"fmax\" section: nextpnr timed no clock".into());
    }
    map.iter()
        .map(|(name, v)| {
            let f = |k: &str| {
                v.get(k)
                    .and_then(Value::as_f64)
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .ok_or_else(|| format!("fmax.{name}: no positive \"{k}\""))
            };
            Ok(ClockTiming::new(name, f("achieved")?, f("constraint")?))
        })
        .collect()
}

/// The clocks of the last timing report in nextpnr's log, from lines like
/// `Info: Max frequency for clock 'core_clk': 28.12 MHz (PASS at 12.00 MHz)` (nextpnr 0.4 and
/// 0.11 print the same line; the last block, after routing, is the final one). Empty when the
/// log has none.
pub fn log_clocks(log: &str) -> Vec<ClockTiming> {
    let mut blocks: Vec<Vec<ClockTiming>> = Vec::new();
    let mut in_block = false;
    for line in log.lines() {
        let parsed = line
            .trim()
            .strip_prefix("Info: Max frequency for clock")
            // Several clocks' names are right-aligned with spaces before the quote.
            .and_then(|rest| rest.trim_start().strip_prefix('\''))
            .and_then(|rest| {
                let (name, rest) = rest.split_once("': ")?;
                let (fmax, rest) = rest.split_once(" MHz (")?;
                let (_verdict, rest) = rest.split_once(" at ")?;
                let constraint = rest.strip_suffix(" MHz)")?;
                Some(ClockTiming::new(
                    name,
                    fmax.trim().parse().ok()?,
                    constraint.trim().parse().ok()?,
                ))
            });
        match parsed {
            Some(c) => {
                if !in_block {
                    blocks.push(Vec::new());
                    in_block = true;
                }
                blocks.last_mut().expect("pushed above").push(c);
            }
            // Blank lines separate the clocks of one report; anything else ends it.
            None if line.trim().is_empty() => {}
            None => in_block = false,
        }
    }
    blocks.pop().unwrap_or_default()
}

/// The clocks after place and route: from the report, checked against the log where the log
/// has them (both must name the same clocks). An error when neither can be read, never a
/// silent 0 MHz or "met".
pub fn pnr_clocks(report: &Value, log: &str) -> Result<Vec<ClockTiming>, String> {
    let from_log = log_clocks(log);
    match nextpnr_clocks(report) {
        Ok(clocks) => {
            let names = |c: &[ClockTiming]| {
                let mut n: Vec<String> = c.iter().map(|c| c.name.clone()).collect();
                n.sort();
                n
            };
            if !from_log.is_empty() && names(&from_log) != names(&clocks) {
                return Err(format!(
                    "the report times clocks {:?}, the log {:?}",
                    names(&clocks),
                    names(&from_log)
                ));
            }
            Ok(clocks)
        }
        Err(e) if from_log.is_empty() => Err(format!(
            "{e}, and the log has no \"Max frequency for clock\" line"
        )),
        Err(_) => Ok(from_log),
    }
}

/// The lowest achieved clock frequency over the clocks in nextpnr's `fmax` section.
pub fn nextpnr_fmax(report: &Value) -> Option<f64> {
    nextpnr_clocks(report)
        .ok()?
        .iter()
        .map(|c| c.fmax_mhz)
        .reduce(f64::min)
}

/// The slowest path in nextpnr's `critical_paths`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CriticalPath {
    /// Total delay.
    pub delay_ns: f64,
    /// The cell the path starts at.
    pub from: String,
    /// The cell the path ends at.
    pub to: String,
    /// The blocks it crosses in order (accelerator blocks by name, e.g. `l2_mvtu`, `argmax`;
    /// wrapper logic by its signal name).
    pub blocks: Vec<String>,
}

/// The slowest of nextpnr's critical paths (`--report`), if it reported any.
pub fn nextpnr_critical_path(report: &Value) -> Option<CriticalPath> {
    let block = |cell: &str| {
        let mut parts = cell.split('.');
        match parts.next() {
            Some("accelerator") => parts.next().unwrap_or("accelerator").to_string(),
            Some(first) => first.split('_').next().unwrap_or(first).to_string(),
            None => cell.to_string(),
        }
    };
    report
        .get("critical_paths")?
        .as_array()?
        .iter()
        .filter_map(|p| {
            let segs = p.get("path")?.as_array()?;
            let cell = |s: &Value| s["to"]["cell"].as_str().map(str::to_string);
            let mut blocks: Vec<String> = Vec::new();
            for s in segs {
                // `$nextpnr...` cells are the router's feed-throughs, not design logic.
                if let Some(b) = cell(s).filter(|c| !c.starts_with('$')).map(|c| block(&c)) {
                    if blocks.last() != Some(&b) {
                        blocks.push(b);
                    }
                }
            }
            Some(CriticalPath {
                delay_ns: segs.iter().filter_map(|s| s["delay"].as_f64()).sum(),
                from: cell(segs.first()?)?,
                to: cell(segs.last()?)?,
                blocks,
            })
        })
        .max_by(|a, b| a.delay_ns.total_cmp(&b.delay_ns))
}

/// The `Device utilisation:` lines of a nextpnr log (`ICESTORM_LC:  6000/ 5280   113%`), which
/// nextpnr prints before it gives up on a design that does not fit.
pub fn log_utilisation(log: &str) -> Vec<Use> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in log.lines() {
        let body = line.trim_start_matches("Info:").trim();
        if body.starts_with("Device utilisation:") {
            in_block = true;
            out.clear();
            continue;
        }
        if !in_block {
            continue;
        }
        let parsed = (|| {
            let (cell, rest) = body.split_once(':')?;
            let (used, rest) = rest.split_once('/')?;
            let available = rest.split_whitespace().next()?;
            Some(Use {
                cell: cell.trim().to_string(),
                used: used.trim().parse().ok()?,
                available: available.parse().ok()?,
            })
        })();
        match parsed {
            Some(u) if !u.cell.contains(' ') => out.push(u),
            // Any other line ends the block once it has begun.
            _ if !out.is_empty() => in_block = false,
            _ => {}
        }
    }
    out
}

/// How yosys mapped one memory (`memory_libmap`'s log lines).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MemoryMapping {
    /// The accelerator block holding it (`l1_mvtu`), or yosys's whole name for it.
    pub block: String,
    /// The RAM cell type it went to (`$__ICE40_RAM4K_`, `$__ECP5_DP16KD_`), or `logic` when
    /// yosys built it from flip-flops and LUTs.
    pub mapped_to: String,
}

/// Every memory (weight, threshold and score ROMs included, which yosys's `proc_rom` turns
/// into memories) and where yosys's `memory_libmap` put it, from a yosys log.
pub fn yosys_memories(log: &str) -> Vec<MemoryMapping> {
    let block = |name: &str| {
        name.split(".\\")
            .nth(1)
            .or_else(|| name.split(".\\").last())
            .map(|b| b.split('.').next().unwrap_or(b).to_string())
            .unwrap_or_else(|| name.to_string())
    };
    log.lines()
        .filter_map(|l| {
            if let Some(rest) = l.strip_prefix("mapping memory ") {
                let (name, cell) = rest.split_once(" via ")?;
                Some(MemoryMapping {
                    block: block(name),
                    mapped_to: cell.trim().to_string(),
                })
            } else {
                let name = l.strip_prefix("using FF mapping for memory ")?;
                Some(MemoryMapping {
                    block: block(name),
                    mapped_to: "logic".into(),
                })
            }
        })
        .collect()
}

/// The first `ERROR:` line of a log.
pub fn first_error(log: &str) -> Option<String> {
    log.lines()
        .find(|l| l.starts_with("ERROR:"))
        .map(|l| l.trim_start_matches("ERROR:").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_without_lut_cells_is_refused() {
        let names = Cells {
            luts: BTreeMap::from([("SB_LUT4".to_string(), 1)]),
            ffs: BTreeMap::new(),
            bram: BTreeMap::new(),
            spram: BTreeMap::new(),
            dsp: BTreeMap::new(),
        };
        let cells = BTreeMap::from([("SB_LUT4".to_string(), 12), ("SB_DFF".to_string(), 3)]);
        assert_eq!(resources_checked(&cells, &names).unwrap()["luts"], 12);
        let renamed = BTreeMap::from([("$lut".to_string(), 12), ("SB_DFF".to_string(), 3)]);
        let e = resources_checked(&renamed, &names).unwrap_err();
        assert!(
            e.contains("no LUT cells (SB_LUT4) among the 2 cell types"),
            "{e}"
        );
    }

    /// The end of the timing report of nextpnr-ice40 0.4 (Debian) on the digits design.
    const LOG_0_4: &str = "\
Info: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 25.64 MHz (PASS at 12.00 MHz)

Info: Max delay <async>                       -> posedge clk$SB_IO_IN_$glb_clk: 3.97 ns
Info: Routing..
Info:  4.0 16.1    Net idle_abort_SB_DFFSR_Q_D[1] budget 26.594999 ns (9,29) -> (19,31)
Info: 3.5 ns logic, 12.5 ns routing

Info: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 28.12 MHz (PASS at 12.00 MHz)

Info: Max delay <async>                       -> posedge clk$SB_IO_IN_$glb_clk: 3.97 ns
Info: Max delay posedge clk$SB_IO_IN_$glb_clk -> <async>                      : 16.08 ns
";

    /// The same from YoWASP's nextpnr-ice40 0.11, with a second clock that misses its
    /// constraint.
    const LOG_0_11: &str = "\
Info:    routing  4.90  11.51 Net led[0]$SB_IO_OUT (12,16) -> (17,0)
Info:                               board_top.v:17.23-17.26
Info: 2.26 ns logic, 9.25 ns routing

Info: Max frequency for clock         'core_clk': 23.41 MHz (FAIL at 24.00 MHz)
Info: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 129.14 MHz (PASS at 12.00 MHz)

Info: Max delay <async>                       -> posedge clk$SB_IO_IN_$glb_clk: 3.97 ns
";

    #[test]
    fn every_clock_is_checked_against_its_own_constraint() {
        let c = log_clocks(LOG_0_4);
        assert_eq!(
            c,
            vec![ClockTiming::new("clk$SB_IO_IN_$glb_clk", 28.12, 12.0)]
        );
        assert!(c[0].met);
        let c = log_clocks(LOG_0_11);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].name.as_str(), c[0].met), ("core_clk", false));
        assert_eq!(
            (c[1].fmax_mhz, c[1].constraint_mhz, c[1].met),
            (129.14, 12.0, true)
        );
        // The report's section, the same in both versions.
        let r = serde_json::json!({"fmax": {
            "core_clk": {"achieved": 23.41, "constraint": 24.0},
            "clk$SB_IO_IN_$glb_clk": {"achieved": 129.14, "constraint": 12.0}}});
        let c = pnr_clocks(&r, LOG_0_11).unwrap();
        assert_eq!(c.iter().filter(|c| c.met).count(), 1);
        // A report without its section falls back to the log ...
        let c = pnr_clocks(&serde_json::json!({}), LOG_0_4).unwrap();
        assert_eq!(c[0].fmax_mhz, 28.12);
        // ... and with neither, the format is unknown: an error, not 0 MHz.
        let e = pnr_clocks(&serde_json::json!({"timing": {}}), "Info: Fmax 28 MHz\n").unwrap_err();
        assert!(e.contains("fmax") && e.contains("Max frequency"), "{e}");
        let e = nextpnr_clocks(&serde_json::json!({"fmax": {}})).unwrap_err();
        assert!(e.contains("empty"), "{e}");
        let e =
            nextpnr_clocks(&serde_json::json!({"fmax": {"c": {"achieved": 20.0}}})).unwrap_err();
        assert!(e.contains("fmax.c") && e.contains("constraint"), "{e}");
        // Report and log that disagree on the clocks are not trusted.
        let r = serde_json::json!({"fmax": {"other": {"achieved": 20.0, "constraint": 12.0}}});
        assert!(pnr_clocks(&r, LOG_0_4).is_err());
    }

    #[test]
    fn nextpnr_reports_parse() {
        let r: Value = serde_json::json!({
            "utilization": {"ICESTORM_LC": {"available": 5280, "used": 1320},
                            "ICESTORM_RAM": {"available": 30, "used": 0}},
            "fmax": {"core_clk": {"achieved": 41.5, "constraint": 12.0},
                     "other": {"achieved": 80.0, "constraint": 12.0}}
        });
        let u = nextpnr_utilisation(&r);
        assert_eq!(u["ICESTORM_LC"].used, 1320);
        assert_eq!(u["ICESTORM_LC"].percent(), 25.0);
        assert_eq!(nextpnr_fmax(&r), Some(41.5));
        let r: Value = serde_json::json!({"critical_paths": [{"from": "a", "to": "b", "path": [
            {"delay": 1.5, "to": {"cell": "accelerator.l2_mvtu.out_data_DFF"}},
            {"delay": 2.0, "to": {"cell": "accelerator.argmax.best_LUT"}},
            {"delay": 0.0, "to": {"cell": "$nextpnr_ICESTORM_LC_1"}},
            {"delay": 0.5, "to": {"cell": "accelerator.argmax.best_FF"}}]}]});
        let c = nextpnr_critical_path(&r).unwrap();
        assert_eq!(c.delay_ns, 4.0);
        assert_eq!(c.blocks, ["l2_mvtu", "argmax"]);
        assert_eq!(c.to, "accelerator.argmax.best_FF");
    }

    #[test]
    fn log_utilisation_finds_the_overflow() {
        let log = "Info: Device utilisation:\nInfo: \t         ICESTORM_LC:  6000/ 5280   113%\n\
                   Info: \t        ICESTORM_RAM:     0/   30     0%\nInfo: \t               SB_IO:     \
                   3/   96     3%\n\nInfo: Placed 0 cells\nERROR: Unable to place cell 'x', no BELs \
                   remaining to implement cell type 'ICESTORM_LC'\n";
        let u = log_utilisation(log);
        assert_eq!(u.len(), 3, "{u:?}");
        assert_eq!(
            (u[0].cell.as_str(), u[0].used, u[0].available),
            ("ICESTORM_LC", 6000, 5280)
        );
        assert!(first_error(log).unwrap().contains("no BELs"));
    }

    #[test]
    fn memory_mappings_are_read_from_the_yosys_log() {
        let log = "mapping memory board_top.$flatten\\accelerator.\\l1_mvtu.$auto$proc_rom.cc:150:do_switch$621 via $__ICE40_RAM4K_\n\
                   using FF mapping for memory board_top.$flatten\\accelerator.\\l2_mvtu.$auto$proc_rom.cc:150:do_switch$609\n";
        let m = yosys_memories(log);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].block, "l1_mvtu");
        assert_eq!(m[0].mapped_to, "$__ICE40_RAM4K_");
        assert_eq!(m[1].block, "l2_mvtu");
        assert_eq!(m[1].mapped_to, "logic");
    }

    #[test]
    fn cells_count_by_prefix_and_weight() {
        let cells = BTreeMap::from([
            ("SB_LUT4".to_string(), 10),
            ("SB_DFF".to_string(), 3),
            ("SB_DFFE".to_string(), 4),
            ("CCU2C".to_string(), 2),
        ]);
        let p = |v: &[(&str, u64)]| v.iter().map(|(k, w)| (k.to_string(), *w)).collect();
        assert_eq!(count(&cells, &p(&[("SB_DFF*", 1)])), 7);
        assert_eq!(count(&cells, &p(&[("SB_LUT4", 1), ("CCU2C", 2)])), 14);
        let text =
            "   Number of cells:                 17\n     SB_DFF      3\n     SB_LUT4    10\n";
        assert_eq!(yosys_cells_text(text)["SB_LUT4"], 10);
        let newer = "     2439 cells\n       57   CCU2C\n      900   LUT4\n";
        assert_eq!(yosys_cells_text(newer)["LUT4"], 900);
        assert_eq!(yosys_cells_text(newer)["CCU2C"], 57);
    }
}
