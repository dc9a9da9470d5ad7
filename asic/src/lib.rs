//! The ASIC flow behind `flipchip asic`, with the open tools Debian packages with qflow: the
//! compiled accelerator's Verilog is synthesised to one of the OSU standard-cell libraries
//! (Yosys and ABC), timed with OpenSTA, simulated at gate level under Icarus against the
//! reference (which also measures every cell's switching activity, from which OpenSTA's power
//! model gives the power), and with `layout`, placed, routed and checked by qflow's GrayWolf,
//! qrouter, Magic and netgen.
//!
//! These libraries have no SRAM or ROM macros: weights become logic and buffers become
//! flip-flops, so the area grows with the weight count, and the report says what share of the
//! area is in flip-flops.

pub mod cyclesim;
pub mod gate;
pub mod lanerun;
pub mod lanesim;
pub mod layout;
pub mod liberty;
pub mod logic;
pub mod min_area;
pub mod netlist;
pub mod power;
pub mod sta;
pub mod synth;
pub mod tech;
pub mod vcd;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

pub use tech::{Tech, INSTALL_ASIC, TECHS};

/// File names inside the ASIC directory.
pub mod files {
    /// The report.
    pub const ASIC_JSON: &str = "asic.json";
    /// What the flow reads besides the design: the frames, and what the reference says of them.
    pub const STIMULUS_JSON: &str = "asic_stimulus.json";
    /// The bytes of the input stream for those frames.
    pub const STREAM: &str = "asic_stream.bin";
    /// The Yosys script.
    pub const SYNTH_YS: &str = "asic_synth.ys";
    /// Its log.
    pub const SYNTH_LOG: &str = "asic_synth.log";
    /// What the netlist was synthesised from (a hash) and how long that took.
    pub const SYNTH_KEY: &str = "asic_synth.key";
    /// Cell counts and area as Yosys prints them.
    pub const STAT: &str = "asic_stat.txt";
    /// Cell counts as JSON.
    pub const STAT_JSON: &str = "asic_stat.json";
    /// The gate-level netlist.
    pub const NETLIST: &str = "asic_netlist.v";
    /// The timing script.
    pub const STA_TCL: &str = "asic_sta.tcl";
    /// Its report.
    pub const STA_LOG: &str = "asic_sta.log";
    /// The gate-level simulation's folder.
    pub const GATE_DIR: &str = "gate";
    /// The wrapper that dumps the VCD.
    pub const WRAPPER: &str = "flipchip_asic_vcd.v";
    /// The cell models with flip-flops starting at 0.
    pub const CELLS_INIT0: &str = "cells_init0.v";
    /// The VCD (removed once counted).
    pub const VCD: &str = "activity.vcd";
}

/// Why the flow failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--tech` names no library flipchip knows.
    #[error("unknown tech {name:?}; known: {known}")]
    UnknownTech {
        /// What was asked for.
        name: String,
        /// What exists.
        known: String,
    },
    /// The library is not installed.
    #[error("standard-cell library {name} not installed ({} missing); install it with {install}", path.display())]
    MissingTech {
        /// The library.
        name: String,
        /// The file looked for.
        path: PathBuf,
        /// How to install it.
        install: String,
    },
    /// An external tool could not be found, or failed.
    #[error(transparent)]
    Tool(#[from] tools::ToolError),
    /// The gate-level simulation could not run.
    #[error("gate-level simulation")]
    Harness(#[from] testbenches::HarnessError),
    /// A file could not be read or written.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A file, or a tool's report, does not say what it should.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The design is of a kind the flow does not take.
    #[error("the ASIC flow does not take {0}")]
    Unsupported(String),
}

/// Options of one run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The library.
    pub tech: String,
    /// The clock constraint, MHz.
    pub clock_mhz: f64,
    /// The share of the core that cells fill (the core area is the cell area over it).
    pub utilisation: f64,
    /// Place, route and check.
    pub layout: bool,
    /// Limit for each tool (default: the tools crate's).
    pub timeout: Option<Duration>,
    /// The gate-level simulator (`None`: [`gate::Simulator::auto`]).
    pub gate_sim: Option<gate::Simulator>,
}

