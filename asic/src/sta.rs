//! Static timing and power with OpenSTA (`sta`): the clock on `clk`, inputs and outputs
//! timed against it with no external delay (so paths through the ports count like register
//! to register ones), no wire load before layout.
//!
//! Debian's OpenSTA (2019) reads no VCD or SAIF, and its `set_power_activity -pins` is broken,
//! so power from real activity is assembled here: `report_power -instances` at a global
//! activity of 0 and of 1 transition per clock gives each instance's power as a line
//! `p0 + a * (p1 - p0)` in its activity `a` (OpenSTA's model is linear in it; `p0` holds the
//! leakage and a flip-flop's clock power), and the gate-level simulation gives every
//! instance's `a`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{files, Error};

/// Timing against the clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// The clock period asked for, ns.
    pub period_ns: f64,
    /// Worst setup slack, ns.
    pub setup_slack_ns: f64,
    /// Worst hold slack, ns.
    pub hold_slack_ns: f64,
    /// The critical path: its start and end points.
    pub from: String,
    /// See `from`.
    pub to: String,
}

impl Timing {
    /// The shortest period that meets setup, ns (period minus slack).
    pub fn min_period_ns(&self) -> f64 {
        self.period_ns - self.setup_slack_ns
    }

    /// The highest clock that meets setup, MHz.
    pub fn fmax_mhz(&self) -> f64 {
        1000.0 / self.min_period_ns()
    }

    /// Setup and hold both met.
    pub fn met(&self) -> bool {
        self.setup_slack_ns >= 0.0 && self.hold_slack_ns >= 0.0
    }
}

/// The commands that load `netlist` and constrain its clock.
fn preamble(liberty: &Path, netlist: &Path, top: &str, period_ns: f64) -> String {
    format!(
        "read_liberty {lib}\nread_verilog {net}\nlink_design {top}\n\
         create_clock -name clk -period {period_ns} [get_ports clk]\n\
         set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports clk]]\n\
         set_output_delay 0 -clock clk [all_outputs]\n",
        lib = liberty.display(),
        net = netlist.display(),
    )
}

/// Runs the timing checks in `dir`.
pub fn timing(
    sta: &Path,
    dir: &Path,
    liberty: &Path,
    netlist: &Path,
    top: &str,
    period_ns: f64,
) -> Result<(Timing, f64), Error> {
    let script = format!(
        "{}report_checks -path_delay max -digits 3\nreport_checks -path_delay min -digits 3\nexit\n",
        preamble(liberty, netlist, top, period_ns)
    );
    let seconds = run_script(sta, dir, files::STA_TCL, files::STA_LOG, &script, "timing")?;
    let text = crate::read(&dir.join(files::STA_LOG))?;
    let t = parse_timing(&text, period_ns).ok_or_else(|| Error::Parse {
        path: dir.join(files::STA_LOG),
        message: "no setup and hold paths in OpenSTA's report".into(),
    })?;
    Ok((t, seconds))
}

/// Instance name to its power (W) at activity 0 and at activity 1.
pub type InstancePower = BTreeMap<String, (f64, f64)>;

/// Each instance's power (W) at activity 0 and at activity 1 (transitions per clock period),
/// and the wall time.
pub fn instance_power(
    sta: &Path,
    dir: &Path,
    liberty: &Path,
    netlist: &Path,
    top: &str,
    period_ns: f64,
) -> Result<(InstancePower, f64), Error> {
    let mut at = Vec::new();
    let mut seconds = 0.0;
    for (i, a) in ["0", "1"].into_iter().enumerate() {
        let script = format!(
            "{}set_power_activity -global -activity {a} -duty 0.5\n\
             set_power_activity -input -activity {a} -duty 0.5\n\
             report_power -digits 9 -instances [get_cells *]\nexit\n",
            preamble(liberty, netlist, top, period_ns)
        );
        let tcl = format!("power{i}.tcl");
        let log = format!("power{i}.log");
        seconds += run_script(sta, dir, &tcl, &log, &script, "power")?;
        let report = dir.join(format!("power{i}.log"));
        let p = parse_instance_power(&crate::read(&report)?);
        if p.is_empty() {
            return Err(Error::Parse {
                path: report,
                message: "no instance power in OpenSTA's report".into(),
            });
        }
        at.push(p);
    }
    let one = at.pop().unwrap_or_default();
    let zero = at.pop().unwrap_or_default();
    let both = zero
        .into_iter()
        .map(|(k, p0)| {
            let p1 = one.get(&k).copied().unwrap_or(p0);
            (k, (p0, p1))
        })
        .collect();
    Ok((both, seconds))
}

