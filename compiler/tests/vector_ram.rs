//! The vector RAM pass: which later layers keep their input vector in RAM, how their producers
//! hand results on, what it costs, what the fold file records and what the DSE predicts.

use compiler::blocks::{Block, Family};
use compiler::dse;
use compiler::ir::Design;
use compiler::passes::folding::{FoldFile, FoldSpec, LayerFold};
use compiler::passes::vector_ram::MIN_VECTOR_RAM_BITS;
use compiler::random::{random_model, random_vector_ram, Rng};
use flip::encoding::Encoding;
use flip::model::Model;

/// The Fashion-MNIST shape, 784-256-256-10 on 4 bit planes.
fn fashion() -> Model {
    random_model(
        &mut Rng(14),
        784,
        8,
        Encoding::BitPlanes(4),
        &[256, 256, 10],
    )
}

/// The ULX3S auto design's folding `64x16 1x128 1x4`, with `layers` forced if given.
fn fold(layers: Option<Vec<usize>>) -> FoldSpec {
    FoldSpec::Manual(FoldFile {
        input_ram_layers: layers,
        ..FoldFile::from(vec![
            LayerFold { pe: 64, simd: 16 },
            LayerFold { pe: 1, simd: 128 },
            LayerFold { pe: 1, simd: 4 },
        ])
    })
}

/// `(input_ram, out_chunk)` per layer.
fn buffers(d: &Design) -> Vec<(bool, usize)> {
    d.mvtus().map(|l| (l.input_ram(), l.out_chunk)).collect()
}

#[test]
fn wide_vectors_go_to_ram_fed_in_the_consumers_chunks() {
    const { assert!(256 >= MIN_VECTOR_RAM_BITS) };
    let d = compiler::compile(&fashion(), &fold(None)).unwrap();
    // Layer 1 hands its 256 bits on in two chunks of layer 2's 128, layer 2 in 64 of 4.
    assert_eq!(buffers(&d), [(true, 128), (true, 4), (true, 0)]);
    let l: Vec<_> = d.mvtus().collect();
    assert_eq!(l[0].out_width(), 128);
    assert_eq!(l[1].in_width(), 128);
    assert_eq!(l[1].out_width(), 4);
    assert_eq!(l[2].in_width(), 4);
    let file = compiler::fold_file(&d);
    assert_eq!(file.input_ram_layers, Some(vec![2, 3]));
    // The file rebuilds the same design.
    let again = compiler::compile(&fashion(), &FoldSpec::Manual(file)).unwrap();
    assert_eq!(again, d);
    // The fold file's JSON keeps the key.
    let json = serde_json::to_string(&compiler::fold_file(&d)).unwrap();
    assert!(json.contains("\"input_ram_layers\":[2,3]"), "{json}");
}

#[test]
fn registers_when_asked_and_the_estimate_counts_the_difference() {
    let ram = compiler::compile(&fashion(), &fold(None)).unwrap();
    let regs = compiler::compile(&fashion(), &fold(Some(vec![]))).unwrap();
    assert_eq!(buffers(&regs), [(true, 0), (false, 0), (false, 0)]);
    assert_eq!(compiler::fold_file(&regs).input_ram_layers, Some(vec![]));
    let (er, eg) = (
        ram.estimate_for(Family::Ecp5),
        regs.estimate_for(Family::Ecp5),
    );
    // Two 256-bit rotating registers leave the flip-flops; the vectors take RAM bits.
    assert!(er.ffs + 400 < eg.ffs, "{} vs {} FFs", er.ffs, eg.ffs);
    assert!(er.memory_bits > eg.memory_bits);
    // Only layer 3 in RAM: layer 1 hands on its whole result, layer 2 in chunks.
    let one = compiler::compile(&fashion(), &fold(Some(vec![3]))).unwrap();
    assert_eq!(buffers(&one), [(true, 0), (false, 4), (true, 0)]);
    // Cycles per frame do not change; latency grows by the chunks' fill.
    assert_eq!(ram.cycles_per_frame(), regs.cycles_per_frame());
    assert_eq!(
        ram.latency_cycles(),
        regs.latency_cycles() + (256 / 128 - 1) + (256 / 4 - 1)
    );
}

