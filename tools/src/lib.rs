//! Finding, versioning and running the external tools flipchip uses: Yosys, nextpnr and the
//! bitstream packers, Verilator (and the `make` and C++ compiler behind it), Icarus Verilog.
//!
//! One way to run a tool, after Cargo's `ProcessBuilder`: [`Run`] takes the step, the program,
//! its arguments and working directory, writes everything the tool prints to a log file, stops
//! it after a wall-clock limit or when it stops writing to that log, and turns every failure
//! into a [`ToolError`] that names the step, the tool, the log and what happened.
//!
//! Tools are looked up on `PATH` and then in the project's `.venv-fpga/bin` ([`search_dirs`]),
//! where `scripts/setup.sh` puts the YoWASP builds from PyPI.

pub mod executor;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The environment variable under which a test whose tool is missing fails instead of skipping
/// (`scripts/test.sh` and CI set it to `1`), so that a machine without a tool can never show
/// green.
pub const REQUIRE_TOOLS: &str = "FLIPCHIP_REQUIRE_TOOLS";

/// The environment variable that overrides every step's wall-clock limit, in seconds.
pub const TIMEOUT_ENV: &str = "FLIPCHIP_TOOL_TIMEOUT";

/// The command that installs the iCE40 tools, Verilator and Icarus.
pub const INSTALL: &str = "scripts/setup.sh";

/// The command that installs the ECP5 tools (YoWASP's Yosys and nextpnr-ecp5).
pub const INSTALL_ECP5: &str = "scripts/setup.sh --ecp5";

/// Default wall-clock limits per kind of step. Generous on purpose: they catch a hung tool,
/// not a slow one (place and route of a large ECP5 design takes up to an hour).
pub mod limits {
    use std::time::Duration;

    /// `tool --version` and the like.
    pub const VERSION: Duration = Duration::from_secs(60);
    /// Logic synthesis (Yosys).
    pub const SYNTH: Duration = Duration::from_secs(2 * 3600);
    /// Place and route (nextpnr).
    pub const PNR: Duration = Duration::from_secs(4 * 3600);
    /// Bitstream packing (icepack, ecppack).
    pub const PACK: Duration = Duration::from_secs(15 * 60);
    /// Lint-only runs.
    pub const LINT: Duration = Duration::from_secs(15 * 60);
    /// Compiling a simulation (Verilator and make, iverilog).
    pub const COMPILE: Duration = Duration::from_secs(3600);
    /// Running a compiled simulation.
    pub const SIMULATE: Duration = Duration::from_secs(4 * 3600);
}

/// Why a tool could not be found or run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// None of the candidate executables is installed.
    #[error(
        "{tool} not found (tried {tried} on PATH and in .venv-fpga/bin); install it with {install}"
    )]
    NotFound {
        /// The role (`yosys`, `nextpnr`, `verilator`).
        tool: String,
        /// The executable names tried.
        tried: String,
        /// How to install it.
        install: String,
    },
    /// The tool exists but could not be started.
    #[error("{step}: cannot run {tool}: {message}")]
    Spawn {
        /// The step.
        step: String,
        /// The executable.
        tool: String,
        /// The operating system's reason.
        message: String,
    },
    /// The tool exited with a failure status.
    #[error("{step}: {tool} failed ({status}) after {seconds:.1} s; see {}; last lines:\n{tail}", log.display())]
    Failed {
        /// The step.
        step: String,
        /// The executable.
        tool: String,
        /// How it ended.
        status: ExitStatus,
        /// Its running time.
        seconds: f64,
        /// The last lines of its log.
        tail: String,
        /// Its log.
        log: PathBuf,
    },
    /// The tool ran longer than its wall-clock limit and was stopped.
    #[error("{step}: {tool} stopped after {seconds:.0} s, its limit (allow longer with {TIMEOUT_ENV}=SECONDS or the command's timeout option; last line: \"{last}\"); see {}", log.display())]
    TimedOut {
        /// The step.
        step: String,
        /// The executable.
        tool: String,
        /// Seconds it ran.
        seconds: f64,
        /// The log's last line.
        last: String,
        /// Its log.
        log: PathBuf,
    },
    /// The tool wrote nothing to its log for too long and was stopped.
    #[error("{step}: {tool} wrote nothing for {minutes} min and was stopped (last line: \"{last}\"); see {}", log.display())]
    Stalled {
        /// The step.
        step: String,
        /// The executable.
        tool: String,
        /// The limit, in minutes.
        minutes: f64,
        /// The log's last line.
        last: String,
        /// Its log.
        log: PathBuf,
    },
    /// [`TIMEOUT_ENV`] is not a number of seconds.
    #[error("{TIMEOUT_ENV}={value}: expected a number of seconds")]
    BadTimeout {
        /// The value found.
        value: String,
    },
    /// The log file could not be written or read.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl ToolError {
    /// True when the tool is simply not installed (a test may then skip).
    pub fn is_missing(&self) -> bool {
        matches!(self, ToolError::NotFound { .. })
    }

    /// The log the tool wrote, if it ran.
    pub fn log(&self) -> Option<&Path> {
        match self {
            ToolError::Failed { log, .. }
            | ToolError::TimedOut { log, .. }
            | ToolError::Stalled { log, .. } => Some(log),
            _ => None,
        }
    }
}

