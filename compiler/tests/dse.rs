//! Design-space exploration: only legal foldings, a non-dominated front that holds the fastest
//! fitting design, the files, and (with Yosys installed) estimates within 15% of synthesis.

mod common;

use std::time::Instant;

use compiler::blocks::Family;
use compiler::dse::{self, Exploration};
use compiler::passes::folding::FoldSpec;
use compiler::random::{random_model, Rng};
use flip::encoding::Encoding;
use flip::model::Model;

fn fashion_shape() -> Model {
    random_model(
        &mut Rng(11),
        784,
        8,
        Encoding::Threshold(128),
        &[256, 256, 10],
    )
}

fn assert_legal(model: &Model, x: &Exploration) {
    let d = compiler::lower(model).unwrap();
    for c in &x.candidates {
        assert_eq!(c.folds.len(), d.mvtus().count());
        for (f, l) in c.folds.iter().zip(d.mvtus()) {
            assert!(
                f.pe >= 1 && l.outputs % f.pe == 0,
                "PE {} of {}",
                f.pe,
                l.outputs
            );
            assert!(
                f.simd >= 1 && l.inputs % f.simd == 0,
                "SIMD {} of {}",
                f.simd,
                l.inputs
            );
        }
    }
    // No duplicates.
    let mut k: Vec<String> = x.candidates.iter().map(|c| c.fold_label()).collect();
    k.sort();
    k.dedup();
    assert_eq!(k.len(), x.candidates.len());
}

fn dominates(a: &dse::Candidate, b: &dse::Candidate) -> bool {
    a.frames_per_second >= b.frames_per_second
        && a.cost() <= b.cost()
        && (a.frames_per_second > b.frames_per_second || a.cost() < b.cost())
}

fn assert_front(x: &Exploration) {
    assert!(!x.front.is_empty());
    for &i in &x.front {
        assert!(x.candidates[i].pareto);
        for c in &x.candidates {
            assert!(
                !dominates(c, &x.candidates[i]),
                "front member {i} is dominated"
            );
        }
    }
    for (i, c) in x.candidates.iter().enumerate() {
        if !c.pareto {
            assert!(
                x.front.iter().any(|&f| {
                    let f = &x.candidates[f];
                    dominates(f, c)
                        || (f.frames_per_second == c.frames_per_second && f.cost() == c.cost())
                }),
                "candidate {i} is off the front but nothing on it beats it"
            );
        }
    }
    // Fastest first.
    for w in x.front.windows(2) {
        assert!(x.candidates[w[0]].frames_per_second >= x.candidates[w[1]].frames_per_second);
    }
}

/// Candidate `i` of `x` compiled from `model`: the cycles and estimate it was costed at.
fn compiles_as_costed(model: &Model, x: &Exploration, i: usize) -> compiler::ir::Design {
    let c = &x.candidates[i];
    let d = x
        .design(model, i)
        .unwrap_or_else(|e| panic!("candidate {i} ({}): {e}", c.fold_label()));
    assert_eq!(
        d.cycles_per_frame(),
        c.cycles_per_frame,
        "{}",
        c.fold_label()
    );
    assert_eq!(
        d.estimate_for(x.device.family),
        c.estimate,
        "{}",
        c.fold_label()
    );
    d
}

#[test]
fn fashion_shape_on_ecp5_85k() {
    let model = fashion_shape();
    let device = dse::device("ecp5-85k").unwrap();
    let start = Instant::now();
    let x = dse::explore(&model, &device).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    assert!(seconds < 5.0, "exploration took {seconds:.1} s");
    assert!(x.candidates.len() > 50);
    assert_legal(&model, &x);
    assert_front(&x);
    // The input is no longer the limit: the exploration goes down to the floor of 56 pixels
    // per beat (14 cycles per frame; 64 does not divide 784).
    assert!(x.candidates.iter().any(|c| c.pixels_per_beat > 8));
    let fastest = x.candidates.iter().map(|c| c.cycles_per_frame).min();
    assert_eq!(fastest, Some(14));
    assert!(x
        .candidates
        .iter()
        .all(|c| c.pixels_per_beat <= 56 && 784 % c.pixels_per_beat == 0));
    // The best fitting design takes several pixels per cycle, and is on the front.
    let best = x.best().expect("something fits an ECP5-85");
    let c = &x.candidates[best];
    assert!(
        (14..784).contains(&c.cycles_per_frame) && c.pixels_per_beat > 1,
        "{} at {} cycles",
        c.fold_label(),
        c.cycles_per_frame
    );
    // Nothing that fits is as fast with fewer LUTs. (Designs that do not fit may be: the same
    // folding reading each weight word for fewer frames takes fewer LUTs and more block RAMs
    // than have been routed.)
    for (i, o) in x.candidates.iter().enumerate() {
        assert!(
            !(o.fits && dominates(o, c)),
            "{i} ({}) dominates the best",
            o.fold_label()
        );
    }
    // The fastest front designs no longer fit (beyond 8 pixels per beat they grow large).
    assert!(x
        .fitting_front()
        .iter()
        .all(|&i| x.candidates[i].frames_per_second <= c.frames_per_second));
    // Same input, same output.
    assert_eq!(dse::explore(&model, &device).unwrap(), x);
}

