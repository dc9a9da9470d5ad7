//! `flipchip eval`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use serde_json::json;

/// Evaluate a model file on a dataset's test split with the software reference.
#[derive(clap::Args)]
pub struct Args {
    /// The model file.
    pub model: PathBuf,
    /// Directory with IDX files; the embedded digits without it.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
    /// Run the inference this many times and report the fastest (`seconds`) besides every time
    /// (`seconds_all`); a run of 10,000 images takes milliseconds, so a single one is at the mercy
    /// of whatever else the machine does.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Also report how often each hidden channel is on, over the first N training images (not
    /// the test split: this is a diagnostic for training), and how many channels are on or off
    /// at more than 98% of their positions (JSON `activity`).
    #[arg(long, value_name = "N")]
    pub activity: Option<usize>,
}

/// Runs `flipchip eval`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let model = flip::model::format::load(&a.model)?;
    let data = super::load_data(a.data.as_deref())?;
    if model.input.pixels() != data.pixels() {
        bail!(
            "{}: the model reads {} pixels per image but {} has {}",
            a.model.display(),
            model.input.pixels(),
            data.name,
            data.pixels()
        );
    }
    // Only the inference is timed (encoding, forward pass, comparison with the labels): the
    // dataset and the model are already in memory and the worker threads already started.
    rayon::broadcast(|_| ());
    let mut accuracy = 0.0;
    let mut seconds_all = Vec::new();
    for _ in 0..a.repeat {
        let start = Instant::now();
        accuracy = flip::reference::accuracy(&model, &data.test.images, &data.test.labels);
        seconds_all.push(start.elapsed().as_secs_f64());
    }
    let seconds = seconds_all.iter().copied().fold(f64::INFINITY, f64::min);
    let samples = data.test.labels.len();
    let images_per_second = samples as f64 / seconds.max(1e-9);
    let kernel = flip::popcount::selected();
    eprintln!(
        "{}: {} on {}: test accuracy {:.2}% over {samples} images ({images_per_second:.0} images/s{}, {} threads, {kernel} popcount)",
        a.model.display(),
        model.arch(),
        data.name,
        accuracy * 100.0,
        if a.repeat > 1 {
            format!(", fastest of {} runs", a.repeat)
        } else {
            String::new()
        },
        rayon::current_num_threads(),
    );
    let activity = match a.activity {
        Some(_) if !model.is_binary() => {
            bail!("{}: --activity needs a binary model", a.model.display())
        }
        Some(n) => {
            let n = n.min(data.train.labels.len());
            let rows = flip::activity::activity(&model, &data.train.images[..n * data.pixels()]);
            for r in &rows {
                eprintln!(
                    "  layer {} ({}, {} channels): on {:.1}% (channels {:.1}..{:.1}%), always on {}, always off {}",
                    r.layer + 1,
                    r.kind,
                    r.channels,
                    r.mean_on * 100.0,
                    r.min_on * 100.0,
                    r.max_on * 100.0,
                    r.always_on,
                    r.always_off
                );
            }
            let rows: Vec<_> = rows
                .iter()
                .map(|r| {
                    json!({
                        "layer": r.layer + 1,
                        "kind": r.kind,
                        "channels": r.channels,
                        "mean_on": r.mean_on,
                        "min_on": r.min_on,
                        "max_on": r.max_on,
                        "always_on": r.always_on,
                        "always_off": r.always_off,
                    })
                })
                .collect();
            Some(json!({ "images": n, "layers": rows }))
        }
        None => None,
    };
    if a.json {
        super::print_json(&json!({
            "model": a.model.display().to_string(),
            "arch": model.arch(),
            "dataset": data.name,
            "accuracy": accuracy,
            "samples": samples,
            "seconds": seconds,
            "images_per_second": images_per_second,
            "seconds_all": seconds_all,
            "threads": rayon::current_num_threads(),
            "popcount_kernel": kernel.name(),
            "popcount_words_per_image": model.is_binary().then(|| flip::gemm::popcount_words(&model)),
            "activity": activity,
        }));
    }
    Ok(())
}