/// True when [`REQUIRE_TOOLS`] is set to `1`.
pub fn tools_required() -> bool {
    std::env::var(REQUIRE_TOOLS).is_ok_and(|v| v == "1")
}

/// What a test calls when a tool it needs is missing (`why` names the tool and how to install
/// it): a panic under [`REQUIRE_TOOLS`], else a message saying the test is skipped. The caller
/// returns when this does.
pub fn tool_missing(why: &str) {
    if tools_required() {
        panic!("{why} ({REQUIRE_TOOLS}=1: tests must not skip)");
    }
    eprintln!("SKIP: {why}");
}

/// For tests: the tool found for `candidates`, or `None` after [`tool_missing`] (which panics
/// under [`REQUIRE_TOOLS`]).
pub fn for_test(candidates: &[&str], install: &str) -> Option<PathBuf> {
    match require(candidates, install) {
        Ok(p) => Some(p),
        Err(e) => {
            tool_missing(&e.to_string());
            None
        }
    }
}

/// Folders searched for tools after PATH: `$FLIPCHIP_FPGA_VENV/bin`, `.venv-fpga/bin` in the
/// current directory or any parent, and in the checkout flipchip was built from.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(v) = std::env::var_os("FLIPCHIP_FPGA_VENV") {
        dirs.push(PathBuf::from(v).join("bin"));
    }
    if let Ok(cwd) = std::env::current_dir() {
        for a in cwd.ancestors() {
            dirs.push(a.join(".venv-fpga/bin"));
        }
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-fpga/bin"));
    dirs
}

/// The first of `candidates` found on PATH or in [`search_dirs`] (a candidate with a `/` is
/// taken as a path).
pub fn find<S: AsRef<str>>(candidates: &[S]) -> Option<PathBuf> {
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let extra = search_dirs();
    for name in candidates.iter().map(AsRef::as_ref) {
        if name.contains('/') {
            if Path::new(name).is_file() {
                return Some(PathBuf::from(name));
            }
            continue;
        }
        for d in path_dirs.iter().chain(extra.iter()) {
            let p = d.join(name);
            if p.is_file() {
                // Tidy `..` away, but keep the file name: symlinked tools may look at argv[0].
                return Some(d.canonicalize().map_or(p, |d| d.join(name)));
            }
        }
    }
    None
}

/// [`find`], or [`ToolError::NotFound`] naming the candidates and `install`.
pub fn require<S: AsRef<str>>(candidates: &[S], install: &str) -> Result<PathBuf, ToolError> {
    find(candidates).ok_or_else(|| {
        let names: Vec<&str> = candidates.iter().map(AsRef::as_ref).collect();
        ToolError::NotFound {
            tool: names.first().copied().unwrap_or("tool").to_string(),
            tried: names.join(", "),
            install: install.to_string(),
        }
    })
}

/// The first non-empty line `tool flag` prints, but for YoWASP's "Preparing to run" notice
/// (some tools, like `iverilog -V` without input
/// files, exit non-zero but still print their version). Remembered for the life of the
/// process (`verilator --version` is a Perl script that takes a while).
pub fn version(tool: &Path, flag: &str) -> Result<String, ToolError> {
    version_line(tool, flag).map(|(line, _)| line)
}

/// [`version`] for tools whose version flag must succeed: a tool that exits non-zero (one
/// without a version flag, printing its usage) is an error.
pub fn version_strict(tool: &Path, flag: &str) -> Result<String, ToolError> {
    match version_line(tool, flag)? {
        (line, true) => Ok(line),
        (line, false) => Err(ToolError::Spawn {
            step: "version".into(),
            tool: tool.display().to_string(),
            message: format!("`{flag}` failed: {line}"),
        }),
    }
}