/// The SFC topology on the ECP5-85F: each balanced folding also comes split for tables that
/// pair in two-port block RAMs, and costed with them.
#[test]
fn table_splits_pair_their_tables_on_ecp5() {
    let model = random_model(
        &mut Rng(12),
        784,
        1,
        Encoding::Threshold(1),
        &[256, 256, 256, 10],
    );
    // Without the device's routed sizes, so that a random model's table variants are kept
    // whatever their estimates (a table variant that does not fit is dropped).
    let mut device = dse::device("ecp5-85k").unwrap();
    device.routed.clear();
    let x = dse::explore(&model, &device).unwrap();
    assert_legal(&model, &x);
    let find = |label: &str| x.candidates.iter().find(|c| c.fold_label() == label);
    // At 64 cycles the balanced folding gives layer 1 4 PEs x 784 lanes, the table split 8 x 392.
    let split = find("14px 8x392 8x128 8x128 5x8").expect("the table split");
    assert_eq!(split.origin, dse::Origin::TableSplit);
    let tables = find("14px 8x392t3 8x128t3 8x128t3 5x8").expect("its tables in layers 1-3");
    assert!(tables.dual_port_tables);
    // 131 + 43 + 43 tables, two to a block: 66 + 22 + 22 block RAMs, and one of layer 4's
    // weights; 129 MHz, measured on such a design.
    assert_eq!(tables.estimate.brams, 111);
    assert_eq!(tables.clock_mhz, 129.0);
    assert!(
        tables.estimate.luts < split.estimate.luts * 2 / 3,
        "{} against {}",
        tables.estimate.luts,
        split.estimate.luts
    );
    // The folding pass's own split of layer 1 takes a block RAM per table.
    let plain = find("14px 4x784t3 4x256 4x256 5x8");
    assert!(plain.is_none_or(|c| c.estimate.brams > 111));
}

#[test]
fn explored_designs_report_the_device_family_estimates() {
    let model = random_model(&mut Rng(5), 64, 8, Encoding::Threshold(128), &[64, 10]);
    let device = dse::device("ecp5-85k").unwrap();
    let x = dse::explore(&model, &device).unwrap();
    let i = x.fitting_front()[0];
    let d = x.design(&model, i).unwrap();
    assert_eq!(d.family, Family::Ecp5);
    let ecp5 = d.estimate_for(Family::Ecp5).luts;
    assert_ne!(ecp5, d.estimate_for(Family::Ice40).luts);
    assert_eq!(compiler::report(&d)["total"]["est_luts"], ecp5);
    assert_eq!(x.candidates[i].estimate.luts, ecp5);
}

#[test]
fn weights_beyond_the_up5k_block_rams_go_to_spram() {
    // 784-128-128-10: 120 kbit of weights, more than the UP5K's EBR hold once laid out.
    let mut model = random_model(
        &mut Rng(12),
        784,
        8,
        Encoding::Threshold(128),
        &[128, 128, 10],
    );
    // Small score offsets, as trained models have (random ones widen the argmax's registers
    // past the UP5K's flip-flop budget).
    if let Some(flip::model::Layer::Binary(l)) = model.layers.last_mut() {
        if let flip::model::Activation::Scores { bias, scale } = &mut l.activation {
            bias.iter_mut().for_each(|b| *b %= 8);
            scale.clear();
        }
    }
    let device = dse::device("up5k").unwrap();
    let x = dse::explore(&model, &device).unwrap();
    // The fastest fitting design that needs its SPRAMs.
    let c = x
        .candidates
        .iter()
        .filter(|c| c.fits && !c.load_weights.is_empty())
        .max_by(|a, b| a.frames_per_second.total_cmp(&b.frames_per_second))
        .expect("designs fit an UP5K with weights in SPRAM");
    assert!(c.estimate.sprams >= 1 && c.estimate.sprams <= device.sprams);
    assert!(c.estimate.brams <= device.brams);
    // Without its SPRAMs the same folding would not fit.
    let mut roms = c.fold_file();
    roms.load_weights.clear();
    let plain = compiler::compile(&model, &FoldSpec::Manual(roms.clone())).unwrap();
    let plain_brams = plain.estimate_for(device.family).brams;
    assert!(plain_brams > device.brams, "{plain_brams} block RAMs");
    // The memory pass, placing for the device, makes the choice the exploration costed.
    let placed =
        compiler::compile_with(&model, &FoldSpec::Manual(roms), &device.placement()).unwrap();
    assert_eq!(compiler::fold_file(&placed).load_weights, c.load_weights);
    assert_eq!(placed.estimate_for(device.family), c.estimate);
}

