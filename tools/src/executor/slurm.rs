//! Units as Slurm jobs: one job array per submission (one task per unit), submitted with
//! `sbatch`, followed with `squeue` while queued or running and with `scontrol` (or `sacct`,
//! where accounting is kept) once a task has left the queue without its result.
//!
//! The batch script, the scheduler's own output and every unit's directory live under the work
//! directory, which must be the same path on the submitting machine and on the nodes (a shared
//! file system), like the program the units run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{prepare_all, Event, ExecError, Executor, Failure, Interrupts, Outcome, Unit};
use crate::{Run, ToolError};

/// How to get the Slurm client commands.
pub const INSTALL_SLURM: &str =
    "scripts/setup.sh --slurm (Debian's slurm-client; on a cluster, its own Slurm client)";

/// What the user says about the cluster.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    /// `--partition`, if any (else the cluster's default).
    pub partition: Option<String>,
    /// More `sbatch` arguments, as given (`--time=30`, `--account=hw`, `--mem=4G`).
    pub sbatch_args: Vec<String>,
    /// The shared work directory (absolute): batch scripts and job output go to `.slurm/`.
    pub workdir: PathBuf,
    /// Submissions more of a failing unit.
    pub retries: usize,
    /// The jobs' name (`flipchip-dse`).
    pub job_name: String,
    /// Time between two looks at the queue.
    pub poll: Duration,
    /// A `slurm.conf` for the client commands (else `SLURM_CONF` or the system's).
    pub conf: Option<PathBuf>,
}

/// The Slurm executor: see the module documentation.
#[derive(Clone, Debug)]
pub struct Slurm {
    opts: SlurmOptions,
    sbatch: PathBuf,
    squeue: PathBuf,
    scontrol: PathBuf,
    scancel: PathBuf,
    sacct: Option<PathBuf>,
}

/// Wall-clock limit of one scheduler command: a controller that does not answer in this time
/// is down.
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

/// How long `squeue` may keep failing before the run gives up (a controller restarting).
const QUEUE_PATIENCE: Duration = Duration::from_secs(300);

/// How long a task that ended COMPLETED may take to show its result: a shared file system may
/// show a file written on a node a little later here.
const RESULT_PATIENCE: Duration = Duration::from_secs(15);

impl Slurm {
    /// Finds the client commands (an error naming [`INSTALL_SLURM`] without them).
    pub fn new(opts: SlurmOptions) -> Result<Slurm, ToolError> {
        let need = |name: &str| crate::require(&[name], INSTALL_SLURM);
        Ok(Slurm {
            sbatch: need("sbatch")?,
            squeue: need("squeue")?,
            scontrol: need("scontrol")?,
            scancel: need("scancel")?,
            sacct: crate::find(&["sacct"]),
            opts,
        })
    }

    fn slurm_dir(&self) -> PathBuf {
        self.opts.workdir.join(".slurm")
    }

    /// Runs a client command; its output and whether it succeeded.
    fn client(&self, program: &Path, args: &[String]) -> Result<(String, bool), ExecError> {
        let name = program
            .file_name()
            .map_or("slurm".into(), |n| n.to_string_lossy().into_owned());
        let log = self.slurm_dir().join(format!("{name}.out"));
        let mut run = Run::new(&name, program, &log);
        if let Some(conf) = &self.opts.conf {
            run = run.env("SLURM_CONF", conf);
        }
        let ran = run
            .args(args)
            .timeout(COMMAND_LIMIT)
            .allow_failure()
            .run()?;
        Ok((ran.text(), ran.success))
    }

    fn command_line(program: &Path, args: &[String]) -> String {
        let mut s = program.display().to_string();
        for a in args {
            s.push(' ');
            s.push_str(&crate::quote(std::ffi::OsStr::new(a)));
        }
        s
    }

