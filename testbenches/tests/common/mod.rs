//! Fixture set-up and the golden model of `fixtures/sum3_core.v`, shared by tests and examples.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sim::stimulus::Stimulus;
use sim::trace::{OutputBeat, Ports, Trace};

/// Copies fixture `name` (plus the shared `sum3_core.v`) into `root/name` and returns that build
/// directory with its ports. The compile caches under it survive between runs.
pub fn fixture(root: &Path, name: &str) -> (PathBuf, Ports) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(src.join(name))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(src.join("sum3_core.v"));
    for f in files {
        let to = dir.join(f.file_name().unwrap());
        let text = std::fs::read(&f).unwrap();
        // Rewriting identical content would still be harmless: the cache keys on content.
        if std::fs::read(&to).ok().as_deref() != Some(&text[..]) {
            std::fs::write(&to, text).unwrap();
        }
    }
    let ports = testbenches::read_ports(&dir).unwrap();
    (dir, ports)
}

/// Deterministic pseudo-random beats that fit `ports.input_width`, as harness bytes.
pub fn beats(ports: &Ports, frames: usize, seed: u64) -> Vec<u8> {
    let n = frames * ports.beats_per_frame as usize;
    let bpb = testbenches::bytes_per_beat(ports);
    let mask = if ports.input_width >= 64 {
        u64::MAX
    } else {
        (1u64 << ports.input_width) - 1
    };
    (0..n as u64)
        .flat_map(|i| {
            let v = sim::stimulus::splitmix64(seed.wrapping_add(i)) & mask;
            v.to_le_bytes().into_iter().take(bpb)
        })
        .collect()
}

fn wrap(v: i64, width: u32) -> i64 {
    let s = 64 - width;
    (v << s) >> s
}

/// Cycle-accurate model of `sum3_core` with the harness protocol: returns the trace, or the
/// partial trace if `max_cycles` passed first.
pub fn golden(ports: &Ports, bytes: &[u8], stim: Stimulus, max_cycles: u64) -> Trace {
    let beats = testbenches::decode_beats(ports, bytes).unwrap();
    let frame = u64::from(ports.beats_per_frame);
    let expected = beats.len() / frame as usize;
    // State after reset.
    let (mut acc, mut cnt, mut v0, mut d0) = (0u64, 0u64, false, 0u64);
    let (mut ov, mut sv, mut oreg, mut sreg) = (false, false, 0u64, 0u64);
    let mut trace = Trace::default();
    let (mut t, mut sent) = (0u64, 0usize);
    while t < max_cycles && trace.outputs.len() < expected {
        let c = stim.at(t);
        let have = sent < beats.len();
        let s_valid = have && !c.bubble;
        let m_ready = !c.stall;
        // Combinational logic.
        let rdy1 = !sv;
        let fire0 = v0 && rdy1;
        let last = cnt == frame - 1;
        let s_ready = !last || !v0 || rdy1;
        let in_fire = s_valid && s_ready;
        let out_fire = ov && m_ready;
        // Two stages, then the input handshake (bit 2).
        let fire = u64::from(fire0) | u64::from(out_fire) << 1 | u64::from(in_fire) << 2;
        if fire != 0 {
            trace.fires.push((t, fire));
        }
        if out_fire {
            let sum = oreg as i64;
            let sw = ports.score_width;
            trace.outputs.push(OutputBeat {
                cycle: t,
                class: (oreg % 3) as u32,
                scores: vec![
                    wrap(sum - 700, sw),
                    wrap(3 * sum + 1, sw),
                    wrap(-sum - 5, sw),
                ],
            });
        }
        // Rising edge: stage 1 reads stage 0's registers from before the edge.
        let d0_old = d0;
        if fire0 {
            v0 = false;
        }
        if in_fire {
            let x = beats[sent];
            sent += 1;
            if last {
                d0 = (acc + x) & 0xffff;
                v0 = true;
                acc = 0;
                cnt = 0;
            } else {
                acc = (acc + x) & 0xffff;
                cnt += 1;
            }
        }
        if !ov || m_ready {
            if sv {
                oreg = sreg;
                sv = false;
                ov = true;
            } else if fire0 {
                oreg = d0_old;
                ov = true;
            } else {
                ov = false;
            }
        } else if fire0 {
            sreg = d0_old;
            sv = true;
        }
        t += 1;
    }
    trace.cycles = t;
    trace
}