/// What the design's frames should give and what they cost.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Stimulus {
    /// Cycles between frames when streaming back to back.
    pub cycles_per_frame: u64,
    /// Cycles from a frame's first beat to its result.
    pub latency_cycles: u64,
    /// Binary multiply-accumulates (XNOR-popcount terms) per frame.
    pub synapse_ops_per_frame: u64,
    /// The reference's result per frame.
    pub expected: Vec<gate::Expected>,
}

/// The tools the flow runs.
struct Tools {
    yosys: PathBuf,
    sta: PathBuf,
}

impl Tools {
    fn find() -> Result<Tools, Error> {
        Ok(Tools {
            yosys: tools::require(&["yosys"], INSTALL_ASIC)?,
            sta: tools::require(&["sta"], INSTALL_ASIC)?,
        })
    }

    fn versions(&self) -> serde_json::Value {
        let v = |p: &Path, flag: &str| tools::version(p, flag).unwrap_or_else(|e| e.to_string());
        let iverilog = tools::find(&["iverilog"])
            .map(|p| v(&p, "-V"))
            .unwrap_or_default();
        json!({
            "yosys": v(&self.yosys, "-V"),
            "sta": format!("OpenSTA {}", v(&self.sta, "-version")),
            "iverilog": iverilog,
        })
    }
}