/// The version line and whether the tool exited successfully, remembered per tool and flag.
fn version_line(tool: &Path, flag: &str) -> Result<(String, bool), ToolError> {
    type Seen = (PathBuf, String, String, bool);
    static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());
    let seen = |s: &Seen| s.0 == tool && s.1 == flag;
    if let Some(s) = SEEN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|s| seen(s))
    {
        return Ok((s.2.clone(), s.3));
    }
    static N: Mutex<u64> = Mutex::new(0);
    let n = {
        let mut n = N.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    };
    let log = std::env::temp_dir().join(format!("flipchip-version-{}-{n}.log", std::process::id()));
    let ran = Run::new("version", tool, &log)
        .arg(flag)
        .timeout(limits::VERSION)
        .allow_failure()
        .run();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let success = ran?.success;
    let line = text
        .lines()
        .map(str::trim)
        // YoWASP's tools announce compiling their WebAssembly on a first run.
        .find(|l| !l.is_empty() && !l.starts_with("Preparing to run "))
        .ok_or_else(|| ToolError::Spawn {
            step: "version".into(),
            tool: tool.display().to_string(),
            message: format!("`{flag}` printed nothing"),
        })?
        .to_string();
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).push((
        tool.to_path_buf(),
        flag.to_string(),
        line.clone(),
        success,
    ));
    Ok((line, success))
}

/// The wall-clock limit from [`TIMEOUT_ENV`], if set.
pub fn timeout_from_env() -> Result<Option<Duration>, ToolError> {
    match std::env::var(TIMEOUT_ENV) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| Some(Duration::from_secs_f64(s)))
            .ok_or(ToolError::BadTimeout { value: v }),
        _ => Ok(None),
    }
}

/// One run of a tool: see the crate documentation.
#[derive(Clone, Debug)]
pub struct Run {
    step: String,
    program: PathBuf,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    log: PathBuf,
    timeout: Option<Duration>,
    default_timeout: Duration,
    stall: Option<Duration>,
    allow_failure: bool,
}

/// What a finished run left.
#[derive(Clone, Debug)]
pub struct Ran {
    /// Its wall-clock time.
    pub seconds: f64,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
    /// Whether it exited successfully (only `false` after [`Run::allow_failure`]).
    pub success: bool,
}

