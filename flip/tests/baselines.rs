//! Every baseline optimizer learns the embedded digits in a few epochs: a wiring mistake in an
//! optimizer (a sign, a transposed gradient) leaves it near chance (10%) and fails here.

use flip::encoding::Encoding;
use flip::train::{train, OptimizerKind, TrainConfig};

#[test]
fn each_baseline_learns_the_digits() {
    let data = flip::data::optdigits().unwrap();
    for kind in [
        OptimizerKind::BinaryConnect,
        OptimizerKind::Bop,
        OptimizerKind::Float,
    ] {
        let cfg = TrainConfig::new(
            kind,
            flip::model::arch::dense(&[64, 10]),
            Encoding::BitPlanes(4),
            3,
            20,
            1,
        );
        let r = train(&cfg, &data, None, None, |_| {}).unwrap();
        let test = r.model.meta.test_accuracy.unwrap();
        let val = r.val_accuracy.unwrap();
        assert!(
            test >= 0.8 && val >= 0.8,
            "{} after 3 epochs: test {test:.3}, validation {val:.3}",
            kind.name()
        );
        eprintln!("{}: test {test:.3}, validation {val:.3}", kind.name());
        r.model.check().unwrap();
    }
}
