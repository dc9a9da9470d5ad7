//! The input handshake of the pixel-stream blocks (sliding window, max-pool, collect): a
//! one-pixel skid register, so that `in_ready` depends on registers only and yet a pixel can
//! be taken every cycle.
//!
//! Each cycle the block *processes* at most one pixel: the held one if the skid register is
//! full, else the input beat. Processing may write the output register (a pixel that completes
//! a window, a pooled pixel or a frame); such a pixel can only be processed when the output
//! register is free in that cycle (`!out_valid || out_ready`). `in_ready` is `!hold_valid`: an
//! input beat taken in a cycle in which it cannot be processed goes into the skid register and
//! is processed in the first cycle the output register is free; meanwhile no beat is taken.
//! Without the skid register a registers-only `in_ready` would have to be `!out_valid` for
//! such pixels, costing a cycle per output beat.

use super::Beat;

/// When a pixel may be processed although the output register is full: never if it writes
/// that register.
pub(crate) enum OutGate<'a> {
    /// The pixel writes the output register when this expression holds.
    WritesOut(&'a str),
    /// This register (kept by the caller) says the pixel would write the output register and
    /// that register is full, so that `{n}_go` is a single LUT4 of registers.
    Blocked(&'a str),
}

/// Verilog declarations of the skid register for `width`-bit pixels, `in_ready`, and the
/// wires `{n}_in_fire` (a beat is taken), `{n}_px` (the pixel processed this cycle) and
/// `{n}_go` (a pixel is processed this cycle). `{n}_go` is kept through synthesis: it enables
/// every register of the block, and merged into the logic of its neighbours it became the
/// ECP5's critical path (three LUT levels through the stage upstream before a net across the
/// device).
pub(crate) fn declarations(n: &str, width: usize, gate: OutGate) -> String {
    let free = match gate {
        OutGate::WritesOut(w) => format!("!({w}) || !out_valid || out_ready"),
        OutGate::Blocked(b) => format!("!{b} || out_ready"),
    };
    format!(
        "// Skid register: an input pixel that cannot be processed when it arrives (it would \
         write a full\n// output register) waits here; in_ready depends on registers only.\n\
         reg  {n}_hold_valid;\nreg  [{m}:0] {n}_hold;\n\
         assign in_ready = !{n}_hold_valid;\nwire {n}_in_fire = in_valid && in_ready;\n\
         wire [{m}:0] {n}_px = {n}_hold_valid ? {n}_hold : in_data;\n\
         (* keep *) wire {n}_go = ({n}_hold_valid || in_valid) && ({free});\n",
        m = width - 1
    )
}

/// Reset of the skid register's valid bit (inside the control block's reset branch).
pub(crate) fn reset(n: &str) -> String {
    format!("{n}_hold_valid <= 1'b0;\n")
}

/// Update of the skid register's valid bit (inside the control block's run branch).
pub(crate) fn control(n: &str) -> String {
    format!("if ({n}_go) {n}_hold_valid <= 1'b0;\nelse if ({n}_in_fire) {n}_hold_valid <= 1'b1;\n")
}

/// The skid register's data (a datapath statement, no reset).
pub(crate) fn datapath(n: &str) -> String {
    format!("if ({n}_in_fire && !{n}_go) {n}_hold <= in_data;\n")
}

/// Cycle model of the skid register.
pub(crate) struct Skid {
    /// The register holds a pixel.
    pub valid: bool,
    /// The held pixel's words (a bit beat's planes).
    pub data: Vec<u64>,
}

/// Which pixel a block processes at a clock edge.
pub(crate) enum Source<'a> {
    /// The one in the skid register (read it from [`Skid::data`]).
    Held,
    /// The input beat's words.
    Input(&'a [u64]),
}

impl Skid {
    /// An empty skid register for pixels of `words` words.
    pub fn new(words: usize) -> Skid {
        Skid {
            valid: false,
            data: vec![0; words],
        }
    }

    /// [`super::CycleModel::quiet_cycles`] of a block whose only move without a handshake is
    /// a held pixel going into its free output register.
    pub fn quiet_cycles(&self, out_valid: bool) -> u64 {
        if self.valid && !out_valid {
            0
        } else {
            u64::MAX
        }
    }

    /// The clock edge: `input` is the beat taken this cycle, `can` says whether the pixel
    /// would be processed (it does not write the output register, or that register is free).
    /// Returns the pixel to process, if any; an input that cannot be processed is held.
    pub fn edge<'a>(&mut self, input: Option<&'a Beat>, can: bool) -> Option<Source<'a>> {
        if self.valid {
            debug_assert!(
                input.is_none(),
                "a beat taken while the skid register is full"
            );
            if can {
                self.valid = false;
                return Some(Source::Held);
            }
            return None;
        }
        let Beat::Bits(w) = input? else {
            panic!("a pixel-stream block fed a non-bit beat")
        };
        if can {
            Some(Source::Input(w))
        } else {
            self.data.copy_from_slice(w);
            self.valid = true;
            None
        }
    }
}