    /// Writes the batch script for `units` (task `i` runs unit `i`).
    fn write_script(&self, units: &[Unit]) -> Result<PathBuf, ExecError> {
        let mut s = format!(
            "#!/bin/sh\n# {}: one array task per unit; task i runs unit i in its directory.\n\
             case \"$SLURM_ARRAY_TASK_ID\" in\n",
            self.opts.job_name
        );
        for (i, u) in units.iter().enumerate() {
            let dir = crate::quote(u.dir.as_os_str());
            // `.started` dates the start, for the submission overhead; the unit's own log
            // takes everything its command prints.
            s.push_str(&format!(
                "{i}) cd {dir} || exit 97\n   date +%s.%N > .started 2>/dev/null\n   exec {} > {} 2>&1 ;;\n",
                u.command_line(),
                Unit::LOG
            ));
        }
        s.push_str(
            "*) echo \"no unit for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 98 ;;\nesac\n",
        );
        let path = self.slurm_dir().join(format!("{}.sh", self.opts.job_name));
        super::write_atomic(&path, s.as_bytes()).map_err(|e| ExecError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(path)
    }

    fn scheduler_log(&self, job: u64, task: usize) -> PathBuf {
        self.slurm_dir()
            .join(format!("{}-{job}_{task}.out", self.opts.job_name))
    }

    /// Submits tasks `tasks` of `script` as one array; the job id.
    fn submit(&self, script: &Path, tasks: &BTreeSet<usize>) -> Result<u64, ExecError> {
        let list: Vec<String> = tasks.iter().map(usize::to_string).collect();
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name={}", self.opts.job_name),
            format!("--array={}", list.join(",")),
            format!(
                "--output={}",
                self.slurm_dir()
                    .join(format!("{}-%A_%a.out", self.opts.job_name))
                    .display()
            ),
            format!("--chdir={}", self.opts.workdir.display()),
        ];
        if let Some(p) = &self.opts.partition {
            args.push(format!("--partition={p}"));
        }
        args.extend(self.opts.sbatch_args.iter().cloned());
        args.push(script.display().to_string());
        let (text, ok) = self.client(&self.sbatch, &args)?;
        let first = text.lines().map(str::trim).find(|l| !l.is_empty());
        // `--parsable` prints `jobid` or `jobid;cluster`.
        match first.and_then(|l| l.split(';').next()?.parse::<u64>().ok()) {
            Some(id) if ok => Ok(id),
            _ => Err(ExecError::Scheduler {
                command: Self::command_line(&self.sbatch, &args),
                // The usual cause off a cluster's login nodes: no slurm.conf to find the
                // controller with.
                message: format!(
                    "submission failed (is this machine a client of the cluster? SLURM_CONF \
                     names its slurm.conf; for scripts/slurm-local.sh, export what its start \
                     printed): {}",
                    text.trim()
                ),
            }),
        }
    }

