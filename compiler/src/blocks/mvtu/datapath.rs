//! The arithmetic of an MVTU's cycle model: a whole frame's XNOR-popcounts and thresholds (or
//! scores) at once, on packed words.
//!
//! The result of a frame depends on nothing but its input vector (the weights are constants),
//! so the cycle model evaluates it in one go when the frame's last step issues. Feature maps
//! repeat windows (an image's plain background gives the same window at every position, and
//! the layers after it the same again), so recent input vectors and their results are kept in
//! a small memo, compared word for word before a result is reused.

use flip::bits::words_for;

use super::{get_bits, Beat};

/// Entries of the memo (a power of two): on Fashion-MNIST's first conv layers 1,024 catch
/// nearly all the repeats 4,096 do.
const MEMO: usize = 1024;

/// Lookups after which a memo that hits less than one time in [`MEMO_MIN_RATE`] is switched
/// off: a miss costs a hash, a compare and a copy into an entry that deep layers (whose
/// windows rarely repeat) never read again, and the cold entries push the other layers' data
/// out of the cache.
const MEMO_PROBE: u64 = 2048;
const MEMO_MIN_RATE: u64 = 8;

/// Largest table of lane counts (bytes) a narrow layer gets: it must sit in the L1 cache
/// beside the rest, else a table row costs more than the popcounts it replaces.
const TABLE_BYTES: usize = 32 * 1024;

/// One layer's weights, thresholds or scores, and scratch space.
pub(super) struct Datapath {
    pub pe: usize,
    pub simd: usize,
    pub nf_n: usize,
    pub sf_n: usize,
    pub p_n: usize,
    /// Words of one plane of the input vector.
    pub plane_words: usize,
    /// u64s per lane of a ROM word.
    pub wps: usize,
    /// ROM words split into lanes, each lane aligned to a fresh u64: `[addr][lane][wps]`.
    pub lanes: Vec<u64>,
    pub threshold: Vec<u32>,
    pub invert: Vec<bool>,
    pub bias: Vec<i32>,
    /// Per-class score multipliers (empty: 1).
    pub scale: Vec<u32>,
    /// Scratch: per-lane accumulators.
    acc: Vec<u64>,
    /// Scratch: the input vector cut into the steps' chunks, `[plane][sf][wps]`.
    xs: Vec<u64>,
    /// For a layer whose SIMD takes a few bits: per ROM word and chunk value, each lane's
    /// XNOR-popcount (`simd - popcount(lane ^ x)`), `[addr][x][lane]`; empty otherwise. One
    /// row replaces `pe` popcounts, as the first layer of a conv net (SIMD 9) needs per plane.
    table: Vec<u8>,
    memo: Memo,
}

/// Recent input vectors and their results, direct-mapped by a hash of the input.
struct Memo {
    /// Entries (a power of two).
    entries: usize,
    in_words: usize,
    out_words: usize,
    /// Per entry: the input's hash, `None` while empty.
    tags: Vec<Option<u64>>,
    inputs: Vec<u64>,
    bits: Vec<u64>,
    scores: Vec<i64>,
    /// Lookups and hits so far, and whether the memo is still consulted.
    lookups: u64,
    hits: u64,
    on: bool,
}

