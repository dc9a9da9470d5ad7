//! FIFO depths of a design with pixel streams, found by simulation.
//!
//! A convolutional pipeline's streams are bursty (see `compiler::passes`), so without
//! buffering its frame interval exceeds its slowest stage's cycles. Which boundaries need a
//! FIFO, and how deep, depends on every stage's rhythm at once, so it is measured rather than
//! derived: the design runs back-to-back frames of pixels in the cycle-accurate simulator,
//! first with a FIFO as deep as a frame's beats after every pixel-stream stage (the interval
//! that buffering can reach: normally the slowest stage's cycles), then each FIFO in turn,
//! from the input on, is cut to the smallest depth (none at all if that does) that keeps the
//! interval there, by bisection, the FIFOs before it already cut. The timing of every block is
//! independent of the data, so any frames measure it. On the ECP5 a window unit also hands
//! its windows to its convolution through at least 2 entries, for timing (see
//! `required_depths`).

use compiler::blocks::{Family, Stage};
use compiler::ir::Design;
use compiler::passes::fifos::{FifoDepth, Fifos};
use compiler::passes::Pass;

use crate::stimulus::{splitmix64, Stimulus};
use crate::SimError;

/// Frames each measurement runs: enough for the deepest FIFOs to fill and the pipeline to
/// repeat itself from frame to frame.
const FRAMES: usize = 8;

/// Intervals at the end of a run whose largest is the steady-state interval.
const TAIL: usize = 3;

/// What sizing found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sizing {
    /// The FIFOs to insert, in pipeline order (none where none is needed).
    pub fifos: Vec<FifoDepth>,
    /// Steady-state cycles between results with these FIFOs.
    pub cycles_per_frame: u64,
    /// Cycles from the first frame's first pixel to its result with these FIFOs.
    pub latency_cycles: u64,
    /// The slowest stage's cycles per frame, the interval FIFOs aim for.
    pub target: u64,
    /// Frame interval with no FIFOs at all.
    pub unbuffered: u64,
    /// Simulations run.
    pub runs: usize,
}

/// The interval and latency of `design` with a FIFO of `depths[k]` (0: none) after stage
/// `after[k]`.
struct Probe<'a> {
    design: &'a Design,
    after: Vec<String>,
    pixels: Vec<u8>,
    runs: usize,
}

impl Probe<'_> {
    fn fifos(&self, depths: &[usize]) -> Vec<FifoDepth> {
        self.after
            .iter()
            .zip(depths)
            .filter(|(_, &d)| d > 0)
            .map(|(a, &d)| FifoDepth {
                after: a.clone(),
                depth: d,
            })
            .collect()
    }

    fn measure(&mut self, depths: &[usize]) -> Result<(u64, u64, Vec<u64>), SimError> {
        let mut d = self.design.clone();
        Fifos(self.fifos(depths))
            .run(&mut d)
            .expect("FIFOs after existing pixel-stream stages are valid");
        let guess = d.cycles_per_frame().max(1) + d.latency_cycles();
        let limit = 4 * (FRAMES as u64 + 2) * guess + 10_000;
        let run = crate::run(&d, &self.pixels, Stimulus::free(1), limit, None)?;
        self.runs += 1;
        let o = &run.trace.outputs;
        let interval = o[o.len() - TAIL - 1..]
            .windows(2)
            .map(|w| w[1].cycle - w[0].cycle)
            .max()
            .unwrap_or(0);
        let latency = run.first_latency().unwrap_or(0);
        let frames = FRAMES as u64;
        let beats = run
            .stages
            .iter()
            .map(|s| s.fires.div_ceil(frames))
            .collect();
        Ok((interval, latency, beats))
    }
}

/// Stages after which a FIFO may go: every stage from the input adapter up to the one before
/// the collect unit (the pixel streams). A dense design has none.
fn boundaries(design: &Design) -> Vec<usize> {
    if design.input().stream.is_none() {
        return Vec::new();
    }
    let end = design
        .stages
        .iter()
        .position(|s| matches!(s, Stage::Collect(_)))
        .unwrap_or(design.stages.len() - 1);
    (0..end)
        .filter(|&i| !matches!(design.stages[i], Stage::Fifo(_)))
        .collect()
}

