//! The suite file of `flipchip regress`: what it names (models, foldings, stimulus, checks),
//! read from TOML, checked, and expanded into the cross product of cases.
//!
//! ```toml
//! name = "smoke"                      # default: the file's stem
//! checks = ["reference", "verilator", "icarus", "cycles", "prove"]
//!
//! [[models]]
//! file = "tiny.fcm"                   # relative to the suite file
//! [[models]]
//! name = "digits"
//! train = { arch = "64-8-10", epochs = 1, encoding = "threshold:8" }
//! seeds = [1, 2]                      # one model per seed, trained once and cached
//! [[models]]
//! name = "rand"
//! random = { pixels = 16, widths = [8, 4], encoding = "bitplanes:2" }
//! seeds = [1, 2, 3]
//!
//! [foldings]
//! auto = true                         # --fold auto
//! target_cycles = [16, 64]            # --fold auto --target-cycles N
//! files = ["fold.json"]               # fold files, relative to the suite file
//! dse_front = { device = "up5k", max = 3 }  # the fitting Pareto front of `dse`
//! random = 2                          # random legal foldings (seeded by `random_seed`)
//!
//! [[stimulus]]
//! frames = 20
//! bubbles = 10                        # percent of cycles the source withholds a beat
//! stalls = 10                         # percent of cycles the sink is not ready
//! seeds = [1, 2]
//!
//! [cycles]                            # the `cycles` check (a free-running simulation)
//! max_cycles_per_frame = 1000         # besides the design's own bounds
//! max_latency = 5000
//!
//! [prove]                             # the `prove` check
//! groups = ["handshake"]
//! depth = 20
//! timeout = 120
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// The suite file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    checks: Vec<String>,
    models: Vec<ModelEntry>,
    #[serde(default)]
    foldings: Option<Foldings>,
    #[serde(default)]
    stimulus: Vec<StimulusEntry>,
    #[serde(default)]
    cycles: CycleBounds,
    #[serde(default)]
    prove: ProveOptions,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelEntry {
    name: Option<String>,
    file: Option<PathBuf>,
    train: Option<TrainRecipe>,
    random: Option<RandomRecipe>,
    seeds: Option<Vec<u64>>,
}

/// A `train` recipe: `flipchip train --arch .. --epochs .. [--encoding ..] --seed S`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainRecipe {
    /// `--arch`.
    pub arch: String,
    /// `--epochs`.
    pub epochs: Option<usize>,
    /// `--encoding`.
    pub encoding: Option<String>,
}

/// A model of the random-network generator (`compiler::random::random_model`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RandomRecipe {
    /// Input pixels (8 bits each).
    pub pixels: usize,
    /// Layer widths, the classes last.
    pub widths: Vec<usize>,
    /// Input encoding (default `threshold:128`).
    pub encoding: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Foldings {
    #[serde(default)]
    auto: bool,
    #[serde(default)]
    target_cycles: Vec<u64>,
    #[serde(default)]
    files: Vec<PathBuf>,
    dse_front: Option<DseFront>,
    #[serde(default)]
    random: usize,
    #[serde(default)]
    random_seed: u64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DseFront {
    /// The device explored for (`up5k`, ...).
    pub device: String,
    /// At most this many front members, fastest first.
    pub max: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StimulusEntry {
    #[serde(default = "default_frames")]
    frames: usize,
    #[serde(default)]
    bubbles: u32,
    #[serde(default)]
    stalls: u32,
    #[serde(default = "default_seeds")]
    seeds: Vec<u64>,
}

fn default_frames() -> usize {
    20
}

fn default_seeds() -> Vec<u64> {
    vec![1]
}

/// Bounds of the `cycles` check besides the design's own.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CycleBounds {
    /// Most cycles between two results in a free-running stream.
    pub max_cycles_per_frame: Option<u64>,
    /// Most cycles from a frame's first input beat to its result.
    pub max_latency: Option<u64>,
}

/// Options of the `prove` check.
#[derive(Clone, Debug, Deserialize, PartialEq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProveOptions {
    /// Property groups (all without).
    #[serde(default)]
    pub groups: Vec<String>,
    /// `--depth`.
    #[serde(default = "default_depth")]
    pub depth: u64,
    /// `--timeout` per group, seconds.
    #[serde(default = "default_prove_timeout")]
    pub timeout: u64,
}

fn default_depth() -> u64 {
    20
}

fn default_prove_timeout() -> u64 {
    120
}

impl Default for ProveOptions {
    fn default() -> Self {
        ProveOptions {
            groups: Vec::new(),
            depth: default_depth(),
            timeout: default_prove_timeout(),
        }
    }
}

