//! The models and compiled designs of a suite, made once in the work directory before the
//! cases run: trained models are cached by recipe, seed and flipchip binary; every model x
//! folding is compiled into `WORKDIR/designs/<model>/<folding>/`, where the RTL simulators keep
//! their compiled testbenches between cases and runs.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use compiler::passes::folding::FoldSpec;
use compiler::passes::memory::Placement;

use super::suite::{FoldingSpec, ModelSource, ModelSpec, Suite};

/// A model ready in the work directory.
pub struct ReadyModel {
    /// The suite's name for it.
    pub name: String,
    /// Its file in the work directory.
    pub path: PathBuf,
    /// The model.
    pub model: flip::model::Model,
}

/// A model x folding: compiled, or why not.
pub struct Design {
    /// The model's name.
    pub model: String,
    /// The folding's label (`auto`, `cycles64`, `file-f`, `front-8x1_4x16`, `random0-2x4_1x1`).
    pub folding: String,
    /// Its build directory.
    pub dir: PathBuf,
    /// Covers model and design files.
    pub key: String,
    /// Why it did not compile.
    pub error: Option<String>,
}

/// A hash of `bytes` as hex.
pub fn key_of(parts: &[&[u8]]) -> String {
    let mut k = testbenches::Key::new();
    for p in parts {
        k.add(p);
    }
    k.hex()
}

/// A key of the running flipchip binary.
pub fn flipchip_key() -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("finding the flipchip executable")?;
    let bytes = std::fs::read(&exe).with_context(|| format!("reading {}", exe.display()))?;
    Ok(key_of(&[&bytes]))
}

/// Makes every model of `suite` in `WORKDIR/models/`: copies model files, makes random
/// models, trains recipes (`jobs` at a time) unless an earlier run trained the same.
pub fn models(
    suite: &Suite,
    workdir: &Path,
    flipchip_key: &str,
    jobs: usize,
) -> anyhow::Result<Vec<ReadyModel>> {
    let dir = workdir.join("models");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let made = crate::cmd::parallel(suite.models.len(), jobs, |i| {
        one_model(&suite.models[i], &dir, flipchip_key, jobs)
    });
    made.into_iter().collect()
}

fn one_model(
    m: &ModelSpec,
    dir: &Path,
    flipchip_key: &str,
    jobs: usize,
) -> anyhow::Result<ReadyModel> {
    let path = dir.join(format!("{}.fcm", m.name));
    match &m.source {
        ModelSource::File(src) => {
            let model = crate::cmd::compile::load_model(src)?;
            std::fs::copy(src, &path)
                .with_context(|| format!("copying {} to {}", src.display(), path.display()))?;
            Ok(ReadyModel {
                name: m.name.clone(),
                path,
                model,
            })
        }
        ModelSource::Random(r, seed) => {
            let encoding = r
                .encoding
                .as_deref()
                .unwrap_or("threshold:128")
                .parse()
                .map_err(|e: String| anyhow::anyhow!("model {}: {e}", m.name))?;
            let mut rng = compiler::random::Rng(*seed);
            let model = compiler::random::random_model(&mut rng, r.pixels, 8, encoding, &r.widths);
            flip::model::format::save(&model, &path)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(ReadyModel {
                name: m.name.clone(),
                path,
                model,
            })
        }
        ModelSource::Train(t, seed) => {
            let recipe = format!("{t:?} seed {seed}");
            let key = key_of(&[recipe.as_bytes(), flipchip_key.as_bytes()]);
            let key_path = dir.join(format!("{}.key", m.name));
            let cached =
                path.is_file() && std::fs::read_to_string(&key_path).is_ok_and(|k| k.trim() == key);
            if !cached {
                let log = dir.join(format!("{}.train.log", m.name));
                let tmp = dir.join(format!(".{}.fcm.tmp", m.name));
                let exe = std::env::current_exe().context("finding the flipchip executable")?;
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                let mut run = tools::Run::new("train", exe, &log)
                    .args(["train", "--arch", &t.arch, "--seed", &seed.to_string()])
                    .args(["--quiet", "--threads", &(cores / jobs).max(1).to_string()])
                    .arg("--out")
                    .arg(&tmp);
                if let Some(e) = t.epochs {
                    run = run.args(["--epochs", &e.to_string()]);
                }
                if let Some(e) = &t.encoding {
                    run = run.args(["--encoding", e]);
                }
                eprintln!(
                    "regress: training model {} ({})",
                    m.name,
                    run.command_line()
                );
                run.run()
                    .with_context(|| format!("training model {}", m.name))?;
                std::fs::rename(&tmp, &path)
                    .with_context(|| format!("moving {} to {}", tmp.display(), path.display()))?;
                std::fs::write(&key_path, &key)
                    .with_context(|| format!("writing {}", key_path.display()))?;
            } else {
                eprintln!("regress: model {} trained by an earlier run", m.name);
            }
            let model = crate::cmd::compile::load_model(&path)?;
            Ok(ReadyModel {
                name: m.name.clone(),
                path,
                model,
            })
        }
    }
}

/// One folding of one model to compile.
struct Plan {
    folding: String,
    spec: FoldSpec,
    placement: Placement,
    family: compiler::blocks::Family,
}

