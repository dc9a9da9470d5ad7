//! Counter-based randomness: every draw is a hash of the seed and a position, so results do
//! not depend on thread scheduling or on where a run was resumed.

/// Mixes a seed with a counter (splitmix64 finaliser).
#[inline]
pub fn mix(seed: u64, counter: u64) -> u64 {
    let mut z = seed ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The next value of the splitmix64 sequence whose state is `s`: random test inputs without
/// a dependency, one generator for every test module and for [`crate::model::random`].
pub fn splitmix(s: &mut u64) -> u64 {
    let v = mix(*s, 0);
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    v
}

/// A small fast stream generator (xorshift64*) for draws inside one row.
#[derive(Clone, Copy, Debug)]
pub struct Stream(u64);

impl Stream {
    /// A stream for a position; never the all-zero state.
    pub fn new(seed: u64, counter: u64) -> Self {
        Stream(mix(seed, counter) | 1)
    }

    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    #[inline]
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Standard normal (Box-Muller), for initialisation only.
    pub fn normal(&mut self) -> f32 {
        let u1 = self.next_f32().max(1e-7);
        let u2 = self.next_f32();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
}

/// A Fisher-Yates shuffle of `0..n`.
pub fn permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    let mut s = Stream::new(seed, 0);
    for i in (1..n).rev() {
        let j = (s.next_u64() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// A `rows` x `cols` matrix of fair random bits (padding cleared), row `r` drawn from the stream
/// `(seed, mix(tag, r))`, so initial weights do not depend on thread count.
pub fn random_bits(rows: usize, cols: usize, seed: u64, tag: u64) -> crate::bits::BitMatrix {
    let mut m = crate::bits::BitMatrix::zeros(rows, cols);
    for r in 0..rows {
        let mut s = Stream::new(seed, mix(tag, r as u64));
        let row = m.row_mut(r);
        for w in row.iter_mut() {
            *w = s.next_u64();
        }
        crate::bits::clear_padding(row, cols);
    }
    m
}