/// Runs the flow on the design compiled into `dir` (its `ports.json`, Verilog and the
/// stimulus files), writing everything there; the report (asic.json's content, without the
/// compile step). `progress` gets a line per step.
pub fn run(
    dir: &Path,
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<serde_json::Value, Error> {
    let start = Instant::now();
    let tech = Tech::load(&opts.tech)?;
    let tools = Tools::find()?;
    let lib = liberty::read(&tech.liberty)?;
    let ports = testbenches::read_ports(dir)?;
    let stimulus: Stimulus = read_json_as(&dir.join(files::STIMULUS_JSON))?;
    let stream = std::fs::read(dir.join(files::STREAM)).map_err(|e| Error::Io {
        path: dir.join(files::STREAM),
        message: e.to_string(),
    })?;
    let period_ns = 1000.0 / opts.clock_mhz;
    let mut steps = serde_json::Map::new();

    progress(&format!(
        "asic: synthesis to {} cells (yosys, abc) for {} MHz ...",
        tech.name, opts.clock_mhz
    ));
    let sources: Vec<PathBuf> = ports.files.iter().map(PathBuf::from).collect();
    let syn = synth::run(
        &tools.yosys,
        dir,
        &sources,
        &ports.top,
        &tech.liberty,
        (period_ns * 1000.0).round() as u64,
        opts.timeout,
        progress,
    )?;
    steps.insert("synthesis".into(), json!(syn.seconds));
    let (area, state_area) = syn.area(&lib);
    progress(&format!(
        "asic: {} cells, {:.0} um^2 ({:.1}% in flip-flops), {:.1} s{}",
        syn.cells(),
        area,
        100.0 * state_area / area.max(1e-9),
        syn.seconds,
        if syn.reused {
            " (the netlist of an earlier run from the same sources, reused)"
        } else {
            ""
        }
    ));

    progress("asic: static timing (OpenSTA) ...");
    let netlist = gate::absolute(&syn.netlist);
    let (timing, sta_seconds) = sta::timing(
        &tools.sta,
        dir,
        &tech.liberty,
        &netlist,
        &ports.top,
        period_ns,
    )?;
    steps.insert("timing".into(), json!(sta_seconds));
    progress(&format!(
        "asic: Fmax {:.1} MHz (critical path {:.3} ns), setup slack {:.3} ns, hold slack {:.3} ns at {} MHz: timing {}",
        timing.fmax_mhz(),
        timing.min_period_ns(),
        timing.setup_slack_ns,
        timing.hold_slack_ns,
        opts.clock_mhz,
        if timing.met() { "met" } else { "NOT met" }
    ));

    let frames = stimulus.expected.len();
    let max_cycles =
        (frames as u64 + 2) * (stimulus.latency_cycles + stimulus.cycles_per_frame) * 4 + 1000;
    let run_cycles = frames as u64 * stimulus.cycles_per_frame + stimulus.latency_cycles;
    let simulator = opts
        .gate_sim
        .unwrap_or_else(|| gate::Simulator::auto(syn.cells(), run_cycles));
    progress(&format!(
        "asic: gate-level simulation ({}) of {frames} frames, about {run_cycles} cycles ...",
        simulator.name()
    ));
    let g = match simulator {
        gate::Simulator::Icarus => gate::run(
            dir,
            &ports,
            &netlist,
            &gate::absolute(&tech.verilog),
            &stream,
            &stimulus.expected,
            max_cycles,
        )?,
        engine @ (gate::Simulator::Cycle | gate::Simulator::Event) => gate::run_cycle(
            engine,
            &ports,
            &netlist,
            &lib,
            &stream,
            &stimulus.expected,
            max_cycles,
            // Twice the frames the latency spans, and two more: while its buffers fill, the
            // input side takes beats faster than the design's rate (the Fashion-MNIST design
            // `1x49 1x4 1x2` took 4 frames in less than its latency of 2.1 frames' cycles, and
            // its lanes joined after 8 frames but not after 4).
            2 * stimulus
                .latency_cycles
                .div_ceil(stimulus.cycles_per_frame.max(1)) as usize
                + 2,
            progress,
        )?,
    };
    steps.insert("gate_level".into(), json!(g.seconds));
    progress(&format!(
        "asic: gate-level netlist vs reference: {frames} frames, {} mismatches; {} cycles, {:.1} s",
        g.mismatches, g.activity.cycles, g.seconds
    ));

    progress("asic: power from the simulated activity (OpenSTA) ...");
    let (per_instance, power_seconds) = sta::instance_power(
        &tools.sta,
        dir,
        &tech.liberty,
        &netlist,
        &ports.top,
        period_ns,
    )?;
    steps.insert("power".into(), json!(power_seconds));
    let p = power::assemble(&syn.instances, &lib, &per_instance, &g.activity);
    let frames_per_second = opts.clock_mhz * 1e6 / stimulus.cycles_per_frame as f64;
    // The run's energy over its frames: the pipeline's fill and drain are in it.
    let run_seconds = g.activity.cycles as f64 * period_ns * 1e-9;
    let energy_per_frame_nj = p.total_w * run_seconds / frames.max(1) as f64 * 1e9;
    let energy_per_op_pj =
        energy_per_frame_nj * 1000.0 / stimulus.synapse_ops_per_frame.max(1) as f64;
    progress(&format!(
        "asic: {:.3} mW at {} MHz ({:.3} mW clocking flip-flops, mean toggle rate {:.3}/cycle): \
         {:.3} nJ per frame, {:.4} pJ per synapse op, {:.0} frames/s",
        p.total_w * 1e3,
        opts.clock_mhz,
        p.clock_w * 1e3,
        p.mean_rate,
        energy_per_frame_nj,
        energy_per_op_pj,
        frames_per_second
    ));

    let mut v = json!({
        "tech": tech.name,
        "liberty": tech.liberty.display().to_string(),
        "top": ports.top,
        "clock_mhz": opts.clock_mhz,
        "cells": syn.cells(),
        "cells_by_kind": syn.cells_by_kind,
        "area_um2": area,
        "flip_flop_area_um2": state_area,
        "flip_flop_area_share": state_area / area.max(1e-9),
        "core_area_um2": area / opts.utilisation,
        "utilisation": opts.utilisation,
        "memories": "no SRAM or ROM macros in this library: weights are logic, buffers are flip-flops",
        "fmax_mhz": timing.fmax_mhz(),
        "critical_path_ns": timing.min_period_ns(),
        "critical_path": {"from": timing.from, "to": timing.to},
        "slack_ns": timing.setup_slack_ns,
        "hold_slack_ns": timing.hold_slack_ns,
        "timing_met": timing.met(),
        "timing_note": "before layout: no wire load, ideal clock",
        "power_mw": p.total_w * 1e3,
        "power_breakdown_mw": {
            "flip_flop_clocking": p.clock_w * 1e3,
            "flip_flop_data": p.sequential_w * 1e3 - p.clock_w * 1e3,
            "combinational": p.combinational_w * 1e3,
            "note": "each group holds its leakage, which is nW in these libraries",
        },
        "activity": {
            "source": format!("zero-delay gate-level simulation ({}) of the test frames, streamed back to back", simulator.name()),
            "frames": frames,
            "cycles": g.activity.cycles,
            "mean_toggles_per_cycle": p.mean_rate,
        },
        "energy_per_frame_nj": energy_per_frame_nj,
        "synapse_ops_per_frame": stimulus.synapse_ops_per_frame,
        "energy_per_synapse_op_pj": energy_per_op_pj,
        "cycles_per_frame": stimulus.cycles_per_frame,
        "frames_per_second": frames_per_second,
        "gate_level": {
            "frames": frames,
            "mismatches": g.mismatches,
            "first_mismatch": g.first_mismatch,
            "match": g.mismatches == 0,
            "flip_flops_start_at": 0,
            "simulator": simulator.name(),
            "cycles": g.cycles,
        },
        "drc_errors": null,
        "lvs_match": null,
        "gds": null,
        "netlist": syn.netlist.display().to_string(),
        "synthesis_reused": syn.reused,
        "tool_versions": tools.versions(),
    });
    if opts.layout {
        let qflow = tools::require(&["qflow"], INSTALL_ASIC)?;
        let l = layout::run(
            &qflow,
            dir,
            &tech,
            &sources,
            &ports.top,
            opts.timeout,
            progress,
        )?;
        for (step, secs) in &l.step_seconds {
            steps.insert(format!("layout_{step}"), json!(secs));
        }
        v["drc_errors"] = json!(l.drc_errors);
        v["lvs_match"] = json!(l.lvs_match);
        v["gds"] = json!(l.gds.as_ref().map(|p| p.display().to_string()));
        v["layout"] = json!({
            "die_um": l.die_um.map(|(w, h)| [w, h]),
            "die_area_um2": l.die_um.map(|(w, h)| w * h),
            "post_route_fmax_mhz": l.fmax_mhz,
            "post_route_timing_met": l.fmax_mhz.map(|f| f >= opts.clock_mhz),
            "post_route_timing_note": "vesta on the routed netlist with qrouter's extracted wire delays",
            "placed_cells": l.placed_cells,
            "failed_routes": l.failed_routes,
            "lvs_errors": l.lvs_errors,
            "lvs_summary": l.lvs_summary,
            "graywolf_fast": layout::GRAYWOLF_FAST,
            "drc_errors_as_routed": l.drc_errors_routed,
            "min_area_patches": l.min_area_patches,
            "drc_note": "Magic's DRC of the routing and the cells' LEF outlines (the tech folder has no cell layouts to check inside the cells)",
            "gds_missing_cells": l.gds_missing_cells,
            "gds_note": if l.gds.is_some() && !l.gds_missing_cells.is_empty() {
                "the GDS holds the routing and references to the listed cells, whose layouts Debian's qflow-tech package does not ship (no osu018_stdcells.gds2): merge them from the OSU library before a tape-out"
            } else {
                ""
            },
            "failed_steps": l.failed,
            "flow": "qflow (its own Yosys run, GrayWolf, qrouter, vesta, Magic, netgen)",
            "dir": dir.join(layout::LAYOUT_DIR).display().to_string(),
        });
        progress(&format!(
            "asic: layout: die {}, post-route Fmax {}, DRC errors {}, LVS {}, GDS {}",
            l.die_um
                .map_or("?".into(), |(w, h)| format!("{w:.1} x {h:.1} um")),
            l.fmax_mhz.map_or("?".into(), |f| format!("{f:.1} MHz")),
            l.drc_errors.map_or("?".into(), |n| n.to_string()),
            match l.lvs_match {
                Some(true) => "clean",
                Some(false) => "MISMATCH",
                None => "not run",
            },
            l.gds
                .as_ref()
                .map_or("not written".into(), |p| p.display().to_string()),
        ));
    }
    v["step_seconds"] = serde_json::Value::Object(steps);
    v["seconds"] = json!(start.elapsed().as_secs_f64());
    if g.mismatches > 0 {
        return Err(Error::Parse {
            path: dir.join(files::NETLIST),
            message: format!(
                "the gate-level netlist differs from the reference on {} of {frames} frames; {}",
                g.mismatches,
                g.first_mismatch.unwrap_or_default()
            ),
        });
    }
    Ok(v)
}

/// Writes `text` to `path`.
pub(crate) fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The text of `path`.
pub(crate) fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// `path` as JSON.
pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value, Error> {
    read_json_as(path)
}

/// `path` as JSON of type `T`.
pub(crate) fn read_json_as<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    serde_json::from_str(&read(path)?).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
