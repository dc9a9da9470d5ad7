//! PLL parameters: the search `icepll` (iCE40) and `ecppll` (ECP5) do, and the primitive's
//! instance in Verilog.

use serde::Serialize;

use crate::board::PllPrimitive;

/// A PLL setting that turns the board clock into the core clock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pll {
    /// The primitive instantiated.
    pub primitive: PllPrimitive,
    /// Input (board) clock.
    pub input_mhz: f64,
    /// Frequency asked for.
    pub requested_mhz: f64,
    /// Frequency the setting produces.
    pub output_mhz: f64,
    /// VCO frequency.
    pub vco_mhz: f64,
    /// Primitive parameters, in instance order.
    pub params: Vec<(String, String)>,
}

/// The iCE40 PLL in SIMPLE feedback mode, as `icepll` chooses it: the setting whose output is
/// closest to `out`, with the PFD in 10..133 MHz and the VCO in 533..1066 MHz.
pub fn ice40(primitive: PllPrimitive, input: f64, out: f64) -> Option<Pll> {
    let mut best: Option<(f64, u32, u32, u32, f64, f64)> = None;
    for divr in 0..=15u32 {
        let pfd = input / f64::from(divr + 1);
        if !(10.0..=133.0).contains(&pfd) {
            continue;
        }
        for divf in 0..=127u32 {
            let vco = pfd * f64::from(divf + 1);
            if !(533.0..=1066.0).contains(&vco) {
                continue;
            }
            for divq in 1..=6u32 {
                let f = vco / f64::from(1u32 << divq);
                if !(16.0..=275.0).contains(&f) {
                    continue;
                }
                let err = (f - out).abs();
                if best.is_none_or(|b| err < b.0) {
                    best = Some((err, divr, divf, divq, f, vco));
                }
            }
        }
    }
    let (_, divr, divf, divq, f, vco) = best?;
    let pfd = input / f64::from(divr + 1);
    let filter = match pfd {
        p if p < 17.0 => 1,
        p if p < 26.0 => 2,
        p if p < 44.0 => 3,
        p if p < 66.0 => 4,
        p if p < 101.0 => 5,
        _ => 6,
    };
    Some(Pll {
        primitive,
        input_mhz: input,
        requested_mhz: out,
        output_mhz: f,
        vco_mhz: vco,
        params: vec![
            ("FEEDBACK_PATH".into(), "\"SIMPLE\"".into()),
            ("DIVR".into(), format!("4'd{divr}")),
            ("DIVF".into(), format!("7'd{divf}")),
            ("DIVQ".into(), format!("3'd{divq}")),
            ("FILTER_RANGE".into(), format!("3'd{filter}")),
        ],
    })
}

/// The ECP5 EHXPLLL with CLKOP as feedback, as `ecppll` chooses it: PFD 3.125..400 MHz,
/// VCO 400..800 MHz, output 10..400 MHz, closest output first.
pub fn ecp5(input: f64, out: f64) -> Option<Pll> {
    let mut best: Option<(f64, u32, u32, u32, f64, f64)> = None;
    for input_div in 1..=128u32 {
        let pfd = input / f64::from(input_div);
        if !(3.125..=400.0).contains(&pfd) {
            continue;
        }
        for feedback_div in 1..=80u32 {
            for output_div in 1..=128u32 {
                let f = pfd * f64::from(feedback_div);
                let vco = f * f64::from(output_div);
                if !(400.0..=800.0).contains(&vco) || !(10.0..=400.0).contains(&f) {
                    continue;
                }
                let err = (f - out).abs();
                // Ties go to the VCO nearest 600 MHz, as in ecppll.
                if best.is_none_or(|b| {
                    err < b.0 || (err == b.0 && (vco - 600.0).abs() < (b.5 - 600.0).abs())
                }) {
                    best = Some((err, input_div, feedback_div, output_div, f, vco));
                }
            }
        }
    }
    let (_, input_div, feedback_div, output_div, f, vco) = best?;
    let s = |v: &str| format!("\"{v}\"");
    Some(Pll {
        primitive: PllPrimitive::Ehxplll,
        input_mhz: input,
        requested_mhz: out,
        output_mhz: f,
        vco_mhz: vco,
        params: vec![
            ("PLLRST_ENA".into(), s("DISABLED")),
            ("INTFB_WAKE".into(), s("DISABLED")),
            ("STDBY_ENABLE".into(), s("DISABLED")),
            ("DPHASE_SOURCE".into(), s("DISABLED")),
            ("OUTDIVIDER_MUXA".into(), s("DIVA")),
            ("CLKI_DIV".into(), input_div.to_string()),
            ("CLKOP_ENABLE".into(), s("ENABLED")),
            ("CLKOP_DIV".into(), output_div.to_string()),
            // The phase ecppll sets (half a period, less the divider's one-cycle offset).
            (
                "CLKOP_CPHASE".into(),
                (output_div / 2).saturating_sub(1).to_string(),
            ),
            ("CLKOP_FPHASE".into(), "0".into()),
            ("FEEDBK_PATH".into(), s("CLKOP")),
            ("CLKFB_DIV".into(), feedback_div.to_string()),
        ],
    })
}

/// The fastest clock below `out` that some setting of `primitive` makes (within the 1% that
/// [`compute`] allows), searched in steps of 1% down to half of `out`.
pub fn nearest_below(primitive: PllPrimitive, input: f64, out: f64) -> Option<f64> {
    (1..=50)
        .filter_map(|k| compute(primitive, input, out * (1.0 - 0.01 * f64::from(k))))
        .map(|p| p.output_mhz)
        .find(|&f| f <= out)
}

