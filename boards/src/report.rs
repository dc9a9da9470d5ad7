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

/// The lowest achieved clock frequency over the clocks in nextpnr's `fmax` section.
pub fn nextpnr_fmax(report: &Value) -> Option<f64> {
    report
        .get("fmax")?
        .as_object()?
        .values()
        .filter_map(|c| c.get("achieved").and_then(Value::as_f64))
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