/// FIFO depths every boundary needs whatever the interval: on the ECP5, where a FIFO sits in
/// LUT RAM, 2 entries between a window unit and the convolution it feeds. The convolution's
/// `in_ready` follows its step counters' last-value flags through a LUT level or two, and
/// the window unit's take decides the load of its wide output register: without a FIFO that
/// chain ran 12.1 ns on the ULX3S (`32x9 8x288 8x96 2x576 1x128 1x2` of the Fashion-MNIST
/// CNN, 82.5 MHz against 110.6 predicted), while a FIFO's `in_ready` is a flag register.
fn required_depths(design: &Design, at: &[usize]) -> Vec<usize> {
    at.iter()
        .map(|&i| {
            let feeds_mvtu = matches!(design.stages.get(i + 1), Some(Stage::Mvtu(_)));
            if design.family == Family::Ecp5
                && matches!(design.stages[i], Stage::Window(_))
                && feeds_mvtu
            {
                2
            } else {
                0
            }
        })
        .collect()
}

/// Sizes the FIFOs of `design` (which must have none yet).
pub fn size(design: &Design) -> Result<Sizing, SimError> {
    let target = design.cycles_per_frame();
    let at = boundaries(design);
    let mut z = 0x5eed;
    let pixels: Vec<u8> = (0..FRAMES * design.input().pixels)
        .map(|_| {
            z = splitmix64(z);
            z as u8
        })
        .collect();
    let mut p = Probe {
        design,
        after: at
            .iter()
            .map(|&i| design.stages[i].block().name())
            .collect(),
        pixels,
        runs: 0,
    };
    let none = vec![0; at.len()];
    let required = required_depths(design, &at);
    let (unbuffered, latency0, beats) = p.measure(&none)?;
    if at.is_empty() || unbuffered <= target {
        if required.iter().all(|&d| d == 0) {
            return Ok(Sizing {
                fifos: Vec::new(),
                cycles_per_frame: unbuffered,
                latency_cycles: latency0,
                target,
                unbuffered,
                runs: p.runs,
            });
        }
        let (cycles_per_frame, latency_cycles, _) = p.measure(&required)?;
        return Ok(Sizing {
            fifos: p.fifos(&required),
            cycles_per_frame,
            latency_cycles,
            target,
            unbuffered,
            runs: p.runs,
        });
    }
    // A frame of beats is as much as a FIFO can usefully hold: more would only let the
    // source run further ahead of a stage that is slower on average.
    let mut depths: Vec<usize> = at.iter().map(|&i| beats[i].max(2) as usize).collect();
    let (reach, _, _) = p.measure(&depths)?;
    let goal = reach.max(target);
    // Most boundaries need no FIFO: drop them a group at a time (all of them at once is
    // `unbuffered`, known to miss the goal, so start from the halves).
    let all: Vec<usize> = (0..depths.len()).collect();
    let (front, back) = all.split_at(all.len() / 2);
    drop_fifos(&mut p, &mut depths, front, goal)?;
    drop_fifos(&mut p, &mut depths, back, goal)?;
    for k in 0..depths.len() {
        if depths[k] == 0 {
            continue;
        }
        let mut trial = depths.clone();
        // The smallest depth in 2..=depths[k] that keeps the goal (depths[k] does).
        let (mut lo, mut hi) = (2, depths[k]);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            trial[k] = mid;
            if p.measure(&trial)?.0 <= goal {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        depths[k] = hi;
    }
    for (d, &r) in depths.iter_mut().zip(&required) {
        *d = (*d).max(r);
    }
    let (cycles_per_frame, latency_cycles, _) = p.measure(&depths)?;
    Ok(Sizing {
        fifos: p.fifos(&depths),
        cycles_per_frame,
        latency_cycles,
        target,
        unbuffered,
        runs: p.runs,
    })
}

/// Sets the FIFOs of `group` to none where the interval stays within `goal`: the whole group
/// in one run if it can go, else each half in turn.
fn drop_fifos(
    p: &mut Probe,
    depths: &mut Vec<usize>,
    group: &[usize],
    goal: u64,
) -> Result<(), SimError> {
    if group.iter().all(|&k| depths[k] == 0) {
        return Ok(());
    }
    let mut trial = depths.clone();
    group.iter().for_each(|&k| trial[k] = 0);
    if p.measure(&trial)?.0 <= goal {
        *depths = trial;
        return Ok(());
    }
    if group.len() > 1 {
        let (a, b) = group.split_at(group.len() / 2);
        drop_fifos(p, depths, a, goal)?;
        drop_fifos(p, depths, b, goal)?;
    }
    Ok(())
}

/// `design` with the FIFOs `sizing` found.
pub fn apply(design: &mut Design, sizing: &Sizing) {
    Fifos(sizing.fifos.clone())
        .run(design)
        .expect("sized FIFOs name stages of the design");
}