fn hash(words: &[u64]) -> u64 {
    let mut h = 0x243F_6A88_85A3_08D3u64;
    for &w in words {
        h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
    h.wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

impl Memo {
    fn slot(&self, h: u64) -> usize {
        (h >> 32) as usize & (self.entries - 1)
    }

    /// Copies the result of `input` (hash `h`) into `r` if the memo holds it.
    fn get(&self, h: u64, input: &[u64], r: &mut Beat) -> bool {
        let e = self.slot(h);
        if self.tags[e] != Some(h) || &self.inputs[e * self.in_words..][..self.in_words] != input {
            return false;
        }
        match r {
            Beat::Bits(r) => r.copy_from_slice(&self.bits[e * self.out_words..][..self.out_words]),
            Beat::Scores(r) => {
                r.copy_from_slice(&self.scores[e * self.out_words..][..self.out_words])
            }
            _ => unreachable!("an MVTU result is bits or scores"),
        }
        true
    }

    fn put(&mut self, h: u64, input: &[u64], r: &Beat) {
        let e = self.slot(h);
        self.tags[e] = Some(h);
        self.inputs[e * self.in_words..][..self.in_words].copy_from_slice(input);
        match r {
            Beat::Bits(r) => self.bits[e * self.out_words..][..self.out_words].copy_from_slice(r),
            Beat::Scores(r) => {
                self.scores[e * self.out_words..][..self.out_words].copy_from_slice(r)
            }
            _ => unreachable!("an MVTU result is bits or scores"),
        }
    }
}

impl Datapath {
    /// A datapath of the given shape; `outputs` neurons, `scores` for a layer that hands on
    /// scores rather than bits.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        (pe, simd, nf_n, sf_n, p_n): (usize, usize, usize, usize, usize),
        plane_words: usize,
        lanes: Vec<u64>,
        threshold: Vec<u32>,
        invert: Vec<bool>,
        bias: Vec<i32>,
        scale: Vec<u32>,
        scores: bool,
    ) -> Datapath {
        let wps = words_for(simd);
        let outputs = pe * nf_n;
        let in_words = plane_words * p_n;
        let out_words = if scores { outputs } else { words_for(outputs) };
        let table = lane_table(&lanes, simd, pe, nf_n * sf_n);
        Datapath {
            pe,
            simd,
            nf_n,
            sf_n,
            p_n,
            plane_words,
            wps,
            lanes,
            threshold,
            invert,
            bias,
            scale,
            acc: vec![0; pe],
            xs: vec![0; p_n * sf_n * wps],
            table,
            memo: Memo {
                entries: MEMO,
                in_words,
                out_words,
                tags: vec![None; MEMO],
                inputs: vec![0; MEMO * in_words],
                bits: if scores {
                    Vec::new()
                } else {
                    vec![0; MEMO * out_words]
                },
                scores: if scores {
                    vec![0; MEMO * out_words]
                } else {
                    Vec::new()
                },
                lookups: 0,
                hits: 0,
                on: true,
            },
        }
    }

    /// The result of the frame `input` (`p_n` planes of `plane_words` words) into `r`.
    pub fn evaluate(&mut self, input: &[u64], r: &mut Beat) {
        if !self.memo.on {
            self.compute(input, r);
            return;
        }
        let h = hash(input);
        self.memo.lookups += 1;
        if self.memo.get(h, input, r) {
            self.memo.hits += 1;
            return;
        }
        self.compute(input, r);
        self.memo.put(h, input, r);
        if self.memo.lookups == MEMO_PROBE && self.memo.hits * MEMO_MIN_RATE < MEMO_PROBE {
            self.memo.on = false;
        }
    }

    /// The Verilog's schedule folded into loops over words: ROM word `nf * SF + sf`, input
    /// chunk `plane * inputs + sf * simd`, lane popcount shifted by `plane` into the
    /// accumulator; at each group's end the results go to output neurons `nf * pe ..`.
    fn compute(&mut self, input: &[u64], r: &mut Beat) {
        let (simd, wps) = (self.simd, self.wps);
        // The chunks are the same for every neuron group: cut them once. With a single step
        // per plane, or a SIMD of whole words, a plane's chunks are its words as they lie,
        // but for the bits past the last chunk.
        let aligned = self.sf_n == 1 || simd.is_multiple_of(64);
        for plane in 0..self.p_n {
            let chunk = &input[plane * self.plane_words..][..self.plane_words];
            if aligned {
                let n = self.sf_n * wps;
                let x = &mut self.xs[plane * n..][..n];
                x.copy_from_slice(&chunk[..n]);
                let tail = (simd * self.sf_n) % 64;
                if tail != 0 {
                    x[n - 1] &= (1u64 << tail) - 1;
                }
                continue;
            }
            for sf in 0..self.sf_n {
                let x = &mut self.xs[(plane * self.sf_n + sf) * wps..][..wps];
                for (i, x) in x.iter_mut().enumerate() {
                    *x = get_bits(chunk, sf * simd + i * 64, (simd - i * 64).min(64));
                }
            }
        }
        let simd = simd as u64;
        let group = self.pe * wps;
        if let Beat::Bits(r) = r {
            // Each group's bits are ORed in below.
            r.fill(0);
        }
        for nf in 0..self.nf_n {
            self.acc.fill(0);
            if self.table.is_empty() {
                let roms = &self.lanes[nf * self.sf_n * group..][..self.sf_n * group];
                for plane in 0..self.p_n {
                    let xs = &self.xs[plane * self.sf_n * wps..][..self.sf_n * wps];
                    for (rom, x) in roms.chunks_exact(group).zip(xs.chunks_exact(wps)) {
                        match wps {
                            1 => lanes::<1>(&mut self.acc, rom, x, simd, plane),
                            2 => lanes::<2>(&mut self.acc, rom, x, simd, plane),
                            3 => lanes::<3>(&mut self.acc, rom, x, simd, plane),
                            4 => lanes::<4>(&mut self.acc, rom, x, simd, plane),
                            5 => lanes::<5>(&mut self.acc, rom, x, simd, plane),
                            6 => lanes::<6>(&mut self.acc, rom, x, simd, plane),
                            8 => lanes::<8>(&mut self.acc, rom, x, simd, plane),
                            _ => {
                                for (a, lane) in self.acc.iter_mut().zip(rom.chunks_exact(wps)) {
                                    let diff: u32 =
                                        lane.iter().zip(x).map(|(w, x)| (w ^ x).count_ones()).sum();
                                    *a += (simd - u64::from(diff)) << plane;
                                }
                            }
                        }
                    }
                }
            } else {
                // One-word chunks: the chunk's value picks a row of counts.
                let rows = self.table.len() / (self.nf_n * self.sf_n);
                for plane in 0..self.p_n {
                    for sf in 0..self.sf_n {
                        let x = self.xs[plane * self.sf_n + sf] as usize;
                        let at = (nf * self.sf_n + sf) * rows + x * self.pe;
                        for (a, &c) in self.acc.iter_mut().zip(&self.table[at..][..self.pe]) {
                            *a += u64::from(c) << plane;
                        }
                    }
                }
            }
            let first = nf * self.pe;
            match r {
                Beat::Bits(r) => {
                    // Up to 64 neurons' bits at a time, gathered in a register.
                    for (c, acc) in self.acc.chunks(64).enumerate() {
                        let at = first + c * 64;
                        let (t, inv) = (&self.threshold[at..], &self.invert[at..]);
                        let mut bits = 0u64;
                        for (g, ((&a, &t), &inv)) in acc.iter().zip(t).zip(inv).enumerate() {
                            bits |= u64::from((a >= u64::from(t)) ^ inv) << g;
                        }
                        let (i, s) = (at / 64, at % 64);
                        r[i] |= bits << s;
                        if s > 0 && s + acc.len() > 64 {
                            r[i + 1] |= bits >> (64 - s);
                        }
                    }
                }
                Beat::Scores(r) => {
                    for (g, &a) in self.acc.iter().enumerate() {
                        let n = first + g;
                        let m = self.scale.get(n).map_or(1, |&m| i64::from(m));
                        r[n] = a as i64 * m + i64::from(self.bias[n]);
                    }
                }
                _ => unreachable!("an MVTU result is bits or scores"),
            }
        }
    }
}

/// The lane counts of a layer whose SIMD is narrow enough for [`Datapath::table`] to fit
/// [`TABLE_BYTES`] (empty otherwise): `lanes` holds `addrs` ROM words of `pe` one-word lanes.
fn lane_table(lanes: &[u64], simd: usize, pe: usize, addrs: usize) -> Vec<u8> {
    if simd > 16 || (addrs * pe) << simd > TABLE_BYTES {
        return Vec::new();
    }
    let values = 1usize << simd;
    let mut t = Vec::with_capacity(addrs * values * pe);
    for a in 0..addrs {
        let word = &lanes[a * pe..][..pe];
        for x in 0..values as u64 {
            t.extend(
                word.iter()
                    .map(|&l| (simd as u32 - (l ^ x).count_ones()) as u8),
            );
        }
    }
    t
}

/// Adds lane `g`'s XNOR-popcount of its `W`-word slice of `rom` with `x`, shifted by `plane`,
/// to `acc[g]`: the step of a layer whose SIMD takes `W` words, unrolled.
#[inline(always)]
fn lanes<const W: usize>(acc: &mut [u64], rom: &[u64], x: &[u64], simd: u64, plane: usize) {
    let x: &[u64; W] = x.try_into().expect("a chunk is W words");
    for (a, lane) in acc.iter_mut().zip(rom.chunks_exact(W)) {
        let mut diff = 0;
        for k in 0..W {
            diff += (lane[k] ^ x[k]).count_ones();
        }
        *a += (simd - u64::from(diff)) << plane;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flip::bits::set_bit;
    use flip::train::rng::splitmix;

    fn bit(words: &[u64], i: usize) -> bool {
        words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Neuron by neuron, plane by plane, bit by bit: the layer's arithmetic with no words,
    /// no unrolling and no memo.
    // The neuron index picks from several arrays at once, as in the Verilog.
    #[allow(clippy::needless_range_loop)]
    fn straightforward(d: &Datapath, input: &[u64], scores: bool) -> Beat {
        let inputs = d.simd * d.sf_n;
        let outputs = d.pe * d.nf_n;
        let mut bits = vec![0u64; words_for(outputs)];
        let mut out = vec![0i64; outputs];
        for n in 0..outputs {
            let (nf, g) = (n / d.pe, n % d.pe);
            let mut acc = 0u64;
            for plane in 0..d.p_n {
                for j in 0..inputs {
                    let (sf, k) = (j / d.simd, j % d.simd);
                    let lane = &d.lanes[((nf * d.sf_n + sf) * d.pe + g) * d.wps..][..d.wps];
                    let x = bit(&input[plane * d.plane_words..], j);
                    acc += u64::from(bit(lane, k) == x) << plane;
                }
            }
            if scores {
                let m = d.scale.get(n).map_or(1, |&m| i64::from(m));
                out[n] = acc as i64 * m + i64::from(d.bias[n]);
            } else {
                set_bit(
                    &mut bits,
                    n,
                    (acc >= u64::from(d.threshold[n])) ^ d.invert[n],
                );
            }
        }
        if scores {
            Beat::Scores(out)
        } else {
            Beat::Bits(bits)
        }
    }

    /// A layer fed more distinct inputs than the memo probes, then repeats: the memo turns
    /// itself off, and every result stays the straightforward one before and after.
    #[test]
    fn memo_switches_off_without_losing_results() {
        let mut r = 0x0FF;
        let mut rand = |n: u64| splitmix(&mut r) % n;
        // SIMD 9 in one step: the counts come from the table (and 200 bits: from popcounts).
        for (pe, simd, sf_n, p_n) in [(32, 9, 1, 4), (8, 200, 2, 1)] {
            let (wps, inputs) = (words_for(simd), simd * sf_n);
            let plane_words = words_for(inputs);
            let mut lanes = vec![0u64; sf_n * pe * wps];
            for l in lanes.chunks_mut(wps) {
                for k in 0..simd {
                    set_bit(l, k, rand(2) == 1);
                }
            }
            let most = (inputs as u64) << p_n;
            let mut d = Datapath::new(
                (pe, simd, 1, sf_n, p_n),
                plane_words,
                lanes,
                (0..pe).map(|_| rand(most) as u32).collect(),
                (0..pe).map(|_| rand(2) == 1).collect(),
                Vec::new(),
                Vec::new(),
                false,
            );
            assert_eq!(d.table.is_empty(), simd > 16, "pe {pe} simd {simd}");
            let mut got = Beat::Bits(vec![0; words_for(pe)]);
            let mut v = vec![0u64; plane_words * p_n];
            for f in 0..MEMO_PROBE + 300 {
                // Distinct inputs up to the probe, then a handful over and over; bits past
                // the layer's inputs set, as nothing upstream promises they are clear.
                let seed = if f < MEMO_PROBE { f } else { f % 3 };
                let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for w in v.iter_mut() {
                    *w = splitmix(&mut s);
                }
                d.evaluate(&v, &mut got);
                assert_eq!(
                    got,
                    straightforward(&d, &v, false),
                    "pe {pe} simd {simd} frame {f}"
                );
            }
            assert!(!d.memo.on, "distinct inputs switch the memo off");
        }
    }

    /// Random layers of every lane width the unrolled loops take and beyond, fed inputs drawn
    /// from a small pool (so the memo is hit, and overwritten by colliding inputs): every
    /// result equals the straightforward one.
    #[test]
    fn fast_datapath_matches_straightforward_evaluation() {
        let mut r = 0x5EED;
        let mut rand = |n: u64| splitmix(&mut r) % n;
        for case in 0..300 {
            let simd = [1, 3, 9, 64, 65, 96, 130, 200, 288, 330, 600][case % 11];
            let (pe, nf_n, sf_n, p_n) = (
                1 + rand(70) as usize,
                1 + rand(3) as usize,
                1 + rand(3) as usize,
                1 + rand(4) as usize,
            );
            let scores = rand(4) == 0;
            let wps = words_for(simd);
            let outputs = pe * nf_n;
            let inputs = simd * sf_n;
            let plane_words = words_for(inputs);
            let mut lanes = vec![0u64; nf_n * sf_n * pe * wps];
            for l in lanes.chunks_mut(wps) {
                for k in 0..simd {
                    set_bit(l, k, rand(2) == 1);
                }
            }
            let most = (inputs as u64) << p_n;
            let threshold = (0..outputs).map(|_| rand(most + 2) as u32).collect();
            let invert = (0..outputs).map(|_| rand(2) == 1).collect();
            let bias = (0..outputs).map(|_| rand(200) as i32 - 100).collect();
            let scale = if rand(2) == 0 {
                Vec::new()
            } else {
                (0..outputs).map(|_| 1 + rand(5) as u32).collect()
            };
            let mut d = Datapath::new(
                (pe, simd, nf_n, sf_n, p_n),
                plane_words,
                lanes,
                threshold,
                invert,
                bias,
                scale,
                scores,
            );
            if case % 2 == 0 {
                // One entry: every other input collides with the one held.
                d.memo.entries = 1;
            }
            let pool: Vec<Vec<u64>> = (0..1 + rand(6))
                .map(|_| {
                    let mut v = vec![0u64; plane_words * p_n];
                    for p in 0..p_n {
                        for j in 0..inputs {
                            set_bit(&mut v[p * plane_words..], j, rand(3) == 0);
                        }
                    }
                    v
                })
                .collect();
            let mut got = if scores {
                Beat::Scores(vec![0; outputs])
            } else {
                Beat::Bits(vec![0; words_for(outputs)])
            };
            for f in 0..8 {
                let input = &pool[rand(pool.len() as u64) as usize];
                d.evaluate(input, &mut got);
                assert_eq!(
                    got,
                    straightforward(&d, input, scores),
                    "case {case} frame {f}: pe {pe} simd {simd} nf {nf_n} sf {sf_n} planes {p_n}"
                );
            }
        }
    }
}
