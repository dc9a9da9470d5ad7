//! Where the heavy steps run: on this machine ([`Local`]) or as jobs on a Slurm cluster
//! ([`Slurm`]).
//!
//! A [`Unit`] of work is one command line (usually the flipchip binary itself, running one
//! synthesis or one bitstream build) and a directory that holds its input ([`Unit::SPEC`], what
//! the unit computes), its log ([`Unit::LOG`]) and its result ([`Unit::RESULT`], written
//! atomically by the unit with [`write_atomic`]). A unit whose directory already holds a result
//! for the same spec is finished: running the same units again skips it, so an interrupted sweep
//! resumes where it stopped and never loses a finished result. A changed spec (another model,
//! other options) discards the old result before the unit runs again.
//!
//! Both executors report the same [`Event`]s, so a command shows the same progress whichever
//! runs its units, and return one [`Outcome`] per unit: done, or failed with the log to read and
//! how it ended (the exit status here, the Slurm job state there).

mod local;
pub mod local_cluster;
mod slurm;

pub use local::Local;
pub use slurm::{Slurm, SlurmOptions, INSTALL_SLURM};

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One unit of work: see the module documentation.
#[derive(Clone, Debug)]
pub struct Unit {
    /// For people: what the unit does (`synth candidate 3 (8x1 4x16)`).
    pub name: String,
    /// Its directory: input, log and result. Absolute, and shared with the nodes under Slurm.
    pub dir: PathBuf,
    /// What the unit computes (written to [`Unit::SPEC`]); a result counts only for the spec
    /// it was made from.
    pub spec: String,
    /// The program to run.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Wall-clock limit of one attempt on this machine (a cluster uses its own limits, e.g.
    /// `--time` among the `sbatch` arguments).
    pub limit: Duration,
}

impl Unit {
    /// The file holding the unit's spec.
    pub const SPEC: &'static str = "unit.json";
    /// The file a finished unit leaves.
    pub const RESULT: &'static str = "result.json";
    /// The unit's own log (stdout and stderr of its command).
    pub const LOG: &'static str = "unit.log";

    /// Its result file.
    pub fn result_path(&self) -> PathBuf {
        self.dir.join(Self::RESULT)
    }

    /// Its log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(Self::LOG)
    }

    /// True when its directory holds a result.
    pub fn finished(&self) -> bool {
        self.result_path().is_file()
    }

    /// Makes the directory and writes the spec; returns whether a result for this very spec is
    /// already there (the unit need not run). A result left by another spec is removed first.
    pub fn prepare(&self) -> Result<bool, ExecError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e: std::io::Error| ExecError::Io {
                path,
                message: e.to_string(),
            }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let spec_path = self.dir.join(Self::SPEC);
        let same = std::fs::read_to_string(&spec_path).is_ok_and(|s| s == self.spec);
        if same && self.finished() {
            return Ok(true);
        }
        if !same {
            match std::fs::remove_file(self.result_path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io(&self.result_path())(e))
                }
                _ => {}
            }
            write_atomic(&spec_path, self.spec.as_bytes()).map_err(io(&spec_path))?;
        }
        Ok(false)
    }

    /// The command line, for people and for batch scripts.
    pub fn command_line(&self) -> String {
        let mut s = crate::quote(self.program.as_os_str());
        for a in &self.args {
            s.push(' ');
            s.push_str(&crate::quote(a));
        }
        s
    }
}

/// Writes `path` so that a reader sees either the old file or the whole new one, never a part:
/// a temporary file in the same directory, synced, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("no file name"))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// How a unit that did not finish ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// The unit's name.
    pub unit: String,
    /// How it ended: `exit status: 1` here, the Slurm job state (`FAILED`, `CANCELLED`,
    /// `TIMEOUT`, `NODE_FAIL`, `OUT_OF_MEMORY`, ...) with its exit code on a cluster.
    pub state: String,
    /// The unit's log.
    pub log: PathBuf,
    /// Where the scheduler wrote what the job printed outside the unit's command (Slurm only).
    pub scheduler_log: Option<PathBuf>,
    /// The job (`1234_5`), under Slurm.
    pub job: Option<String>,
    /// How many times it ran.
    pub attempts: usize,
    /// The last lines of its log.
    pub tail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.unit)?;
        if let Some(job) = &self.job {
            write!(f, "Slurm job {job} ")?;
        }
        write!(
            f,
            "{} after {} attempt{}; log {}",
            self.state,
            self.attempts,
            if self.attempts == 1 { "" } else { "s" },
            self.log.display()
        )?;
        if let Some(s) = &self.scheduler_log {
            write!(f, " (job output {})", s.display())?;
        }
        if !self.tail.trim().is_empty() {
            write!(f, "; last lines:\n{}", self.tail)?;
        }
        Ok(())
    }
}

