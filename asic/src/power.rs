//! Power from measured activity: each instance's OpenSTA power at activity 0 and 1 (see
//! [`crate::sta`]), weighted by its output pins' toggle rate in the gate-level simulation.

use std::collections::BTreeMap;

use crate::liberty::Library;
use crate::vcd::Activity;

/// The design's power, W.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Power {
    /// Everything.
    pub total_w: f64,
    /// Flip-flops and latches, clocking included.
    pub sequential_w: f64,
    /// Flip-flops and latches at zero data activity: the clock's share.
    pub clock_w: f64,
    /// Logic.
    pub combinational_w: f64,
    /// Mean output toggles per cycle over all instances.
    pub mean_rate: f64,
}

/// Sums `p0 + rate * (p1 - p0)` over `instances` (name to cell), with `rate` the mean toggle
/// rate of the cell's outputs.
pub fn assemble(
    instances: &BTreeMap<String, String>,
    lib: &Library,
    per_instance: &BTreeMap<String, (f64, f64)>,
    activity: &Activity,
) -> Power {
    let mut p = Power::default();
    let mut rates = 0.0;
    for (name, cell) in instances {
        let Some(&(p0, p1)) = per_instance.get(name) else {
            continue;
        };
        let c = lib.get(cell).cloned().unwrap_or_default();
        let rate = if c.outputs.is_empty() {
            0.0
        } else {
            c.outputs
                .iter()
                .map(|o| activity.rate(name, o))
                .sum::<f64>()
                / c.outputs.len() as f64
        };
        rates += rate;
        let w = p0 + rate * (p1 - p0);
        p.total_w += w;
        if c.sequential {
            p.sequential_w += w;
            p.clock_w += p0;
        } else {
            p.combinational_w += w;
        }
    }
    p.mean_rate = rates / instances.len().max(1) as f64;
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::liberty::Cell;

    #[test]
    fn power_follows_each_instance_activity() {
        let lib: Library = [
            (
                "INVX1".to_string(),
                Cell {
                    area: 16.0,
                    outputs: vec!["Y".into()],
                    sequential: false,
                    ..Cell::default()
                },
            ),
            (
                "DFFPOSX1".to_string(),
                Cell {
                    area: 96.0,
                    outputs: vec!["Q".into()],
                    sequential: true,
                    ..Cell::default()
                },
            ),
        ]
        .into();
        let inst: BTreeMap<String, String> = [
            ("g1".to_string(), "INVX1".to_string()),
            ("g2".to_string(), "DFFPOSX1".to_string()),
        ]
        .into();
        let per: BTreeMap<String, (f64, f64)> = [
            ("g1".to_string(), (0.0, 2.0)),
            ("g2".to_string(), (1.0, 3.0)),
        ]
        .into();
        let mut act = Activity {
            cycles: 4,
            ..Default::default()
        };
        act.toggles.insert(("g1".into(), "Y".into()), 2);
        act.toggles.insert(("g2".into(), "Q".into()), 1);
        let p = assemble(&inst, &lib, &per, &act);
        // g1: 0 + 0.5 * 2; g2: 1 + 0.25 * 2.
        assert!((p.total_w - 2.5).abs() < 1e-12);
        assert!((p.clock_w - 1.0).abs() < 1e-12);
        assert!((p.sequential_w - 1.5).abs() < 1e-12);
        assert!((p.mean_rate - 0.375).abs() < 1e-12);
        // No activity: only the clock's share is left.
        let idle = assemble(&inst, &lib, &per, &Activity::default());
        assert!((idle.total_w - 1.0).abs() < 1e-12);
    }
}
