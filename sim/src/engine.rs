//! The simulation loop: drives a design's block cycle models with the [`Stimulus`] protocol
//! and records a [`Trace`].
//!
//! Each cycle: the environment sets `s_valid`/`m_ready`; ready signals are evaluated from the
//! sink backwards (a block's `in_ready` may look at its `out_ready`); handshakes are decided;
//! then every block takes the clock edge, the last block first so that each one captures its
//! upstream's output register before that register changes.
//!
//! Speed: stretches of cycles in which no stream can move except pixels flowing into the input
//! adapter (layers counting their fold steps) run in one go: the adapter takes its pixels, the
//! layers skip their steps (`CycleModel::quiet_cycles`/`skip`). In the other cycles a block
//! with no beat in or out leaves its edge pending until it next moves (see `Lag`), so only
//! the blocks that move are clocked. Both are exact, and tested against the plain cycle loop
//! (used whenever a VCD is written) and against Verilator.

use std::io::Write;
use std::time::Instant;

use compiler::blocks::{Beat, CycleModel, StageModel};
use compiler::ir::Design;

use crate::stimulus::{Cycle, Stimulus};
use crate::trace::{OutputBeat, Ports, Trace};
use crate::vcd::Vcd;

/// Why a simulation did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The input is not a whole number of frames.
    #[error("{beats} input bytes are not a whole number of {per_frame}-pixel frames")]
    PartialFrame {
        /// Bytes given.
        beats: usize,
        /// Pixels per frame.
        per_frame: usize,
    },
    /// Not every frame came out within the cycle limit.
    #[error("only {outputs} of {frames} results after {cycles} cycles")]
    Timeout {
        /// Results seen.
        outputs: usize,
        /// Frames sent.
        frames: usize,
        /// Cycles simulated.
        cycles: u64,
    },
    /// Writing the VCD failed.
    #[error("writing the VCD: {0}")]
    Vcd(#[from] std::io::Error),
}

/// Handshake counts of one stage's output stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StageStats {
    /// Stage name.
    pub name: String,
    /// Cycles in which the stage handed a beat on.
    pub fires: u64,
    /// Cycles in which the stage had a beat but the next one (or the sink) was not ready.
    pub stalls: u64,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct SimRun {
    /// The observable behaviour (compare with RTL traces).
    pub trace: Trace,
    /// Cycle of each frame's first input handshake.
    pub frame_starts: Vec<u64>,
    /// Per-stage handshake statistics.
    pub stages: Vec<StageStats>,
    /// Cycles in which the source offered a beat that the design refused.
    pub input_waits: u64,
    /// Wall-clock seconds of the loop.
    pub seconds: f64,
}

impl SimRun {
    /// Simulated cycles per wall-clock second.
    pub fn cycles_per_second(&self) -> f64 {
        self.trace.cycles as f64 / self.seconds.max(1e-9)
    }

    /// Cycles from frame 0's first input handshake to its result.
    pub fn first_latency(&self) -> Option<u64> {
        let o = self.trace.outputs.first()?;
        Some(o.cycle - self.frame_starts.first()?)
    }

    /// Mean cycles between consecutive results (`None` with fewer than two).
    pub fn mean_interval(&self) -> Option<f64> {
        let o = &self.trace.outputs;
        (o.len() >= 2).then(|| (o[o.len() - 1].cycle - o[0].cycle) as f64 / (o.len() - 1) as f64)
    }
}

/// The interface of a design as harnesses read it (the same value the compiler writes as
/// `ports.json`).
pub fn ports(d: &Design) -> Ports {
    d.ports()
}

/// The input side of a quiet stretch.
struct Stretch<'a, 'b> {
    beats: &'a Beats,
    fires: &'b mut Vec<(u64, u64)>,
    input_bit: u64,
    next: &'b mut usize,
    per_frame: usize,
    frame_starts: &'b mut Vec<u64>,
    input_waits: &'b mut u64,
    env: &'a dyn Fn(u64) -> Cycle,
    free: bool,
    t: u64,
    limit: u64,
}

