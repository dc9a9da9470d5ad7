//! Layout with qflow's back end: GrayWolf placement, qrouter routing, post-route timing
//! (vesta on the routed netlist with its extracted delays), Magic for DRC and GDS, netgen for
//! LVS. qflow synthesises the same Verilog again with its own Yosys script (its placement
//! reads that run's BLIF), so the laid-out netlist is qflow's, not `asic_netlist.v`; the
//! cells are the same library's.
//!
//! qflow stops its own flow at the first failed check (a DRC error skips LVS and GDS), so the
//! steps run one by one here and every check is reported, passed or not.
//!
//! Runtime: GrayWolf's annealing (TimberWolfSC) makes about 155 temperature steps of
//! 25 (cells/500)^(1/3) moves per cell each, pointer-chasing through its bins. With qflow's
//! defaults a 5,300-cell design took about 6.5 s of CPU per step from the start, and on the
//! 2-core machine shared with other jobs (load 6 to 10) a 5,600-cell placement was still
//! annealing (step 143) after 63 minutes: nothing was wrong in the project's setup, the
//! annealing is that slow when it gets a third of a core. The project's parameter file
//! therefore asks TimberWolfSC for [`GRAYWOLF_FAST`] times fewer moves per step (its `fast`
//! parameter; same schedule and cost function): that design then placed in 3.3 minutes of
//! CPU, and the 64-32-10 digits design (6,400 cells) in 11.5 minutes of wall time, routed
//! with no failed nets. The route skips qrouter's clean-up stage (see [`route_script`]).
//!
//! Sign-off: Magic's DRC found five errors on that design, all minimum-area shapes (see
//! [`crate::min_area`], which patches them before the DRC step); netgen found the layout's
//! netlist equal to qflow's synthesised one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::{Error, Tech};

/// The layout's folder inside the ASIC directory.
pub const LAYOUT_DIR: &str = "layout";

/// TimberWolfSC's `fast` parameter: it divides the moves per cell per temperature step.
pub const GRAYWOLF_FAST: u32 = 4;