    /// The tasks of `job` still in the queue, with their state (`PENDING`, `RUNNING`, ...);
    /// `None` when `squeue` itself failed.
    fn queued(&self, job: u64) -> Result<Option<BTreeMap<usize, String>>, ExecError> {
        let args = vec![
            "-h".to_string(),
            "-r".to_string(),
            "-j".to_string(),
            job.to_string(),
            "-o".to_string(),
            "%K %T".to_string(),
        ];
        let (text, ok) = self.client(&self.squeue, &args)?;
        if !ok {
            // A job that has left the controller's memory altogether is not an outage.
            return Ok(text.contains("Invalid job id").then(BTreeMap::new));
        }
        Ok(Some(
            text.lines()
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    Some((w.next()?.parse().ok()?, w.next()?.to_string()))
                })
                .collect(),
        ))
    }

    /// How task `task` of `job` ended, from `scontrol` (finished jobs stay there for the
    /// cluster's MinJobAge) or else `sacct`.
    fn final_state(&self, job: u64, task: usize) -> Result<String, ExecError> {
        let id = format!("{job}_{task}");
        let (text, ok) = self.client(
            &self.scontrol,
            &["-o".into(), "show".into(), "job".into(), id.clone()],
        )?;
        if ok {
            let field = |k: &str| {
                text.split_whitespace()
                    .find_map(|w| w.strip_prefix(k))
                    .map(str::to_string)
            };
            if let Some(state) = field("JobState=") {
                let mut s = state;
                if let Some(code) = field("ExitCode=") {
                    s.push_str(&format!(" (exit code {code}"));
                    match field("Reason=") {
                        Some(r) if r != "None" => s.push_str(&format!(", reason {r})")),
                        _ => s.push(')'),
                    }
                }
                return Ok(s);
            }
        }
        if let Some(sacct) = &self.sacct {
            let args = ["-n", "-X", "-P", "-j", &id, "-o", "State,ExitCode"].map(str::to_string);
            let (text, ok) = self.client(sacct, &args)?;
            if let Some((state, code)) = text.lines().next().and_then(|l| l.split_once('|')) {
                if ok && !state.trim().is_empty() {
                    return Ok(format!("{} (exit code {})", state.trim(), code.trim()));
                }
            }
        }
        Ok(
            "UNKNOWN (the job left the queue without a result, and neither scontrol nor sacct \
            knows it any more)"
                .to_string(),
        )
    }

    fn cancel(&self, jobs: &[u64]) -> String {
        if jobs.is_empty() {
            return "nothing was left in the queue".to_string();
        }
        let ids: Vec<String> = jobs.iter().map(u64::to_string).collect();
        match self.client(&self.scancel, &ids) {
            Ok((_, true)) => format!("cancelled Slurm job(s) {} with scancel", ids.join(", ")),
            Ok((text, false)) => format!(
                "scancel {} failed ({}); cancel them by hand",
                ids.join(" "),
                text.trim()
            ),
            Err(e) => format!(
                "scancel {} failed ({e}); cancel them by hand",
                ids.join(" ")
            ),
        }
    }
}

fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One submitted array and its tasks not concluded yet.
struct Submitted {
    job: u64,
    at: SystemTime,
    live: BTreeSet<usize>,
}

