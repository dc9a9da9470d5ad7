//! `flipchip regress SUITE.toml`: every model x folding x check x stimulus of a suite (see
//! [`suite`]) as a case; the cases run as units of work (see `tools::executor`), `--jobs` at a
//! time on this machine or as one Slurm job array, and end in a summary table, a JUnit file and
//! a JSON summary.

pub mod case;
pub mod designs;
pub mod report;
pub mod suite;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use tools::executor::{Event, Outcome, Unit};

use super::executor_args::{unit_of, ExecutorArgs, Kind};
use report::{CaseResult, Status};
use suite::Check;

/// Run a regression suite: models x foldings x checks x stimuli, in parallel.
#[derive(clap::Args)]
pub struct Args {
    /// The suite file (TOML; see the README's `regress` section).
    pub suite: PathBuf,
    /// Cases at once on this machine (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Write a JUnit XML file: one test case per case, the first divergence as the failure.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Print one JSON object (the summary, with every case) as the last line.
    #[arg(long)]
    pub json: bool,
    /// Where the cases run and where their models, designs, logs and results live.
    /// [default work directory: one per suite in the system's temporary directory, so that
    /// compiled testbenches and finished cases are reused by the next run]
    #[command(flatten)]
    pub exec: ExecutorArgs,
}

/// One case before it runs.
struct Planned {
    result: CaseResult,
    /// Its unit (none when its design did not compile).
    unit: Option<usize>,
}

/// Runs `flipchip regress`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let start = Instant::now();
    let suite = suite::load(&a.suite)?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    if a.exec.executor == Kind::Slurm && a.exec.workdir.is_none() {
        bail!("--executor slurm needs --workdir DIR, a directory the nodes share at the same path");
    }
    let suite_abs = a
        .suite
        .canonicalize()
        .with_context(|| format!("resolving {}", a.suite.display()))?;
    let default_workdir = std::env::temp_dir().join(format!(
        "flipchip-regress-{}-{}",
        suite.name,
        designs::key_of(&[suite_abs.as_os_str().as_encoded_bytes()])
    ));
    let workdir = a.exec.workdir(&default_workdir)?;
    eprintln!(
        "regress {}: {} model(s), {} folding spec(s), {} stimul{}, checks {}; work directory {}",
        suite.name,
        suite.models.len(),
        suite.foldings.len(),
        suite.stimuli.len(),
        if suite.stimuli.len() == 1 { "us" } else { "i" },
        suite
            .checks
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", "),
        workdir.display()
    );
    let flipchip_key = designs::flipchip_key()?;
    let models = designs::models(&suite, &workdir, &flipchip_key, jobs)?;
    let designs = designs::compile_all(&models, &suite, &workdir, &flipchip_key, jobs)?;
    eprintln!(
        "regress {}: {} design(s) compiled in {:.1} s{}",
        suite.name,
        designs.iter().filter(|d| d.error.is_none()).count(),
        start.elapsed().as_secs_f64(),
        match designs.iter().filter(|d| d.error.is_some()).count() {
            0 => String::new(),
            n => format!(", {n} did not compile"),
        }
    );

    let (planned, units) = plan(&suite, &designs, &workdir, &flipchip_key)?;
    let executor = a.exec.executor(&workdir, "flipchip-regress", jobs)?;
    let mut results: Vec<CaseResult> = planned.iter().map(|p| p.result.clone()).collect();
    let by_unit: Vec<usize> = {
        let mut v = vec![0; units.len()];
        for (i, p) in planned.iter().enumerate() {
            if let Some(u) = p.unit {
                v[u] = i;
            }
        }
        v
    };
    run_cases(&*executor, &units, &by_unit, &mut results)?;
    let wall = start.elapsed().as_secs_f64();

    eprint!("{}", report::table(&results));
    let failed = results
        .iter()
        .filter(|r| r.status != Status::Passed)
        .count();
    eprintln!(
        "regress {}: {} case(s), {} passed, {failed} failed, {} from earlier runs, {wall:.1} s \
         wall ({})",
        suite.name,
        results.len(),
        results.len() - failed,
        results.iter().filter(|r| r.cached).count(),
        executor.name()
    );
    if let Some(path) = &a.junit {
        report::write_junit(path, &report::junit(&suite.name, &results, wall))?;
        eprintln!("wrote {}", path.display());
    }
    if a.json {
        super::print_json(&report::summary_json(
            &suite.name,
            executor.name(),
            &results,
            wall,
            a.junit.as_deref(),
            &workdir,
        ));
    }
    if failed > 0 {
        let names: Vec<&str> = results
            .iter()
            .filter(|r| r.status != Status::Passed)
            .map(|r| r.name.as_str())
            .take(10)
            .collect();
        bail!(
            "{failed} of {} case(s) failed: {}{}",
            results.len(),
            names.join(", "),
            if failed > names.len() { ", ..." } else { "" }
        );
    }
    Ok(())
}

