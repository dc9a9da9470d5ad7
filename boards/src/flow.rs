//! The bitstream flow for a compiled design: wrapper, yosys, nextpnr, packer, `build.json`.
//!
//! Every step runs in the build directory with relative file names (the YoWASP tools see only
//! the directory they run in) and writes its whole output to `<step>.log` there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sim::trace::Ports;

use crate::board::Board;
use crate::outreg;
use crate::report::{self, Use};
use crate::wrapper::{self, Clocking};
use crate::BoardError;

/// File names the flow writes into the build directory.
pub mod files {
    /// The board-level top.
    pub const BOARD_TOP: &str = "board_top.v";
    /// Yosys's netlist.
    pub const NETLIST: &str = "synth.json";
    /// Yosys `stat -json`.
    pub const STAT_JSON: &str = "synth_stat.json";
    /// Yosys `stat`, for people.
    pub const STAT_TXT: &str = "synth_stat.txt";
    /// nextpnr `--report`.
    pub const PNR_REPORT: &str = "nextpnr_report.json";
    /// nextpnr's output.
    pub const PNR_LOG: &str = "nextpnr.log";
    /// The summary.
    pub const BUILD_JSON: &str = "build.json";
    /// The weight image for the board's SPI flash (designs with loaded weights): the load
    /// port's 16-bit words, big-endian.
    pub const FLASH_IMAGE: &str = "weights.bin";
}

