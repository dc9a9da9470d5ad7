//! Convolutional models through lowering, folding and the check pass: the stage chain they
//! become, the folding's cycle target, and errors that name the layer or stage at fault.

use compiler::blocks::Block;
use compiler::ir::Stage;
use compiler::passes::folding::{FoldFile, FoldSpec, LayerFold};
use compiler::CompileError;
use flip::encoding::Encoding;
use flip::model::arch::{parse, shapes};
use flip::model::InputSpec;

fn model(arch: &str, width: usize, height: usize, encoding: Encoding) -> flip::model::Model {
    let input = InputSpec {
        width,
        height,
        channels: 1,
        pixel_bits: 8,
        encoding,
    };
    let specs = parse(arch, input.pixels()).unwrap();
    let classes = match specs.last() {
        Some(flip::model::arch::LayerSpec::Dense(c)) => *c,
        _ => panic!("{arch} ends in a dense layer"),
    };
    shapes(&specs, &input, classes).unwrap();
    flip::model::random::binary(7, input, &specs, classes)
}

fn auto(target: Option<u64>) -> FoldSpec {
    FoldSpec::auto(target)
}

#[test]
fn a_conv_net_becomes_window_mvtu_pool_and_collect_stages() {
    let m = model(
        "c8-p-16-10",
        8,
        8,
        Encoding::Thermometer(vec![64, 128, 192]),
    );
    let d = compiler::compile(&m, &auto(None)).unwrap();
    assert_eq!(
        d.stage_names(),
        [
            "input_adapter",
            "l1_swu",
            "l1_mvtu",
            "l2_pool",
            "l3_collect",
            "l3_mvtu",
            "l4_mvtu",
            "argmax"
        ]
    );
    assert_eq!(d.input().stream, Some(1));
    let mvtus: Vec<_> = d.mvtus().collect();
    // 6x6 output pixels of 8 channels from 3x3 windows of 3 thermometer levels.
    assert_eq!(
        (mvtus[0].vectors, mvtus[0].inputs, mvtus[0].outputs),
        (36, 27, 8)
    );
    assert_eq!((mvtus[1].vectors, mvtus[1].inputs), (1, 3 * 3 * 8));
    // Adjacent streams agree (the check pass holds this; here it is spelt out).
    for w in d.stages.windows(2) {
        assert_eq!(w[0].block().out_width(), w[1].block().in_width());
    }
    let report = compiler::report(&d);
    assert_eq!(report["layers"].as_array().unwrap().len(), d.stages.len());
    assert_eq!(report["layers"][2]["vectors"], 36);
}

#[test]
fn auto_folding_gives_each_window_its_share_of_the_target() {
    let m = model("c12k5-c20k1-10", 11, 9, Encoding::BitPlanes(2));
    for target in [200u64, 500, 2000] {
        let d = compiler::compile(&m, &auto(Some(target))).unwrap();
        for l in d.mvtus() {
            assert!(
                l.cycles() <= target,
                "target {target}: l{} takes {} cycles",
                l.index,
                l.cycles()
            );
            // The cheapest such folding: one lane fewer would miss the target.
            let per = target / l.vectors as u64;
            let f = compiler::passes::folding::auto_fold(l.outputs, l.inputs, l.planes, per);
            assert_eq!((l.pe, l.simd), (f.pe, f.simd));
        }
    }
}

#[test]
fn an_impossible_conv_folding_names_the_layer() {
    let m = model("c5-10", 7, 7, Encoding::Threshold(100));
    let fold = FoldFile::from(vec![
        LayerFold { pe: 5, simd: 4 },
        LayerFold { pe: 1, simd: 1 },
    ]);
    let e = compiler::compile(&m, &FoldSpec::Manual(fold)).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, CompileError::Folding(_)), "{msg}");
    assert!(
        msg.contains("layer 1 (convolution, 9-bit windows -> 5 channels): SIMD 4 does not divide"),
        "{msg}"
    );
    // Two values per input beat cannot come from a one-channel pixel stream.
    let fold = FoldFile {
        pixels_per_beat: 7,
        ..FoldFile::from(vec![LayerFold { pe: 1, simd: 1 }; 2])
    };
    let msg = compiler::compile(&m, &FoldSpec::Manual(fold))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("value(s) of an image pixel"), "{msg}");
}

#[test]
fn a_broken_stage_chain_names_both_stages() {
    let m = model("c4-p-6", 6, 6, Encoding::Threshold(9));
    let mut d = compiler::compile(&m, &auto(None)).unwrap();
    compiler::check::check(&d).unwrap();
    for s in &mut d.stages {
        if let Stage::Collect(c) = s {
            c.channels += 1;
        }
    }
    let msg = compiler::check::check(&d).unwrap_err().to_string();
    assert!(
        msg.contains("stage l2_pool hands on 4-bit beats but stage l3_collect takes 5-bit beats"),
        "{msg}"
    );
    // A pipeline must end in an argmax.
    d.stages.pop();
    let msg = compiler::check::check(&d).unwrap_err().to_string();
    assert!(msg.contains("does not end with an argmax"), "{msg}");
}
