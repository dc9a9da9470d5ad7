//! The event-driven loop: exact like the plain one (and tested against it and against
//! Verilator), but a cycle costs only the blocks that move in it.
//!
//! The handshake signals of every block live in bit masks (bit `i`: stage `i`), so deciding a
//! cycle's handshakes is a few word operations whatever the number of stages. A block with no
//! beat in or out in a cycle, within its quiet cycles ([`CycleModel::quiet_cycles`]), keeps
//! its handshake signals and its output register whether it takes the edge now or later, so
//! its edges are left pending and handed over with one [`CycleModel::skip`] when it next takes
//! or hands on a beat, or when its quiet cycles run out (its *due* cycle). In a pipeline whose
//! stages count fold steps or wait on a slower stage most of the time, a cycle then clocks two
//! or three blocks rather than all of them.
//!
//! Stretches of cycles in which no stream can move except pixels flowing into the input
//! adapter run in one go: the adapter takes its pixels (`CycleModel::quiet_inputs`), the
//! other blocks' edges stay pending.

use compiler::blocks::{CycleModel, Signals, StageModel};

use super::{Env, Record, SimError};

/// The signals of every block as of its last edge taken, and its pending edges.
struct Blocks {
    n: usize,
    /// Bits `0..n`.
    all: u64,
    /// `out_valid`.
    valid: u64,
    /// `in_ready` with `out_ready` low, and high.
    ready_lo: u64,
    ready_hi: u64,
    /// Block `i` has taken the edges of the cycles before `taken[i]`.
    taken: Vec<u64>,
    /// The cycle whose edge block `i` must take even if it does not move: the last one its
    /// signals are known to hold for.
    due: Vec<u64>,
    /// At most the earliest of `due`: before it no block is due, and the scan of `due` that
    /// most cycles would make for nothing is left out.
    next_due: u64,
    /// The cycle since which `out_valid` has been high (while it is).
    valid_since: Vec<u64>,
}

impl Blocks {
    fn new(models: &[StageModel]) -> Blocks {
        let n = models.len();
        assert!(
            n < 64,
            "a trace's fire mask holds the stages and the input in a u64"
        );
        let mut b = Blocks {
            n,
            all: (1u64 << n) - 1,
            valid: 0,
            ready_lo: 0,
            ready_hi: 0,
            taken: vec![0; n],
            due: vec![0; n],
            next_due: 0,
            valid_since: vec![0; n],
        };
        for (i, m) in models.iter().enumerate() {
            b.sense(i, m, 0, &mut vec![0; n]);
        }
        b
    }

    /// Reads block `i`'s signals once it has taken the edges before cycle `t`; counts the
    /// cycles its `out_valid` was high into `valid_cycles`.
    #[inline]
    fn sense(&mut self, i: usize, m: &StageModel, t: u64, valid_cycles: &mut [u64]) {
        self.record(i, m.signals(), t, valid_cycles);
    }

    /// [`Blocks::sense`] with the signals read.
    #[inline]
    fn record(&mut self, i: usize, sig: Signals, t: u64, valid_cycles: &mut [u64]) {
        let bit = 1u64 << i;
        let v = sig.out_valid;
        if v != (self.valid & bit != 0) {
            if v {
                self.valid_since[i] = t;
            } else {
                valid_cycles[i] += t - self.valid_since[i];
            }
            self.valid ^= bit;
        }
        let (lo, hi) = (sig.ready_lo, sig.ready_hi);
        self.ready_lo = (self.ready_lo & !bit) | (u64::from(lo) << i);
        self.ready_hi = (self.ready_hi & !bit) | (u64::from(hi) << i);
        self.taken[i] = t;
        // The states after 0..q - 1 more edges show these signals; the edge into the state
        // after q edges must be a real one (and at least this cycle's edge is).
        let q = sig.quiet.max(1);
        self.due[i] = t.saturating_add(q - 1);
        self.next_due = self.next_due.min(self.due[i]);
    }

    /// Block `i` takes its pending edges, those of the cycles before `t`.
    #[inline]
    fn settle(&mut self, i: usize, m: &mut StageModel, t: u64) {
        let p = t - self.taken[i];
        if p > 0 {
            m.skip(p);
            self.taken[i] = t;
        }
    }

    /// The blocks that must take cycle `t`'s edge even without a beat. The caller clocks
    /// them, and their [`Blocks::sense`] brings `next_due` down to their new due cycles.
    #[inline]
    fn due_at(&mut self, t: u64) -> u64 {
        if t < self.next_due {
            return 0;
        }
        let (mut mask, mut next) = (0, u64::MAX);
        for (i, &d) in self.due.iter().enumerate() {
            if d <= t {
                mask |= 1 << i;
            } else {
                next = next.min(d);
            }
        }
        self.next_due = next;
        mask
    }

    /// `in_ready` of every block in a cycle in which the sink's `m_ready` is `m_ready`: most
    /// blocks' depends on their registers only; the few that look at their `out_ready` take
    /// it from the next block's, decided first.
    #[inline]
    fn in_ready(&self, m_ready: bool) -> u64 {
        let mut dep = (self.ready_lo ^ self.ready_hi) & self.all;
        let mut ready = self.ready_lo & !dep;
        while dep != 0 {
            let i = 63 - dep.leading_zeros() as usize;
            dep &= !(1u64 << i);
            let out_ready = if i + 1 == self.n {
                m_ready
            } else {
                ready >> (i + 1) & 1 == 1
            };
            let src = if out_ready {
                self.ready_hi
            } else {
                self.ready_lo
            };
            ready |= src & (1u64 << i);
        }
        ready
    }
}