/// The foldings `f` stands for on `m` (the DSE front and random foldings depend on the model).
fn plans(m: &ReadyModel, f: &FoldingSpec) -> anyhow::Result<Vec<Plan>> {
    let plain = |folding: String, spec: FoldSpec| Plan {
        folding,
        spec,
        placement: Placement::Rom,
        family: Default::default(),
    };
    Ok(match f {
        FoldingSpec::Auto(None) => vec![plain("auto".into(), FoldSpec::auto(None))],
        FoldingSpec::Auto(Some(t)) => vec![plain(format!("cycles{t}"), FoldSpec::auto(Some(*t)))],
        FoldingSpec::File(p) => {
            let file = compiler::read_fold_file(p)?;
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            vec![plain(format!("file-{stem}"), FoldSpec::Manual(file))]
        }
        FoldingSpec::DseFront(d) => {
            let device = compiler::dse::device(&d.device)
                .with_context(|| format!("unknown device {}", d.device))?;
            let x = compiler::dse::explore(&m.model, &device)
                .with_context(|| format!("exploring {} for {}", m.name, d.device))?;
            let front = x.fitting_front();
            if front.is_empty() {
                bail!("no folding of {} fits {}", m.name, d.device);
            }
            front
                .into_iter()
                .take(d.max.unwrap_or(usize::MAX))
                .map(|i| {
                    let c = &x.candidates[i];
                    Plan {
                        folding: format!("front-{}", c.fold_label().replace(' ', "_")),
                        spec: FoldSpec::Manual(c.fold_file()),
                        placement: device.placement(),
                        family: device.family,
                    }
                })
                .collect()
        }
        FoldingSpec::Random { count, seed } => {
            // Seeded by the model's name too, so that models do not share one folding pattern.
            let mut rng = compiler::random::Rng(
                seed ^ u64::from_str_radix(&key_of(&[m.name.as_bytes()]), 16).unwrap_or(0),
            );
            let mut seen = std::collections::BTreeSet::new();
            let mut out = Vec::new();
            // Small models have few foldings: stop when new draws keep repeating.
            let mut tries = 0;
            while out.len() < *count && tries < count * 20 {
                tries += 1;
                let fold = compiler::random::random_folding(&mut rng, &m.model);
                let label = compiler::dse::fold_label(&fold).replace(' ', "_");
                let packed = fold.input == compiler::ir::InputFormat::Packed;
                let label = if packed {
                    format!("{label}_packed")
                } else {
                    label
                };
                if seen.insert(label.clone()) {
                    out.push(plain(format!("random-{label}"), FoldSpec::Manual(fold)));
                }
            }
            out
        }
    })
}

/// A label as a directory name.
pub fn dir_name(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Compiles every model x folding into `WORKDIR/designs/`, `jobs` at a time, unless an earlier
/// run compiled the same there. A folding that does not compile is a design with an error (its
/// cases fail); a folding spec that names nothing for a model (no fitting front) too.
pub fn compile_all(
    models: &[ReadyModel],
    suite: &Suite,
    workdir: &Path,
    flipchip_key: &str,
    jobs: usize,
) -> anyhow::Result<Vec<Design>> {
    let mut work: Vec<(usize, Result<Plan, String>)> = Vec::new();
    for (mi, m) in models.iter().enumerate() {
        for f in &suite.foldings {
            match plans(m, f) {
                Ok(ps) => work.extend(ps.into_iter().map(|p| (mi, Ok(p)))),
                Err(e) => work.push((mi, Err(format!("{e:#}")))),
            }
        }
    }
    let bar = indicatif::ProgressBar::new(work.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("compile {bar:30} {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let designs = crate::cmd::parallel(work.len(), jobs, |w| {
        let (mi, plan) = &work[w];
        let m = &models[*mi];
        let d = match plan {
            Err(e) => Design {
                model: m.name.clone(),
                folding: "error".into(),
                dir: workdir.join("designs").join(&m.name).join("error"),
                key: String::new(),
                error: Some(e.clone()),
            },
            Ok(p) => compile_one(m, p, workdir, flipchip_key),
        };
        bar.inc(1);
        d
    });
    bar.finish_and_clear();
    Ok(designs)
}

fn compile_one(m: &ReadyModel, p: &Plan, workdir: &Path, flipchip_key: &str) -> Design {
    let dir = workdir
        .join("designs")
        .join(&m.name)
        .join(dir_name(&p.folding));
    let mut d = Design {
        model: m.name.clone(),
        folding: p.folding.clone(),
        dir: dir.clone(),
        key: String::new(),
        error: None,
    };
    let made = (|| -> anyhow::Result<String> {
        // What the design is made from: the same inputs make the same design, so an earlier
        // run's directory (with its compiled testbenches) is kept as it is.
        let model_bytes =
            std::fs::read(&m.path).with_context(|| format!("reading {}", m.path.display()))?;
        let inputs = key_of(&[
            &model_bytes,
            format!("{:?} {:?} {:?}", p.spec, p.placement, p.family).as_bytes(),
            flipchip_key.as_bytes(),
        ]);
        let inputs_path = dir.join("inputs.key");
        let same = std::fs::read_to_string(&inputs_path).is_ok_and(|k| k.trim() == inputs);
        if !same {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            crate::cmd::compile::compile_into(
                &m.path,
                &m.model,
                &p.spec,
                &p.placement,
                p.family,
                None,
                &dir,
            )?;
            std::fs::write(&inputs_path, &inputs)
                .with_context(|| format!("writing {}", inputs_path.display()))?;
        }
        design_key(&dir)
    })();
    match made {
        Ok(k) => d.key = k,
        Err(e) => d.error = Some(format!("compiling {} with {}: {e:#}", m.name, p.folding)),
    }
    d
}

/// A key of every file at the top of a design directory (Verilog, ports, fold file, model,
/// weights): a case's earlier result counts only for the very design it checked, even one
/// edited by hand.
fn design_key(dir: &Path) -> anyhow::Result<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut k = testbenches::Key::new();
    for f in files {
        let bytes = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
        k.add(f.file_name().map_or(&[][..], |n| n.as_encoded_bytes()))
            .add(&bytes);
    }
    Ok(k.hex())
}
