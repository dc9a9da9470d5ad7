//! Synthesis to standard cells: Yosys flattens the generated Verilog, maps its flip-flops with
//! `dfflibmap` and its logic with ABC against the liberty file, with ABC's buffering and gate
//! sizing for the clock period (without them a reset or select net drives hundreds of pins
//! from one small inverter and the critical path is one 36 ns edge). Instances get short names
//! (`g<n>`) so that OpenSTA, the VCD and the layout tools name them alike.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::liberty::Library;
use crate::{files, Error};

/// The synthesised netlist and what it holds.
#[derive(Clone, Debug)]
pub struct Synthesis {
    /// The gate-level Verilog.
    pub netlist: PathBuf,
    /// Cell count by library cell.
    pub cells_by_kind: BTreeMap<String, u64>,
    /// Instance name to library cell.
    pub instances: BTreeMap<String, String>,
    /// Wall time (of the run that wrote the netlist, when it was reused).
    pub seconds: f64,
    /// The netlist of an earlier run with the same script, sources and Yosys was reused.
    pub reused: bool,
}

impl Synthesis {
    /// All cells.
    pub fn cells(&self) -> u64 {
        self.cells_by_kind.values().sum()
    }

    /// Total cell area, and the part in flip-flops and latches, in the library's unit.
    pub fn area(&self, lib: &Library) -> (f64, f64) {
        let mut all = 0.0;
        let mut state = 0.0;
        for (kind, n) in &self.cells_by_kind {
            let c = lib.get(kind).cloned().unwrap_or_default();
            all += c.area * *n as f64;
            if c.sequential {
                state += c.area * *n as f64;
            }
        }
        (all, state)
    }
}

/// The Yosys script that maps `sources` (top `top`) to the cells of `liberty` for a clock of
/// `period_ps`, writing the netlist and statistics into the current directory.
pub fn script(sources: &[PathBuf], top: &str, liberty: &Path, period_ps: u64) -> String {
    let lib = liberty.display();
    let mut s = String::new();
    for f in sources {
        s.push_str(&format!("read_verilog -sv {}\n", f.display()));
    }
    // ABC: the default liberty flow, then buffering and up/down-sizing for the period.
    let abc = format!(
        "+strash;&get,-n;&fraig,-x;&put;scorr;dc2;dretime;strash;&get,-n;&dch,-f;\
         &nf,-D,{period_ps};&put;buffer,-p;upsize,-D,{period_ps};dnsize,-D,{period_ps};stime,-p"
    );
    s.push_str(&format!(
        "synth -flatten -top {top}\n\
         dfflibmap -liberty {lib}\n\
         opt\n\
         abc -D {period_ps} -liberty {lib} -script {abc}\n\
         setundef -zero\n\
         splitnets\n\
         opt_clean -purge\n\
         insbuf -buf BUFX2 A Y\n\
         opt_clean -purge\n\
         rename -hide c:*\n\
         rename -enumerate -pattern g% c:*\n\
         tee -o {stat} stat -liberty {lib}\n\
         tee -q -o {stat_json} stat -json\n\
         write_verilog -noattr -noexpr -nohex -nodec {netlist}\n",
        stat = files::STAT,
        stat_json = files::STAT_JSON,
        netlist = files::NETLIST,
    ));
    s
}

/// What a synthesis run depends on: the script, the sources' contents and Yosys's version.
fn inputs_key(
    yosys: &Path,
    dir: &Path,
    script: &str,
    sources: &[PathBuf],
) -> Result<String, Error> {
    let mut key = testbenches::Key::new();
    key.add(b"asic-synth-1")
        .add(tools::version(yosys, "-V").unwrap_or_default().as_bytes())
        .add(script.as_bytes());
    for f in sources {
        let path = dir.join(f);
        key.add(f.display().to_string().as_bytes())
            .add(&std::fs::read(&path).map_err(|e| Error::Io {
                path: path.clone(),
                message: e.to_string(),
            })?);
    }
    Ok(key.hex())
}

