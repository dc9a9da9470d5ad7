//! What `flipchip regress` reports: a summary table, a JUnit XML file (one test case per case,
//! the divergence as the failure message, the case's log as its text) and a JSON summary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

/// How a case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The check held.
    Passed,
    /// The check found a fault.
    Failed,
    /// The case could not run (the design did not compile, a tool is missing, a crash).
    Error,
}

impl Status {
    /// Its name in the JSON summary.
    pub fn name(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Error => "error",
        }
    }
}

/// One case's outcome.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// `model/folding/check[/stimulus]`.
    pub name: String,
    /// The model's name.
    pub model: String,
    /// The folding's label.
    pub folding: String,
    /// The check's name.
    pub check: String,
    /// The stimulus label, for checks that take one.
    pub stimulus: Option<String>,
    /// How it ended.
    pub status: Status,
    /// What it found: the first divergence, or what passed.
    pub message: String,
    /// Seconds the check took (in the run that made the result).
    pub seconds: f64,
    /// The result came from an earlier run.
    pub cached: bool,
    /// The case's log, if it ran.
    pub log: Option<PathBuf>,
}

impl CaseResult {
    fn json(&self) -> serde_json::Value {
        json!({
            "case": self.name,
            "model": self.model,
            "folding": self.folding,
            "check": self.check,
            "stimulus": self.stimulus,
            "status": self.status.name(),
            "message": self.message,
            "seconds": self.seconds,
            "cached": self.cached,
            "log": self.log.as_ref().map(|p| p.display().to_string()),
        })
    }
}

/// The JSON summary (the last line of stdout with `--json`).
pub fn summary_json(
    suite: &str,
    executor: &str,
    results: &[CaseResult],
    wall_seconds: f64,
    junit: Option<&Path>,
    workdir: &Path,
) -> serde_json::Value {
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    json!({
        "suite": suite,
        "executor": executor,
        "cases": results.len(),
        "passed": count(Status::Passed),
        "failed": count(Status::Failed),
        "errors": count(Status::Error),
        "cached": results.iter().filter(|r| r.cached).count(),
        "seconds": wall_seconds,
        "junit": junit.map(|p| p.display().to_string()),
        "workdir": workdir.display().to_string(),
        "results": results.iter().map(CaseResult::json).collect::<Vec<_>>(),
    })
}

/// The summary table: cases, passes, failures and time per check, then every case that did
/// not pass.
pub fn table(results: &[CaseResult]) -> String {
    let mut checks: Vec<&str> = Vec::new();
    for r in results {
        if !checks.contains(&r.check.as_str()) {
            checks.push(&r.check);
        }
    }
    let mut s = format!(
        "{:<12} {:>6} {:>7} {:>7} {:>7} {:>10}\n",
        "check", "cases", "passed", "failed", "errors", "seconds"
    );
    for c in checks {
        let of: Vec<&CaseResult> = results.iter().filter(|r| r.check == c).collect();
        let n = |st: Status| of.iter().filter(|r| r.status == st).count();
        let _ = writeln!(
            s,
            "{c:<12} {:>6} {:>7} {:>7} {:>7} {:>10.1}",
            of.len(),
            n(Status::Passed),
            n(Status::Failed),
            n(Status::Error),
            of.iter().map(|r| r.seconds).sum::<f64>()
        );
    }
    for r in results.iter().filter(|r| r.status != Status::Passed) {
        let _ = writeln!(
            s,
            "{} {}: {}{}",
            if r.status == Status::Failed {
                "FAILED"
            } else {
                "ERROR "
            },
            r.name,
            first_line(&r.message),
            r.log
                .as_ref()
                .map_or(String::new(), |l| format!(" (log {})", l.display()))
        );
    }
    s
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// Text as XML character data or attribute value: the five special characters escaped, and
/// what XML 1.0 cannot hold at all (most control characters, e.g. a terminal's escapes in a
/// log) dropped.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML document: one `testsuite` named for the suite, one `testcase` per case
/// (class `suite.model.folding`, name `check[ stimulus]`), a `failure` with the first
/// divergence as its message and the case's log as its text for every case that did not pass.
pub fn junit(suite: &str, results: &[CaseResult], wall_seconds: f64) -> String {
    let failures = results
        .iter()
        .filter(|r| r.status == Status::Failed)
        .count();
    let errors = results.iter().filter(|r| r.status == Status::Error).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"flipchip regress\" tests=\"{}\" failures=\"{failures}\" \
         errors=\"{errors}\" time=\"{wall_seconds:.3}\">",
        results.len()
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" \
         skipped=\"0\" time=\"{wall_seconds:.3}\">",
        xml_escape(suite),
        results.len()
    );
    for r in results {
        let name = match &r.stimulus {
            Some(s) => format!("{} {s}", r.check),
            None => r.check.clone(),
        };
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            xml_escape(&format!("{suite}.{}.{}", r.model, r.folding)),
            xml_escape(&name),
            r.seconds
        );
        if r.status == Status::Passed {
            x.push_str("/>\n");
            continue;
        }
        let log = r
            .log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let _ = writeln!(
            x,
            ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
            if r.status == Status::Failed {
                "divergence"
            } else {
                "error"
            },
            xml_escape(&r.message),
            xml_escape(&format!("{}\n{log}", r.message))
        );
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Writes the JUnit file.
pub fn write_junit(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_text_and_drops_what_xml_cannot_hold() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>\x1b[2K\tz"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;[2K\tz"
        );
    }
}