/// Runs `sta` on `script` (written to `tcl`), its report going to `log`; the wall time.
fn run_script(
    sta: &Path,
    dir: &Path,
    tcl: &str,
    log: &str,
    script: &str,
    step: &str,
) -> Result<f64, Error> {
    crate::write(&dir.join(tcl), script)?;
    let ran = tools::Run::new(step, sta, log)
        .args(["-no_init", "-no_splash", "-exit", tcl])
        .current_dir(dir)
        .default_timeout(tools::limits::PNR)
        .run()?;
    let text = ran.text();
    // OpenSTA reports Tcl errors and goes on.
    if let Some(line) = text.lines().find(|l| l.starts_with("Error:")) {
        return Err(Error::Parse {
            path: ran.log,
            message: format!("OpenSTA: {line}"),
        });
    }
    Ok(ran.seconds)
}

/// The worst setup and hold slack of OpenSTA's `report_checks` max then min report.
pub fn parse_timing(text: &str, period_ns: f64) -> Option<Timing> {
    let mut setup = None;
    let mut hold = None;
    let mut from = String::new();
    let mut to = String::new();
    let mut start = String::new();
    let mut end = String::new();
    let mut kind = "";
    for line in text.lines() {
        let l = line.trim();
        if let Some(s) = l.strip_prefix("Startpoint:") {
            start = s.trim().to_string();
        } else if let Some(e) = l.strip_prefix("Endpoint:") {
            end = e.trim().to_string();
        } else if let Some(t) = l.strip_prefix("Path Type:") {
            kind = if t.trim() == "max" { "max" } else { "min" };
        } else if l.ends_with("slack (MET)") || l.ends_with("slack (VIOLATED)") {
            let v: f64 = l.split_whitespace().next()?.parse().ok()?;
            if kind == "max" && setup.is_none() {
                setup = Some(v);
                from = start.clone();
                to = end.clone();
            } else if kind == "min" && hold.is_none() {
                hold = Some(v);
            }
        }
    }
    Some(Timing {
        period_ns,
        setup_slack_ns: setup?,
        hold_slack_ns: hold?,
        from,
        to,
    })
}

/// Instance name to total power (W) from `report_power -instances`.
pub fn parse_instance_power(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 5 {
                return None;
            }
            let nums: Option<Vec<f64>> = f[..4].iter().map(|x| x.parse().ok()).collect();
            Some((f[4].to_string(), nums?[3]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Startpoint: g3883 (rising edge-triggered flip-flop clocked by clk)
Endpoint: g4279 (rising edge-triggered flip-flop clocked by clk)
Path Group: clk
Path Type: max
   2.034   data arrival time
-----------------------------------------------------------
           -2.034   data arrival time
-----------------------------------------------------------
            7.784   slack (MET)

Startpoint: rst (input port clocked by clk)
Endpoint: g3721 (rising edge-triggered flip-flop clocked by clk)
Path Type: min
            0.041   slack (MET)
";

    #[test]
    fn slacks_and_the_critical_path() {
        let t = parse_timing(REPORT, 10.0).unwrap();
        assert_eq!(t.setup_slack_ns, 7.784);
        assert_eq!(t.hold_slack_ns, 0.041);
        assert!(t.from.starts_with("g3883") && t.to.starts_with("g4279"));
        assert!((t.fmax_mhz() - 1000.0 / 2.216).abs() < 1e-9);
        assert!(t.met());
        let violated = REPORT.replace("7.784   slack (MET)", "-1.5   slack (VIOLATED)");
        let t = parse_timing(&violated, 10.0).unwrap();
        assert!(!t.met());
        assert!((t.min_period_ns() - 11.5).abs() < 1e-12);
        assert!(parse_timing("nothing", 10.0).is_none());
    }

    #[test]
    fn instance_power_lines() {
        let text = "     Internal    Switching      Leakage        Total\n \
                    2.999e-05 2.229e-06 1.607e-10 3.222e-05 g4279\n \
                    8.462e-06 7.151e-07 8.700e-11 9.177e-06 g402\n";
        let p = parse_instance_power(text);
        assert_eq!(p.len(), 2);
        assert_eq!(p["g402"], 9.177e-06);
    }
}
