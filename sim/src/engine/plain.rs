//! The plain loop: every block takes every clock edge, every cycle. Slow and obviously right;
//! it writes the VCD (which shows every block's state each cycle) and is what the
//! event-driven loop is tested against.

use compiler::blocks::{CycleModel, StageModel};

use super::{Env, Record, SimError};
use crate::vcd::Vcd;

/// Runs `models` from cycle 0 until `rec` has every frame's result (or `env`'s limit); returns
/// the cycles run.
pub(super) fn drive(
    models: &mut [StageModel],
    rec: &mut Record,
    env: &Env,
    mut vcd: Option<&mut Vcd>,
) -> Result<u64, SimError> {
    let n = models.len();
    let mut out_ready = vec![false; n];
    let mut in_ready = vec![false; n];
    let mut fire = vec![false; n];
    let mut t = 0u64;
    while rec.go_on(t, env)? {
        let now = (env.at)(t);
        let s_valid = rec.next < rec.beats.len() && !now.bubble;
        let m_ready = !now.stall;
        for i in (0..n).rev() {
            out_ready[i] = if i + 1 == n { m_ready } else { in_ready[i + 1] };
            in_ready[i] = models[i].in_ready(out_ready[i]);
        }
        let mut mask = 0u64;
        for i in 0..n {
            let v = models[i].out_valid();
            fire[i] = v && out_ready[i];
            if fire[i] {
                mask |= 1 << i;
                rec.fires[i] += 1;
            }
            if v {
                rec.valid_cycles[i] += 1;
            }
        }
        let s_fire = s_valid && in_ready[0];
        if s_valid && !in_ready[0] {
            rec.input_waits += 1;
        }
        if s_fire {
            mask |= 1 << n;
        }
        if let Some(v) = vcd.as_mut() {
            let data = if rec.next < rec.beats.len() {
                rec.beats.words(rec.next)
            } else {
                &[]
            };
            v.cycle(t, s_valid, in_ready[0], data, m_ready, &out_ready, models)?;
        }
        if mask != 0 {
            rec.trace.fires.push((t, mask));
        }
        if fire[n - 1] {
            rec.output(t, models[n - 1].out_data());
        }
        // The last block first, so that each one captures its upstream's output register
        // before that register changes.
        for i in (0..n).rev() {
            let (up, rest) = models.split_at_mut(i);
            let beat = (i == 0 && s_fire).then(|| rec.beats.beat(rec.next));
            let input = if i == 0 {
                beat.as_ref()
            } else if fire[i - 1] {
                Some(up[i - 1].out_data())
            } else {
                None
            };
            rest[0].clock(input, out_ready[i]);
        }
        if s_fire {
            rec.take_input(t);
        }
        t += 1;
    }
    Ok(t)
}