/// What a check compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    /// The simulator against the software reference, bit for bit, under the stimulus.
    Reference,
    /// The simulator's trace against Verilator's, under the stimulus.
    Verilator,
    /// The simulator's trace against Icarus', under the stimulus.
    Icarus,
    /// A free-running simulation's frame interval and latency against their bounds.
    Cycles,
    /// `flipchip prove` on the design.
    Prove,
}

impl Check {
    /// Every check, in the order cases are listed.
    pub const ALL: [Check; 5] = [
        Check::Reference,
        Check::Verilator,
        Check::Icarus,
        Check::Cycles,
        Check::Prove,
    ];

    /// Its name in suite files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Check::Reference => "reference",
            Check::Verilator => "verilator",
            Check::Icarus => "icarus",
            Check::Cycles => "cycles",
            Check::Prove => "prove",
        }
    }

    /// The check of this name.
    pub fn from_name(s: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Whether it runs once per stimulus (the others run once per design).
    pub fn per_stimulus(self) -> bool {
        matches!(self, Check::Reference | Check::Verilator | Check::Icarus)
    }
}

/// Where a model comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSource {
    /// A model file.
    File(PathBuf),
    /// Trained with this seed.
    Train(TrainRecipe, u64),
    /// Made by the random-network generator with this seed.
    Random(RandomRecipe, u64),
}

/// One model of the suite.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Unique within the suite (`digits-s1`).
    pub name: String,
    /// Where it comes from.
    pub source: ModelSource,
}

/// One way to fold every model.
#[derive(Clone, Debug, PartialEq)]
pub enum FoldingSpec {
    /// `--fold auto`, with a cycle target or not.
    Auto(Option<u64>),
    /// A fold file.
    File(PathBuf),
    /// The fitting DSE front for a device.
    DseFront(DseFront),
    /// Random legal foldings: this many, from this seed.
    Random { count: usize, seed: u64 },
}

/// One stimulus: frames of random pixels under a bubble and stall pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct StimulusSpec {
    /// Frames to stream.
    pub frames: usize,
    /// Percent of cycles the source withholds a beat.
    pub bubbles: u32,
    /// Percent of cycles the sink is not ready.
    pub stalls: u32,
    /// Seed of the pattern and of the pixels.
    pub seed: u64,
}

impl StimulusSpec {
    /// Short label for case names (`20f-b10-s10-seed1`).
    pub fn label(&self) -> String {
        format!(
            "{}f-b{}-s{}-seed{}",
            self.frames, self.bubbles, self.stalls, self.seed
        )
    }
}

/// A checked suite.
#[derive(Clone, Debug)]
pub struct Suite {
    /// Its name (the JUnit test suite's).
    pub name: String,
    /// Models, in file order.
    pub models: Vec<ModelSpec>,
    /// Foldings, in the order auto, target cycles, files, DSE front, random.
    pub foldings: Vec<FoldingSpec>,
    /// Stimuli.
    pub stimuli: Vec<StimulusSpec>,
    /// Checks, in [`Check::ALL`] order.
    pub checks: Vec<Check>,
    /// Bounds of the cycles check.
    pub cycles: CycleBounds,
    /// Options of the prove check.
    pub prove: ProveOptions,
}

/// Reads and checks the suite file at `path`: every error names the file, and the key.
pub fn load(path: &Path) -> anyhow::Result<Suite> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading suite file {}", path.display()))?;
    parse(&text, path).with_context(|| format!("suite file {}", path.display()))
}

