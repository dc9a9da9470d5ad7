//! An interrupted run resumed from its checkpoint ends exactly where an uninterrupted run does.

use std::panic::{catch_unwind, AssertUnwindSafe};

use flip::encoding::Encoding;
use flip::train::{train, OptimizerKind, Progress, TrainConfig};

fn config() -> TrainConfig {
    TrainConfig {
        optimizer: OptimizerKind::Flip,
        layers: vec![48, 10],
        encoding: Encoding::BitPlanes(2),
        epochs: 4,
        batch: 25,
        seed: 5,
        patience: 0,
        min_delta: 0.001,
        params: Vec::new(),
    }
}

#[test]
fn resuming_after_an_interruption_loses_nothing() {
    let data = flip::data::optdigits().unwrap();
    let dir = std::env::temp_dir().join(format!("flip-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (full_ck, cut_ck) = (dir.join("full.ckpt"), dir.join("cut.ckpt"));
    let cfg = config();

    let full = train(&cfg, &data, Some(&full_ck), None, |_| {}).unwrap();

    // Interrupt the second run right after its second epoch's checkpoint is written.
    let interrupted = catch_unwind(AssertUnwindSafe(|| {
        train(&cfg, &data, Some(&cut_ck), None, |p| {
            if let Progress::Epoch(r) = p {
                if r.epoch == 1 {
                    panic!("interrupted");
                }
            }
        })
    }));
    assert!(interrupted.is_err());
    let mut epochs_run = 0;
    let resumed = train(&cfg, &data, Some(&cut_ck), Some(&cut_ck), |p| {
        if let Progress::Epoch(_) = p {
            epochs_run += 1;
        }
    })
    .unwrap();
    assert_eq!(epochs_run, 2, "resume must run only the missing epochs");
    assert_eq!(resumed.model, full.model);
    assert_eq!(resumed.history.len(), 4);
    for (a, b) in resumed.history.iter().zip(&full.history) {
        assert_eq!((a.loss, a.test_accuracy), (b.loss, b.test_accuracy));
    }

    // A checkpoint from another configuration is refused, not silently mixed in.
    let mut other = cfg.clone();
    other.seed = 6;
    let err = train(&other, &data, None, Some(&cut_ck), |_| {})
        .err()
        .expect("mismatch refused");
    assert!(err.to_string().contains("cut.ckpt"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