/// Runs cycles `s.t..` in one go while no stream between blocks or towards the sink can move,
/// so that only the input may move (into the first block without changing its handshake
/// signals) and busy layers count steps; returns the cycles run (0 if the stretch would be
/// not worth it, leaving the cycle to the general path). Exact: the skipped cycles
/// are those in which the general path would see no handshake but the input's.
fn quiet_stretch(models: &mut [StageModel], lag: &mut Lag, s: &mut Stretch) -> u64 {
    let n = models.len();
    if lag.valid[n - 1] {
        return 0;
    }
    // With the last block's output empty its `in_ready` does not depend on `m_ready`.
    for i in 0..n - 1 {
        if lag.valid[i] && lag.ready[i + 1][0] {
            return 0;
        }
    }
    lag.catch_up(models);
    let k = models
        .iter()
        .map(|m| m.quiet_cycles())
        .min()
        .unwrap_or(0)
        .min(s.limit);
    if k < 2 {
        return 0;
    }
    let offered = *s.next < s.beats.len();
    let intake = offered && models[0].in_ready(false);
    let inputs = if intake {
        models[0]
            .quiet_inputs()
            .min((s.beats.len() - *s.next) as u64)
    } else {
        0
    };
    let free = s.free;
    let mut c = 0;
    let mut taken = 0;
    while c < k {
        let bubble = !free && (s.env)(s.t + c).bubble;
        if intake && !bubble {
            if taken == inputs {
                break;
            }
            if s.next.is_multiple_of(s.per_frame) {
                s.frame_starts.push(s.t + c);
            }
            s.fires.push((s.t + c, s.input_bit));
            models[0].clock(Some(&s.beats.beat(*s.next)), false);
            *s.next += 1;
            taken += 1;
        } else if offered && !intake && !bubble {
            *s.input_waits += 1;
        }
        c += 1;
    }
    // The first block already took its input edges; every other edge is a skip.
    models[0].skip(c - taken);
    for m in models.iter_mut().skip(1) {
        m.skip(c);
    }
    c
}

/// Clock edges each block has not taken yet, and the handshake signals of each block as of its
/// last edge taken. A block with no beat in or out in a cycle, within its quiet cycles, keeps
/// its handshake signals and its output register whether it takes the edge now or later, so
/// the general path leaves such edges pending and hands them over with one `skip` when the
/// block next takes a beat or hands one on, or when its quiet cycles run out. The signals are
/// read from here, so a cycle touches only the blocks that move. In a pipeline whose stages are
/// busy counting fold steps or wait on a slower stage most of the time, this takes most of the
/// per-block work out of the loop. Exact, like the quiet stretches, and compared with the plain
/// loop in the same tests.
struct Lag {
    pending: Vec<u64>,
    quiet: Vec<u64>,
    /// `out_valid`.
    valid: Vec<bool>,
    /// `in_ready` with `out_ready` low and high.
    ready: Vec<[bool; 2]>,
}

impl Lag {
    fn new(models: &[StageModel]) -> Lag {
        let n = models.len();
        let mut lag = Lag {
            pending: vec![0; n],
            quiet: vec![0; n],
            valid: vec![false; n],
            ready: vec![[false; 2]; n],
        };
        for (i, m) in models.iter().enumerate() {
            lag.sense(i, m);
        }
        lag
    }

    /// Reads block `i`'s signals after it took an edge.
    #[inline]
    fn sense(&mut self, i: usize, model: &StageModel) {
        self.valid[i] = model.out_valid();
        self.ready[i] = [model.in_ready(false), model.in_ready(true)];
    }

    /// True when block `i`, which has no beat in or out this cycle, may leave this edge
    /// pending: the state it is in after the edge must still show the signals of the state the
    /// block is held in.
    #[inline]
    fn defer(&mut self, i: usize, model: &StageModel) -> bool {
        if self.pending[i] == 0 {
            self.quiet[i] = model.quiet_cycles();
        }
        if self.pending[i] + 1 < self.quiet[i] {
            self.pending[i] += 1;
            true
        } else {
            false
        }
    }