/// Checks a suite's text; relative paths are taken from `path`'s directory.
pub fn parse(text: &str, path: &Path) -> anyhow::Result<Suite> {
    // The toml crate's messages name the line, the column and the key (unknown, missing or of
    // the wrong type), which is what a user needs to fix the file.
    let f: File = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "suite".into());
    let name = f.name.unwrap_or(stem);
    check_label("name", &name)?;

    let mut checks = BTreeSet::new();
    if f.checks.is_empty() {
        bail!("checks: empty; name at least one of {}", check_names());
    }
    for c in &f.checks {
        match Check::from_name(c) {
            Some(c) => {
                checks.insert(c);
            }
            None => bail!("checks: unknown check {c:?}; known: {}", check_names()),
        }
    }

    if f.models.is_empty() {
        bail!("models: no [[models]] entry");
    }
    let mut models = Vec::new();
    for (i, m) in f.models.iter().enumerate() {
        let key = format!("models[{i}]");
        let sources = [m.file.is_some(), m.train.is_some(), m.random.is_some()]
            .iter()
            .filter(|&&x| x)
            .count();
        if sources != 1 {
            bail!("{key}: give exactly one of file, train or random");
        }
        if let Some(file) = &m.file {
            if m.seeds.is_some() {
                bail!("{key}.seeds: only train and random models take seeds");
            }
            let path = base.join(file);
            if !path.is_file() {
                bail!("{key}.file: no model file {}", path.display());
            }
            let name = match &m.name {
                Some(n) => n.clone(),
                None => file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            check_label(&format!("{key}.name"), &name)?;
            models.push(ModelSpec {
                name,
                source: ModelSource::File(path),
            });
            continue;
        }
        let seeds = m.seeds.clone().unwrap_or_else(|| vec![1]);
        if seeds.is_empty() {
            bail!("{key}.seeds: empty");
        }
        let base_name = match (&m.name, &m.train, &m.random) {
            (Some(n), _, _) => n.clone(),
            (None, Some(t), _) => format!("train-{}", t.arch),
            (None, None, Some(r)) => format!(
                "random-{}-{}",
                r.pixels,
                r.widths
                    .iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
                    .join("-")
            ),
            _ => unreachable!("one source, checked above"),
        };
        check_label(&format!("{key}.name"), &base_name)?;
        if let Some(t) = &m.train {
            if let Some(e) = &t.encoding {
                e.parse::<flip::encoding::Encoding>()
                    .map_err(|err| anyhow::anyhow!("{key}.train.encoding: {err}"))?;
            }
            if t.epochs == Some(0) {
                bail!("{key}.train.epochs: must be at least 1");
            }
        }
        if let Some(r) = &m.random {
            if r.pixels == 0 || r.pixels > 4096 {
                bail!("{key}.random.pixels: {} is not in 1..=4096", r.pixels);
            }
            if r.widths.is_empty() || r.widths.iter().any(|&w| w == 0 || w > 4096) {
                bail!("{key}.random.widths: give one or more layer widths in 1..=4096");
            }
            if let Some(e) = &r.encoding {
                e.parse::<flip::encoding::Encoding>()
                    .map_err(|err| anyhow::anyhow!("{key}.random.encoding: {err}"))?;
            }
        }
        for s in seeds {
            let source = match (&m.train, &m.random) {
                (Some(t), _) => ModelSource::Train(t.clone(), s),
                (None, Some(r)) => ModelSource::Random(r.clone(), s),
                _ => unreachable!("one source, checked above"),
            };
            models.push(ModelSpec {
                name: format!("{base_name}-s{s}"),
                source,
            });
        }
    }
    let mut seen = BTreeSet::new();
    for m in &models {
        if !seen.insert(&m.name) {
            bail!(
                "models: two models are named {:?}; give them distinct names",
                m.name
            );
        }
    }

    let fo = f.foldings.unwrap_or(Foldings {
        auto: true,
        ..Foldings::default()
    });
    let mut foldings = Vec::new();
    if fo.auto {
        foldings.push(FoldingSpec::Auto(None));
    }
    for &t in &fo.target_cycles {
        if t == 0 {
            bail!("foldings.target_cycles: 0 is not a cycle target");
        }
        foldings.push(FoldingSpec::Auto(Some(t)));
    }
    for file in &fo.files {
        let p = base.join(file);
        compiler::read_fold_file(&p).with_context(|| format!("foldings.files: {}", p.display()))?;
        foldings.push(FoldingSpec::File(p));
    }
    if let Some(d) = &fo.dse_front {
        if compiler::dse::device(&d.device).is_none() {
            let known: Vec<String> = compiler::dse::devices()
                .into_iter()
                .map(|d| d.name)
                .collect();
            bail!(
                "foldings.dse_front.device: unknown device {:?}; known: {}",
                d.device,
                known.join(", ")
            );
        }
        if d.max == Some(0) {
            bail!("foldings.dse_front.max: must be at least 1");
        }
        foldings.push(FoldingSpec::DseFront(d.clone()));
    }
    if fo.random > 0 {
        foldings.push(FoldingSpec::Random {
            count: fo.random,
            seed: fo.random_seed,
        });
    }
    if foldings.is_empty() {
        bail!("foldings: names no folding (set auto = true, target_cycles, files, dse_front or random)");
    }

    let entries = if f.stimulus.is_empty() {
        vec![StimulusEntry {
            frames: default_frames(),
            bubbles: 0,
            stalls: 0,
            seeds: default_seeds(),
        }]
    } else {
        f.stimulus
    };
    let mut stimuli = Vec::new();
    for (i, s) in entries.iter().enumerate() {
        let key = format!("stimulus[{i}]");
        if s.frames == 0 || s.frames > 100_000 {
            bail!("{key}.frames: {} is not in 1..=100000", s.frames);
        }
        if s.bubbles > 99 {
            bail!(
                "{key}.bubbles: {}% leaves no cycle for a beat (0..=99)",
                s.bubbles
            );
        }
        if s.stalls > 99 {
            bail!(
                "{key}.stalls: {}% leaves no cycle for a result (0..=99)",
                s.stalls
            );
        }
        if s.seeds.is_empty() {
            bail!("{key}.seeds: empty");
        }
        for &seed in &s.seeds {
            let st = StimulusSpec {
                frames: s.frames,
                bubbles: s.bubbles,
                stalls: s.stalls,
                seed,
            };
            if stimuli.contains(&st) {
                bail!("{key}: stimulus {} is listed twice", st.label());
            }
            stimuli.push(st);
        }
    }
    if f.prove.timeout == 0 || f.prove.depth == 0 {
        bail!("prove: depth and timeout must be at least 1");
    }
    Ok(Suite {
        name,
        models,
        foldings,
        stimuli,
        checks: checks.into_iter().collect(),
        cycles: f.cycles,
        prove: f.prove,
    })
}