impl Failure {
    /// A failure of `unit` in `state`, with the tail of its log.
    pub fn new(unit: &Unit, state: String, attempts: usize) -> Failure {
        Failure {
            unit: unit.name.clone(),
            state,
            log: unit.log_path(),
            scheduler_log: None,
            job: None,
            attempts,
            tail: crate::tail(
                &std::fs::read_to_string(unit.log_path()).unwrap_or_default(),
                12,
            ),
        }
    }
}

/// How one unit ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It left its result (now, or in an earlier run: `skipped`).
    Done {
        /// Finished before this run started.
        skipped: bool,
    },
    /// It failed on every attempt.
    Failed(Failure),
}

/// What an executor tells its caller while units run, in the order it happens.
#[derive(Debug)]
pub enum Event<'a> {
    /// Unit `i` was already finished.
    Skipped(usize),
    /// Unit `i` started (a Slurm job: the scheduler started it).
    Started(usize),
    /// Unit `i` left its result.
    Done(usize),
    /// Unit `i` failed; `retry` says whether it will run again.
    Failed(usize, &'a Failure, bool),
    /// Anything else worth a line (job ids, submission overhead).
    Note(String),
}

/// Why an executor could not run its units at all (a unit's own failure is an [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A file in the work directory.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A scheduler command is missing or failed.
    #[error(transparent)]
    Tool(#[from] crate::ToolError),
    /// The scheduler answered something unexpected.
    #[error("{command}: {message}")]
    Scheduler {
        /// The command line.
        command: String,
        /// What was wrong.
        message: String,
    },
    /// Ctrl-C (or SIGTERM): what had been submitted was cancelled.
    #[error(
        "interrupted; {cancelled}; finished results are kept, run the same command again to resume"
    )]
    Interrupted {
        /// What was cancelled.
        cancelled: String,
    },
}

/// Runs units: see the module documentation.
pub trait Executor {
    /// `local` or `slurm`.
    fn name(&self) -> &'static str;

    /// Runs every unit that is not finished yet (after [`Unit::prepare`]), `retries` more times
    /// when it fails, and returns one outcome per unit, in order.
    fn run(&self, units: &[Unit], events: &mut dyn FnMut(Event))
        -> Result<Vec<Outcome>, ExecError>;
}

/// Prepares every unit: `Some(Done{skipped})` for those already finished.
fn prepare_all(
    units: &[Unit],
    events: &mut dyn FnMut(Event),
) -> Result<Vec<Option<Outcome>>, ExecError> {
    let mut outcomes = Vec::with_capacity(units.len());
    for (i, u) in units.iter().enumerate() {
        if u.prepare()? {
            events(Event::Skipped(i));
            outcomes.push(Some(Outcome::Done { skipped: true }));
        } else {
            outcomes.push(None);
        }
    }
    Ok(outcomes)
}

/// Set by SIGINT or SIGTERM while an [`Interrupts`] guard lives.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Catches Ctrl-C and SIGTERM while it lives, so that a waiting executor can cancel what it
/// submitted before it exits; the previous handlers come back when it is dropped.
pub struct Interrupts {
    previous: Vec<(libc::c_int, libc::sighandler_t)>,
}

impl Interrupts {
    /// Starts catching.
    pub fn catch() -> Interrupts {
        INTERRUPTED.store(false, Ordering::SeqCst);
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        let previous = [libc::SIGINT, libc::SIGTERM]
            .into_iter()
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            .map(|sig| (sig, unsafe { libc::signal(sig, handler) }))
            .collect();
        Interrupts { previous }
    }

    /// True once a signal came.
    pub fn interrupted(&self) -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        for &(sig, h) in &self.previous {
            // SAFETY: restores the handler that was installed before.
            unsafe {
                libc::signal(sig, h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("flipchip-exec-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A unit that runs `script` in `sh`, in `dir/name`.
    pub(super) fn sh_unit(dir: &Path, name: &str, spec: &str, script: &str) -> Unit {
        Unit {
            name: name.to_string(),
            dir: dir.join(name),
            spec: spec.to_string(),
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            limit: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_result_counts_only_for_its_spec() {
        let d = scratch("spec");
        let u = sh_unit(&d, "a", "{\"n\":1}", "true");
        assert!(!u.prepare().unwrap());
        write_atomic(&u.result_path(), b"42").unwrap();
        assert!(u.prepare().unwrap(), "same spec, result kept");
        assert_eq!(std::fs::read_to_string(u.result_path()).unwrap(), "42");
        let other = Unit {
            spec: "{\"n\":2}".into(),
            ..u.clone()
        };
        assert!(!other.prepare().unwrap(), "another spec must run again");
        assert!(!other.finished(), "the old result is gone");
        assert_eq!(
            std::fs::read_to_string(u.dir.join(Unit::SPEC)).unwrap(),
            "{\"n\":2}"
        );
        // No temporary file is left beside an atomic write.
        let names: Vec<_> = std::fs::read_dir(&u.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn command_lines_are_quoted_for_a_shell() {
        let u = sh_unit(Path::new("/tmp"), "a", "", "echo 'x' y");
        assert_eq!(u.command_line(), "/bin/sh -c 'echo '\\''x'\\'' y'");
    }
}
