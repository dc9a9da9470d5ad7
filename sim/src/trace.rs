//! What a simulation run observed, in the same shape for the Rust simulator, Verilator and
//! Icarus, so two runs compare with `==` and the first difference names a cycle and a stage.

pub use compiler::ir::{InputFormat, Ports, MAX_INPUT_BITS};
/// The weight-load words of a build directory (see [`Ports::load_words`]).
pub use compiler::LOAD_HEX;

/// One output beat of the top.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputBeat {
    /// Cycle (0 = first after reset) in which `m_valid && m_ready`.
    pub cycle: u64,
    /// `m_class`.
    pub class: u32,
    /// `m_scores`, sign-extended.
    pub scores: Vec<i64>,
}

/// Everything observed in a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// Output beats in order.
    pub outputs: Vec<OutputBeat>,
    /// `(cycle, fire)` for every cycle with a handshake, in order: bit `i < n` is stage `i`
    /// handing on a beat (`dbg_fire`), bit `n` (`n` stages) the input handshake
    /// (`s_valid && s_ready`).
    pub fires: Vec<(u64, u64)>,
    /// Cycles simulated (0 up to the cycle of the last output beat, inclusive).
    pub cycles: u64,
}

/// The first point at which two traces disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// First cycle that differs.
    pub cycle: u64,
    /// Stage names whose `dbg_fire` bit differs in that cycle, `input handshake` if that
    /// differs, or `output` for the output beat.
    pub stages: Vec<String>,
    /// Human-readable account of both sides.
    pub detail: String,
}

impl Trace {
    /// The earliest cycle at which `self` and `other` differ, or `None` if they are identical.
    pub fn first_divergence(&self, other: &Trace, ports: &Ports) -> Option<Divergence> {
        let fire_at = |t: &Trace, i: usize| t.fires.get(i).copied();
        let mut i = 0;
        while i < self.fires.len().max(other.fires.len()) {
            let (a, b) = (fire_at(self, i), fire_at(other, i));
            if a != b {
                let cycle = match (a, b) {
                    (Some(x), Some(y)) => x.0.min(y.0),
                    (Some(x), None) | (None, Some(x)) => x.0,
                    (None, None) => unreachable!(),
                };
                let bits = |f: Option<(u64, u64)>| f.filter(|f| f.0 == cycle).map_or(0, |f| f.1);
                let diff = bits(a) ^ bits(b);
                let n = ports.stages.len();
                let stages = (0..=n)
                    .filter(|s| diff >> s & 1 == 1)
                    .map(|s| match ports.stages.get(s) {
                        Some(name) => name.clone(),
                        None => "input handshake".into(),
                    })
                    .collect();
                let detail = format!(
                    "cycle {cycle}: fire bits (stages, then the input) {:#x} vs {:#x}",
                    bits(a),
                    bits(b)
                );
                let out = self.output_divergence(other);
                if let Some(o) = out.filter(|o| o.cycle < cycle) {
                    return Some(o);
                }
                return Some(Divergence {
                    cycle,
                    stages,
                    detail,
                });
            }
            i += 1;
        }
        self.output_divergence(other)
    }

    /// Output beats that differ between the two traces (in cycle, class or scores), a beat
    /// only one of them has included.
    pub fn output_mismatches(&self, other: &Trace) -> usize {
        let n = self.outputs.len().max(other.outputs.len());
        (0..n)
            .filter(|&i| self.outputs.get(i) != other.outputs.get(i))
            .count()
    }

    fn output_divergence(&self, other: &Trace) -> Option<Divergence> {
        let n = self.outputs.len().max(other.outputs.len());
        (0..n).find_map(|i| {
            let (a, b) = (self.outputs.get(i), other.outputs.get(i));
            (a != b).then(|| Divergence {
                cycle: [a, b].iter().flatten().map(|o| o.cycle).min().unwrap_or(0),
                stages: vec!["output".into()],
                detail: format!("output beat {i}: {a:?} vs {b:?}"),
            })
        })
    }
}