fn check_names() -> String {
    Check::ALL.map(|c| c.name()).join(", ")
}

/// Names become directory names and JUnit class names: keep them to a safe alphabet.
fn check_label(key: &str, s: &str) -> anyhow::Result<()> {
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
        || s.starts_with('.')
    {
        bail!("{key}: {s:?} is not a usable name (letters, digits, - _ . + only)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", parse(text, Path::new("s.toml")).unwrap_err())
    }

    #[test]
    fn a_suite_expands_seeds_and_defaults() {
        let s = parse(
            r#"
checks = ["cycles", "reference"]
[[models]]
random = { pixels = 8, widths = [4, 3] }
seeds = [1, 2]
[[models]]
name = "t"
train = { arch = "64-4-10", epochs = 1 }
[foldings]
auto = true
target_cycles = [4]
random = 2
[[stimulus]]
frames = 5
bubbles = 10
seeds = [3, 4]
"#,
            Path::new("dir/smoke.toml"),
        )
        .unwrap();
        assert_eq!(s.name, "smoke");
        let names: Vec<&str> = s.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["random-8-4-3-s1", "random-8-4-3-s2", "t-s1"]);
        assert_eq!(s.checks, [Check::Reference, Check::Cycles]);
        assert_eq!(
            s.foldings,
            [
                FoldingSpec::Auto(None),
                FoldingSpec::Auto(Some(4)),
                FoldingSpec::Random { count: 2, seed: 0 }
            ]
        );
        assert_eq!(s.stimuli.len(), 2);
        assert_eq!(s.stimuli[1].label(), "5f-b10-s0-seed4");
    }

    #[test]
    fn bad_suites_name_the_key_and_the_problem() {
        let m = "[[models]]\nrandom = { pixels = 8, widths = [4] }\n";
        let e = err(&format!("checks = [\"fast\"]\n{m}"));
        assert!(e.contains("checks: unknown check \"fast\""), "{e}");
        let e = err(&format!("checks = [\"cycles\"]\ncolour = 1\n{m}"));
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = err("checks = [\"cycles\"]\n[[models]]\nfile = \"a.fcm\"\nseeds = [1]\n");
        assert!(e.contains("models[0].seeds"), "{e}");
        let e = err("checks = [\"cycles\"]\n[[models]]\nname = \"x\"\n");
        assert!(e.contains("models[0]: give exactly one of"), "{e}");
        let e = err(&format!(
            "checks = [\"cycles\"]\n{m}[[stimulus]]\nbubbles = 100\n"
        ));
        assert!(e.contains("stimulus[0].bubbles"), "{e}");
        let e = err(&format!(
            "checks = [\"cycles\"]\n{m}[foldings]\nauto = false\n"
        ));
        assert!(e.contains("foldings: names no folding"), "{e}");
        let e = err(&format!(
            "checks = [\"cycles\"]\n{m}[foldings]\ndse_front = {{ device = \"vu9p\" }}\n"
        ));
        assert!(
            e.contains("foldings.dse_front.device: unknown device"),
            "{e}"
        );
        let e = err(&format!("checks = \"cycles\"\n{m}"));
        assert!(e.contains("checks"), "{e}");
        let e = err(&format!(
            "checks = [\"cycles\"]\n{m}[[models]]\nrandom = {{ pixels = 8, widths = [4] }}\n"
        ));
        assert!(e.contains("two models are named"), "{e}");
    }
}
