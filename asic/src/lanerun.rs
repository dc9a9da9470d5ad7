//! The harness run of the gate-level netlist on [`LaneSim`]'s 64 lanes: the frames, streamed
//! back to back, are cut into consecutive stretches, one per lane, so that a run of F frames
//! takes about F/64 frames of cycles plus the pipeline's latency instead of F frames.
//!
//! Lane 0 runs the first stretch from reset, exactly as the one-lane run does. Every later lane
//! starts from reset a few frames (the warm-up) before its stretch, and its stretch begins once
//! it has taken the warm-up's beats. The stretches join up without a seam only if the design's
//! state then is the state the run in one lane would have had: so when lane k has taken its
//! last beat, its every net (flip-flops, latches and the logic they drive) is compared with lane
//! k+1's at the start of its stretch, which took the same beats before it. Equal everywhere, the
//! lanes' stretches put end to end are the one-lane run (its outputs, its handshakes cycle by
//! cycle, its toggles): by induction from lane 0, each stretch continues from the state the one
//! before it ended in, with the same inputs from there on. A difference (state older than the
//! warm-up, such as a counter of frames since reset) doubles the warm-up and runs again, down to
//! one lane, the plain run.
//!
//! Toggles are counted only in a lane's stretch, and the cycles are the stretches' sum, so the
//! activity means what the one-lane run's does.

use sim::stimulus::RESET_CYCLES;
use sim::trace::{OutputBeat, Ports, Trace};

use crate::cyclesim::{Compiled, CycleRun, SimError};
use crate::lanesim::{LaneSim, LANES};

/// One lane's share of the frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stretch {
    /// The first frame the lane takes.
    first: usize,
    /// Frames taken before its stretch starts.
    warmup: usize,
    /// Frames the lane takes in all (warm-up included).
    frames: usize,
}

/// The lanes for `frames` frames with `warmup` frames of warm-up: lane 0 takes the first
/// `warmup + m` frames, every later lane `m` more after a warm-up, and the last one the rest
/// (at least `m`, so that it finishes last). One lane when there are too few frames.
fn plan(frames: usize, warmup: usize) -> Vec<Stretch> {
    let m = frames.saturating_sub(warmup).div_ceil(LANES).max(1);
    let first = warmup + m;
    if frames < first + m {
        return vec![Stretch {
            first: 0,
            warmup: 0,
            frames,
        }];
    }
    let lanes = 1 + (frames - first) / m;
    (0..lanes)
        .map(|k| {
            if k == 0 {
                return Stretch {
                    first: 0,
                    warmup: 0,
                    frames: first,
                };
            }
            let start = first + (k - 1) * m;
            let end = if k + 1 == lanes { frames } else { start + m };
            Stretch {
                first: start - warmup,
                warmup,
                frames: end - start + warmup,
            }
        })
        .collect()
}

/// Where a lane is.
#[derive(Default)]
struct Lane {
    sent: usize,
    /// Local cycles of its stretch's start and end.
    start: Option<u64>,
    end: Option<u64>,
    /// Its state at the start of its stretch.
    snapshot: Vec<u64>,
    edges: u64,
    fires: Vec<(u64, u64)>,
    outputs: Vec<OutputBeat>,
}

/// Streams `stream` (the input port's bytes) into the netlist as the harness does, with no
/// bubbles or stalls, until every frame came out or `max_cycles` passed; the frames are shared
/// among lanes after `warmup` frames of warm-up (raised as the state comparison needs).
/// `progress` hears the local cycle and the frames out now and then, and each new warm-up.
pub(crate) fn run(
    c: &Compiled,
    ports: &Ports,
    stream: &[u8],
    warmup: usize,
    max_cycles: u64,
    progress: &mut dyn FnMut(&str),
) -> Result<CycleRun, SimError> {
    let bpb = (ports.input_width as usize).div_ceil(8).max(1);
    if !stream.len().is_multiple_of(bpb) {
        return Err(format!(
            "{} input bytes are not whole beats of {bpb} bytes",
            stream.len()
        ));
    }
    let bpf = (ports.beats_per_frame as usize).max(1);
    let frames = stream.len() / bpb / bpf;
    let mut warmup = warmup.max(1);
    loop {
        let lanes = plan(frames, warmup);
        progress(&format!(
            "asic: cycle simulator: {frames} frames in {} lanes, {warmup} frames of warm-up",
            lanes.len()
        ));
        match run_plan(c, ports, stream, &lanes, max_cycles, progress)? {
            Ok(run) => return Ok(run),
            Err(why) => {
                progress(&format!("asic: cycle simulator: {why}; twice the warm-up"));
                warmup *= 2;
            }
        }
    }
}

