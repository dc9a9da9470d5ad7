//! The generated Verilog is lint-clean under `verilator --lint-only -Wall`, synthesises under
//! Yosys, is deterministic, and impossible foldings are refused with a message naming the layer.

use std::path::{Path, PathBuf};

use compiler::passes::folding::{FoldFile, FoldSpec, LayerFold};
use compiler::random::{random_encoding, random_folding, random_model, Rng};
use flip::encoding::Encoding;

fn tool(name: &str) -> Option<PathBuf> {
    tools::for_test(&[name], tools::INSTALL)
}

fn build_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "flipchip-compiler-test-{}-{tag}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn designs() -> Vec<(String, compiler::ir::Design)> {
    let mut rng = Rng(42);
    let mut out = Vec::new();
    let encs = [
        Encoding::Threshold(0),
        Encoding::Threshold(100),
        Encoding::Thermometer(vec![3, 80, 200]),
        Encoding::BitPlanes(3),
        Encoding::BitPlanes(1),
    ];
    for (i, enc) in encs.iter().enumerate() {
        let widths: Vec<usize> = (0..rng.range(1, 3))
            .map(|_| rng.range(1, 12) as usize)
            .collect();
        let pixels = rng.range(1, 12) as usize;
        let model = random_model(&mut rng, pixels, 8, enc.clone(), &widths);
        for j in 0..3 {
            let fold = match j {
                0 => FoldSpec::auto(None),
                1 => FoldSpec::auto(Some(1)),
                _ => FoldSpec::Manual(random_folding(&mut rng, &model)),
            };
            let d = compiler::compile(&model, &fold).unwrap();
            out.push((format!("{i}-{j}"), d));
        }
    }
    let enc = random_encoding(&mut rng, 5);
    let model = random_model(&mut rng, 9, 5, enc, &[1]);
    out.push((
        "one-class".into(),
        compiler::compile(&model, &FoldSpec::auto(None)).unwrap(),
    ));
    // The shortest argmax scan: a single step, whose counter never moves.
    let model = random_model(&mut rng, 4, 5, Encoding::Threshold(9), &[2]);
    out.push((
        "two-class".into(),
        compiler::compile(&model, &FoldSpec::auto(Some(1))).unwrap(),
    ));
    // Layers that read tables, dense and convolutional.
    let mut rng = Rng(0x7AB);
    for i in 0..4 {
        let (model, fold) = compiler::random::random_tables(&mut rng);
        let d = compiler::compile(&model, &FoldSpec::Manual(fold)).unwrap();
        out.push((format!("tables-{i}"), d));
    }
    // Tables in pairs, one memory read through two ports, some pairs padding a shorter group.
    let mut rng = Rng(0xDA3);
    for i in 0..2 {
        let (model, fold) = compiler::random::random_paired_tables(&mut rng);
        let d = compiler::compile(&model, &FoldSpec::Manual(fold)).unwrap();
        out.push((format!("paired-tables-{i}"), d));
    }
    // Layers with frames per weight read, the last with frames wider than one slice.
    let mut rng = Rng(0x33A3);
    let mut mmv = 0;
    while mmv < 4 {
        let (model, fold) = compiler::random::random_mmv(&mut rng);
        let d = compiler::compile(&model, &FoldSpec::Manual(fold)).unwrap();
        if mmv == 3 && !d.mvtus().any(|l| l.frame_slices() > 1) {
            continue;
        }
        out.push((format!("mmv-{mmv}"), d));
        mmv += 1;
    }
    out
}

fn write(tag: &str, d: &compiler::ir::Design) -> (PathBuf, Vec<String>) {
    let dir = build_dir(tag);
    compiler::write_build(d, &dir).unwrap();
    (dir, d.file_names())
}

fn run(run: tools::Run, dir: &Path) {
    let text = run
        .current_dir(dir)
        .run()
        .unwrap_or_else(|e| panic!("{e}"))
        .text();
    assert!(!text.contains("%Warning"), "{}:\n{text}", dir.display());
}