#[test]
fn impossible_choices_are_errors_that_say_why() {
    let err = |layers: Vec<usize>, f: Vec<LayerFold>| {
        let spec = FoldSpec::Manual(FoldFile {
            input_ram_layers: Some(layers),
            ..FoldFile::from(f)
        });
        compiler::compile(&fashion(), &spec)
            .expect_err("refused")
            .to_string()
    };
    let auto = vec![
        LayerFold { pe: 64, simd: 16 },
        LayerFold { pe: 1, simd: 128 },
        LayerFold { pe: 1, simd: 4 },
    ];
    let e = err(vec![1], auto.clone());
    assert!(
        e.contains("input_ram_layers") && e.contains("layer 1") && e.contains("2, 3"),
        "{e}"
    );
    let e = err(vec![7], auto);
    assert!(e.contains("layer 7"), "{e}");
    // Layer 2 reading its whole input in one step has no chunks to buffer.
    let e = err(
        vec![2],
        vec![
            LayerFold { pe: 64, simd: 16 },
            LayerFold { pe: 1, simd: 256 },
            LayerFold { pe: 1, simd: 4 },
        ],
    );
    assert!(
        e.contains("input_ram_layers") && e.contains("layer 2") && e.contains("SIMD 256"),
        "{e}"
    );
}

#[test]
fn narrow_vectors_stay_in_registers_unless_asked() {
    let model = random_model(&mut Rng(2), 20, 8, Encoding::Threshold(9), &[32, 16, 4]);
    let f = || {
        FoldFile::from(vec![
            LayerFold { pe: 4, simd: 20 },
            LayerFold { pe: 2, simd: 8 },
            LayerFold { pe: 1, simd: 4 },
        ])
    };
    let d = compiler::compile(&model, &FoldSpec::Manual(f())).unwrap();
    assert_eq!(buffers(&d), [(false, 0), (false, 0), (false, 0)]);
    assert_eq!(compiler::fold_file(&d).input_ram_layers, Some(vec![]));
    let forced = FoldFile {
        input_ram_layers: Some(vec![2, 3]),
        ..f()
    };
    let d = compiler::compile(&model, &FoldSpec::Manual(forced)).unwrap();
    assert_eq!(buffers(&d), [(false, 8), (true, 4), (true, 0)]);
}

/// The random designs of the RTL tests cover what the hardware has to get right: one-bit and
/// wider chunks, producers with an output queue behind a chunked output, one and two read
/// registers.
#[test]
fn random_designs_cover_queues_chunk_widths_and_read_registers() {
    let mut rng = Rng(0x7EC);
    let (mut queued, mut one_bit, mut wide, mut rr2) = (0, 0, 0, 0);
    for _ in 0..40 {
        let (model, fold) = random_vector_ram(&mut rng);
        let d = compiler::compile(&model, &FoldSpec::Manual(fold)).unwrap();
        assert!(d.mvtus().any(|l| l.index > 1 && l.input_ram()));
        for l in d.mvtus().filter(|l| l.out_chunk > 0) {
            queued += usize::from(l.capacity() > 1);
            one_bit += usize::from(l.out_chunk == 1);
            wide += usize::from(l.out_chunk > 1);
        }
        rr2 += usize::from(d.mvtus().any(|l| l.input_ram() && l.read_registers == 2));
    }
    assert!(
        queued > 3 && one_bit > 3 && wide > 3 && rr2 > 3,
        "{queued} queued, {one_bit} one-bit, {wide} wider, {rr2} with two read registers"
    );
}

/// The exploration costs every candidate with the vector RAMs the pass would choose for it:
/// same choice, same cycles, latency and estimate as the compiled design.
#[test]
fn the_exploration_costs_the_vector_rams_the_pass_chooses() {
    let model = fashion();
    let device = dse::device("ecp5-85k").unwrap();
    let x = dse::explore(&model, &device).unwrap();
    let mut with_ram = 0;
    for (i, c) in x.candidates.iter().enumerate() {
        let mut free = c.fold_file();
        free.input_ram_layers = None;
        let chosen = compiler::compile(&model, &FoldSpec::Manual(free)).unwrap();
        assert_eq!(
            compiler::fold_file(&chosen).input_ram_layers,
            c.input_ram_layers,
            "{}",
            c.fold_label()
        );
        with_ram += usize::from(c.input_ram_layers.as_ref().is_some_and(|l| !l.is_empty()));
        let d = x.design(&model, i).unwrap();
        assert_eq!(
            d.cycles_per_frame(),
            c.cycles_per_frame,
            "{}",
            c.fold_label()
        );
        assert_eq!(d.latency_cycles(), c.latency_cycles, "{}", c.fold_label());
        assert_eq!(
            d.estimate_for(device.family),
            c.estimate,
            "{}",
            c.fold_label()
        );
    }
    assert!(with_ram > 10, "{with_ram} candidates with a vector RAM");
}