    /// Block `i` takes its pending edges (before a real one).
    #[inline]
    fn settle(&mut self, i: usize, model: &mut StageModel) {
        if self.pending[i] > 0 {
            model.skip(self.pending[i]);
            self.pending[i] = 0;
        }
    }

    fn catch_up(&mut self, models: &mut [StageModel]) {
        for (i, m) in models.iter_mut().enumerate() {
            self.settle(i, m);
        }
    }

    /// After edges taken outside the general path (a quiet stretch).
    fn sense_all(&mut self, models: &[StageModel]) {
        for (i, m) in models.iter().enumerate() {
            self.sense(i, m);
        }
    }
}

/// The input beats of a run, `words` u64s each, flat.
struct Beats {
    data: Vec<u64>,
    words: usize,
}

impl Beats {
    fn len(&self) -> usize {
        self.data.len() / self.words
    }

    fn words(&self, i: usize) -> &[u64] {
        &self.data[i * self.words..][..self.words]
    }

    /// Beat `i`, or an all-zero beat past the end (what the harnesses drive then).
    fn beat(&self, i: usize) -> Beat {
        if i < self.len() {
            Beat::pixels(self.words(i))
        } else {
            Beat::pixels(&[])
        }
    }
}

/// Simulates `design` on `pixels` (whole frames of pixel values, back to back, sent
/// `pixels_per_beat` to a beat as bytes, or binarised and packed as bits when the design takes
/// packed input: see `InputAdapter::stream_bytes`) under `stim` until every frame's result has been taken or
/// `max_cycles` have passed. With `vcd`, writes the top-level streams and every stage's
/// handshake as a VCD.
pub fn run(
    design: &Design,
    pixels: &[u8],
    stim: Stimulus,
    max_cycles: u64,
    vcd: Option<&mut dyn Write>,
) -> Result<SimRun, SimError> {
    drive(
        design,
        pixels,
        &|t| stim.at(t),
        stim.bubble_pct == 0,
        max_cycles,
        false,
        vcd,
    )
}

/// Simulates `design` for exactly `env.len()` cycles with the environment of each cycle given
/// (a counterexample's input bubbles and output back-pressure), writing every cycle to `vcd`:
/// the run stops there whether or not every frame of `pixels` came out.
pub fn replay(
    design: &Design,
    pixels: &[u8],
    env: &[Cycle],
    vcd: &mut dyn Write,
) -> Result<SimRun, SimError> {
    drive(
        design,
        pixels,
        &|t| env[t as usize],
        false,
        env.len() as u64,
        true,
        Some(vcd),
    )
}

