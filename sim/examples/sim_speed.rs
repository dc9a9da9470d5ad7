//! Simulated cycles per second on a random network: `cargo run --release -p sim --example sim_speed
//! [pixels-hidden-..-classes] [frames] [build-dir]`; with a build directory, also
//! writes the design and its model there (for `flipchip verify --build DIR`) and compares the
//! simulator's speed with Verilator's on the same frames.

use compiler::passes::folding::FoldSpec;
use compiler::random::{random_model, random_pixels, Rng};
use flip::encoding::Encoding;
use sim::stimulus::Stimulus;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arch: Vec<usize> = args
        .get(1)
        .map_or("64-64-10", String::as_str)
        .split('-')
        .map(|s| s.parse().expect("a layer width"))
        .collect();
    let frames: usize = args
        .get(2)
        .map_or(2000, |s| s.parse().expect("a frame count"));
    let mut rng = Rng(1);
    let model = random_model(&mut rng, arch[0], 8, Encoding::BitPlanes(4), &arch[1..]);
    let t = std::time::Instant::now();
    let design = compiler::compile(&model, &FoldSpec::auto(None)).unwrap();
    println!("compile: {:.3} s", t.elapsed().as_secs_f64());
    if let Some(dir) = args.get(3) {
        let dir = std::path::Path::new(dir);
        let t = std::time::Instant::now();
        compiler::write_build(&design, dir).unwrap();
        println!("write_build: {:.3} s", t.elapsed().as_secs_f64());
        flip::model::format::save(&model, &dir.join("model.fcm")).unwrap();
    }
    let px = random_pixels(&mut rng, &model, frames);
    let run = sim::run(&design, &px, Stimulus::free(0), u64::MAX, None).unwrap();
    println!(
        "sim: {} frames, {} cycles in {:.3} s: {:.3e} cycles/s",
        frames,
        run.trace.cycles,
        run.seconds,
        run.cycles_per_second()
    );
    if let Some(dir) = args.get(3) {
        let rtl = testbenches::Rtl::Verilator;
        if let Err(e) = testbenches::available(rtl) {
            println!("verilator: skipped: {e}");
            return;
        }
        let ports = sim::ports(&design);
        let dir = std::path::Path::new(dir);
        let r = testbenches::run(dir, &ports, rtl, &px, Stimulus::free(0), u64::MAX).unwrap();
        assert_eq!(r.trace, run.trace, "sim and verilator agree");
        println!(
            "verilator: {:.3} s: {:.3e} cycles/s (compile {:.1} s); sim is {:.1}x faster",
            r.seconds,
            r.cycles_per_second,
            r.compile_seconds,
            run.cycles_per_second() / r.cycles_per_second
        );
    }
}