/// One run with `lanes`; the inner error says why the stretches do not join.
fn run_plan(
    c: &Compiled,
    ports: &Ports,
    stream: &[u8],
    lanes: &[Stretch],
    max_cycles: u64,
    progress: &mut dyn FnMut(&str),
) -> Result<Result<CycleRun, String>, SimError> {
    let bpb = (ports.input_width as usize).div_ceil(8).max(1);
    let bpf = (ports.beats_per_frame as usize).max(1);
    let beats: Vec<&[u8]> = stream.chunks(bpb).collect();
    let expected = beats.len() / bpf;
    let n_stages = ports.stages.len();
    let sw = ports.score_width as usize;
    let last = lanes.len() - 1;
    let mut sim = LaneSim::new(c);
    let mut st: Vec<Lane> = lanes.iter().map(|_| Lane::default()).collect();
    sim.drive("rst", &[!0])?;
    sim.drive("s_valid", &[0])?;
    sim.drive("m_ready", &[0])?;
    sim.drive("s_data", &[])?;
    sim.drive("clk", &[0])?;
    sim.settle_state()?;
    for _ in 0..RESET_CYCLES {
        sim.clock()?;
    }
    sim.drive("rst", &[0])?;
    let mut out_total = 0usize;
    let mut t = 0u64;
    let started = std::time::Instant::now();
    let mut told = std::time::Instant::now();
    let data_bits = ports.input_width as usize;
    while t < max_cycles && out_total < expected {
        // Stretches that start or end at the top of this cycle.
        for (k, (l, s)) in st.iter_mut().zip(lanes).enumerate() {
            if l.start.is_none() && l.sent == s.warmup * bpf {
                l.start = Some(t);
                if k > 0 {
                    l.snapshot = sim.lane(k);
                }
            }
        }
        for k in 0..last {
            let (l, s) = (&st[k], &lanes[k]);
            if l.start.is_some() && l.end.is_none() && l.sent == s.frames * bpf {
                if st[k + 1].start.is_none() {
                    // Lanes out of step (control that depends on the data): fewer lanes.
                    return Ok(Err(format!(
                        "lane {k} took its last beat before lane {} finished its warm-up",
                        k + 1
                    )));
                }
                let here = sim.lane(k);
                if let Some(w) = here
                    .iter()
                    .zip(&st[k + 1].snapshot)
                    .position(|(a, b)| a != b)
                {
                    let bit = (here[w] ^ st[k + 1].snapshot[w]).trailing_zeros() as usize;
                    return Ok(Err(format!(
                        "lane {} after its warm-up differs from lane {k} at net {}",
                        k + 1,
                        sim.net_name(w * 64 + bit)
                    )));
                }
                st[k].end = Some(t);
            }
        }
        let counting = st.iter().enumerate().fold(0u64, |m, (k, l)| {
            m | ((l.start.is_some() && l.end.is_none()) as u64) << k
        });
        sim.counting = counting;
        // Each lane's next beat.
        let mut valid = 0u64;
        let mut data = vec![0u64; data_bits];
        for (k, (l, s)) in st.iter().zip(lanes).enumerate() {
            if l.sent < s.frames * bpf {
                valid |= 1 << k;
                let beat = beats[s.first * bpf + l.sent];
                for (i, d) in data.iter_mut().enumerate() {
                    *d |= u64::from(beat.get(i / 8).map_or(0, |b| b >> (i % 8) & 1)) << k;
                }
            }
        }
        sim.drive("s_valid", &[valid])?;
        sim.drive("s_data", &data)?;
        sim.drive("m_ready", &[!0])?;
        sim.settle_state()?;
        let took = valid & sim.read("s_ready")?.first().copied().unwrap_or(0);
        let fire = sim.read("dbg_fire")?;
        let m_valid = sim.read("m_valid")?.first().copied().unwrap_or(0) & counting;
        let (class, raw) = if m_valid != 0 {
            (sim.read("m_class")?, sim.read("m_scores")?)
        } else {
            (Vec::new(), Vec::new())
        };
        for (k, l) in st.iter_mut().enumerate() {
            let bit = |w: u64| w >> k & 1;
            if counting >> k & 1 == 1 {
                let f = fire
                    .iter()
                    .take(n_stages)
                    .enumerate()
                    .fold(0u64, |a, (i, &w)| a | bit(w) << i)
                    | bit(took) << n_stages;
                if f != 0 {
                    l.fires.push((t, f));
                }
                if bit(m_valid) == 1 {
                    let class = class
                        .iter()
                        .enumerate()
                        .fold(0u32, |a, (i, &w)| a | (bit(w) as u32) << i);
                    let scores = (0..ports.classes as usize)
                        .map(|c| {
                            let v = raw[c * sw..(c + 1) * sw]
                                .iter()
                                .rev()
                                .fold(0i64, |a, &w| a << 1 | bit(w) as i64);
                            // Sign-extend the score_width-bit field.
                            let shift = 64 - sw as u32;
                            (v << shift) >> shift
                        })
                        .collect();
                    l.outputs.push(OutputBeat {
                        cycle: t,
                        class,
                        scores,
                    });
                    out_total += 1;
                }
            }
            l.sent += bit(took) as usize;
        }
        t += 1;
        if out_total < expected {
            sim.clock()?;
            for (k, l) in st.iter_mut().enumerate() {
                l.edges += counting >> k & 1;
            }
        } else if let Some(k) = st[..last].iter().position(|l| l.end.is_none()) {
            return Ok(Err(format!(
                "every frame came out before lane {k} had taken its last beat"
            )));
        }
        if t.is_multiple_of(4096) && told.elapsed().as_secs() >= 60 {
            told = std::time::Instant::now();
            progress(&format!(
                "asic: gate-level: lane cycle {t}, {out_total} of {expected} frames out, {:.0} s",
                started.elapsed().as_secs_f64()
            ));
        }
    }
    // The stretches end to end.
    let mut trace = Trace::default();
    let mut offset = 0u64;
    let mut edges = 0;
    for l in &mut st {
        let start = l.start.unwrap_or(t);
        let end = l.end.unwrap_or(t);
        let shift = |c: u64| c - start + offset;
        trace
            .fires
            .extend(l.fires.iter().map(|&(c, f)| (shift(c), f)));
        trace.outputs.extend(l.outputs.drain(..).map(|mut o| {
            o.cycle = shift(o.cycle);
            o
        }));
        offset += end.saturating_sub(start);
        edges += l.edges;
    }
    trace.cycles = offset;
    progress(&format!(
        "asic: cycle simulator: {} cycles of {} lanes for {offset} cycles of one stream, {:.1} s",
        t,
        lanes.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(Ok(CycleRun {
        activity: sim.activity(edges),
        trace,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cyclesim::CycleSim;
    use crate::liberty;
    use sim::stimulus::Stimulus;

    const LIB: &str = r#"library (t) {
  cell (AND2X1) {
    pin(A) {
      direction : input;
    }
    pin(B) {
      direction : input;
    }
    pin(Y) {
      direction : output;
      function : "(A&B)";
    }
  }
  cell (XOR2X1) {
    pin(A) {
      direction : input;
    }
    pin(B) {
      direction : input;
    }
    pin(Y) {
      direction : output;
      function : "(A^B)";
    }
  }
  cell (DFFNEGX1) {
    ff (DS0000,P0002) {
      next_state : "D";
      clocked_on : "(!CLK)";
    }
    pin(CLK) {
      direction : input;
    }
    pin(D) {
      direction : input;
    }
    pin(Q) {
      direction : output;
      function : "DS0000";
    }
  }
  cell (DFFPOSX1) {
    ff (DS0000,P0002) {
      next_state : "D";
      clocked_on : "CLK";
    }
    pin(CLK) {
      direction : input;
    }
    pin(D) {
      direction : input;
    }
    pin(Q) {
      direction : output;
      function : "DS0000";
    }
  }
}
"#;

    /// A design of one 2-bit beat per frame whose result is its beat, the low bit flipped
    /// in every other frame since reset: state as old as the run, which no warm-up holds
    /// unless every lane starts an even number of frames after lane 0.
    fn parity_design() -> (crate::netlist::Netlist, Ports) {
        let cell = |c: &str, n: &str, pins: &[(&str, &str)]| {
            let p: Vec<String> = pins.iter().map(|(p, n)| format!("    .{p}({n})")).collect();
            format!("  {c} {n} (\n{}\n  );\n", p.join(",\n"))
        };
        let mut v = String::from(
            "module top(clk, rst, s_valid, s_ready, s_data, m_valid, m_ready, m_class, m_scores, dbg_fire);
  input clk;
  input rst;
  input s_valid;
  output s_ready;
  input [1:0] s_data;
  output m_valid;
  input m_ready;
  output m_class;
  output [1:0] m_scores;
  output dbg_fire;
  assign s_ready = 1'b1;
",
        );
        v += &cell(
            "XOR2X1",
            "g1",
            &[("A", "par"), ("B", "s_valid"), ("Y", "par_d")],
        );
        v += &cell(
            "DFFPOSX1",
            "g2",
            &[("CLK", "clk"), ("D", "par_d"), ("Q", "par")],
        );
        v += &cell(
            "XOR2X1",
            "g3",
            &[("A", "s_data[0]"), ("B", "par"), ("Y", "r0_d")],
        );
        v += &cell(
            "DFFPOSX1",
            "g4",
            &[("CLK", "clk"), ("D", "r0_d"), ("Q", "r0")],
        );
        v += &cell(
            "AND2X1",
            "g5",
            &[("A", "s_data[1]"), ("B", "s_valid"), ("Y", "r1_d")],
        );
        v += &cell(
            "DFFPOSX1",
            "g6",
            &[("CLK", "clk"), ("D", "r1_d"), ("Q", "r1")],
        );
        v += &cell(
            "DFFPOSX1",
            "g7",
            &[("CLK", "clk"), ("D", "s_valid"), ("Q", "mv")],
        );
        v += "  assign m_valid = mv;\n  assign dbg_fire = mv;\n  assign m_class = r0;\n";
        v += "  assign m_scores[0] = r0;\n  assign m_scores[1] = r1;\nendmodule\n";
        let ports = Ports {
            top: "top".into(),
            files: Vec::new(),
            input_width: 2,
            input_format: Default::default(),
            beats_per_frame: 1,
            class_width: 1,
            classes: 1,
            score_width: 2,
            stages: vec!["out".into()],
            load_words: 0,
        };
        (crate::netlist::parse(&v).unwrap(), ports)
    }

    /// The lanes' run and the event-driven engine's on `frames` frames of the parity
    /// design: equal traces (outputs, handshakes cycle by cycle) and equal toggles.
    fn lanes_equal_one_stream(frames: usize) -> Vec<String> {
        let (nl, ports) = parity_design();
        let lib = liberty::parse(LIB);
        let mut r = 7u64;
        let stream: Vec<u8> = (0..frames)
            .map(|_| {
                r = sim::stimulus::splitmix64(r);
                (r & 3) as u8
            })
            .collect();
        let mut one = CycleSim::new(&nl, &lib).unwrap();
        let want = crate::cyclesim::run(
            &mut one,
            &ports,
            &stream,
            Stimulus::free(1),
            10_000,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(want.trace.outputs.len(), frames);
        let c = crate::cyclesim::compile(&nl, &lib).unwrap();
        let mut said = Vec::new();
        let got = run(&c, &ports, &stream, 1, 10_000, &mut |l| {
            said.push(l.to_string())
        })
        .unwrap();
        assert_eq!(got.trace.outputs, want.trace.outputs, "{said:?}");
        assert_eq!(got.trace.fires, want.trace.fires, "{said:?}");
        assert_eq!(got.trace.cycles, want.trace.cycles);
        assert_eq!(got.activity, want.activity, "{said:?}");
        said
    }

    #[test]
    fn lanes_give_the_one_stream_run_or_fall_back_to_it() {
        // 200 frames: 4 per lane, every lane starts an even number of frames in, and the
        // stretches join after 1 frame of warm-up.
        let said = lanes_equal_one_stream(200);
        assert!(said[0].contains("in 49 lanes"), "{said:?}");
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[1].contains("cycles of 49 lanes for"), "{said:?}");
        // 20 frames: 1 per lane, odd lanes start out of parity; the warm-up doubles until one
        // lane takes them all.
        let said = lanes_equal_one_stream(20);
        assert!(
            said.iter().any(|l| l.contains("differs from lane")),
            "{said:?}"
        );
        assert!(said[said.len() - 2].contains("in 1 lanes"), "{said:?}");
    }

    #[test]
    fn stretches_cover_every_frame_once_and_the_last_is_longest() {
        for frames in 1..300 {
            for warmup in 1..6 {
                let p = plan(frames, warmup);
                assert!(p.len() <= LANES);
                let mut next = 0;
                for (k, s) in p.iter().enumerate() {
                    assert_eq!(s.first + s.warmup, next, "{frames} {warmup} lane {k}");
                    assert!(k == 0 || s.first + s.frames > next);
                    next = s.first + s.frames;
                    assert!(s.frames <= p.last().unwrap().frames);
                }
                assert_eq!(next, frames);
                // Every lane but lane 0 has its warm-up; lane 0 starts from reset.
                assert_eq!(p[0].first, 0);
                assert!(p[1..].iter().all(|s| s.warmup == warmup));
            }
        }
        assert_eq!(plan(100, 4).len(), 48);
    }
}
