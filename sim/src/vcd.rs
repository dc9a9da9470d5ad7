//! A value change dump of the top-level streams and every stage's handshake, readable by
//! GTKWave. One cycle is 10 time units: cycle `t`'s values are set at time `10 t` and `clk`
//! rises at `10 t + 5`.

use std::io::Write;

use compiler::blocks::{Beat, CycleModel, StageModel};
use compiler::ir::Design;

/// VCD writer state: the previous value of every signal, to print changes only.
pub struct Vcd<'w> {
    w: &'w mut dyn Write,
    prev: Vec<u64>,
    /// The previous `s_data` (wider than a word when the beat is).
    prev_data: Option<Vec<u64>>,
    widths: Vec<u32>,
    stages: usize,
    classes: usize,
}

/// Identifier characters: printable ASCII without `#` and `$`, which some readers mistake for
/// time stamps and keywords.
const IDS: &[u8] =
    b"!%&'()*+,-./:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~";

fn id(i: usize) -> String {
    let mut s = String::new();
    let mut i = i;
    loop {
        s.push(IDS[i % IDS.len()] as char);
        i /= IDS.len();
        if i == 0 {
            return s;
        }
    }
}

impl<'w> Vcd<'w> {
    /// Writes the header for `design` with stages `names`.
    pub fn new(w: &'w mut dyn Write, design: &Design, names: &[String]) -> std::io::Result<Self> {
        let mut sig: Vec<(String, u32)> = vec![
            ("clk".into(), 1),
            ("s_valid".into(), 1),
            ("s_ready".into(), 1),
            ("s_data".into(), design.input().input_width() as u32),
            ("m_valid".into(), 1),
            ("m_ready".into(), 1),
            ("m_class".into(), design.class_width()),
        ];
        let classes = design.argmax().classes;
        for c in 0..classes {
            sig.push((format!("m_score{c}"), design.argmax().score_width));
        }
        for n in names {
            sig.push((format!("{n}_out_valid"), 1));
            sig.push((format!("{n}_out_ready"), 1));
        }
        sig.push(("dbg_fire".into(), names.len() as u32));
        writeln!(
            w,
            "$date flipchip sim $end\n$version flipchip sim $end\n$timescale 1ns $end"
        )?;
        writeln!(w, "$scope module {} $end", design.top)?;
        for (i, (name, width)) in sig.iter().enumerate() {
            writeln!(w, "$var wire {width} {} {name} $end", id(i))?;
        }
        writeln!(w, "$upscope $end\n$enddefinitions $end")?;
        Ok(Vcd {
            w,
            prev: vec![u64::MAX; sig.len()],
            prev_data: None,
            widths: sig.iter().map(|s| s.1).collect(),
            stages: names.len(),
            classes,
        })
    }

    fn set(&mut self, i: usize, v: u64) -> std::io::Result<()> {
        if self.prev[i] != v {
            self.prev[i] = v;
            if self.widths[i] == 1 {
                writeln!(self.w, "{}{}", v & 1, id(i))?;
            } else {
                writeln!(self.w, "b{:b} {}", v, id(i))?;
            }
        }
        Ok(())
    }

    /// Sets `s_data` (signal 3) to the words `v`, the lowest first (missing words are 0).
    fn set_data(&mut self, v: &[u64]) -> std::io::Result<()> {
        let mut v = v.to_vec();
        while v.last() == Some(&0) {
            v.pop();
        }
        if self.prev_data.as_ref() == Some(&v) {
            return Ok(());
        }
        let mut bits = String::new();
        for (i, w) in v.iter().enumerate().rev() {
            if i + 1 == v.len() {
                bits.push_str(&format!("{w:b}"));
            } else {
                bits.push_str(&format!("{w:064b}"));
            }
        }
        if bits.is_empty() {
            bits.push('0');
        }
        writeln!(self.w, "b{bits} {}", id(3))?;
        self.prev_data = Some(v);
        Ok(())
    }

    /// Records cycle `t`.
    #[allow(clippy::too_many_arguments)]
    pub fn cycle(
        &mut self,
        t: u64,
        s_valid: bool,
        s_ready: bool,
        s_data: &[u64],
        m_ready: bool,
        out_ready: &[bool],
        models: &[StageModel],
    ) -> std::io::Result<()> {
        writeln!(self.w, "#{}", t * 10)?;
        let last = &models[models.len() - 1];
        let (class, scores) = match last.out_data() {
            Beat::Result { class, scores } => (*class as u64, scores.as_slice()),
            _ => (0, &[][..]),
        };
        self.set(0, 0)?;
        self.set(1, s_valid as u64)?;
        self.set(2, s_ready as u64)?;
        self.set_data(s_data)?;
        self.set(4, last.out_valid() as u64)?;
        self.set(5, m_ready as u64)?;
        self.set(6, class)?;
        for (c, &v) in scores.iter().enumerate() {
            let w = self.widths[7 + c];
            let mask = if w >= 64 { u64::MAX } else { (1u64 << w) - 1 };
            self.set(7 + c, v as u64 & mask)?;
        }
        let base = 7 + self.classes;
        let mut fire = 0u64;
        for (i, m) in models.iter().enumerate() {
            self.set(base + 2 * i, m.out_valid() as u64)?;
            self.set(base + 1 + 2 * i, out_ready[i] as u64)?;
            if m.out_valid() && out_ready[i] {
                fire |= 1 << i;
            }
        }
        self.set(base + 2 * self.stages, fire)?;
        writeln!(self.w, "#{}", t * 10 + 5)?;
        self.set(0, 1)
    }

    /// Closes the dump at cycle `t`.
    pub fn finish(&mut self, t: u64) -> std::io::Result<()> {
        writeln!(self.w, "#{}", t * 10)?;
        self.w.flush()
    }
}
