//! The layout driver end to end on a design of about a hundred cells: qflow's synthesis,
//! GrayWolf, qrouter, vesta, Magic and netgen must give a routed, DRC-clean, LVS-clean layout
//! with a GDS, in about a minute. The accelerator's own layout (thousands of cells, many
//! minutes) is the ignored test in the workspace's tests/asic.rs.

use std::path::PathBuf;

/// A register file that accumulates its input, so that placement and routing have real
/// fan-in, fan-out and a carry chain to deal with.
const TINY: &str =
    "module tiny_acc(input clk, input rst, input [7:0] d, output reg [11:0] acc, output parity);
  reg [7:0] r;
  always @(posedge clk) begin
    if (rst) begin
      r <= 8'd0;
      acc <= 12'd0;
    end else begin
      r <= d ^ {r[6:0], r[7]};
      acc <= acc + {4'd0, r};
    end
  end
  assign parity = ^acc;
endmodule
";

#[test]
fn a_tiny_design_is_placed_routed_and_checked_clean() {
    let Some(qflow) = tools::for_test(&["qflow"], asic::INSTALL_ASIC) else {
        return;
    };
    let tech = match asic::Tech::load("osu018") {
        Ok(t) => t,
        Err(e) => {
            tools::tool_missing(&e.to_string());
            return;
        }
    };
    let dir = std::env::temp_dir().join(format!("flipchip-asic-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tiny_acc.v"), TINY).unwrap();
    let mut lines = Vec::new();
    let l = asic::layout::run(
        &qflow,
        &dir,
        &tech,
        &[PathBuf::from("tiny_acc.v")],
        "tiny_acc",
        None,
        &mut |line| lines.push(line.to_string()),
    )
    .unwrap_or_else(|e| panic!("layout failed: {e}"));
    assert!(l.failed.is_empty(), "failed steps: {:?}", l.failed);
    let (w, h) = l.die_um.expect("a die size from the DEF");
    assert!(w > 10.0 && h > 10.0, "die {w} x {h} um");
    assert!(l.placed_cells.unwrap_or(0) > 20, "{l:?}");
    assert_eq!(l.failed_routes, Some(0), "{l:?}");
    assert!(l.fmax_mhz.unwrap_or(0.0) > 10.0, "{l:?}");
    assert!(
        l.drc_errors_routed.is_some() && l.min_area_patches.is_some(),
        "{l:?}"
    );
    assert_eq!(l.drc_errors, Some(0), "{l:?}");
    assert_eq!(l.lvs_match, Some(true), "{l:?}");
    assert_eq!(l.lvs_errors, Some(0), "{l:?}");
    let gds = l.gds.as_ref().expect("a GDS");
    assert!(std::fs::metadata(gds).unwrap().len() > 1000);
    // Every step reported its start and its end with a time.
    for step in ["synthesize", "place", "route", "drc", "lvs", "gdsii"] {
        assert!(
            lines
                .iter()
                .any(|x| x.contains(&format!("layout: {step} done in"))),
            "{step}: {lines:?}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