/// What the layout gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    /// Die width and height, um.
    pub die_um: Option<(f64, f64)>,
    /// Cells placed (logic, buffers and fill, from the routed DEF's COMPONENTS).
    pub placed_cells: Option<u64>,
    /// Post-route maximum clock, MHz (vesta).
    pub fmax_mhz: Option<f64>,
    /// Nets qrouter could not route.
    pub failed_routes: Option<u64>,
    /// Magic's DRC error count on the layout as routed, before the minimum-area patches.
    pub drc_errors_routed: Option<u64>,
    /// Minimum-area patches painted (see [`crate::min_area`]).
    pub min_area_patches: Option<u64>,
    /// Magic's DRC error count.
    pub drc_errors: Option<u64>,
    /// netgen's verdict: the layout's netlist matches the synthesised one.
    pub lvs_match: Option<bool>,
    /// The mismatches qflow's count_lvs.py counts (nets, devices, pins, properties).
    pub lvs_errors: Option<u64>,
    /// netgen's summary lines.
    pub lvs_summary: Vec<String>,
    /// The GDS, if written.
    pub gds: Option<PathBuf>,
    /// Cells the GDS references without their layout (the tech folder has no cell GDS).
    pub gds_missing_cells: Vec<String>,
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
/// line per step as it starts and ends, and one a minute while a step runs.
pub fn run(
    qflow: &Path,
    dir: &Path,
    tech: &Tech,
    sources: &[PathBuf],
    top: &str,
    timeout: Option<std::time::Duration>,
    progress: &mut dyn FnMut(&str),
) -> Result<Layout, Error> {
    let project = dir.join(LAYOUT_DIR);
    // Files of an earlier run would let qflow's scripts skip or misjudge steps (they compare
    // modification times).
    if project.exists() {
        std::fs::remove_dir_all(&project).map_err(|e| Error::Io {
            path: project.clone(),
            message: e.to_string(),
        })?;
    }
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
    // qflow copies the tech's parameter file only when the project has none.
    let par = project.join("layout").join(format!("{top}.par"));
    let tech_par = tech.dir.join(format!("{}.par", tech.name));
    crate::write(&par, &placement_parameters(&crate::read(&tech_par)?))?;
    // qflow appends `<top>.cfg2`, when present, to qrouter's script in place of its own route
    // command.
    crate::write(
        &project.join("layout").join(format!("{top}.cfg2")),
        &route_script(top),
    )?;
    let mut out = Layout::default();
    let start = Instant::now();
    let graywolf_out = project.join("layout").join(format!("{top}.out"));
    for (step, fatal) in STEPS {
        progress(&format!("asic: layout: {step} (qflow) ..."));
        let ran = tools::Run::new(
            &format!("layout {step}"),
            qflow,
            format!("qflow_{step}.log"),
        )
        .args(["-T", &tech.name, step, top])
        .current_dir(&project)
        .default_timeout(tools::limits::PNR)
        .timeout_opt(timeout)
        .allow_failure()
        .run_with_progress(&mut |line| {
            let mut line = format!("asic: {line}");
            if *step == "place" {
                if let Some(i) = std::fs::read_to_string(&graywolf_out)
                    .ok()
                    .and_then(|t| annealing_step(&t))
                {
                    line.push_str(&format!(" (GrayWolf annealing step {i} of about 155)"));
                }
            }
            progress(&line)
        })?;
        out.step_seconds.push((step.to_string(), ran.seconds));
        // qflow's scripts say "error condition" where they stop, even when exiting 0.
        let log = ran.text();
        let failed =
            !ran.success || log.contains("error condition") || log.contains("Premature exit");
        progress(&format!(
            "asic: layout: {step} {} in {:.1} s ({:.1} s so far)",
            if failed { "FAILED" } else { "done" },
            ran.seconds,
            start.elapsed().as_secs_f64()
        ));
        if *step == "migrate" && !failed {
            progress("asic: layout: minimum-area patches (magic) ...");
            let (before, patched, seconds) =
                patch_min_area(&project.join("layout"), tech, top, timeout)?;
            out.drc_errors_routed = Some(before);
            out.min_area_patches = Some(patched);
            out.step_seconds.push(("min_area".into(), seconds));
            progress(&format!(
                "asic: layout: {before} DRC errors as routed, {patched} of them minimum-area \
                 shapes patched, in {seconds:.1} s"
            ));
        }
        if failed {
            out.failed
                .push(format!("{step} (see {})", ran.log.display()));
            if *fatal {
                return Err(Error::Parse {
                    path: ran.log.clone(),
                    message: format!(
                        "qflow {step} failed after {:.1} s; last lines:\n{}",
                        ran.seconds,
                        tools::tail(&log, 20)
                    ),
                });
            }
        }
    }
    let layout = project.join("layout");
    let logs = project.join("log");
    let read = |p: PathBuf| std::fs::read_to_string(p).ok();
    if let Some(def) = read(layout.join(format!("{top}_route.def")))
        .or_else(|| read(layout.join(format!("{top}.def"))))
    {
        out.die_um = die_area(&def);
        out.placed_cells = components(&def);
    }
    out.failed_routes = read(logs.join("route.log")).and_then(|t| failed_routes(&t));
    out.fmax_mhz = read(logs.join("post_sta.log")).and_then(|t| vesta_fmax(&t));
    out.drc_errors = read(logs.join("drc.log")).and_then(|t| drc_count(&t));
    if let Some(t) = read(logs.join("lvs.log")) {
        let (m, lines) = lvs_verdict(&t);
        out.lvs_errors = lvs_errors(&t);
        // count_lvs.py's total is qflow's criterion; netgen's own line when it is missing.
        out.lvs_match = out.lvs_errors.map(|n| n == 0).or(m);
        out.lvs_summary = lines;
    }
    let gds = layout.join(format!("{top}.gds"));
    out.gds = gds.is_file().then_some(gds);
    if out.gds.is_some() {
        out.gds_missing_cells = read(logs.join("gdsii.log"))
            .map(|t| unavailable_cells(&t))
            .unwrap_or_default();
    }
    Ok(out)
}

/// Runs [`crate::min_area`]'s script in `layout` (the folder with the `.mag` and Magic's
/// startup file): DRC errors before, patches, seconds.
fn patch_min_area(
    layout: &Path,
    tech: &Tech,
    top: &str,
    timeout: Option<std::time::Duration>,
) -> Result<(u64, u64, f64), Error> {
    let magic = tools::require(&["magic"], crate::INSTALL_ASIC)?;
    crate::write(
        &layout.join(crate::min_area::SCRIPT),
        &crate::min_area::script(&tech.lef, top),
    )?;
    let ran = tools::Run::new("layout minimum-area patches", &magic, "min_area_patch.log")
        .args(["-dnull", "-noconsole", crate::min_area::SCRIPT])
        .current_dir(layout)
        .default_timeout(tools::limits::PNR)
        .timeout_opt(timeout)
        .run()?;
    let (before, patched) = crate::min_area::report(&ran.text(), &ran.log)?;
    Ok((before, patched, ran.seconds))
}