impl Ran {
    /// The whole log.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Run {
    /// `program` for `step`, with all its output written to `log` (relative to the working
    /// directory if one is set) and the default wall-clock limit [`limits::COMPILE`].
    pub fn new(step: &str, program: impl AsRef<Path>, log: impl AsRef<Path>) -> Run {
        Run {
            step: step.to_string(),
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            dir: None,
            env: Vec::new(),
            log: log.as_ref().to_path_buf(),
            timeout: None,
            default_timeout: limits::COMPILE,
            stall: None,
            allow_failure: false,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Run {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Runs in `dir`.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Run {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Sets an environment variable for the tool.
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Run {
        self.env
            .push((k.as_ref().to_os_string(), v.as_ref().to_os_string()));
        self
    }

    /// The step's default limit (one of [`limits`]); [`TIMEOUT_ENV`] overrides it.
    pub fn default_timeout(mut self, limit: Duration) -> Run {
        self.default_timeout = limit;
        self
    }

    /// A limit that neither the default nor [`TIMEOUT_ENV`] overrides (a command-line flag).
    pub fn timeout(mut self, limit: Duration) -> Run {
        self.timeout = Some(limit);
        self
    }

    /// [`Run::timeout`] when `limit` is `Some`.
    pub fn timeout_opt(self, limit: Option<Duration>) -> Run {
        match limit {
            Some(l) => self.timeout(l),
            None => self,
        }
    }

    /// Stops the tool when its log has not grown for `stall` (`None`: never).
    pub fn stall(mut self, stall: Option<Duration>) -> Run {
        self.stall = stall;
        self
    }

    /// A non-zero exit is reported in [`Ran::success`] instead of as an error.
    pub fn allow_failure(mut self) -> Run {
        self.allow_failure = true;
        self
    }

    /// The log's path.
    pub fn log_path(&self) -> PathBuf {
        match &self.dir {
            Some(d) => d.join(&self.log),
            None => self.log.clone(),
        }
    }

    /// The command line, for people.
    pub fn command_line(&self) -> String {
        let mut s = quote(self.program.as_os_str());
        for a in &self.args {
            s.push(' ');
            s.push_str(&quote(a));
        }
        if let Some(d) = &self.dir {
            s.push_str(&format!(" (in {})", d.display()));
        }
        s
    }

    /// The limit this run gets.
    pub fn limit(&self) -> Result<Duration, ToolError> {
        match self.timeout {
            Some(t) => Ok(t),
            None => Ok(timeout_from_env()?.unwrap_or(self.default_timeout)),
        }
    }

    /// Runs the tool to the end.
    pub fn run(&self) -> Result<Ran, ToolError> {
        self.run_with_progress(&mut |_| {})
    }

    /// [`Run::run`], telling `progress` the log's last line every minute.
    pub fn run_with_progress(&self, progress: &mut dyn FnMut(&str)) -> Result<Ran, ToolError> {
        let limit = self.limit()?;
        let log_path = self.log_path();
        let io = |e: std::io::Error| ToolError::Io {
            path: log_path.clone(),
            message: e.to_string(),
        };
        let tool = self.program.display().to_string();
        let f = File::create(&log_path).map_err(io)?;
        let f2 = f.try_clone().map_err(io)?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2);
        if let Some(d) = &self.dir {
            cmd.current_dir(d);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let start = Instant::now();
        let mut child = cmd.spawn().map_err(|e| ToolError::Spawn {
            step: self.step.clone(),
            tool: tool.clone(),
            message: e.to_string(),
        })?;
        let last = || last_line(&log_path);
        let (mut size, mut grew, mut told) = (0, start, start);
        let mut nap = Duration::from_millis(5);
        let status: ExitStatus = loop {
            if let Some(status) = child.try_wait().map_err(io)? {
                break status;
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(200));
            let now = Instant::now();
            let len = std::fs::metadata(&log_path).map_or(0, |m| m.len());
            if len != size {
                (size, grew) = (len, now);
            }
            if now.duration_since(told) >= Duration::from_secs(60) {
                told = now;
                progress(&format!(
                    "{}: running for {:.0} min: {}",
                    self.step,
                    now.duration_since(start).as_secs_f64() / 60.0,
                    last()
                ));
            }
            if now.duration_since(start) >= limit {
                kill_tree(&mut child);
                return Err(ToolError::TimedOut {
                    step: self.step.clone(),
                    tool,
                    seconds: start.elapsed().as_secs_f64(),
                    last: last(),
                    log: log_path,
                });
            }
            if let Some(stall) = self.stall {
                if now.duration_since(grew) >= stall {
                    kill_tree(&mut child);
                    return Err(ToolError::Stalled {
                        step: self.step.clone(),
                        tool,
                        minutes: stall.as_secs_f64() / 60.0,
                        last: last(),
                        log: log_path,
                    });
                }
            }
        };
        let seconds = start.elapsed().as_secs_f64();
        if status.success() || self.allow_failure {
            return Ok(Ran {
                seconds,
                log: log_path,
                success: status.success(),
            });
        }
        Err(ToolError::Failed {
            step: self.step.clone(),
            tool,
            status,
            seconds,
            tail: tail(&std::fs::read_to_string(&log_path).unwrap_or_default(), 20),
            log: log_path,
        })
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn last_line(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

pub(crate) fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Kills `child` and every process below it (make's compilers, the Verilator wrapper's
/// verilator_bin), children first found through `/proc`, then waits for `child`.
fn kill_tree(child: &mut Child) {
    let root = child.id();
    let mut tree = vec![root];
    let mut i = 0;
    let parents = parent_table();
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    // Stop the whole tree first so no process forks a new child while the others die.
    for &pid in &tree {
        signal(pid, libc::SIGSTOP);
    }
    for &pid in tree.iter().rev() {
        signal(pid, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a positive pid only sends a signal; it touches no memory.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// `(pid, parent pid)` of every process in `/proc` (empty where there is no `/proc`).
fn parent_table() -> Vec<(u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let rest = &stat[stat.rfind(')')? + 1..];
            let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("flipchip-tools-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_tool_past_its_limit_is_killed_and_reported() {
        let d = dir("timeout");
        let start = Instant::now();
        // The grandchild (sleep) must die too: `sh -c` forks it.
        let e = Run::new("synth", "/bin/sh", "t.log")
            .args(["-c", "echo working; sleep 30; echo never"])
            .current_dir(&d)
            .timeout(Duration::from_millis(500))
            .run()
            .unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(10));
        let text = e.to_string();
        assert!(matches!(e, ToolError::TimedOut { .. }), "{text}");
        assert!(
            text.starts_with("synth: /bin/sh stopped after") && text.contains("t.log"),
            "{text}"
        );
        assert!(
            text.contains("working") && text.contains(TIMEOUT_ENV),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_tool_that_stops_writing_is_stopped_and_named() {
        let d = dir("stall");
        let start = Instant::now();
        let e = Run::new("pnr", "/bin/sh", "t.log")
            .args(["-c", "echo placing; sleep 30"])
            .current_dir(&d)
            .stall(Some(Duration::from_millis(800)))
            .run()
            .unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(10));
        let text = e.to_string();
        assert!(matches!(e, ToolError::Stalled { .. }), "{text}");
        assert!(text.contains("placing") && text.contains("t.log"), "{text}");
        // A tool that keeps finishing normally is not stopped.
        let ran = Run::new("x", "/bin/sh", "u.log")
            .args(["-c", "echo a; sleep 0.3; echo b"])
            .current_dir(&d)
            .stall(Some(Duration::from_secs(5)))
            .timeout(Duration::from_secs(20))
            .run()
            .unwrap();
        assert_eq!(ran.text(), "a\nb\n");
        assert_eq!(ran.log, d.join("u.log"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_failing_tool_reports_the_tail_of_its_log() {
        let d = dir("fail");
        let script = "i=0; while [ $i -lt 50 ]; do i=$((i + 1)); echo line $i; done; \
                      echo 'ERROR: no luck' >&2; exit 3";
        let e = Run::new("pnr", "/bin/sh", "f.log")
            .args(["-c", script])
            .current_dir(&d)
            .run()
            .unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ToolError::Failed { .. }), "{text}");
        assert!(text.starts_with("pnr: /bin/sh failed"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(
            text.contains(&d.join("f.log").display().to_string()),
            "{text}"
        );
        assert!(text.contains("line 50\nERROR: no luck"), "{text}");
        assert!(!text.contains("line 20\n"), "only the tail: {text}");
        assert_eq!(e.log(), Some(d.join("f.log").as_path()));
        // Allowed to fail: the status comes back instead.
        let ran = Run::new("x", "/bin/sh", "g.log")
            .args(["-c", "echo out; exit 1"])
            .current_dir(&d)
            .allow_failure()
            .run()
            .unwrap();
        assert!(!ran.success && ran.text() == "out\n");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_missing_tool_says_how_to_install_it() {
        let e = require(
            &["flipchip-no-such-tool", "yowasp-no-such-tool"],
            INSTALL_ECP5,
        )
        .unwrap_err();
        assert!(e.is_missing());
        let text = e.to_string();
        assert!(
            text.contains("flipchip-no-such-tool, yowasp-no-such-tool")
                && text.contains(".venv-fpga/bin")
                && text.ends_with("install it with scripts/setup.sh --ecp5"),
            "{text}"
        );
        let e = Run::new("x", "/no/such/tool", std::env::temp_dir().join("x.log"))
            .run()
            .unwrap_err();
        assert!(matches!(e, ToolError::Spawn { .. }), "{e}");
    }

    #[test]
    fn versions_and_paths() {
        let sh = find(&["sh"]).expect("sh on PATH");
        assert!(sh.is_file());
        assert_eq!(find(&["/bin/sh"]), Some(PathBuf::from("/bin/sh")));
        let v = version(Path::new("/bin/echo"), "flipchip 1.0").unwrap();
        assert_eq!(v, "flipchip 1.0");
        let notice = "Preparing to run yowasp-x. This might take a while...\nx 0.11";
        assert_eq!(version(Path::new("/bin/echo"), notice).unwrap(), "x 0.11");
        assert!(version(Path::new("/no/such/tool"), "-V").is_err());
        // A tool without a version flag prints its usage and fails.
        assert_eq!(version(Path::new("/bin/false"), "-V").ok(), None);
        let d = dir("version");
        let (usage, good) = (d.join("usage.sh"), d.join("good.sh"));
        std::fs::write(&usage, "echo usage; exit 1\n").unwrap();
        std::fs::write(&good, "echo sh 1.0\n").unwrap();
        let sh = Path::new("/bin/sh");
        let arg = |p: &Path| p.display().to_string();
        assert_eq!(version(sh, &arg(&usage)).unwrap(), "usage");
        assert!(version_strict(sh, &arg(&usage)).is_err());
        assert_eq!(version_strict(sh, &arg(&good)).unwrap(), "sh 1.0");
        let _ = std::fs::remove_dir_all(&d);
        let r = Run::new("x", "/bin/echo", "l.log")
            .args(["a b", "c"])
            .current_dir("/tmp");
        assert_eq!(r.command_line(), "/bin/echo 'a b' c (in /tmp)");
        assert_eq!(r.log_path(), PathBuf::from("/tmp/l.log"));
    }
}
