//! Layout with qflow's back end: GrayWolf placement, qrouter routing, post-route timing
//! (vesta on the routed netlist with its extracted delays), Magic for DRC and GDS, netgen for
//! LVS. qflow synthesises the same Verilog again with its own Yosys script (its placement
//! reads that run's BLIF), so the laid-out netlist is qflow's, not `asic_netlist.v`; the
//! cells are the same library's.
//!
//! qflow stops its own flow at the first failed check (a DRC error skips LVS and GDS), so the
//! steps run one by one here and every check is reported, passed or not.

use std::path::{Path, PathBuf};

use crate::Error;

/// The layout's folder inside the ASIC directory.
pub const LAYOUT_DIR: &str = "layout";

/// What the layout gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    /// Die width and height, um.
    pub die_um: Option<(f64, f64)>,
    /// Post-route maximum clock, MHz (vesta).
    pub fmax_mhz: Option<f64>,
    /// Magic's DRC error count.
    pub drc_errors: Option<u64>,
    /// netgen's verdict: the layout's netlist matches the synthesised one.
    pub lvs_match: Option<bool>,
    /// netgen's summary lines.
    pub lvs_summary: Vec<String>,
    /// The GDS, if written.
    pub gds: Option<PathBuf>,
    /// Seconds per step.
    pub step_seconds: Vec<(String, f64)>,
    /// Steps that failed, with their log.
    pub failed: Vec<String>,
}

/// The qflow steps, in order, and whether a failure stops the ones after it.
const STEPS: &[(&str, bool)] = &[
    ("synthesize", true),
    ("place", true),
    ("route", true),
    ("backanno", false),
    ("migrate", true),
    ("drc", false),
    ("lvs", false),
    ("gdsii", false),
];

/// Lays out `sources` (top `top`) with library `tech` in `dir/layout/`; `progress` gets a
/// line per step.
pub fn run(
    qflow: &Path,
    dir: &Path,
    tech: &str,
    sources: &[PathBuf],
    top: &str,
    timeout: Option<std::time::Duration>,
    progress: &mut dyn FnMut(&str),
) -> Result<Layout, Error> {
    let project = dir.join(LAYOUT_DIR);
    for sub in ["source", "synthesis", "layout", "log"] {
        let d = project.join(sub);
        std::fs::create_dir_all(&d).map_err(|e| Error::Io {
            path: d,
            message: e.to_string(),
        })?;
    }
    // qflow reads one source file named after the top module.
    let mut text = String::new();
    for f in sources {
        let p = if f.is_absolute() {
            f.clone()
        } else {
            dir.join(f)
        };
        text.push_str(&crate::read(&p)?);
        text.push('\n');
    }
    crate::write(&project.join("source").join(format!("{top}.v")), &text)?;
    let mut out = Layout::default();
    for (step, fatal) in STEPS {
        progress(&format!("asic: layout: {step} (qflow) ..."));
        let ran = tools::Run::new(
            &format!("layout {step}"),
            qflow,
            format!("qflow_{step}.log"),
        )
        .args(["-T", tech, step, top])
        .current_dir(&project)
        .default_timeout(tools::limits::PNR)
        .timeout_opt(timeout)
        .allow_failure()
        .run()?;
        out.step_seconds.push((step.to_string(), ran.seconds));
        // qflow's scripts say "error condition" where they stop, even when exiting 0.
        let log = ran.text();
        let failed =
            !ran.success || log.contains("error condition") || log.contains("Premature exit");
        if failed {
            out.failed
                .push(format!("{step} (see {})", ran.log.display()));
            if *fatal {
                return Err(Error::Parse {
                    path: ran.log.clone(),
                    message: format!(
                        "qflow {step} failed; last lines:\n{}",
                        tools::tail(&log, 20)
                    ),
                });
            }
        }
    }
    let layout = project.join("layout");
    out.die_um = std::fs::read_to_string(layout.join(format!("{top}.def")))
        .ok()
        .and_then(|d| die_area(&d));
    out.fmax_mhz = std::fs::read_to_string(project.join("log").join("post_sta.log"))
        .ok()
        .and_then(|t| vesta_fmax(&t));
    out.drc_errors = std::fs::read_to_string(project.join("log").join("drc.log"))
        .ok()
        .and_then(|t| drc_count(&t));
    if let Ok(t) = std::fs::read_to_string(project.join("log").join("lvs.log")) {
        let (m, lines) = lvs_verdict(&t);
        out.lvs_match = m;
        out.lvs_summary = lines;
    }
    let gds = layout.join(format!("{top}.gds"));
    out.gds = gds.is_file().then_some(gds);
    Ok(out)
}