/// The cells Magic could not find while writing the GDS (`Cell X is unavailable`), sorted.
pub fn unavailable_cells(log: &str) -> Vec<String> {
    let mut cells: Vec<String> = log
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("Cell ")?
                .strip_suffix(" is unavailable.  It could not be expanded.")
                .map(str::to_string)
        })
        .collect();
    cells.sort();
    cells.dedup();
    cells
}

/// The tech's GrayWolf parameter file with [`GRAYWOLF_FAST`] added.
pub fn placement_parameters(tech_par: &str) -> String {
    let mut s = tech_par.trim_end().to_string();
    s.push_str(&format!(
        "\n\n# flipchip: {GRAYWOLF_FAST} times fewer annealing moves per cell and step\n\
         TWSC*fast : {GRAYWOLF_FAST}\n"
    ));
    s
}

/// qrouter's routing command: qflow's own (`qrouter::standard_route`: stage 1, then stage 2
/// rip-up and reroute until no net fails) without the two clean-up passes of stage 3, which
/// reroute every net again to shorten it and take twice as long as the rest on the
/// accelerators (a 5,300-cell design: about 9 minutes to route, 18 more to clean up on the
/// loaded 2-core machine).
pub fn route_script(top: &str) -> String {
    format!(
        "# flipchip: qflow's standard route without the clean-up stage (stage 3)\n\
         qrouter::standard_route {top}_route.def false true\n\
         quit\n"
    )
}

/// The last annealing step TimberWolfSC reported in its `.out` file (`" 67: 3.22e+03 ..."`).
pub fn annealing_step(out: &str) -> Option<u32> {
    out.lines().rev().find_map(|l| {
        let (n, rest) = l.trim_start().split_once(':')?;
        let first = rest.split_whitespace().next()?;
        (first.parse::<f64>().is_ok()).then(|| n.parse().ok())?
    })
}

/// The number of components a DEF places.
pub fn components(def: &str) -> Option<u64> {
    def.lines()
        .find_map(|l| l.trim().strip_prefix("COMPONENTS "))
        .and_then(|r| r.trim().trim_end_matches(';').trim().parse().ok())
}

/// qrouter's count of nets it failed to route, from its last summary (`No failed routes!`
/// or `Failed net routes: N`, each stage printing one).
pub fn failed_routes(text: &str) -> Option<u64> {
    text.lines().rev().find_map(|l| {
        if l.contains("No failed routes") {
            return Some(0);
        }
        let (_, n) = l.split_once("Failed net routes:")?;
        n.trim().parse().ok()
    })
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

/// count_lvs.py's `Total errors = N`.
pub fn lvs_errors(text: &str) -> Option<u64> {
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("Total errors =")?.trim().parse().ok())
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
        assert_eq!(
            lvs_errors("LVS reports:\n    unmatched nets = 1\n\nTotal errors = 1\n"),
            Some(1)
        );
        assert_eq!(lvs_errors("Total errors = 0\n"), Some(0));
        assert_eq!(lvs_errors("nothing"), None);
    }

    #[test]
    fn router_and_placer_reports() {
        let route = "Failed net routes: 94\n*** Running stage2\nFinal: No failed routes!\n";
        assert_eq!(failed_routes(route), Some(0));
        assert_eq!(failed_routes("Final: Failed net routes: 3\n"), Some(3));
        assert_eq!(failed_routes("Nets remaining: 3\n"), None);
        let out =
            "[add_swap_group]: x\n 66: 3.38e+03      0 58467546\n 67: 3.22e+03      0 55923653\n";
        assert_eq!(annealing_step(out), Some(67));
        assert_eq!(
            annealing_step("TimberWolfSC starting: from the beginning\n"),
            None
        );
        let def = "DIEAREA ( 0 0 ) ( 100 100 ) ;\nCOMPONENTS 6760 ;\n- g1 INVX1 ;\n";
        assert_eq!(components(def), Some(6760));
        let par = placement_parameters("RULES\nENDRULES\n*gridX : 80\n");
        assert!(par.starts_with("RULES\nENDRULES\n*gridX : 80\n"));
        assert!(par.contains(&format!("\nTWSC*fast : {GRAYWOLF_FAST}\n")));
        let gds = "Cell FILL is unavailable.  It could not be expanded.\nCell BUFX2 is unavailable.  It could not be expanded.\nCell FILL is unavailable.  It could not be expanded.\n   Writing cell top\n";
        assert_eq!(unavailable_cells(gds), ["BUFX2", "FILL"]);
        let cfg = route_script("top");
        assert!(cfg.contains("qrouter::standard_route top_route.def false true\n"));
        assert!(cfg.ends_with("quit\n"));
    }
}