/// [`run`] and [`replay`]: the environment of cycle `t` is `env(t)` (`free`: never a bubble);
/// at `max_cycles` the run ends, as a timeout unless `stop_at_limit`.
fn drive(
    design: &Design,
    pixels: &[u8],
    env: &dyn Fn(u64) -> Cycle,
    free: bool,
    max_cycles: u64,
    stop_at_limit: bool,
    vcd: Option<&mut dyn Write>,
) -> Result<SimRun, SimError> {
    let input = design.input();
    if !pixels.len().is_multiple_of(input.pixels) {
        return Err(SimError::PartialFrame {
            beats: pixels.len(),
            per_frame: input.pixels,
        });
    }
    let frames = pixels.len() / input.pixels;
    let per_frame = input.pixels / input.pixels_per_beat;
    // `s_data` as the testbenches drive it: the earliest pixel lowest.
    let beats = &Beats {
        data: input.beat_words(pixels),
        words: input.input_width().div_ceil(64),
    };
    let mut models: Vec<StageModel> = design.cycle_models();
    let names = design.stage_names();
    let n = models.len();
    let mut vcd = match vcd {
        Some(w) => Some(Vcd::new(w, design, &names)?),
        None => None,
    };
    let mut stats: Vec<StageStats> = names
        .iter()
        .map(|s| StageStats {
            name: s.clone(),
            ..Default::default()
        })
        .collect();
    let mut out_ready = vec![false; n];
    let mut in_ready = vec![false; n];
    let mut fire = vec![false; n];
    let mut trace = Trace::default();
    let mut frame_starts = Vec::with_capacity(frames);
    let mut next = 0usize;
    let mut input_waits = 0u64;
    let mut lag = Lag::new(&models);
    let start = Instant::now();
    let mut t = 0u64;
    while trace.outputs.len() < frames {
        if t >= max_cycles && stop_at_limit {
            break;
        }
        if t >= max_cycles {
            return Err(SimError::Timeout {
                outputs: trace.outputs.len(),
                frames,
                cycles: t,
            });
        }
        if vcd.is_none() {
            let c = quiet_stretch(
                &mut models,
                &mut lag,
                &mut Stretch {
                    beats,
                    fires: &mut trace.fires,
                    input_bit: 1 << n,
                    next: &mut next,
                    per_frame,
                    frame_starts: &mut frame_starts,
                    input_waits: &mut input_waits,
                    env,
                    free,
                    t,
                    limit: max_cycles - t,
                },
            );
            if c > 0 {
                // Stalls of the stretch, whose outputs were those before it.
                for (s, &v) in stats.iter_mut().zip(&lag.valid) {
                    if v {
                        s.stalls += c;
                    }
                }
                lag.sense_all(&models);
                t += c;
                continue;
            }
        }
        let now = env(t);
        let s_valid = next < beats.len() && !now.bubble;
        let m_ready = !now.stall;
        for i in (0..n).rev() {
            out_ready[i] = if i + 1 == n { m_ready } else { in_ready[i + 1] };
            in_ready[i] = lag.ready[i][usize::from(out_ready[i])];
        }
        let mut mask = 0u64;
        for i in 0..n {
            let v = lag.valid[i];
            fire[i] = v && out_ready[i];
            if fire[i] {
                mask |= 1 << i;
                stats[i].fires += 1;
            } else if v {
                stats[i].stalls += 1;
            }
        }
        let s_fire = s_valid && in_ready[0];
        if s_valid && !in_ready[0] {
            input_waits += 1;
        }
        if s_fire {
            mask |= 1 << n;
        }
        if let Some(v) = vcd.as_mut() {
            let data = if next < beats.len() {
                beats.words(next)
            } else {
                &[]
            };
            v.cycle(t, s_valid, in_ready[0], data, m_ready, &out_ready, &models)?;
        }
        if mask != 0 {
            trace.fires.push((t, mask));
        }
        if fire[n - 1] {
            if let Beat::Result { class, scores } = models[n - 1].out_data() {
                trace.outputs.push(OutputBeat {
                    cycle: t,
                    class: *class,
                    scores: scores.clone(),
                });
            }
        }
        for i in (0..n).rev() {
            let (up, rest) = models.split_at_mut(i);
            let input = if i == 0 {
                s_fire.then(|| beats.beat(next))
            } else {
                None
            };
            let input = if i == 0 {
                input.as_ref()
            } else if fire[i - 1] {
                Some(up[i - 1].out_data())
            } else {
                None
            };
            // The VCD shows every block's state each cycle, so that run takes every edge.
            if vcd.is_none() && input.is_none() && !fire[i] && lag.defer(i, &rest[0]) {
                continue;
            }
            lag.settle(i, &mut rest[0]);
            rest[0].clock(input, out_ready[i]);
            lag.sense(i, &rest[0]);
        }
        if s_fire {
            if next.is_multiple_of(per_frame) {
                frame_starts.push(t);
            }
            next += 1;
        }
        t += 1;
    }
    trace.cycles = t;
    if let Some(v) = vcd.as_mut() {
        v.finish(t)?;
    }
    Ok(SimRun {
        trace,
        frame_starts,
        stages: stats,
        input_waits,
        seconds: start.elapsed().as_secs_f64(),
    })
}