/// Runs synthesis in `dir` (sources named relative to it or absolute), or reuses the netlist
/// an earlier run left there from the same script, sources and Yosys (recorded in
/// [`files::SYNTH_KEY`] with that run's time), which saves the hour a large design takes
/// when only a later step is rerun. `progress` gets Yosys's current step every minute.
#[allow(clippy::too_many_arguments)]
pub fn run(
    yosys: &Path,
    dir: &Path,
    sources: &[PathBuf],
    top: &str,
    liberty: &Path,
    period_ps: u64,
    timeout: Option<std::time::Duration>,
    progress: &mut dyn FnMut(&str),
) -> Result<Synthesis, Error> {
    let ys = dir.join(files::SYNTH_YS);
    let text = script(sources, top, liberty, period_ps);
    let key = inputs_key(yosys, dir, &text, sources)?;
    let key_path = dir.join(files::SYNTH_KEY);
    let netlist = dir.join(files::NETLIST);
    let stat_path = dir.join(files::STAT_JSON);
    let earlier = std::fs::read_to_string(&key_path)
        .ok()
        .and_then(|k| {
            let (k, secs) = k.trim().split_once(' ')?;
            (k == key).then(|| secs.parse::<f64>().ok())?
        })
        .filter(|_| netlist.is_file() && stat_path.is_file());
    let (seconds, reused) = match earlier {
        Some(secs) => (secs, true),
        None => {
            let _ = std::fs::remove_file(&key_path);
            crate::write(&ys, &text)?;
            // Not quiet: the log's last line is the step Yosys is in, for the progress line.
            let ran = tools::Run::new("synthesis", yosys, files::SYNTH_LOG)
                .args(["-s", files::SYNTH_YS])
                .current_dir(dir)
                .default_timeout(tools::limits::SYNTH)
                .timeout_opt(timeout)
                .run_with_progress(progress)?;
            crate::write(&key_path, &format!("{key} {}\n", ran.seconds))?;
            (ran.seconds, false)
        }
    };
    let stat: serde_json::Value = crate::read_json(&stat_path)?;
    let cells_by_kind: BTreeMap<String, u64> = stat["design"]["num_cells_by_type"]
        .as_object()
        .ok_or_else(|| Error::Parse {
            path: stat_path.clone(),
            message: "no design.num_cells_by_type".into(),
        })?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect();
    let instances = instances(&crate::read(&netlist)?);
    Ok(Synthesis {
        netlist,
        cells_by_kind,
        instances,
        seconds,
        reused,
    })
}

/// Instance name to cell name, from a netlist Yosys wrote (`  CELL NAME (` lines).
pub fn instances(netlist: &str) -> BTreeMap<String, String> {
    netlist
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("  ")?.strip_suffix(" (")?;
            let (cell, name) = l.split_once(' ')?;
            let plain = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            (plain(cell) && plain(name) && cell != "module").then(|| (name.into(), cell.into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_read_from_the_netlist() {
        let v = "module top(a, y);\n  input a;\n  MUX2X1 g402 (\n    .A(a),\n    .Y(y)\n  );\n  \
                 DFFPOSX1 g7 (\n    .CLK(clk)\n  );\nendmodule\n";
        let m = instances(v);
        assert_eq!(m.len(), 2);
        assert_eq!(m["g402"], "MUX2X1");
        assert_eq!(m["g7"], "DFFPOSX1");
    }

    #[test]
    fn the_script_maps_with_the_liberty_and_the_period() {
        let s = script(
            &[PathBuf::from("a.v")],
            "flipchip_top",
            Path::new("/l/x.lib"),
            10_000,
        );
        assert!(s.contains("read_verilog -sv a.v"));
        assert!(s.contains("synth -flatten -top flipchip_top"));
        assert!(s.contains("dfflibmap -liberty /l/x.lib"));
        assert!(s.contains("&nf,-D,10000"));
    }
}
