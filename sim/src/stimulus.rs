//! Per-cycle stimulus: which cycles the source withholds data (bubbles) and which cycles the
//! sink refuses data (back-pressure). A pure function of seed and cycle, so a Rust simulator and
//! a C++ testbench reproduce it exactly without sharing state.
//!
//! Protocol, identical in every simulator:
//! - `rst` is high for [`RESET_CYCLES`] cycles with `s_valid = 0` and `m_ready = 0`; cycle 0 is
//!   the first cycle with `rst` low.
//! - In cycle `t`, before the rising edge that ends it, the driver sets `s_valid`, `s_data` and
//!   `m_ready` from [`Stimulus::at`] and the next unsent beat; a beat is transferred on a side
//!   when valid and ready are both high in that cycle.
//! - `s_data` holds the next beat whenever `s_valid` is high and must stay until it is taken.

/// Cycles of synchronous reset before cycle 0.
pub const RESET_CYCLES: u64 = 2;

/// What the environment does around the design.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stimulus {
    /// Seed of the bubble and stall pattern.
    pub seed: u64,
    /// Percent of cycles (0..=100) in which the source withholds a beat it has.
    pub bubble_pct: u32,
    /// Percent of cycles (0..=100) in which the sink is not ready.
    pub stall_pct: u32,
}

/// The environment's choice for one cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// The source withholds its beat this cycle.
    pub bubble: bool,
    /// The sink holds `m_ready` low this cycle.
    pub stall: bool,
}

/// SplitMix64 finaliser (Steele, Lea, Flood 2014): a good 64-bit mix in a few operations,
/// trivially reimplemented in C++ and Verilog testbenches.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Stimulus {
    /// Always valid, always ready: the design's own throughput.
    pub fn free(seed: u64) -> Self {
        Stimulus {
            seed,
            bubble_pct: 0,
            stall_pct: 0,
        }
    }

    /// The environment in cycle `t` (0 = first cycle after reset).
    pub fn at(&self, t: u64) -> Cycle {
        let r = splitmix64(self.seed ^ t.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let bubble = (r & 0xFFFF) * 100 < u64::from(self.bubble_pct) * 65536;
        let stall = ((r >> 16) & 0xFFFF) * 100 < u64::from(self.stall_pct) * 65536;
        Cycle { bubble, stall }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_values() {
        // First outputs of the reference SplitMix64 generator seeded with 0, whose state
        // advances by the golden gamma before each mix.
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn percentages_are_respected() {
        let s = Stimulus {
            seed: 7,
            bubble_pct: 30,
            stall_pct: 60,
        };
        let n = 100_000;
        let (mut b, mut st) = (0, 0);
        for t in 0..n {
            let c = s.at(t);
            b += c.bubble as u32;
            st += c.stall as u32;
        }
        assert!((28_000..32_000).contains(&b), "bubbles {b}");
        assert!((58_000..62_000).contains(&st), "stalls {st}");
        assert!((0..1000).all(|t| Stimulus::free(3).at(t)
            == Cycle {
                bubble: false,
                stall: false
            }));
    }
}
