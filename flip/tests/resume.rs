//! An interrupted run resumed from its checkpoint ends exactly where an uninterrupted run does,
//! and a checkpoint is refused for any other run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use flip::data::Dataset;
use flip::encoding::Encoding;
use flip::train::{train, Keep, OptimizerKind, PatienceOn, Progress, TrainConfig, TrainResult};

fn config() -> TrainConfig {
    TrainConfig::new(
        OptimizerKind::Flip,
        flip::model::arch::dense(&[48, 10]),
        Encoding::BitPlanes(2),
        4,
        25,
        5,
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flip-resume-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Trains `cfg` in one go, then again interrupted right after epoch `cut` (0-based) has written
/// its checkpoint and resumed; checks that both end with the same model and history.
fn interrupted_run_matches(
    cfg: &TrainConfig,
    data: &Dataset,
    dir: &Path,
    cut: usize,
) -> TrainResult {
    let (full_ck, cut_ck) = (dir.join("full.ckpt"), dir.join("cut.ckpt"));
    let full = train(cfg, data, Some(&full_ck), None, |_| {}).unwrap();

    let interrupted = catch_unwind(AssertUnwindSafe(|| {
        train(cfg, data, Some(&cut_ck), None, |p| {
            if let Progress::Epoch(r) = p {
                if r.epoch == cut {
                    panic!("interrupted");
                }
            }
        })
    }));
    assert!(interrupted.is_err());
    let mut epochs_run = 0;
    let resumed = train(cfg, data, Some(&cut_ck), Some(&cut_ck), |p| {
        if let Progress::Epoch(_) = p {
            epochs_run += 1;
        }
    })
    .unwrap();
    assert_eq!(
        epochs_run,
        full.history.len() - cut - 1,
        "resume must run only the missing epochs"
    );
    assert_eq!(resumed.model, full.model);
    assert_eq!(resumed.kept_epoch, full.kept_epoch);
    assert_eq!(resumed.stopped, full.stopped);
    assert_eq!(resumed.history.len(), full.history.len());
    for (a, b) in resumed.history.iter().zip(&full.history) {
        assert_eq!(
            (a.loss, a.test_accuracy, a.val_accuracy, a.val_loss),
            (b.loss, b.test_accuracy, b.val_accuracy, b.val_loss)
        );
    }
    full
}

#[test]
fn resuming_after_an_interruption_loses_nothing() {
    let data = flip::data::optdigits().unwrap();
    let dir = scratch("last");
    let cfg = config();
    let full = interrupted_run_matches(&cfg, &data, &dir, 1);
    assert_eq!(full.history.len(), 4);
    assert_eq!(full.val_samples, 144);
    assert_eq!(full.train_samples, data.train.len() - 144);
    assert!(full.history.iter().all(|h| h.val_accuracy.is_some()));

    // A checkpoint from another configuration is refused, not silently mixed in.
    let mut other = cfg.clone();
    other.seed = 6;
    let err = train(&other, &data, None, Some(&dir.join("cut.ckpt")), |_| {})
        .err()
        .expect("mismatch refused");
    let msg = err.to_string();
    assert!(
        msg.contains("cut.ckpt") && msg.contains("seed: saved 5, wanted 6"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resuming_keeps_the_best_epoch_and_the_stopping_rule() {
    let data = flip::data::optdigits().unwrap();
    let dir = scratch("best");
    let mut cfg = config();
    cfg.epochs = 12;
    cfg.keep = Keep::Best;
    cfg.patience = 2;
    cfg.patience_on = PatienceOn::Accuracy;
    // A high learning rate makes validation accuracy wander, so the best epoch is not the last
    // and patience stops the run early.
    cfg.params = vec![("lr".into(), "4".into())];
    let full = interrupted_run_matches(&cfg, &data, &dir, 2);
    let best = full
        .history
        .iter()
        .map(|h| h.val_accuracy.unwrap())
        .fold(0.0, f64::max);
    assert_eq!(full.history[full.kept_epoch].val_accuracy, Some(best));
    assert_eq!(full.val_accuracy, Some(best), "kept model is the best one");
    assert!(full.stopped.contains("converged"), "{}", full.stopped);
    assert!(full.history.len() < 12 && full.kept_epoch + 1 < full.history.len());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_checkpoint_for_other_data_or_encoding_is_refused_naming_both() {
    let data = flip::data::optdigits().unwrap();
    let dir = scratch("identity");
    let ck = dir.join("digits.ckpt");
    let mut cfg = config();
    cfg.epochs = 1;
    train(&cfg, &data, Some(&ck), None, |_| {}).unwrap();

    // The same pixels as 4 x 16 images: the architecture fits, the data does not.
    let mut tall = data.clone();
    (tall.width, tall.height, tall.name) = (4, 16, "tall-digits".into());
    let msg = train(&cfg, &tall, None, Some(&ck), |_| {})
        .err()
        .expect("other data refused")
        .to_string();
    assert!(
        msg.contains("dataset: saved optdigits, wanted tall-digits")
            && msg
                .contains("image shape: saved 8x8x1 (5-bit pixels), wanted 4x16x1 (5-bit pixels)"),
        "{msg}"
    );

    let mut planes = cfg.clone();
    planes.encoding = Encoding::BitPlanes(3);
    let msg = train(&planes, &data, None, Some(&ck), |_| {})
        .err()
        .expect("other encoding refused")
        .to_string();
    assert!(
        msg.contains("encoding: saved bitplanes 2, wanted bitplanes 3"),
        "{msg}"
    );

    let mut val = cfg.clone();
    val.validation = flip::train::Holdout::Images(100);
    let msg = train(&val, &data, None, Some(&ck), |_| {})
        .err()
        .expect("other validation split refused")
        .to_string();
    assert!(msg.contains("validation split: saved"), "{msg}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn thread_count_does_not_change_the_decisions() {
    let data = flip::data::optdigits().unwrap();
    let mut cfg = config();
    cfg.epochs = 6;
    cfg.keep = Keep::Best;
    cfg.patience = 2;
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| train(&cfg, &data, None, None, |_| {}).unwrap())
    };
    let (a, b) = (run(1), run(3));
    assert_eq!(a.model, b.model);
    assert_eq!((a.kept_epoch, &a.stopped), (b.kept_epoch, &b.stopped));
    for (x, y) in a.history.iter().zip(&b.history) {
        assert_eq!((x.val_loss, x.val_accuracy), (y.val_loss, y.val_accuracy));
    }
}
