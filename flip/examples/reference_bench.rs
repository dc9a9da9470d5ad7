//! Throughput of the batched reference against the popcount ceiling.
//!
//! `cargo run --release -p flip --example reference_bench -- MODEL.fcm IDX_DIR [REPEATS]`
//! prints, for every popcount kernel this CPU runs, the best of `REPEATS` timings of
//! [`flip::gemm::forward`] over the test split (all threads), the kernel's measured peak
//! ([`flip::popcount::peak_words_per_second`]) and the fraction of it reached; then the per-image
//! reference for comparison. With `FLIPCHIP_POPCOUNT` set, only that kernel runs. The last line is JSON for scripts.

use std::time::{Duration, Instant};

use flip::popcount::{peak_words_per_second, Kernel};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, dir, rest @ ..] = &args[..] else {
        return Err("usage: reference_bench MODEL.fcm IDX_DIR [REPEATS]".into());
    };
    let repeats: usize = rest.first().map_or(Ok(9), |r| r.parse())?;
    let model = flip::model::format::load(model.as_ref())?;
    let data = flip::data::load(Some(dir.as_ref()))?;
    let images = &data.test.images;
    let n = data.test.labels.len();
    let words = flip::gemm::popcount_words(&model);
    // Spawn the pool's threads before any timing.
    rayon::broadcast(|_| ());
    let threads = rayon::current_num_threads();
    println!(
        "{} {} on {n} images, {threads} threads, {words} popcount words per image",
        model.arch(),
        model.input.encoding
    );
    let mut kernels = Vec::new();
    // With FLIPCHIP_POPCOUNT set, only that kernel (handy under a profiler).
    let chosen = match std::env::var(flip::popcount::ENV) {
        Ok(_) => vec![flip::popcount::selected()],
        Err(_) => Kernel::available(),
    };
    for k in chosen {
        let best = (0..repeats)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(flip::gemm::forward_with(k, &model, images));
                t.elapsed()
            })
            .min()
            .expect("at least one repeat");
        let rate = n as f64 / best.as_secs_f64();
        let peak = peak_words_per_second(k, Duration::from_millis(300));
        let fraction = rate * words as f64 / peak;
        println!(
            "{k:>8}: {rate:>9.0} images/s (best of {repeats}), peak {peak:.3e} words/s, {:.1}% of peak",
            100.0 * fraction
        );
        kernels.push(serde_json::json!({
            "kernel": k.name(), "images_per_second": rate, "peak_words_per_second": peak,
            "fraction_of_peak": fraction,
        }));
    }
    let t = Instant::now();
    let per_image: usize = {
        use rayon::prelude::*;
        let p = model.input.pixels();
        images
            .par_chunks(p)
            .map(|im| flip::reference::argmax(&flip::reference::binary_scores(&model, im)))
            .sum()
    };
    std::hint::black_box(per_image);
    let rate = n as f64 / t.elapsed().as_secs_f64();
    println!("per-image reference: {rate:.0} images/s (one run)");
    println!(
        "{}",
        serde_json::json!({
            "threads": threads, "words_per_image": words, "kernels": kernels,
            "per_image_images_per_second": rate,
        })
    );
    Ok(())
}
