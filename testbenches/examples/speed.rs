//! Simulation speed of Verilator and Icarus on the hand-written fixtures.
//!
//! `cargo run --release -p testbenches --example speed [FRAMES] [WORK_DIR]`
//! (default 200000 frames for Verilator, 1/50 of that for Icarus; work directory
//! `$TMPDIR/flipchip-testbenches-speed`, where the compile caches stay between runs).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;

use sim::stimulus::Stimulus;
use testbenches::{available, run, Rtl};

fn main() {
    let mut args = std::env::args().skip(1);
    let frames: usize = args.next().map_or(200_000, |a| a.parse().expect("FRAMES"));
    let root = args.next().map_or_else(
        || std::env::temp_dir().join("flipchip-testbenches-speed"),
        PathBuf::from,
    );
    let stims = [
        ("free", Stimulus::free(1)),
        (
            "bubble 30% stall 40%",
            Stimulus {
                seed: 1,
                bubble_pct: 30,
                stall_pct: 40,
            },
        ),
    ];
    for name in ["sum3_wide", "sum3_narrow"] {
        let (dir, ports) = common::fixture(&root, name);
        for rtl in [Rtl::Verilator, Rtl::Icarus] {
            if let Err(e) = available(rtl) {
                println!("{name} {rtl}: skipped: {e}");
                continue;
            }
            let n = if rtl == Rtl::Icarus {
                (frames / 50).max(1)
            } else {
                frames
            };
            let bytes = common::beats(&ports, n, 42);
            for (label, stim) in stims {
                let r = run(&dir, &ports, rtl, &bytes, stim, u64::MAX)
                    .unwrap_or_else(|e| panic!("{e}"));
                let gold = common::golden(&ports, &bytes, stim, u64::MAX);
                let ok = if r.trace == gold {
                    "matches golden"
                } else {
                    "DIFFERS FROM GOLDEN"
                };
                println!(
                    "{name:12} {rtl:9} {label:21} {:>9} cycles {:8.3} s {:>12.0} cycles/s (compile {:.1} s) {ok}",
                    r.trace.cycles, r.seconds, r.cycles_per_second, r.compile_seconds
                );
            }
        }
    }
}