impl Executor for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn run(
        &self,
        units: &[Unit],
        events: &mut dyn FnMut(Event),
    ) -> Result<Vec<Outcome>, ExecError> {
        let dir = self.slurm_dir();
        std::fs::create_dir_all(&dir).map_err(|e| ExecError::Io {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        let mut outcomes = prepare_all(units, events)?;
        let todo: BTreeSet<usize> = (0..units.len())
            .filter(|&i| outcomes[i].is_none())
            .collect();
        if todo.is_empty() {
            return Ok(outcomes.into_iter().flatten().collect());
        }
        let script = self.write_script(units)?;
        let interrupts = Interrupts::catch();
        let mut attempts = vec![0usize; units.len()];
        let mut started = vec![false; units.len()];
        let mut overheads = Vec::new();
        let mut jobs: Vec<Submitted> = Vec::new();
        let submit = |tasks: BTreeSet<usize>,
                      jobs: &mut Vec<Submitted>,
                      attempts: &mut Vec<usize>,
                      events: &mut dyn FnMut(Event)|
         -> Result<(), ExecError> {
            for &i in &tasks {
                attempts[i] += 1;
                let _ = std::fs::remove_file(units[i].dir.join(".started"));
            }
            let job = self.submit(&script, &tasks)?;
            events(Event::Note(format!(
                "slurm: submitted job array {job} ({} task{})",
                tasks.len(),
                if tasks.len() == 1 { "" } else { "s" }
            )));
            jobs.push(Submitted {
                job,
                at: SystemTime::now(),
                live: tasks,
            });
            Ok(())
        };
        let result = (|| -> Result<(), ExecError> {
            submit(todo, &mut jobs, &mut attempts, events)?;
            let mut queue_ok = Instant::now();
            loop {
                if interrupts.interrupted() {
                    return Err(ExecError::Interrupted {
                        cancelled: String::new(),
                    });
                }
                let mut retry = BTreeSet::new();
                for s in jobs.iter_mut().filter(|s| !s.live.is_empty()) {
                    let Some(queued) = self.queued(s.job)? else {
                        if queue_ok.elapsed() > QUEUE_PATIENCE {
                            return Err(ExecError::Scheduler {
                                command: format!("{} -j {}", self.squeue.display(), s.job),
                                message: format!(
                                    "failed for {} s; see {}",
                                    QUEUE_PATIENCE.as_secs(),
                                    self.slurm_dir().join("squeue.out").display()
                                ),
                            });
                        }
                        continue;
                    };
                    queue_ok = Instant::now();
                    for i in s.live.clone() {
                        let unit = &units[i];
                        match queued.get(&i).map(String::as_str) {
                            Some("PENDING") | Some("CONFIGURING") => continue,
                            Some(_) => {
                                if !started[i] {
                                    started[i] = true;
                                    events(Event::Started(i));
                                }
                                continue;
                            }
                            None => {}
                        }
                        // Out of the queue: finished, one way or another.
                        s.live.remove(&i);
                        if !started[i] {
                            started[i] = true;
                            events(Event::Started(i));
                        }
                        if let Some(t) = std::fs::read_to_string(unit.dir.join(".started"))
                            .ok()
                            .and_then(|t| t.trim().parse::<f64>().ok())
                        {
                            overheads.push(t - epoch_seconds(s.at));
                        }
                        let mut state = None;
                        let waited = Instant::now();
                        while !unit.finished() {
                            let st = match &state {
                                Some(st) => st,
                                None => state.insert(self.final_state(s.job, i)?),
                            };
                            if !st.starts_with("COMPLETED") || waited.elapsed() > RESULT_PATIENCE {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(500));
                        }
                        if unit.finished() {
                            events(Event::Done(i));
                            outcomes[i] = Some(Outcome::Done { skipped: false });
                            continue;
                        }
                        let mut st = state.unwrap_or_default();
                        if st.starts_with("COMPLETED") {
                            st = format!("{st}, but no {} was written", Unit::RESULT);
                        }
                        let mut f = Failure::new(unit, st, attempts[i]);
                        f.job = Some(format!("{}_{i}", s.job));
                        f.scheduler_log = Some(self.scheduler_log(s.job, i));
                        let again = attempts[i] <= self.opts.retries;
                        events(Event::Failed(i, &f, again));
                        if again {
                            started[i] = false;
                            retry.insert(i);
                        } else {
                            outcomes[i] = Some(Outcome::Failed(f));
                        }
                    }
                }
                if !retry.is_empty() {
                    submit(retry, &mut jobs, &mut attempts, events)?;
                }
                if jobs.iter().all(|s| s.live.is_empty()) {
                    return Ok(());
                }
                // Short naps while the first tasks start, then the cluster's pace.
                std::thread::sleep(self.opts.poll);
            }
        })();
        if let Err(e) = result {
            let live: Vec<u64> = jobs
                .iter()
                .filter(|s| !s.live.is_empty())
                .map(|s| s.job)
                .collect();
            let cancelled = self.cancel(&live);
            return Err(match e {
                ExecError::Interrupted { .. } => ExecError::Interrupted { cancelled },
                other => {
                    events(Event::Note(format!("slurm: {cancelled}")));
                    other
                }
            });
        }
        if !overheads.is_empty() {
            let mean = overheads.iter().sum::<f64>() / overheads.len() as f64;
            let max = overheads.iter().copied().fold(f64::MIN, f64::max);
            let min = overheads.iter().copied().fold(f64::MAX, f64::min);
            // The minimum is the scheduler's own overhead; the rest is waiting for a free CPU.
            events(Event::Note(format!(
                "slurm: {} job(s); submission to start: min {min:.2} s, mean {mean:.2} s, \
                 max {max:.2} s",
                overheads.len()
            )));
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every unit concluded"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::local_cluster::LocalCluster;
    use super::super::tests::{scratch, sh_unit};
    use super::*;

    fn executor(cluster: &LocalCluster, workdir: &Path, retries: usize) -> Slurm {
        Slurm::new(SlurmOptions {
            partition: Some("local".into()),
            sbatch_args: vec!["--time=5".into()],
            workdir: workdir.to_path_buf(),
            retries,
            job_name: "flipchip-test".into(),
            poll: Duration::from_millis(200),
            conf: Some(cluster.conf().to_path_buf()),
        })
        .unwrap()
    }

    /// One cluster for both checks: starting one takes a second or two, and tests run in
    /// parallel.
    #[test]
    fn jobs_run_fail_retry_cancel_and_resume_on_a_local_cluster() {
        let d = scratch("slurm");
        let Some(cluster) = LocalCluster::start(&d.join("cluster")) else {
            return;
        };
        let work = d.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let units = vec![
            sh_unit(&work, "ok", "1", "echo done > result.json"),
            sh_unit(
                &work,
                "flaky",
                "2",
                "if [ -f tried ]; then echo ok > result.json; else touch tried; exit 3; fi",
            ),
            sh_unit(&work, "bad", "3", "echo yosys not found; exit 1"),
            // Cancelled from outside while it runs (here by itself): another state than FAILED.
            sh_unit(
                &work,
                "cancelled",
                "3c",
                "scancel ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}; sleep 60",
            ),
        ];
        let ex = executor(&cluster, &work, 1);
        let mut notes = Vec::new();
        let out = ex
            .run(&units, &mut |e| notes.push(format!("{e:?}")))
            .unwrap();
        assert_eq!(out[0], Outcome::Done { skipped: false }, "{notes:?}");
        assert_eq!(out[1], Outcome::Done { skipped: false }, "{notes:?}");
        let Outcome::Failed(f) = &out[2] else {
            panic!("{out:?}")
        };
        assert!(f.state.starts_with("FAILED (exit code 1:0"), "{f}");
        assert_eq!(f.attempts, 2);
        assert!(f.job.as_deref().is_some_and(|j| j.ends_with("_2")), "{f}");
        assert!(f.scheduler_log.as_ref().is_some_and(|p| p.is_file()), "{f}");
        assert!(f.to_string().contains("yosys not found"), "{f}");
        let Outcome::Failed(f) = &out[3] else {
            panic!("{out:?}")
        };
        assert!(f.state.starts_with("CANCELLED"), "{f}");
        assert_eq!(f.attempts, 2);
        assert!(
            notes.iter().any(|n| n.contains("submission to start")),
            "{notes:?}"
        );

        // Interrupted while two slow units run: both are cancelled, the finished one is kept
        // and skipped by the next run. `&&`: a shell that outlives its killed `sleep` for a
        // moment must not write the result the cancellation denied it.
        let units = vec![
            sh_unit(&work, "fast", "4", "echo done > result.json"),
            sh_unit(&work, "slow1", "5", "sleep 120 && echo done > result.json"),
            sh_unit(&work, "slow2", "6", "sleep 120 && echo done > result.json"),
        ];
        let fast = units[0].result_path();
        let interrupter = std::thread::spawn(move || {
            let t = Instant::now();
            while !fast.is_file() && t.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(100));
            }
            std::thread::sleep(Duration::from_millis(500));
            super::super::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let t = Instant::now();
        let e = ex.run(&units, &mut |_| {}).unwrap_err();
        interrupter.join().unwrap();
        assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
        let text = e.to_string();
        assert!(
            matches!(e, ExecError::Interrupted { .. }) && text.contains("cancelled Slurm job"),
            "{text}"
        );
        let queue = ex
            .client(&ex.squeue, &["-h".into(), "-o".into(), "%i %T".into()])
            .unwrap()
            .0;
        assert!(
            queue
                .lines()
                .all(|l| !l.contains("RUNNING") && !l.contains("PENDING")),
            "still queued after the interrupt: {queue}"
        );
        let quick: Vec<Unit> = units
            .into_iter()
            .map(|u| Unit {
                args: vec!["-c".into(), "echo done > result.json".into()],
                ..u
            })
            .collect();
        let out = ex.run(&quick, &mut |_| {}).unwrap();
        assert_eq!(out[0], Outcome::Done { skipped: true });
        assert_eq!(out[1], Outcome::Done { skipped: false });
        assert_eq!(out[2], Outcome::Done { skipped: false });
        drop(cluster);
        let _ = std::fs::remove_dir_all(&d);
    }
}
