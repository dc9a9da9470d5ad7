//! The simulation loop: drives a design's block cycle models with the [`Stimulus`] protocol
//! and records a [`Trace`].
//!
//! Each cycle: the environment sets `s_valid`/`m_ready`; ready signals are evaluated from the
//! sink backwards (a block's `in_ready` may look at its `out_ready`); handshakes are decided;
//! then every block takes the clock edge, the last block first so that each one captures its
//! upstream's output register before that register changes.
//!
//! Two loops do that: `plain` clocks every block every cycle (it writes the VCD), and
//! `event` clocks only the blocks that move and runs quiet stretches in one go. Both are
//! exact; the tests hold them against each other and against Verilator.

mod event;
mod plain;

use std::io::Write;
use std::time::Instant;

use compiler::blocks::{Beat, StageModel};
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

/// What the environment does and when a run ends, as both loops read it.
struct Env<'a> {
    /// The environment of cycle `t`.
    at: &'a dyn Fn(u64) -> Cycle,
    /// The source never withholds a beat (`at` need not be asked about bubbles).
    free: bool,
    /// The run ends at this cycle: as a timeout unless `stop_at_limit`.
    max_cycles: u64,
    stop_at_limit: bool,
}

/// The input stream and what a run observed, shared by both loops.
struct Record<'a> {
    beats: &'a Beats,
    /// Beats per frame.
    per_frame: usize,
    frames: usize,
    /// The next beat to send.
    next: usize,
    trace: Trace,
    frame_starts: Vec<u64>,
    input_waits: u64,
    /// Per stage: beats handed on, and cycles with `out_valid` high.
    fires: Vec<u64>,
    valid_cycles: Vec<u64>,
}

impl Record<'_> {
    /// The input handshake of cycle `t`: beat `next` was taken.
    #[inline]
    fn take_input(&mut self, t: u64) {
        if self.next.is_multiple_of(self.per_frame) {
            self.frame_starts.push(t);
        }
        self.next += 1;
    }

    /// The last stage handed a result on in cycle `t`.
    #[inline]
    fn output(&mut self, t: u64, beat: &Beat) {
        if let Beat::Result { class, scores } = beat {
            self.trace.outputs.push(OutputBeat {
                cycle: t,
                class: *class,
                scores: scores.clone(),
            });
        }
    }

    /// Whether the loop goes on to cycle `t`, or why it cannot.
    fn go_on(&self, t: u64, env: &Env) -> Result<bool, SimError> {
        if self.trace.outputs.len() >= self.frames || (t >= env.max_cycles && env.stop_at_limit) {
            return Ok(false);
        }
        if t >= env.max_cycles {
            return Err(SimError::Timeout {
                outputs: self.trace.outputs.len(),
                frames: self.frames,
                cycles: t,
            });
        }
        Ok(true)
    }
}

/// [`run`] and [`replay`]: the plain loop when writing a VCD (which shows every block's state
/// each cycle), else the event-driven one.
fn drive(
    design: &Design,
    pixels: &[u8],
    at: &dyn Fn(u64) -> Cycle,
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
    // `s_data` as the testbenches drive it: the earliest pixel lowest.
    let beats = &Beats {
        data: input.beat_words(pixels),
        words: input.input_width().div_ceil(64),
    };
    let mut models: Vec<StageModel> = design.cycle_models();
    let names = design.stage_names();
    let n = models.len();
    let env = Env {
        at,
        free,
        max_cycles,
        stop_at_limit,
    };
    let mut rec = Record {
        beats,
        per_frame: input.pixels / input.pixels_per_beat,
        frames,
        next: 0,
        trace: Trace::default(),
        frame_starts: Vec::with_capacity(frames),
        input_waits: 0,
        fires: vec![0; n],
        valid_cycles: vec![0; n],
    };
    let start = Instant::now();
    let t = match vcd {
        Some(w) => {
            let mut vcd = Vcd::new(w, design, &names)?;
            let t = plain::drive(&mut models, &mut rec, &env, Some(&mut vcd))?;
            vcd.finish(t)?;
            t
        }
        None => event::drive(&mut models, &mut rec, &env)?,
    };
    let seconds = start.elapsed().as_secs_f64();
    rec.trace.cycles = t;
    let stages = names
        .into_iter()
        .zip(rec.fires.iter().zip(&rec.valid_cycles))
        .map(|(name, (&fires, &valid))| StageStats {
            name,
            fires,
            stalls: valid - fires,
        })
        .collect();
    Ok(SimRun {
        trace: rec.trace,
        frame_starts: rec.frame_starts,
        stages,
        input_waits: rec.input_waits,
        seconds,
    })
}
