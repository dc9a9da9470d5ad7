//! Place and route: one nextpnr run, or one per placer seed with the fastest kept.
//!
//! On a well-filled device the placer seed alone moves nextpnr's Fmax by 10-20% (the clock
//! notes in `compiler/devices/`), so closing timing is a matter of trying a few seeds, as one
//! tries implementation strategies with vendor tools. A sweep runs its seeds side by side, as
//! many at once as the machine has cores, each in a directory of its own (`pnr-seed-S/`: the
//! YoWASP tools see only the directory they run in), and puts the fastest run's outputs where a
//! single run writes them, so that packing and `build.json` do not know the difference.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use serde_json::{json, Value};

use crate::board::Board;
use crate::flow::{files, io_err, read_json, FlowError, Options};
use crate::report::{self, ClockTiming, CriticalPath};

/// One place-and-route run that finished.
pub struct Placed {
    /// The placer seed (`None`: nextpnr's default).
    pub seed: Option<u64>,
    /// nextpnr's arguments.
    pub args: Vec<String>,
    /// nextpnr's `--report`.
    pub report: Value,
    /// Every clock against its own constraint.
    pub clocks: Vec<ClockTiming>,
    /// The slowest path.
    pub critical: Option<CriticalPath>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl Placed {
    /// The slowest clock's Fmax.
    pub fn fmax_mhz(&self) -> Option<f64> {
        self.clocks.iter().map(|c| c.fmax_mhz).reduce(f64::min)
    }

    /// Every clock meets its constraint.
    pub fn timing_met(&self) -> bool {
        self.clocks.iter().all(|c| c.met)
    }
}

/// What a sweep did: every seed's outcome, for `build.json`.
pub type SeedLog = Vec<Value>;

/// Places and routes the netlist in `dir` with `nextpnr` and `base_args` (the board's and the
/// flow's, without a seed), once per seed of `opts`; the fastest run's config, report and log
/// end up in `dir`. With several seeds, also what each one gave. An error only if every run
/// failed (the first seed's, with its log in `dir`).
pub fn place_and_route(
    nextpnr: &Path,
    board: &Board,
    dir: &Path,
    base_args: &[String],
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<(Placed, Option<SeedLog>), FlowError> {
    let seeds = &opts.seeds;
    let args_for = |seed: Option<u64>| {
        let mut a = base_args.to_vec();
        if let Some(s) = seed {
            a.extend(["--seed".to_string(), s.to_string()]);
        }
        a.extend(opts.nextpnr_args.iter().cloned());
        a
    };
    if seeds.len() <= 1 {
        let seed = seeds.first().copied();
        return run_one(nextpnr, dir, seed, args_for(seed), opts, progress).map(|p| (p, None));
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(seeds.len());
    progress(&format!(
        "pnr: {} placer seeds, {workers} at a time, the fastest kept",
        seeds.len()
    ));
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<String>();
    let mut results: Vec<(usize, Result<Placed, FlowError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let tx = tx.clone();
                let (next, args_for) = (&next, &args_for);
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(&s) = seeds.get(i) else { break };
                        let mut say = |l: &str| {
                            let _ = tx.send(format!("seed {s}: {l}"));
                        };
                        let run = seed_dir(board, dir, s).and_then(|d| {
                            run_one(nextpnr, &d, Some(s), args_for(Some(s)), opts, &mut say)
                        });
                        done.push((i, run));
                    }
                    done
                })
            })
            .collect();
        drop(tx);
        for line in rx {
            progress(&line);
        }
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a place-and-route worker panicked"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    let log: SeedLog = results
        .iter()
        .map(|(i, r)| {
            let seed = seeds[*i];
            match r {
                Ok(p) => json!({
                    "seed": seed,
                    "fmax_mhz": p.fmax_mhz(),
                    "timing_met": p.timing_met(),
                    "critical_path": p.critical,
                    "seconds": p.seconds,
                }),
                Err(e) => json!({ "seed": seed, "error": e.to_string() }),
            }
        })
        .collect();
    let best = results
        .iter()
        .filter_map(|(i, r)| r.as_ref().ok().map(|p| (*i, p.fmax_mhz().unwrap_or(0.0))))
        .fold(None, |b: Option<(usize, f64)>, (i, f)| match b {
            Some((_, bf)) if bf >= f => b,
            _ => Some((i, f)),
        });
    let Some((best, fmax)) = best else {
        // Every run failed: the first one's log where a single run leaves it, for the caller's
        // diagnosis (a design that does not fit fails the same way under every seed).
        let (i, first) = results.swap_remove(0);
        let _ = copy_outputs(board, &dir.join(seed_name(seeds[i])), dir);
        return Err(match first {
            Err(e) => e,
            Ok(_) => unreachable!("no run succeeded"),
        });
    };
    let s = seeds[best];
    copy_outputs(board, &dir.join(seed_name(s)), dir)?;
    progress(&format!(
        "pnr: seed {s} kept ({fmax:.2} MHz; {})",
        log.iter()
            .map(|v| match v["fmax_mhz"].as_f64() {
                Some(f) => format!("{}: {f:.2}", v["seed"]),
                None => format!("{}: failed", v["seed"]),
            })
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let placed = results
        .into_iter()
        .find(|(i, _)| *i == best)
        .and_then(|(_, r)| r.ok())
        .expect("the best run succeeded");
    Ok((placed, Some(log)))
}

fn seed_name(seed: u64) -> String {
    format!("pnr-seed-{seed}")
}

/// A fresh directory for seed `seed`'s run holding what nextpnr reads: the netlist and the
/// constraints (linked where the file system allows, else copied).
fn seed_dir(board: &Board, dir: &Path, seed: u64) -> Result<PathBuf, FlowError> {
    let d = dir.join(seed_name(seed));
    if d.exists() {
        std::fs::remove_dir_all(&d).map_err(io_err(&d))?;
    }
    std::fs::create_dir_all(&d).map_err(io_err(&d))?;
    for name in [files::NETLIST, board.constraints.as_str()] {
        let (from, to) = (dir.join(name), d.join(name));
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(io_err(&to))?;
        }
    }
    Ok(d)
}

/// Puts the outputs of the run in `from` (config, report, log) into `to`.
fn copy_outputs(board: &Board, from: &Path, to: &Path) -> Result<(), FlowError> {
    for name in [
        board.tools.config.as_str(),
        files::PNR_REPORT,
        files::PNR_LOG,
    ] {
        let src = from.join(name);
        if src.exists() {
            std::fs::copy(&src, to.join(name)).map_err(io_err(&src))?;
        }
    }
    Ok(())
}

/// One nextpnr run in `dir` and its reports.
fn run_one(
    nextpnr: &Path,
    dir: &Path,
    seed: Option<u64>,
    args: Vec<String>,
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<Placed, FlowError> {
    let t = Instant::now();
    crate::flow::run(
        "pnr",
        nextpnr,
        &args,
        dir,
        files::PNR_LOG,
        tools::limits::PNR,
        opts,
        opts.pnr_stall,
        progress,
    )?;
    let report_path = dir.join(files::PNR_REPORT);
    let report = read_json(&report_path)?;
    let log_path = dir.join(files::PNR_LOG);
    let log = std::fs::read_to_string(&log_path).map_err(io_err(&log_path))?;
    let clocks = report::pnr_clocks(&report, &log).map_err(|problem| FlowError::Report {
        path: report_path,
        problem,
    })?;
    let critical = report::nextpnr_critical_path(&report);
    Ok(Placed {
        seed,
        args,
        report,
        clocks,
        critical,
        seconds: t.elapsed().as_secs_f64(),
    })
}
