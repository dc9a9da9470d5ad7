//! `flipchip dse --pad`: hidden layers tried wider with idle neurons; a padded front design
//! compiles from the unpadded model at its predicted cycles and computes the model's scores.

mod common;

use common::*;

#[test]
fn padded_front_designs_compile_and_verify_against_the_unpadded_model() {
    let dir = scratch("dse-pad");
    let model = dir.join("digits.fcm");
    flipchip_ok(&[
        "train",
        "--arch",
        "64-20-14-10",
        "--epochs",
        "2",
        "--out",
        s(&model),
        "--quiet",
    ]);
    let out = dir.join("dse");
    let run = flipchip_ok(&[
        "dse",
        s(&model),
        "--device",
        "up5k",
        "--pad",
        "--out",
        s(&out),
        "--json",
    ]);
    let summary = last_json(&run);
    // The front's cycles and latency, simulated, are what the exploration predicted.
    assert_eq!(summary["sim_agrees"], true, "{summary}");
    let text = std::fs::read_to_string(out.join("dse.json")).unwrap();
    let x: serde_json::Value = serde_json::from_str(&text).unwrap();
    let front: Vec<&serde_json::Value> = x["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["origin"] == "padded" && c["pareto"] == true)
        .collect();
    assert!(!front.is_empty(), "no padded design on the front");
    // The fastest of them, compiled from the model as it is, and checked against it.
    let c = front[0];
    let fold = dir.join("fold.json");
    std::fs::write(&fold, c["fold"].to_string()).unwrap();
    let build = dir.join("build");
    let run = flipchip_ok(&[
        "compile",
        s(&model),
        "--fold",
        s(&fold),
        "--out",
        s(&build),
        "--json",
    ]);
    assert!(stderr(&run).contains("idle neuron"), "{}", stderr(&run));
    let compiled = last_json(&run);
    let layers = compiled["layers"].as_array().unwrap();
    assert!(
        layers.iter().any(|l| l["idle_outputs"].as_u64() > Some(0)),
        "{compiled}"
    );
    assert_eq!(
        compiled["total"]["cycles_per_frame"], c["cycles_per_frame"],
        "{compiled}"
    );
    let v = last_json(&flipchip_ok(&[
        "verify",
        "--build",
        s(&build),
        "--frames",
        "100",
        "--rtl",
        "none",
        "--json",
    ]));
    assert_eq!(v["mismatches"], 0, "{v}");
    assert_eq!(v["frames"], 100, "{v}");
}