#[test]
fn small_models_on_every_device() {
    let mut rng = Rng(3);
    for device in dse::devices() {
        for enc in [Encoding::Threshold(90), Encoding::BitPlanes(3)] {
            let pixels = rng.range(4, 30) as usize;
            let widths = [rng.range(2, 40) as usize, rng.range(2, 12) as usize];
            let model = random_model(&mut rng, pixels, 8, enc, &widths);
            let x = dse::explore(&model, &device).unwrap();
            assert_legal(&model, &x);
            assert_front(&x);
            // Every candidate is costed like the compiled design (cycles, latency, estimate).
            for i in 0..x.candidates.len() {
                let d = x.design(&model, i).unwrap();
                let c = &x.candidates[i];
                assert_eq!(d.cycles_per_frame(), c.cycles_per_frame);
                assert_eq!(d.latency_cycles(), c.latency_cycles);
                assert_eq!(d.estimate_for(device.family), c.estimate);
            }
        }
    }
}

#[test]
fn files_are_written() {
    let model = random_model(&mut Rng(5), 16, 8, Encoding::Threshold(100), &[24, 6]);
    let x = dse::explore(&model, &dse::device("up5k").unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("flipchip-dse-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let written = dse::write(&x, &dir, Some(&serde_json::json!({"note": 1}))).unwrap();
    assert_eq!(written.len(), 3);
    let csv = std::fs::read_to_string(dir.join("dse.csv")).unwrap();
    assert_eq!(csv.lines().count(), x.candidates.len() + 1);
    assert!(csv.starts_with(dse::CSV_HEADER));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dse.json")).unwrap()).unwrap();
    assert_eq!(
        j["candidates"].as_array().unwrap().len(),
        x.candidates.len()
    );
    assert_eq!(j["front"].as_array().unwrap().len(), x.front.len());
    assert_eq!(j["note"], 1);
    let svg = std::fs::read_to_string(dir.join("dse.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("frames/s") && svg.contains("LUT4s"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn estimates_within_15_percent_of_yosys() {
    // Two small front designs of a 64-pixel, 64-32-10 model: one folded, one fast.
    let model = random_model(&mut Rng(21), 64, 8, Encoding::Threshold(128), &[64, 10]);
    let device = dse::device("up5k").unwrap();
    let x = dse::explore(&model, &device).unwrap();
    let f = x.fitting_front();
    for (tag, &i) in [("fast", &f[0]), ("folded", &f[f.len() / 2])] {
        let d = x.design(&model, i).unwrap();
        let Some((y, _)) = common::yosys_counts(&d, device.family, tag) else {
            return;
        };
        let e = x.candidates[i].estimate.luts;
        let err = (e as f64 - y as f64) / y as f64;
        println!(
            "{tag} {}: estimate {e}, yosys {y} ({:+.1}%)",
            x.candidates[i].fold_label(),
            100.0 * err
        );
        assert!(err.abs() <= 0.15, "{tag}: estimate {e} vs yosys {y}");
    }
}

#[test]
fn every_candidate_of_a_conv_net_compiles_as_costed() {
    // Small images: foldings fast enough to want more than one value per input beat, which a
    // streaming first layer cannot take beyond its pixel's channels.
    let mut rng = Rng(5);
    for _ in 0..24 {
        let model = compiler::random::random_conv_model(&mut rng);
        let device = dse::device("ecp5-85k").expect("a known device");
        let x = dse::explore(&model, &device).unwrap();
        assert_legal(&model, &x);
        assert_front(&x);
        for i in 0..x.candidates.len() {
            compiles_as_costed(&model, &x, i);
        }
    }
}

#[test]
fn a_conv_net_candidate_loads_the_layers_it_names() {
    // A dense layer of 392 x 512 weights after a convolution and a pool: more than the UP5K's
    // block RAMs hold, so some candidates load it into SPRAM. The CNN's MVTUs are numbered
    // among its pool and collect units (l1, l3, l4), and the candidates name them so.
    let input = flip::model::InputSpec {
        width: 16,
        height: 16,
        channels: 1,
        pixel_bits: 8,
        encoding: Encoding::BitPlanes(1),
    };
    let specs = flip::model::arch::parse("c8-p-512-10", input.pixels()).unwrap();
    let model = flip::model::random::binary(3, input, &specs, 10);
    let device = dse::device("up5k").unwrap();
    let x = dse::explore(&model, &device).unwrap();
    let loading: Vec<usize> = (0..x.candidates.len())
        .filter(|&i| !x.candidates[i].load_weights.is_empty())
        .collect();
    assert!(!loading.is_empty(), "no candidate loads its weights");
    for &i in loading.iter().take(20) {
        let c = &x.candidates[i];
        let d = x
            .design(&model, i)
            .unwrap_or_else(|e| panic!("candidate {i} ({}): {e}", c.fold_label()));
        let loaded: Vec<usize> = d
            .mvtus()
            .filter(|l| l.is_loaded())
            .map(|l| l.index)
            .collect();
        assert_eq!(loaded, c.load_weights, "{}", c.fold_label());
        // The 512-neuron layer: l3 (l2 is the pool), the second MVTU.
        assert_eq!(c.load_weights, vec![3], "{}", c.fold_label());
        assert_eq!(
            d.estimate_for(device.family),
            c.estimate,
            "{}",
            c.fold_label()
        );
    }
}

#[test]
fn wide_deep_logic_roms_get_a_block_ram_variant_on_the_ecp5() {
    // Layer 3's 576 inputs (3x3x64) folded 2x576 make 32 words of 1,152 bits: a ROM Yosys
    // leaves in logic and the exploration also tries in block RAM.
    let input = flip::model::InputSpec {
        width: 10,
        height: 10,
        channels: 1,
        pixel_bits: 8,
        encoding: Encoding::BitPlanes(1),
    };
    let specs = flip::model::arch::parse("c64-c64-p-10", input.pixels()).unwrap();
    let model = flip::model::random::binary(4, input, &specs, 10);
    let device = dse::device("ecp5-85k").unwrap();
    let x = dse::explore(&model, &device).unwrap();
    assert_legal(&model, &x);
    let label = |c: &dse::Candidate| c.fold_label();
    let mut variants = 0;
    for (i, c) in x.candidates.iter().enumerate() {
        let d = x.design(&model, i).unwrap();
        let wide = dse::wide_logic_roms(d.mvtus(), device.family);
        if c.block_rom_layers.is_empty() {
            if wide == 0 {
                continue;
            }
            // Every such candidate has its twin with those ROMs in block RAM, which the
            // clock model does not hold to the logic ROMs' clock.
            let twin = x
                .candidates
                .iter()
                .find(|t| {
                    !t.block_rom_layers.is_empty()
                        && t.folds == c.folds
                        && t.pixels_per_beat == c.pixels_per_beat
                })
                .unwrap_or_else(|| panic!("{}: no block-ROM variant", label(c)));
            assert!(c.clock_mhz <= 92.8, "{}: {} MHz", label(c), c.clock_mhz);
            assert!(twin.clock_mhz > c.clock_mhz, "{}", label(twin));
            assert!(twin.estimate.brams > c.estimate.brams, "{}", label(twin));
            assert!(twin.estimate.luts < c.estimate.luts, "{}", label(twin));
        } else {
            variants += 1;
            assert_eq!(wide, 0, "{}", label(c));
            let roms: Vec<usize> = d.mvtus().filter(|l| l.block_rom).map(|l| l.index).collect();
            assert_eq!(roms, c.block_rom_layers, "{}", label(c));
            assert!(label(c).contains(" rom:"), "{}", label(c));
            assert_eq!(d.estimate_for(device.family), c.estimate, "{}", label(c));
            let json = dse::candidate_json(&x, i);
            let fold: compiler::passes::folding::FoldFile =
                serde_json::from_value(json["fold"].clone()).unwrap();
            assert_eq!(fold, c.fold_file());
        }
    }
    assert!(variants > 0, "no block-ROM variant");
    // Elsewhere the exploration does not try it (no clock was measured for it there).
    let x = dse::explore(&model, &dse::device("up5k").unwrap()).unwrap();
    assert!(x.candidates.iter().all(|c| c.block_rom_layers.is_empty()));
}

/// With hidden layers tried wider (`dse --pad`): the plain candidates and more, the padded
/// ones folding by PEs or SIMDs that do not divide the model's widths; each compiles from the
/// unpadded model with the widths, cycles and estimate it was costed at.
#[test]
fn padded_candidates_compile_as_costed() {
    let mut rng = Rng(21);
    for device in ["ecp5-85k", "up5k"] {
        let model = random_model(&mut rng, 30, 8, Encoding::BitPlanes(2), &[20, 14, 5]);
        let device = dse::device(device).unwrap();
        let plain = dse::explore(&model, &device).unwrap();
        let x = dse::explore_padded(&model, &device).unwrap();
        assert!(x.padded && !plain.padded);
        // The plain candidates first, as they were (only the front moves).
        for (i, c) in plain.candidates.iter().enumerate() {
            let mut same = x.candidates[i].clone();
            same.pareto = c.pareto;
            assert!(same == *c, "candidate {i} ({}) differs", c.fold_label());
        }
        assert_front(&x);
        let padded: Vec<usize> = (0..x.candidates.len())
            .filter(|&i| x.candidates[i].origin == dse::Origin::Padded)
            .collect();
        assert!(padded.len() > 10, "{} padded candidates", padded.len());
        let model_widths = [20, 14];
        for &i in &padded {
            let c = &x.candidates[i];
            let d = compiles_as_costed(&model, &x, i);
            let l: Vec<_> = d.mvtus().collect();
            assert!(
                l[..2].iter().any(|l| l.idle_outputs > 0),
                "{} pads nothing",
                c.fold_label()
            );
            for (k, w) in model_widths.iter().enumerate() {
                assert_eq!(l[k].outputs - l[k].idle_outputs as usize, *w);
                assert!(
                    l[k].outputs % c.folds[k].pe == 0 && l[k].outputs % c.folds[k + 1].simd == 0
                );
            }
        }
        assert_eq!(dse::explore_padded(&model, &device).unwrap(), x);
    }
    assert_eq!(dse::padded_widths(256), vec![288, 300, 264]);
    assert_eq!(dse::padded_widths(3), Vec::<usize>::new());
}

/// Frames per weight read on the ECP5: a folding whose weights fill block RAMs also comes with
/// its layers reading each word for several frames, at fewer block RAMs and the same cycles per
/// frame; each such candidate compiles with the frames per weight read, cycles and estimate it
/// was costed at, and its label names them.
#[test]
fn frames_per_weight_read_variants_take_fewer_block_rams_on_the_ecp5() {
    let model = fashion_shape();
    let device = dse::device("ecp5-85k").unwrap();
    let x = dse::explore(&model, &device).unwrap();
    assert_legal(&model, &x);
    assert_front(&x);
    let shared: Vec<usize> = (0..x.candidates.len())
        .filter(|&i| !x.candidates[i].mmv.is_empty())
        .collect();
    assert!(shared.len() > 20, "{} candidates", shared.len());
    for &i in shared.iter().step_by(shared.len() / 20) {
        let c = &x.candidates[i];
        let label = c.fold_label();
        let d = compiles_as_costed(&model, &x, i);
        assert_eq!(compiler::fold_file(&d).mmv, c.mmv, "{label}");
        for (l, &f) in d.mvtus().zip(&c.mmv) {
            assert_eq!(l.frames_per_read(), f, "{label}");
            if f > 1 {
                assert!(label.contains(&format!("x{}m{f}", l.simd)), "{label}");
            }
        }
        let twin = x
            .candidates
            .iter()
            .find(|t| {
                t.mmv.is_empty()
                    && t.table_inputs.is_empty()
                    && t.folds == c.folds
                    && t.pixels_per_beat == c.pixels_per_beat
                    && t.block_rom_layers == c.block_rom_layers
            })
            .unwrap_or_else(|| panic!("{label}: no twin reading once per frame"));
        assert!(twin.estimate.brams > c.estimate.brams, "{label}");
        assert_eq!(twin.cycles_per_frame, c.cycles_per_frame, "{label}");
    }
    // Elsewhere the exploration does not try it (no clock was measured for it there).
    let x = dse::explore(&model, &dse::device("up5k").unwrap()).unwrap();
    assert!(x.candidates.iter().all(|c| c.mmv.is_empty()));
}
