//! `flipchip dse --device asic-osu018`: the front costed in cell area, one design synthesised
//! to OSU018 cells and its area held against the estimate; the errors for bad input.

mod common;

use common::*;

fn small_model(dir: &std::path::Path) -> std::path::PathBuf {
    let model = dir.join("small.fcm");
    flipchip_ok(&[
        "train",
        "--arch",
        "64-8-10",
        "--epochs",
        "1",
        "--out",
        s(&model),
        "--quiet",
    ]);
    model
}

#[test]
fn the_asic_front_is_costed_in_area_and_one_design_is_synthesised() {
    for tool in ["yosys", "sta"] {
        if tools::for_test(&[tool], asic::INSTALL_ASIC).is_none() {
            return;
        }
    }
    if let Err(e) = asic::Tech::load("osu018") {
        tools::tool_missing(&e.to_string());
        return;
    }
    let dir = scratch("dse-asic");
    let model = small_model(&dir);
    let out = dir.join("dse");
    let run = flipchip_ok(&[
        "dse",
        s(&model),
        "--device",
        "asic-osu018",
        "--synth",
        "1",
        "--out",
        s(&out),
        "--json",
    ]);
    let v = last_json(&run);
    assert_eq!(v["device"], "asic-osu018");
    assert!(v["best"]["area_um2"].as_f64().unwrap() > 0.0, "{v}");
    let synth = v["synth"].as_array().unwrap();
    assert_eq!(synth.len(), 1, "{v}");
    let r = &synth[0];
    let (area, est) = (
        r["area_um2"].as_f64().unwrap(),
        r["est_area_um2"].as_f64().unwrap(),
    );
    assert!(r["cells"].as_u64().unwrap() > 100, "{r}");
    assert!(area > 0.0 && est > 0.0, "{r}");
    let err = r["area_error"].as_f64().unwrap();
    assert!((err - (est - area) / area).abs() < 1e-9, "{r}");
    // The fastest front design of a model outside the calibration set: a gross error means
    // the estimate or its coefficients went wrong.
    assert!(
        err.abs() < 0.3,
        "estimate {est:.0} um^2 vs {area:.0} synthesised"
    );
    assert!(r["fmax_mhz"].as_f64().unwrap() > 0.0, "{r}");
    // The synthesised design is the front's fastest, with the area the exploration gave it.
    let dse: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dse.json")).unwrap()).unwrap();
    let id = r["id"].as_u64().unwrap() as usize;
    assert_eq!(dse["front"][0], id);
    assert_eq!(dse["candidates"][id]["area_um2"].as_f64().unwrap(), est);
    assert_eq!(dse["synth"][0]["area_um2"].as_f64().unwrap(), area);
    let csv = std::fs::read_to_string(out.join("dse.csv")).unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",tech,area_um2,frames_per_second_per_mm2"),
        "{csv}"
    );
    assert!(csv.lines().nth(1).unwrap().contains(",osu018,"), "{csv}");
    let svg = std::fs::read_to_string(out.join("dse.svg")).unwrap();
    assert!(svg.contains("estimated cell area, um^2"));
    // The directory is one `flipchip calibrate` reads.
    let synth_dir = r["dir"].as_str().unwrap();
    let cal = flipchip_ok(&["calibrate", "--family", "asic-osu018", synth_dir, "--json"]);
    let c = last_json(&cal);
    assert_eq!(c["rows"][0]["area_um2"].as_f64().unwrap(), area);
    assert_eq!(c["rows"][0]["current_um2"].as_f64().unwrap(), est);
}

#[test]
fn asic_devices_are_listed_and_their_options_checked() {
    let dir = scratch("dse-asic-errors");
    let model = small_model(&dir);
    let out = dir.join("dse");
    let e = stderr(&flipchip(&["dse", s(&model), "--device", "asic-sky130"]));
    assert!(
        e.contains("asic-sky130") && e.contains("asic-osu018") && e.contains("asic-osu050"),
        "{e}"
    );
    let e = stderr(&flipchip(&[
        "dse",
        s(&model),
        "--device",
        "up5k",
        "--max-area",
        "1e6",
    ]));
    assert!(e.contains("--max-area is for ASIC devices"), "{e}");
    let e = stderr(&flipchip(&[
        "dse",
        s(&model),
        "--device",
        "asic-osu018",
        "--max-area",
        "0",
    ]));
    assert!(e.contains("--max-area must be a positive"), "{e}");
    // An area limit below every candidate: nothing fits, and the front says so.
    let run = flipchip_ok(&[
        "dse",
        s(&model),
        "--device",
        "asic-osu035",
        "--max-area",
        "10",
        "--out",
        s(&out),
        "--json",
    ]);
    assert!(stderr(&run).contains("no candidate fits asic-osu035"));
    assert!(last_json(&run)["best"].is_null());
    let dse: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dse.json")).unwrap()).unwrap();
    let cands = dse["candidates"].as_array().unwrap();
    assert!(cands
        .iter()
        .all(|c| c["fits"] == false && c["area_um2"].as_f64().unwrap() > 10.0));
    assert!(std::fs::read_to_string(out.join("dse.svg"))
        .unwrap()
        .contains("10 um^2"));
}