/// Runs `models` from cycle 0 until `rec` has every frame's result (or `env`'s limit); returns
/// the cycles run.
pub(super) fn drive(
    models: &mut [StageModel],
    rec: &mut Record,
    env: &Env,
) -> Result<u64, SimError> {
    let n = models.len();
    let mut b = Blocks::new(models);
    let mut t = 0u64;
    while rec.go_on(t, env)? {
        let c = quiet_stretch(models, &mut b, rec, env, t);
        if c > 0 {
            t += c;
            continue;
        }
        let now = (env.at)(t);
        let s_valid = rec.next < rec.beats.len() && !now.bubble;
        let m_ready = !now.stall;
        let in_ready = b.in_ready(m_ready);
        let out_ready = (in_ready >> 1) | (u64::from(m_ready) << (n - 1));
        let fire = b.valid & out_ready;
        let s_fire = s_valid && in_ready & 1 != 0;
        if s_valid && !s_fire {
            rec.input_waits += 1;
        }
        let mask = fire | (u64::from(s_fire) << n);
        if mask != 0 {
            rec.trace.fires.push((t, mask));
        }
        let mut f = fire;
        while f != 0 {
            rec.fires[f.trailing_zeros() as usize] += 1;
            f &= f - 1;
        }
        if fire >> (n - 1) & 1 == 1 {
            rec.output(t, models[n - 1].out_data());
        }
        // Blocks that take or hand on a beat, and those whose quiet cycles ran out; the last
        // first, so that each one captures its upstream's output register before that
        // register changes.
        let mut visit = (fire | (fire << 1) | u64::from(s_fire) | b.due_at(t)) & b.all;
        while visit != 0 {
            let i = 63 - visit.leading_zeros() as usize;
            visit &= !(1u64 << i);
            let (up, rest) = models.split_at_mut(i);
            let m = &mut rest[0];
            let pending = t - b.taken[i];
            let or = out_ready >> i & 1 == 1;
            let sig = if i == 0 {
                let beat = s_fire.then(|| rec.beats.beat(rec.next));
                m.advance(pending, beat.as_ref(), or)
            } else if fire >> (i - 1) & 1 == 1 {
                m.advance(pending, Some(up[i - 1].out_data()), or)
            } else {
                m.advance(pending, None, or)
            };
            b.record(i, sig, t + 1, &mut rec.valid_cycles);
        }
        if s_fire {
            rec.take_input(t);
        }
        t += 1;
    }
    for i in 0..n {
        if b.valid >> i & 1 == 1 {
            rec.valid_cycles[i] += t - b.valid_since[i];
        }
    }
    Ok(t)
}

/// Runs cycles `t..` in one go while no stream between blocks or towards the sink can move,
/// so that only the input may move (into the first block without changing its handshake
/// signals); returns the cycles run (0 if the stretch would be too short to be worth it,
/// leaving the cycle to the general path). Exact: the skipped cycles are those in which the
/// general path would see no handshake but the input's, and no block reaches its due cycle.
fn quiet_stretch(
    models: &mut [StageModel],
    b: &mut Blocks,
    rec: &mut Record,
    env: &Env,
    t: u64,
) -> u64 {
    let n = b.n;
    if b.valid >> (n - 1) & 1 == 1 {
        return 0;
    }
    // With the last block's output empty its `in_ready` does not depend on `m_ready`; the
    // blocks before it hand on when the next block is ready.
    if b.valid & (b.ready_lo >> 1) != 0 {
        return 0;
    }
    // The other blocks stay pending; each may go on so until the cycle before it is due.
    let mut k = env.max_cycles - t;
    for &d in &b.due[1..] {
        k = k.min(d.saturating_sub(t));
    }
    if k < 2 {
        return 0;
    }
    let m0 = &mut models[0];
    b.settle(0, m0, t);
    let k = k.min(m0.quiet_cycles());
    if k < 2 {
        return 0;
    }
    let offered = rec.next < rec.beats.len();
    let intake = offered && m0.in_ready(false);
    let inputs = if intake {
        m0.quiet_inputs().min((rec.beats.len() - rec.next) as u64)
    } else {
        0
    };
    let input_bit = 1u64 << n;
    let mut c = 0;
    let mut took = 0;
    while c < k {
        let bubble = !env.free && (env.at)(t + c).bubble;
        if intake && !bubble {
            if took == inputs {
                break;
            }
            rec.trace.fires.push((t + c, input_bit));
            m0.clock(Some(&rec.beats.beat(rec.next)), false);
            rec.take_input(t + c);
            took += 1;
        } else if offered && !intake && !bubble {
            rec.input_waits += 1;
        }
        c += 1;
    }
    // The first block took its input edges; the others are skips.
    m0.skip(c - took);
    b.sense(0, m0, t + c, &mut rec.valid_cycles);
    c
}
