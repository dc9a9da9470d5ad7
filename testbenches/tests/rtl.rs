//! Verilator and Icarus against each other and against the golden model of the hand-written
//! fixtures. Tests pass with a message when a simulator is not installed, and fail instead
//! under `FLIPCHIP_REQUIRE_TOOLS=1` (as `scripts/test.sh` runs them).

mod common;

use std::path::PathBuf;

use sim::stimulus::Stimulus;
use sim::trace::{Ports, Trace};
use testbenches::{available, run, HarnessError, Rtl};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("testbenches-fixtures")
}

/// The simulators among `rtls` that are installed; prints a message for the others.
fn installed(rtls: &[Rtl]) -> Vec<Rtl> {
    rtls.iter()
        .copied()
        .filter(|&r| match available(r) {
            Ok(()) => true,
            Err(e) => {
                testbenches::tool_missing(&format!("{r}: {e}"));
                false
            }
        })
        .collect()
}

fn assert_same(what: &str, a: &Trace, b: &Trace, ports: &Ports) {
    if let Some(d) = a.first_divergence(b, ports) {
        panic!(
            "{what}: diverge at cycle {} in {:?}: {}",
            d.cycle, d.stages, d.detail
        );
    }
    assert_eq!(a, b, "{what}");
}

fn check_fixture(name: &str, stim: Stimulus, frames: usize) {
    let (dir, ports) = common::fixture(&root(), name);
    let bytes = common::beats(&ports, frames, stim.seed);
    let max_cycles = 100 * frames as u64 + 100;
    let gold = common::golden(&ports, &bytes, stim, max_cycles);
    assert_eq!(gold.outputs.len(), frames);
    // The fixture is meant to exercise negative scores and back-pressure.
    assert!(gold.outputs.iter().any(|o| o.scores.iter().any(|&s| s < 0)));
    for rtl in installed(&[Rtl::Verilator, Rtl::Icarus]) {
        let r = run(&dir, &ports, rtl, &bytes, stim, max_cycles)
            .unwrap_or_else(|e| panic!("{name} {rtl}: {e}"));
        eprintln!(
            "{name} {rtl} {stim:?}: {} cycles in {:.4} s ({:.0} cycles/s), compile {:.1} s",
            r.trace.cycles, r.seconds, r.cycles_per_second, r.compile_seconds
        );
        assert_same(&format!("{name}: {rtl} vs golden"), &r.trace, &gold, &ports);
    }
}

const STRESS: Stimulus = Stimulus {
    seed: 0x5eed_1234_dead_beef,
    bubble_pct: 30,
    stall_pct: 40,
};

#[test]
fn wide_scores_under_bubbles_and_stalls() {
    check_fixture("sum3_wide", STRESS, 400);
}

#[test]
fn wide_scores_free_running() {
    let gold_cycles = {
        let (_, ports) = common::fixture(&root(), "sum3_wide");
        let bytes = common::beats(&ports, 300, 9);
        common::golden(&ports, &bytes, Stimulus::free(9), u64::MAX).cycles
    };
    // One beat per cycle; the last frame's output leaves two cycles after its last beat.
    assert_eq!(gold_cycles, 300 * 5 + 2);
    check_fixture("sum3_wide", Stimulus::free(9), 300);
}

#[test]
fn narrow_scores_two_byte_beats_under_bubbles_and_stalls() {
    check_fixture("sum3_narrow", Stimulus { seed: 77, ..STRESS }, 400);
}

#[test]
fn narrow_scores_free_running() {
    check_fixture("sum3_narrow", Stimulus::free(1), 300);
}

#[test]
fn heavy_back_pressure() {
    let stim = Stimulus {
        seed: 3,
        bubble_pct: 5,
        stall_pct: 90,
    };
    check_fixture("sum3_wide", stim, 60);
}

#[test]
fn no_frames_means_empty_trace() {
    let (dir, ports) = common::fixture(&root(), "sum3_narrow");
    for rtl in installed(&[Rtl::Verilator, Rtl::Icarus]) {
        // Four beats: less than one frame, so no output is expected.
        let r = run(&dir, &ports, rtl, &[1, 0, 2, 0, 3, 0, 4, 0], STRESS, 1000).unwrap();
        assert_eq!(r.trace, Trace::default(), "{rtl}");
    }
}

#[test]
fn timeout_reports_outputs_so_far() {
    let (dir, ports) = common::fixture(&root(), "sum3_wide");
    let bytes = common::beats(&ports, 50, 5);
    let gold = common::golden(&ports, &bytes, STRESS, 60);
    assert!(!gold.outputs.is_empty() && gold.outputs.len() < 50);
    for rtl in installed(&[Rtl::Verilator, Rtl::Icarus]) {
        match run(&dir, &ports, rtl, &bytes, STRESS, 60) {
            Err(HarnessError::Timeout {
                outputs,
                expected,
                cycles,
                trace,
                ..
            }) => {
                assert_eq!(
                    (outputs, expected, cycles),
                    (gold.outputs.len(), 50, 60),
                    "{rtl}"
                );
                assert_eq!(*trace, gold, "{rtl}");
            }
            other => panic!("{rtl}: expected a timeout, got {other:?}"),
        }
        let e = run(&dir, &ports, rtl, &bytes, STRESS, 60)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("only {} of 50 output beats", gold.outputs.len())),
            "{e}"
        );
    }
}

#[test]
fn second_run_uses_the_cache() {
    let (dir, ports) = common::fixture(&root(), "sum3_narrow");
    let bytes = common::beats(&ports, 10, 2);
    for rtl in installed(&[Rtl::Verilator, Rtl::Icarus]) {
        run(&dir, &ports, rtl, &bytes, STRESS, 10_000).unwrap();
        let again = run(&dir, &ports, rtl, &bytes, STRESS, 10_000).unwrap();
        assert_eq!(again.compile_seconds, 0.0, "{rtl}");
    }
}

#[test]
fn icarus_reports_x_on_handshake() {
    for rtl in installed(&[Rtl::Icarus]) {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/unreset");
        let dir = root().join("unreset");
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["unreset.v", "ports.json"] {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
        let ports = testbenches::read_ports(&dir).unwrap();
        match run(&dir, &ports, rtl, &[1, 2, 3], Stimulus::free(0), 100) {
            Err(HarnessError::Unknown { cycle, signal, .. }) => {
                assert_eq!((cycle, signal.as_str()), (0, "m_valid"));
            }
            other => panic!("expected X on m_valid, got {other:?}"),
        }
    }
}

#[test]
fn bad_inputs_are_errors() {
    let (dir, ports) = common::fixture(&root(), "sum3_narrow");
    for rtl in installed(&[Rtl::Verilator, Rtl::Icarus]) {
        // Odd byte count for two-byte beats, and a beat above 12 bits.
        assert!(matches!(
            run(&dir, &ports, rtl, &[1, 2, 3], STRESS, 10),
            Err(HarnessError::Beats(_))
        ));
        assert!(matches!(
            run(&dir, &ports, rtl, &[0, 0x10], STRESS, 10),
            Err(HarnessError::Beats(_))
        ));
        let wide = Ports {
            input_width: 513,
            ..ports.clone()
        };
        assert!(matches!(
            run(&dir, &wide, rtl, &[], STRESS, 10),
            Err(HarnessError::Ports(_))
        ));
    }
}
