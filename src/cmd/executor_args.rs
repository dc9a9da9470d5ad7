//! The `--executor` options shared by the commands with heavy steps (`dse --synth`, `build`):
//! where their units of work run (see `tools::executor`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use tools::executor::{Event, Executor, Local, Outcome, Slurm, SlurmOptions, Unit};

/// Where the heavy steps run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// On this machine.
    Local,
    /// As jobs of a Slurm cluster (`sbatch` job arrays).
    Slurm,
}

/// `--executor local|slurm [--partition P] [--slurm-arg ARG]... [--workdir DIR] [--retries N]`.
#[derive(clap::Args, Clone, Debug)]
pub struct ExecutorArgs {
    /// Where the heavy steps run: `local` (this machine) or `slurm` (one job per step, a job
    /// array per sweep, submitted with sbatch).
    #[arg(long, value_enum, default_value_t = Kind::Local)]
    pub executor: Kind,
    /// Slurm partition for the jobs (default: the cluster's default partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// One more sbatch argument (repeat for several), e.g. `--slurm-arg=--time=60
    /// --slurm-arg=--mem=4G --slurm-arg=--account=hw`.
    #[arg(long = "slurm-arg", allow_hyphen_values = true)]
    pub slurm_args: Vec<String>,
    /// Work directory for the steps' inputs, outputs and logs; with Slurm it must be shared
    /// with the nodes, at the same path. Re-running with the same one resumes: finished steps
    /// are skipped. [default: the command's output directory]
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Run a failed step (a failed, cancelled or timed-out job) up to this many more times.
    #[arg(long, default_value_t = 0)]
    pub retries: usize,
}

impl ExecutorArgs {
    /// The work directory (`--workdir`, else `default`), created and made absolute: units and
    /// batch scripts name it on other machines.
    pub fn workdir(&self, default: &Path) -> anyhow::Result<PathBuf> {
        let dir = self.workdir.as_deref().unwrap_or(default);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        dir.canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))
    }

    /// The executor these options ask for; `local_workers` units at a time on this machine.
    pub fn executor(
        &self,
        workdir: &Path,
        job_name: &str,
        local_workers: usize,
    ) -> anyhow::Result<Box<dyn Executor>> {
        match self.executor {
            Kind::Local => {
                if self.partition.is_some() || !self.slurm_args.is_empty() {
                    bail!("--partition and --slurm-arg need --executor slurm");
                }
                Ok(Box::new(Local {
                    workers: local_workers,
                    retries: self.retries,
                }))
            }
            Kind::Slurm => Ok(Box::new(Slurm::new(SlurmOptions {
                partition: self.partition.clone(),
                sbatch_args: self.slurm_args.clone(),
                workdir: workdir.to_path_buf(),
                retries: self.retries,
                job_name: job_name.to_string(),
                poll: Duration::from_millis(500),
                conf: None,
            })?)),
        }
    }
}

/// The flipchip binary as a unit's program: `flipchip unit DIR` runs the unit in DIR.
pub fn unit_of(name: String, dir: PathBuf, spec: String, limit: Duration) -> anyhow::Result<Unit> {
    let program = std::env::current_exe().context("finding the flipchip executable")?;
    Ok(Unit {
        name,
        args: vec!["unit".into(), dir.clone().into_os_string()],
        dir,
        spec,
        program,
        limit,
    })
}

/// A whole flow (`title`, e.g. `bitstream for ulx3s`) run as one unit in `dir` on the executor
/// `exec` asks for, with unit spec `spec` and time limit `limit`; `step` names it in progress
/// lines and in the cluster job's name (`flipchip-STEP`). The flow's own progress lines are
/// printed as a local run prints them; returns the unit's result.
pub fn run_flow_unit(
    exec: &ExecutorArgs,
    workdir: &Path,
    dir: &Path,
    spec: &serde_json::Value,
    title: String,
    limit: Duration,
    step: &str,
) -> anyhow::Result<serde_json::Value> {
    let unit = unit_of(
        title,
        dir.to_path_buf(),
        serde_json::to_string_pretty(spec)?,
        limit,
    )?;
    let executor = exec.executor(workdir, &format!("flipchip-{step}"), 1)?;
    eprintln!(
        "{step}: the flow runs as one unit ({}), log {}",
        executor.name(),
        unit.log_path().display()
    );
    let units = [unit];
    run_units(&*executor, &units, step, |_, skipped| {
        skipped.then(|| format!("{step}: taken from the earlier run"))
    })?;
    if let Ok(log) = std::fs::read_to_string(units[0].log_path()) {
        for line in log.lines() {
            eprintln!("{line}");
        }
    }
    super::unit::read_result(dir)
}

/// Runs `units` with `executor` behind a progress bar (`what` names the step), calling
/// `on_done(i, skipped)` as unit `i` finishes (it may return a line to print) and printing every
/// failure; an error listing every unit that failed on all its attempts.
pub fn run_units(
    executor: &dyn Executor,
    units: &[Unit],
    what: &str,
    mut on_done: impl FnMut(usize, bool) -> Option<String>,
) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new(units.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} ({}) {{bar:30}} {{pos}}/{{len}} {{elapsed}} {{msg}}",
            executor.name()
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut running = 0usize;
    let outcomes = executor.run(units, &mut |e| match e {
        Event::Skipped(i) => {
            bar.inc(1);
            let line = on_done(i, true).unwrap_or_else(|| {
                format!(
                    "{what}: {} already done in {}, skipped",
                    units[i].name,
                    units[i].dir.display()
                )
            });
            say(&bar, &line);
        }
        Event::Started(_) => {
            running += 1;
            bar.set_message(format!("{running} running"));
        }
        Event::Done(i) => {
            running = running.saturating_sub(1);
            bar.set_message(format!("{running} running"));
            bar.inc(1);
            if let Some(line) = on_done(i, false) {
                say(&bar, &line);
            }
        }
        Event::Failed(_, f, retry) => {
            running = running.saturating_sub(1);
            say(
                &bar,
                &format!("{what}: {f}{}", if retry { "\n  retrying" } else { "" }),
            );
            if !retry {
                bar.inc(1);
            }
        }
        Event::Note(n) => say(&bar, &n),
    });
    bar.finish_and_clear();
    let outcomes = outcomes?;
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Failed(f) => {
                Some(format!("{} ({}, log {})", f.unit, f.state, f.log.display()))
            }
            Outcome::Done { .. } => None,
        })
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} {what} step(s) failed: {}; finished ones are kept, run the same command \
             again to resume",
            failed.len(),
            units.len(),
            failed.join("; ")
        );
    }
    Ok(())
}

/// A line above the bar (`ProgressBar::println` prints nothing when stderr is not a terminal,
/// and these lines matter most in logs).
fn say(bar: &indicatif::ProgressBar, line: &str) {
    bar.suspend(|| eprintln!("{line}"));
}