/// What `flipchip build` can vary.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Core clock in MHz (`None`: the board clock, no PLL).
    pub freq_mhz: Option<f64>,
    /// nextpnr placer seeds: none for nextpnr's default, one, or several to place and route
    /// under each and keep the fastest result (see [`crate::pnr`]).
    pub seeds: Vec<u64>,
    /// Extra nextpnr arguments after the board's (e.g. `--router router2`).
    pub nextpnr_args: Vec<String>,
    /// Stop place and route when its log has not grown for this long (`None`: never).
    pub pnr_stall: Option<Duration>,
    /// Wall-clock limit for each tool (`None`: the step's default from [`tools::limits`], or
    /// `FLIPCHIP_TOOL_TIMEOUT` seconds).
    pub timeout: Option<Duration>,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The board or its wrapper.
    #[error(transparent)]
    Board(#[from] BoardError),
    /// A tool's report could not be understood.
    #[error("{}: {problem}", path.display())]
    Report {
        /// The report.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A tool is missing, failed, ran past its limit or could not be started.
    #[error(transparent)]
    Tool(#[from] tools::ToolError),
    /// A file could not be read or written.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Yosys did not put the loaded weight memories into the large RAMs meant for them.
    #[error("synth: the weights to load at power-up should take {expected} {cell} cells, Yosys used {got}; see {}", log.display())]
    MemoryMapping {
        /// The cell (`SB_SPRAM256KA`).
        cell: String,
        /// Cells the compiler placed weights in.
        expected: u64,
        /// Cells in the synthesis report.
        got: u64,
        /// Yosys's log.
        log: PathBuf,
    },
    /// A tool stopped making progress (its log did not grow) and was stopped.
    #[error("{step}: no progress for {minutes} min (last: \"{last}\"); place and route that stalls in placement could not legalise it, which usually means the design does not fit the device's logic tiles (flip-flops with different clock enables or resets cannot share a tile): fold it further, or allow longer with --pnr-stall-minutes; see {}", log.display())]
    Stalled {
        /// The step.
        step: String,
        /// The limit.
        minutes: f64,
        /// The log's last line.
        last: String,
        /// The log.
        log: PathBuf,
    },
    /// The design needs more of some resource than the device has.
    #[error("the design does not fit the {board}: {}; see {}", overflow.iter().map(|u| format!("{} {}/{} ({:.0}%)", u.cell, u.used, u.available, u.percent())).collect::<Vec<_>>().join(", "), log.display())]
    DoesNotFit {
        /// The board.
        board: String,
        /// Every resource used beyond what the device has.
        overflow: Vec<Use>,
        /// nextpnr's log.
        log: PathBuf,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FlowError + '_ {
    move |e| FlowError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Folders searched for tools after PATH (see [`tools::search_dirs`]).
pub fn tool_dirs() -> Vec<PathBuf> {
    tools::search_dirs()
}

/// The first of `candidates` found on PATH or in [`tool_dirs`].
pub fn find_tool(candidates: &[String]) -> Option<PathBuf> {
    tools::find(candidates)
}

fn require(candidates: &[String], board: &Board) -> Result<PathBuf, FlowError> {
    Ok(tools::require(candidates, &board.tools.install)?)
}

/// The first line a tool prints for `flag`, or its file name when it has no version flag.
pub fn tool_version(tool: &Path, flag: &str) -> String {
    tools::version_strict(tool, flag)
        .unwrap_or_else(|_| format!("{} (no version flag)", tool.display()))
}

/// Runs `tool args` in `dir` with all output in `dir/log`, within `limit` (or the step's
/// default) and, when `stall` is set, stopping it once the log has not grown for that long.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    step: &str,
    tool: &Path,
    args: &[String],
    dir: &Path,
    log: &str,
    default: Duration,
    opts: &Options,
    stall: Option<Duration>,
    progress: &mut dyn FnMut(&str),
) -> Result<(), FlowError> {
    tools::Run::new(step, tool, log)
        .args(args)
        .current_dir(dir)
        .default_timeout(default)
        .timeout_opt(opts.timeout)
        .stall(stall)
        .run_with_progress(progress)
        .map(drop)
        .map_err(|e| match e {
            tools::ToolError::Stalled {
                step,
                minutes,
                last,
                log,
                ..
            } => FlowError::Stalled {
                step,
                minutes,
                last,
                log,
            },
            e => FlowError::Tool(e),
        })
}

fn fill(args: &[String], vars: &[(&str, &str)]) -> Vec<String> {
    args.iter()
        .map(|a| {
            vars.iter()
                .fold(a.clone(), |a, (k, v)| a.replace(&format!("{{{k}}}"), v))
        })
        .collect()
}

pub(crate) fn read_json(path: &Path) -> Result<Value, FlowError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(|e| FlowError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Reads `ports.json` of a compiled design.
pub fn read_ports(dir: &Path) -> Result<Ports, FlowError> {
    let p = dir.join("ports.json");
    serde_json::from_value(read_json(&p)?).map_err(|e| FlowError::Io {
        path: p,
        message: e.to_string(),
    })
}

/// Writes `board_top.v`, the UART primitives and the constraint file into `dir`; returns the
/// Verilog files in compile order.
pub fn write_wrapper(
    board: &Board,
    dir: &Path,
    ports: &Ports,
    clocking: &Clocking,
) -> Result<Vec<String>, FlowError> {
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(io_err(&p))
    };
    let mut verilog = ports.files.clone();
    for (name, text) in wrapper::RTL {
        write(name, text)?;
        verilog.push(name.to_string());
    }
    write(
        files::BOARD_TOP,
        &wrapper::board_top(board, ports, clocking)?,
    )?;
    verilog.push(files::BOARD_TOP.to_string());
    write(&board.constraints, &board.constraints_text)?;
    Ok(verilog)
}

/// Builds a bitstream for the compiled design in `dir` (written by `flipchip compile`) on
/// `board`; `progress` hears one line per step. Writes `build.json` and returns it.
pub fn build(
    board: &Board,
    dir: &Path,
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<Value, FlowError> {
    // Every tool first, so a missing one fails before minutes of synthesis.
    let yosys = require(&board.tools.yosys, board)?;
    let nextpnr = require(&board.tools.nextpnr, board)?;
    let pack = require(&board.tools.pack, board)?;
    let mut steps = BTreeMap::new();

    let t = Instant::now();
    let ports = read_ports(dir)?;
    let clocking = Clocking::new(board, opts.freq_mhz)?;
    let verilog = write_wrapper(board, dir, &ports, &clocking)?;
    let flash = write_flash_image(board, dir, &ports, &clocking)?;
    steps.insert("wrapper", t.elapsed().as_secs_f64());
    progress(&format!(
        "wrapper: {} for {}, core clock {:.3} MHz{}, {} clocks per UART bit",
        files::BOARD_TOP,
        board.name,
        clocking.core_mhz,
        match (&clocking.pll, clocking.divider) {
            (Some(_), _) => " (PLL)".to_string(),
            (None, Some(n)) => format!(" (board clock / {n})"),
            (None, None) => String::new(),
        },
        clocking.clks_per_bit
    ));

    let t = Instant::now();
    progress(&format!(
        "synth: {} {} ...",
        yosys.display(),
        board.tools.synth
    ));
    let script = format!(
        "read_verilog {}; {} -top {} -json {}; tee -q -o {} stat; tee -q -o {} stat -json",
        verilog.join(" "),
        board.tools.synth,
        wrapper::TOP,
        files::NETLIST,
        files::STAT_TXT,
        files::STAT_JSON
    );
    run(
        "synth",
        &yosys,
        &["-p".into(), script],
        dir,
        "yosys.log",
        tools::limits::SYNTH,
        opts,
        None,
        progress,
    )?;
    steps.insert("synth", t.elapsed().as_secs_f64());
    let cells = match read_json(&dir.join(files::STAT_JSON)) {
        Ok(v) => report::yosys_cells(&v),
        Err(_) => {
            let p = dir.join(files::STAT_TXT);
            report::yosys_cells_text(&std::fs::read_to_string(&p).map_err(io_err(&p))?)
        }
    };
    let mut res =
        report::resources_checked(&cells, &board.cells).map_err(|problem| FlowError::Report {
            path: dir.join(files::STAT_JSON),
            problem,
        })?;
    let absorbed = if cells.contains_key("DP16KD") {
        let t = Instant::now();
        let path = dir.join(files::NETLIST);
        let mut netlist = read_json(&path)?;
        let a = outreg::absorb(&mut netlist).map_err(|problem| FlowError::Report {
            path: path.clone(),
            problem,
        })?;
        if a.ports > 0 {
            let text = serde_json::to_string(&netlist).expect("a JSON value serialises");
            std::fs::write(&path, text).map_err(io_err(&path))?;
            res.insert("ffs", res["ffs"] - a.flip_flops as u64);
        }
        steps.insert("output_registers", t.elapsed().as_secs_f64());
        progress(&format!(
            "synth: {} block RAM read port(s) now use their output register ({} flip-flops \
             moved in), {} left without",
            a.ports, a.flip_flops, a.left
        ));
        Some(a)
    } else {
        None
    };
    let yosys_log = std::fs::read_to_string(dir.join("yosys.log")).unwrap_or_default();
    let memories = report::yosys_memories(&yosys_log);
    let in_ram = memories.iter().filter(|m| m.mapped_to != "logic").count();
    let compile_report = read_json(&dir.join("report.json")).ok();
    let want_spram = compile_report
        .as_ref()
        .and_then(|r| r["total"]["est_sprams"].as_u64())
        .unwrap_or(0);
    let got_spram = res["spram"];
    if want_spram > 0 && got_spram != want_spram {
        return Err(FlowError::MemoryMapping {
            cell: board.cells.spram.keys().next().cloned().unwrap_or_default(),
            expected: want_spram,
            got: got_spram,
            log: dir.join("yosys.log"),
        });
    }
    progress(&format!(
        "synth: {} LUTs, {} FFs, {} BRAM, {} SPRAM, {} DSP; {} of {} memories in RAM blocks \
         ({:.1} s)",
        res["luts"],
        res["ffs"],
        res["bram"],
        res["spram"],
        res["dsp"],
        in_ram,
        memories.len(),
        steps["synth"]
    ));

    let t = Instant::now();
    progress(&format!(
        "pnr: {} at {:.3} MHz ...",
        nextpnr.display(),
        clocking.core_mhz
    ));
    let mut base_args = fill(
        &board.tools.nextpnr_args,
        &[
            ("constraints", &board.constraints),
            ("config", &board.tools.config),
        ],
    );
    base_args.extend(
        [
            "--json",
            files::NETLIST,
            "--report",
            files::PNR_REPORT,
            "--freq",
            &format!("{}", clocking.core_mhz),
            "--timing-allow-fail",
        ]
        .map(String::from),
    );
    let pnr = crate::pnr::place_and_route(&nextpnr, board, dir, &base_args, opts, progress);
    let log_path = dir.join(files::PNR_LOG);
    let (placed, seed_log) = match pnr {
        Ok(p) => p,
        Err(e) => {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let overflow: Vec<Use> = report::log_utilisation(&log)
                .into_iter()
                .filter(|u| u.used > u.available)
                .collect();
            if overflow.is_empty() {
                return Err(e);
            }
            let v = json!({
                "board": board.name,
                "fits": false,
                "overflow": overflow,
                "luts": res["luts"], "ffs": res["ffs"], "bram": res["bram"],
                "spram": res["spram"], "dsp": res["dsp"],
                "cells": cells,
            });
            let p = dir.join(files::BUILD_JSON);
            std::fs::write(&p, pretty(&v)).map_err(io_err(&p))?;
            return Err(FlowError::DoesNotFit {
                board: board.name.clone(),
                overflow,
                log: log_path,
            });
        }
    };
    steps.insert("pnr", t.elapsed().as_secs_f64());
    let util = report::nextpnr_utilisation(&placed.report);
    let clocks = &placed.clocks;
    let timing_met = placed.timing_met();
    let fmax = placed.fmax_mhz();
    let critical = placed.critical.clone();
    progress(&format!(
        "pnr: Fmax {}; timing {}{} ({:.1} s)",
        clocks
            .iter()
            .map(|c| format!(
                "{} {:.2} MHz ({} at {:.3} MHz)",
                c.name,
                c.fmax_mhz,
                if c.met { "met" } else { "NOT met" },
                c.constraint_mhz
            ))
            .collect::<Vec<_>>()
            .join(", "),
        if timing_met { "met" } else { "NOT met" },
        critical.as_ref().map_or(String::new(), |c| format!(
            "; critical path {:.1} ns through {}",
            c.delay_ns,
            c.blocks.join(" -> ")
        )),
        steps["pnr"]
    ));

    let t = Instant::now();
    let args = fill(
        &board.tools.pack_args,
        &[
            ("config", &board.tools.config),
            ("bitstream", &board.tools.bitstream),
        ],
    );
    run(
        "pack",
        &pack,
        &args,
        dir,
        "pack.log",
        tools::limits::PACK,
        opts,
        None,
        progress,
    )?;
    steps.insert("pack", t.elapsed().as_secs_f64());
    let bitstream = dir.join(&board.tools.bitstream);
    progress(&format!(
        "pack: {} ({:.1} s)",
        bitstream.display(),
        steps["pack"]
    ));

    // The summary.
    let mut utilisation = serde_json::Map::new();
    for (resource, names) in &board.utilisation {
        if let Some(u) = names.iter().find_map(|n| util.get(n)) {
            utilisation.insert(
                resource.clone(),
                json!((u.percent() * 100.0).round() / 100.0),
            );
        }
    }
    let cycles = compile_report
        .as_ref()
        .and_then(|r| r["total"]["cycles_per_frame"].as_u64());
    // The clock the design can run at: the one asked for if timing is met, else Fmax (the
    // bitstream itself is built for the one asked for: rebuild with --freq <= Fmax).
    let clock_mhz = if timing_met {
        clocking.core_mhz
    } else {
        fmax.unwrap_or(0.0)
    };
    let fps = cycles.map(|c| clock_mhz * 1e6 / c as f64);
    // The bytes of a frame's beats: one per pixel, or 8 packed pixels per byte.
    let frame_bytes = ports.beats_per_frame * ports.input_width.div_ceil(8);
    let uart_fps = f64::from(clocking.baud) / (10.0 * f64::from(frame_bytes));
    let versions = json!({
        "yosys": tool_version(&yosys, "-V"),
        "nextpnr": tool_version(&nextpnr, "--version"),
        "pack": tool_version(&pack, "--version"),
    });
    // Which of the board's candidates ran (the first found of its `[tools]` lists).
    let paths = json!({
        "yosys": yosys.display().to_string(),
        "nextpnr": nextpnr.display().to_string(),
        "pack": pack.display().to_string(),
    });
    let v = json!({
        "board": board.name,
        "family": board.family,
        "device": board.device,
        "package": board.package,
        "top": wrapper::TOP,
        "fits": true,
        "luts": res["luts"],
        "ffs": res["ffs"],
        "bram": res["bram"],
        "spram": res["spram"],
        "dsp": res["dsp"],
        "bram_output_registers": absorbed.map(|a| json!({
            "ports": a.ports,
            "flip_flops_moved": a.flip_flops,
            "ports_left_unregistered": a.left,
        })),
        "utilisation": utilisation,
        "utilisation_detail": util,
        "cells": cells,
        "memories": {
            "in_ram_blocks": in_ram,
            "in_logic": memories.len() - in_ram,
            "detail": memories,
        },
        "fmax_mhz": fmax,
        "critical_path": critical,
        "requested_mhz": clocking.core_mhz,
        "board_clock_mhz": clocking.board_mhz,
        "pll": clocking.pll,
        "clock_divider": clocking.divider,
        "timing_met": timing_met,
        "clocks": clocks,
        "clock_mhz": clock_mhz,
        "cycles_per_frame": cycles,
        "frames_per_second": fps,
        "uart_baud": clocking.baud,
        "clks_per_bit": clocking.clks_per_bit,
        "uart_frames_per_second": uart_fps,
        "bitstream": bitstream.display().to_string(),
        "flash": flash,
        "tool_versions": versions,
        "tool_paths": paths,
        "nextpnr_args": placed.args,
        "seed": placed.seed,
        "seeds": seed_log,
        "step_seconds": steps,
    });
    let p = dir.join(files::BUILD_JSON);
    std::fs::write(&p, pretty(&v)).map_err(io_err(&p))?;
    Ok(v)
}

/// For a design with loaded weights: writes [`files::FLASH_IMAGE`] from the compiled
/// `weights.hex` and returns what `build.json` says about it (`null` otherwise).
fn write_flash_image(
    board: &Board,
    dir: &Path,
    ports: &Ports,
    clocking: &Clocking,
) -> Result<Value, FlowError> {
    let Some(flash) = board.flash.as_ref().filter(|_| ports.load_words > 0) else {
        return Ok(Value::Null);
    };
    let hex_path = dir.join(sim::trace::LOAD_HEX);
    let text = std::fs::read_to_string(&hex_path).map_err(io_err(&hex_path))?;
    let mut image = Vec::with_capacity(2 * ports.load_words as usize);
    for (i, line) in text.lines().enumerate() {
        let w = u16::from_str_radix(line.trim(), 16).map_err(|e| FlowError::Io {
            path: hex_path.clone(),
            message: format!("line {}: {e}", i + 1),
        })?;
        image.extend(w.to_be_bytes());
    }
    if image.len() as u64 != 2 * ports.load_words {
        return Err(FlowError::Io {
            path: hex_path,
            message: format!(
                "{} words, ports.json says {}",
                image.len() / 2,
                ports.load_words
            ),
        });
    }
    let p = dir.join(files::FLASH_IMAGE);
    std::fs::write(&p, &image).map_err(io_err(&p))?;
    let cycles = wrapper::load_cycles(clocking.core_mhz, ports.load_words);
    Ok(json!({
        "image": p.display().to_string(),
        "offset": flash.offset,
        "words": ports.load_words,
        "bytes": image.len(),
        "program": flash.program_command(&p.display().to_string()),
        "load_ms": cycles as f64 / (clocking.core_mhz * 1e3),
    }))
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON values serialise");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_placer_that_stops_writing_is_stopped_with_the_fitting_hint() {
        let dir = std::env::temp_dir().join(format!("flipchip-stall-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sh = PathBuf::from("/bin/sh");
        let args = ["-c".to_string(), "echo placing; sleep 30".to_string()];
        let start = Instant::now();
        let opts = Options::default();
        let e = run(
            "pnr",
            &sh,
            &args,
            &dir,
            "t.log",
            tools::limits::PNR,
            &opts,
            Some(Duration::from_millis(800)),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(10));
        let text = e.to_string();
        assert!(matches!(e, FlowError::Stalled { .. }), "{text}");
        assert!(text.contains("placing") && text.contains("t.log"), "{text}");
        assert!(text.contains("--pnr-stall-minutes"), "{text}");
        // The build's own limit applies to every step.
        let opts = Options {
            timeout: Some(Duration::from_millis(500)),
            ..Options::default()
        };
        let e = run(
            "synth",
            &sh,
            &args,
            &dir,
            "u.log",
            tools::limits::SYNTH,
            &opts,
            None,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(e, FlowError::Tool(tools::ToolError::TimedOut { .. })),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