/// Die width and height (um) from a DEF's `DIEAREA` and `UNITS DISTANCE MICRONS`.
pub fn die_area(def: &str) -> Option<(f64, f64)> {
    let units: f64 = def
        .lines()
        .find_map(|l| l.trim().strip_prefix("UNITS DISTANCE MICRONS"))
        .and_then(|r| r.trim().trim_end_matches(';').trim().parse().ok())
        .unwrap_or(1.0);
    let line = def
        .lines()
        .find(|l| l.trim_start().starts_with("DIEAREA"))?;
    let nums: Vec<f64> = line
        .split(|c: char| !(c.is_ascii_digit() || c == '-' || c == '.'))
        .filter_map(|t| t.parse().ok())
        .collect();
    if nums.len() < 4 {
        return None;
    }
    Some(((nums[2] - nums[0]) / units, (nums[3] - nums[1]) / units))
}

/// vesta's "Computed maximum clock frequency (zero margin) = X MHz".
pub fn vesta_fmax(text: &str) -> Option<f64> {
    text.lines()
        .rev()
        .filter(|l| l.contains("maximum clock frequency"))
        .find_map(|l| l.split('=').nth(1)?.split_whitespace().next()?.parse().ok())
}

/// Magic's `drc = N` (the last one).
pub fn drc_count(text: &str) -> Option<u64> {
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("drc =")?.trim().parse().ok())
}

/// netgen's verdict and its summary lines.
pub fn lvs_verdict(text: &str) -> (Option<bool>, Vec<String>) {
    let lines: Vec<String> = text
        .lines()
        .filter(|l| {
            l.contains("Netlists match")
                || l.contains("Netlists do not match")
                || l.contains("Total errors")
                || l.contains("LVS failure")
        })
        .map(|l| l.trim().to_string())
        .collect();
    let verdict = if lines
        .iter()
        .any(|l| l.contains("do not match") || l.contains("LVS failure"))
    {
        Some(false)
    } else if lines.iter().any(|l| l.contains("Netlists match")) {
        Some(true)
    } else {
        None
    };
    (verdict, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn die_area_in_microns() {
        let def = "VERSION 5.6 ;\nUNITS DISTANCE MICRONS 100 ;\nDIEAREA ( -240 -200 ) ( 60000 45000 ) ;\n";
        assert_eq!(die_area(def), Some((602.4, 452.0)));
        assert_eq!(die_area("nothing"), None);
    }

    #[test]
    fn drc_vesta_and_lvs_reports() {
        assert_eq!(drc_count("Running magic\ndrc = 8\n"), Some(8));
        assert_eq!(drc_count("drc = 3\ndrc = 0\n"), Some(0));
        assert_eq!(
            vesta_fmax("Computed maximum clock frequency (zero margin) = 223.135 MHz\n"),
            Some(223.135)
        );
        let (m, lines) = lvs_verdict("Circuit 1 contains 10 devices\nNetlists match uniquely.\n");
        assert_eq!(m, Some(true));
        assert_eq!(lines.len(), 1);
        let (m, _) = lvs_verdict("Netlists do not match.\nNetlists match uniquely.\n");
        assert_eq!(m, Some(false));
        assert_eq!(lvs_verdict("").0, None);
    }
}
