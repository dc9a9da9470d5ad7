//! One module per subcommand; each reads files, does one stage and writes files.

pub mod asic;
pub mod asic_unit;
pub mod build;
pub mod build_unit;
pub mod calibrate;
pub mod calibrate_asic;
pub mod compile;
pub mod demo;
pub mod dse;
pub mod dse_asic;
pub mod dse_synth;
pub mod eval;
pub mod executor_args;
pub mod export;
pub mod import;
pub mod prove;
pub mod prove_aig;
mod prove_cex;
pub mod prove_datapath;
pub mod quantize;
pub mod regress;
pub mod replay;
mod replay_layer;
pub mod seeds;
pub mod sim;
pub mod train;
pub mod unit;
pub mod verify;

use std::path::Path;

use anyhow::Context;

/// Loads `--data DIR`, or the embedded digits without it, naming the directory on failure.
pub fn load_data(dir: Option<&Path>) -> anyhow::Result<flip::data::Dataset> {
    flip::data::load(dir).with_context(|| match dir {
        Some(d) => format!("loading dataset from {}", d.display()),
        None => "loading the embedded digits".to_string(),
    })
}

/// Prints a JSON object as the last line of output.
pub fn print_json(v: &serde_json::Value) {
    println!("{v}");
}

/// Sets the worker thread count once (`--threads`, default all cores) and runs `work` on one
/// of the workers. A training step alternates parallel sections with short sequential ones:
/// run on the main thread, those compete for the cores with every idle worker spinning before
/// it sleeps; run on a worker, with one fewer (a tenth off a CNN epoch on 2 cores).
pub fn on_workers<R: Send>(threads: Option<usize>, work: impl FnOnce() -> R + Send) -> R {
    set_threads(threads);
    rayon::scope(|_| work())
}

/// Sets the worker thread count once (`--threads`, default all cores).
fn set_threads(threads: Option<usize>) {
    if let Some(t) = threads {
        // Fails only if already set, which is harmless.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global();
    }
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`), for the benchmark scripts.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs `job(0..jobs)` on `workers` threads (each job is an external tool run, so a few at a
/// time is the most a small machine takes), returning the results in job order.
pub fn parallel<T: Send>(jobs: usize, workers: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<T>>> =
        std::sync::Mutex::new((0..jobs).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, jobs.max(1)) {
            s.spawn(|| loop {
                let j = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if j >= jobs {
                    break;
                }
                let r = job(j);
                results.lock().expect("no job panics holding the lock")[j] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .expect("workers are done")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}