/// The cases of every design, and a unit for each one that can run.
fn plan(
    suite: &suite::Suite,
    designs: &[designs::Design],
    workdir: &Path,
    flipchip_key: &str,
) -> anyhow::Result<(Vec<Planned>, Vec<Unit>)> {
    let mut planned = Vec::new();
    let mut units = Vec::new();
    let mut designs_of_units: Vec<PathBuf> = Vec::new();
    for d in designs {
        for &check in &suite.checks {
            let stimuli: Vec<Option<&suite::StimulusSpec>> = match check {
                c if c.per_stimulus() => suite.stimuli.iter().map(Some).collect(),
                // A free-running run takes the first stimulus' frames; a proof none.
                Check::Cycles => vec![suite.stimuli.first()],
                _ => vec![None],
            };
            for st in stimuli {
                let label = st
                    .filter(|_| check.per_stimulus() && suite.stimuli.len() > 1)
                    .map(|s| s.label());
                let mut name = format!("{}/{}/{}", d.model, d.folding, check.name());
                if let Some(l) = &label {
                    name = format!("{name}/{l}");
                }
                let mut result = CaseResult {
                    name: name.clone(),
                    model: d.model.clone(),
                    folding: d.folding.clone(),
                    check: check.name().to_string(),
                    stimulus: label.clone(),
                    status: Status::Error,
                    message: String::new(),
                    seconds: 0.0,
                    cached: false,
                    log: None,
                };
                if let Some(e) = &d.error {
                    result.message = e.clone();
                    planned.push(Planned { result, unit: None });
                    continue;
                }
                let mut dir = workdir
                    .join("cases")
                    .join(&d.model)
                    .join(designs::dir_name(&d.folding))
                    .join(check.name());
                if let Some(l) = &label {
                    dir = dir.join(l);
                }
                let spec = case::CaseSpec {
                    name: &name,
                    build: &d.dir,
                    check,
                    stimulus: st.copied(),
                    cycles: &suite.cycles,
                    prove: &suite.prove,
                    design_key: &d.key,
                    flipchip_key,
                };
                let unit = unit_of(
                    name.clone(),
                    dir,
                    serde_json::to_string_pretty(&spec.to_json())?,
                    case::limit(check, &suite.prove),
                )?;
                result.log = Some(unit.log_path());
                designs_of_units.push(d.dir.clone());
                planned.push(Planned {
                    result,
                    unit: Some(units.len()),
                });
                units.push(unit);
            }
        }
    }
    // Cases of one design share its compiled testbench, built by whichever comes first while
    // the others wait: run the first case of every design before the second of any, so that
    // parallel workers build different designs' testbenches.
    let mut rank = vec![0usize; units.len()];
    let mut seen: std::collections::HashMap<&Path, usize> = Default::default();
    for (u, build) in designs_of_units.iter().enumerate() {
        let n = seen.entry(build.as_path()).or_insert(0);
        rank[u] = *n;
        *n += 1;
    }
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by_key(|&u| (rank[u], u));
    let mut new_index = vec![0; units.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    for p in &mut planned {
        p.unit = p.unit.map(|u| new_index[u]);
    }
    let units = order.iter().map(|&u| units[u].clone()).collect();
    Ok((planned, units))
}

/// Runs the units behind a progress bar and fills in `results` (`by_unit[u]` is unit `u`'s
/// case), printing every failure as it comes.
fn run_cases(
    executor: &dyn tools::executor::Executor,
    units: &[Unit],
    by_unit: &[usize],
    results: &mut [CaseResult],
) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new(units.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(&format!(
            "cases ({}) {{bar:30}} {{pos}}/{{len}} {{elapsed}} {{msg}}",
            executor.name()
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let say = |line: &str| bar.suspend(|| eprintln!("{line}"));
    let (mut running, mut failed) = (0usize, 0usize);
    let finish = |u: usize, cached: bool, results: &mut [CaseResult]| -> String {
        let r = &mut results[by_unit[u]];
        r.cached = cached;
        match read_result(&units[u]) {
            Ok((status, message, seconds)) => {
                r.status = status;
                r.message = message;
                r.seconds = seconds;
            }
            Err(e) => {
                r.status = Status::Error;
                r.message = format!("{e:#}");
            }
        }
        match r.status {
            Status::Passed => String::new(),
            _ => format!("FAILED {}: {}", r.name, r.message),
        }
    };
    let outcomes = executor.run(units, &mut |e| match e {
        Event::Skipped(u) | Event::Done(u) => {
            if matches!(e, Event::Done(_)) {
                running = running.saturating_sub(1);
            }
            let line = finish(u, matches!(e, Event::Skipped(_)), results);
            if !line.is_empty() {
                failed += 1;
                say(&line);
            }
            bar.inc(1);
            bar.set_message(format!("{running} running, {failed} failed"));
        }
        Event::Started(_) => {
            running += 1;
            bar.set_message(format!("{running} running, {failed} failed"));
        }
        Event::Failed(u, f, retry) => {
            running = running.saturating_sub(1);
            say(&format!(
                "ERROR {}: {f}{}",
                units[u].name,
                if retry { "\n  retrying" } else { "" }
            ));
            if !retry {
                failed += 1;
                bar.inc(1);
            }
            bar.set_message(format!("{running} running, {failed} failed"));
        }
        Event::Note(n) => say(&n),
    });
    bar.finish_and_clear();
    for (u, o) in outcomes?.into_iter().enumerate() {
        if let Outcome::Failed(f) = o {
            let r = &mut results[by_unit[u]];
            r.status = Status::Error;
            r.message = format!("{} ({}): {}", f.state, f.log.display(), f.tail.trim());
        }
    }
    Ok(())
}

/// A finished case's status, message and seconds from its result.json.
fn read_result(unit: &Unit) -> anyhow::Result<(Status, String, f64)> {
    let v = super::unit::read_result(&unit.dir)?;
    let file = unit.result_path();
    let status = match super::unit::field(&v, "status", &file)?.as_str() {
        Some("passed") => Status::Passed,
        Some("failed") => Status::Failed,
        other => bail!("{}: unknown status {other:?}", file.display()),
    };
    Ok((
        status,
        v["message"].as_str().unwrap_or_default().to_string(),
        v["seconds"].as_f64().unwrap_or(0.0),
    ))
}