#[test]
fn verilator_lint_is_clean() {
    let Some(verilator) = tool("verilator") else {
        return;
    };
    for (tag, d) in designs() {
        let (dir, files) = write(&format!("lint-{tag}"), &d);
        run(
            tools::Run::new("lint", &verilator, "lint.log")
                .args(["--lint-only", "-Wall", "--top-module", &d.top])
                .args(&files),
            &dir,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn yosys_synthesises() {
    let Some(yosys) = tool("yosys") else {
        return;
    };
    for (tag, d) in designs().into_iter().step_by(4) {
        let (dir, files) = write(&format!("yosys-{tag}"), &d);
        let script = format!(
            "read_verilog {}; synth -top {}; check -assert",
            files.join(" "),
            d.top
        );
        run(
            tools::Run::new("synth", &yosys, "yosys.log").args(["-q", "-p", &script]),
            &dir,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn output_is_deterministic() {
    let (_, a) = designs().remove(2);
    let (_, b) = designs().remove(2);
    assert_eq!(compiler::verilog::emit(&a), compiler::verilog::emit(&b));
    assert_eq!(compiler::report(&a), compiler::report(&b));
}

#[test]
fn impossible_foldings_name_the_layer() {
    let mut rng = Rng(5);
    let model = random_model(&mut rng, 6, 8, Encoding::Threshold(9), &[10, 3]);
    let bad = |folds: Vec<LayerFold>| {
        compiler::compile(&model, &FoldSpec::Manual(folds.into()))
            .expect_err("refused")
            .to_string()
    };
    let f = |pe, simd| LayerFold { pe, simd };
    // The last layer's classes get no idle neurons (a hidden layer's may, see
    // `passes::padding`).
    let e = bad(vec![f(1, 1), f(2, 1)]);
    assert!(
        e.contains("layer 2") && e.contains("PE 2") && e.contains("does not divide"),
        "{e}"
    );
    // Nor does the first layer's SIMD, over pixels.
    let e = bad(vec![f(1, 4), f(1, 1)]);
    assert!(
        e.contains("layer 1") && e.contains("SIMD 4") && e.contains("does not divide"),
        "{e}"
    );
    let e = bad(vec![f(1, 1), f(1, 0)]);
    assert!(e.contains("layer 2") && e.contains("SIMD 0"), "{e}");
    let e = bad(vec![f(1, 1), f(6, 1)]);
    assert!(e.contains("layer 2") && e.contains("larger"), "{e}");
    let e = bad(vec![f(1, 1)]);
    assert!(e.contains("fold file has 1 layers"), "{e}");
    // 6 pixels cannot be sent 4 to a beat, nor 9.
    for k in [4, 9, 0] {
        let file = FoldFile {
            pixels_per_beat: k,
            input: Default::default(),
            layers: vec![f(1, 1), f(1, 1)],
            load_weights: Vec::new(),
            fifos: None,
            stage_levels: None,
            read_registers: None,
            activation_stage: None,
            input_ram: None,
            input_ram_layers: None,
            table_inputs: Vec::new(),
            dual_port_tables: None,
            block_rom_layers: Vec::new(),
            mmv: Vec::new(),
        };
        let e = compiler::compile(&model, &FoldSpec::Manual(file))
            .expect_err("refused")
            .to_string();
        assert!(e.contains(&format!("pixels_per_beat {k}")), "{e}");
    }
}

#[test]
fn mnist_sized_model_compiles_quickly() {
    let mut rng = Rng(11);
    let model = random_model(
        &mut rng,
        784,
        8,
        Encoding::BitPlanes(4),
        &[1024, 1024, 1024, 10],
    );
    let start = std::time::Instant::now();
    let d = compiler::compile(&model, &FoldSpec::auto(None)).unwrap();
    let dir = build_dir("mnist");
    compiler::write_build(&d, &dir).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    println!("784-1024-1024-1024-10: compiled and written in {seconds:.3} s");
    assert!(seconds < 20.0, "{seconds} s");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["total"]["cycles_per_frame"], 784);
    for l in report["layers"].as_array().unwrap() {
        for k in [
            "cycles_per_frame",
            "latency_cycles",
            "est_luts",
            "est_ffs",
            "memory_bits",
        ] {
            assert!(l[k].is_u64(), "{k} in {l}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