/// The PLL for `primitive`, or `None` if no setting reaches `out` within 1%.
pub fn compute(primitive: PllPrimitive, input: f64, out: f64) -> Option<Pll> {
    let pll = match primitive {
        PllPrimitive::Sb40Pad | PllPrimitive::Sb40Core => ice40(primitive, input, out)?,
        PllPrimitive::Ehxplll => ecp5(input, out)?,
    };
    ((pll.output_mhz - out).abs() <= out * 0.01).then_some(pll)
}

impl Pll {
    /// The instance: board clock `clk` in, `core_clk` and `pll_locked` out.
    pub fn verilog(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("        .{k}({v})"))
            .collect();
        let params = params.join(",\n");
        let (name, ports) = match self.primitive {
            PllPrimitive::Sb40Pad => (
                "SB_PLL40_PAD",
                ".PACKAGEPIN(clk),\n        .PLLOUTGLOBAL(core_clk),\n        .LOCK(pll_locked),\n        \
                 .RESETB(1'b1),\n        .BYPASS(1'b0)",
            ),
            PllPrimitive::Sb40Core => (
                "SB_PLL40_CORE",
                ".REFERENCECLK(clk),\n        .PLLOUTGLOBAL(core_clk),\n        .LOCK(pll_locked),\n        \
                 .RESETB(1'b1),\n        .BYPASS(1'b0)",
            ),
            PllPrimitive::Ehxplll => (
                "EHXPLLL",
                ".CLKI(clk),\n        .CLKFB(core_clk),\n        .CLKOP(core_clk),\n        \
                 .LOCK(pll_locked),\n        .RST(1'b0),\n        .STDBY(1'b0),\n        \
                 .PHASESEL0(1'b0),\n        .PHASESEL1(1'b0),\n        .PHASEDIR(1'b1),\n        \
                 .PHASESTEP(1'b1),\n        .PHASELOADREG(1'b1),\n        .PLLWAKESYNC(1'b0),\n        \
                 .ENCLKOP(1'b0)",
            ),
        };
        format!(
            "    // {name}: {:.3} MHz in, {:.3} MHz out (asked {:.3}), VCO {:.1} MHz.\n    \
             {name} #(\n{params}\n    ) pll (\n        {ports}\n    );\n",
            self.input_mhz, self.output_mhz, self.requested_mhz, self.vco_mhz
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param<'a>(p: &'a Pll, k: &str) -> &'a str {
        &p.params.iter().find(|(n, _)| n == k).unwrap().1
    }

    #[test]
    fn ice40_matches_icepll() {
        // `icepll -i 12 -o 30`: DIVR 0, DIVF 79, DIVQ 5, FILTER_RANGE 1, 30.000 MHz.
        let p = ice40(PllPrimitive::Sb40Pad, 12.0, 30.0).unwrap();
        assert_eq!(p.output_mhz, 30.0);
        assert_eq!(param(&p, "DIVR"), "4'd0");
        assert_eq!(param(&p, "DIVF"), "7'd79");
        assert_eq!(param(&p, "DIVQ"), "3'd5");
        assert_eq!(param(&p, "FILTER_RANGE"), "3'd1");
    }

    #[test]
    fn ecp5_hits_round_frequencies() {
        // `ecppll -i 25 -o 100`: CLKI_DIV 1, CLKFB_DIV 4, CLKOP_DIV 6, CLKOP_CPHASE 2, VCO 600.
        let p = ecp5(25.0, 100.0).unwrap();
        assert!((p.output_mhz - 100.0).abs() < 1e-9);
        assert_eq!(param(&p, "CLKI_DIV"), "1");
        assert_eq!(param(&p, "CLKFB_DIV"), "4");
        assert_eq!(param(&p, "CLKOP_DIV"), "6");
        assert_eq!(param(&p, "CLKOP_CPHASE"), "2");
        // `ecppll -i 25 -o 62` gives 62.5 MHz, VCO 625 (CLKI_DIV 6, CLKFB_DIV 15, CLKOP_DIV 10);
        // 2/5/10 is the same setting with smaller dividers (ecppll's choice is float noise).
        let p = ecp5(25.0, 62.0).unwrap();
        assert_eq!((p.output_mhz, p.vco_mhz), (62.5, 625.0));
        assert_eq!(param(&p, "CLKOP_CPHASE"), "4");
        assert!((400.0..=800.0).contains(&p.vco_mhz));
        assert!(compute(PllPrimitive::Ehxplll, 25.0, 1000.0).is_none());
    }

    #[test]
    fn a_clock_no_setting_makes_names_the_nearest_below() {
        // From 25 MHz the EHXPLLL makes 100 and 103.125 (33/8) but nothing within 1% of 102
        // (a finer ratio would put the phase detector under its 3.125 MHz).
        assert!(compute(PllPrimitive::Ehxplll, 25.0, 102.0).is_none());
        assert_eq!(
            nearest_below(PllPrimitive::Ehxplll, 25.0, 102.0),
            Some(100.0)
        );
        let board = crate::Board::load("ulx3s").unwrap();
        let e = crate::wrapper::Clocking::new(&board, Some(102.0)).unwrap_err();
        assert!(e.to_string().contains("makes 100.000 MHz"), "{e}");
    }
}
