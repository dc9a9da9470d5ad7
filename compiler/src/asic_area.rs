//! Cell area of a design in the OSU standard-cell libraries (`flipchip asic`, `flipchip dse
//! --device asic-osu018`), estimated from the same per-block [`Features`] as the FPGA LUT
//! estimate, taken for [`Family::Asic`] (no block RAM: every ROM is logic, every RAM
//! flip-flops), plus the block's flip-flops.
//!
//! What differs from an FPGA: a weight is not a memory bit but part of a logic cone. A layer
//! folded so that each lane sees one weight (one word per lane, [`Features::rom_bits`] 0) has
//! its XNORs folded into the popcount as wires and inverters; a folded layer's weights are a
//! function of the step counter per lane, whose cost grows with the words per lane, and its
//! XNOR lanes are real gates (`xnor_bit`, the popcount bits of layers with a weight memory
//! more than 2 words deep). Flip-flops (`DFFPOSX1`, about 8 NAND2 areas in OSU018) are costed
//! alone, since pipeline and frame registers are a large share of a streaming design.
//!
//! The coefficients are fitted per library with `flipchip calibrate --family asic-osu018 ...`
//! (non-negative least squares on relative error, [`crate::calibrate::fit_vectors`]) to the
//! area Yosys and ABC map to with `flipchip asic`'s script; `compiler/calibration/README.md`
//! has the commands and `compiler/calibration/asic-*.csv` the data.

use crate::blocks::{Block, Family, Features};
use crate::ir::Design;

/// Number of area features.
pub const N: usize = 8;

/// Names of the area features (and of their coefficients, in um^2 per unit).
pub const NAMES: [&str; N] = [
    "ff",
    "rom_bit",
    "xnor_bit",
    "adder_bit",
    "acc_bit",
    "activation_bit",
    "select_bit",
    "block",
];

/// The sizes a block's cell area is modelled as proportional to, in [`NAMES`] order.
pub fn block_features(b: &dyn Block) -> [f64; N] {
    let f = b.features(Family::Asic);
    let ffs = b.estimate_for(Family::Asic).ffs as f64;
    from_features(&f, ffs)
}

/// [`block_features`] from a block's features for [`Family::Asic`] and its flip-flops.
pub fn from_features(f: &Features, ffs: f64) -> [f64; N] {
    [
        ffs,
        f.rom_bits,
        f.popcount,
        f.adder,
        f.acc,
        f.activation,
        // Input frame and argmax score bits are registers with a select in front, as the
        // rotating input register's.
        f.select + f.stream,
        f.blocks,
    ]
}

/// The sum of the features of `design`'s blocks.
pub fn design_features(design: &Design) -> [f64; N] {
    design.blocks().map(block_features).fold([0.0; N], add)
}

/// Element-wise sum.
pub fn add(a: [f64; N], b: [f64; N]) -> [f64; N] {
    std::array::from_fn(|i| a[i] + b[i])
}

/// The fitted area coefficients of one library.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AreaModel {
    /// The library (`osu018`).
    pub tech: &'static str,
    /// um^2 per unit of each feature, in [`NAMES`] order.
    pub coefficients: [f64; N],
}

impl AreaModel {
    /// Cell area (um^2) of a structure with features `f`.
    pub fn area_um2(&self, f: &[f64; N]) -> f64 {
        self.coefficients.iter().zip(f).map(|(c, x)| c * x).sum()
    }

    /// Cell area (um^2) of `design`.
    pub fn design_area_um2(&self, design: &Design) -> f64 {
        self.area_um2(&design_features(design))
    }
}

/// OSU018 (0.18 um), fitted to Yosys 0.23 + ABC at 150 MHz on 37 front designs of four
/// digits models (`compiler/calibration/asic-osu018.csv`): worst error 8.9%. A flip-flop
/// costs more than its `DFFPOSX1` (96 um^2): its enable or reset logic goes with it; the
/// adder bits cost nothing of their own because every design has them in proportion to its
/// XNOR lanes and accumulators, which carry them in the fit.
pub const OSU018: AreaModel = AreaModel {
    tech: "osu018",
    coefficients: [
        138.0703, 4.7133, 30.9664, 0.0, 7.9166, 67.2688, 54.2268, 2103.5799,
    ],
};

/// OSU035 and OSU050 are the same cells drawn on a larger grid (the same cell names, the same
/// netlists from the same script): every cell's area is OSU018's times 4 and 9. Measured on
/// three front designs of the 64-32-10 digits model synthesised to all three libraries: area
/// ratios 4.000 to 4.001 and 8.999 to 9.004, with the same cells within 0.1%.
const fn scaled(tech: &'static str, k: f64) -> AreaModel {
    let c = OSU018.coefficients;
    AreaModel {
        tech,
        coefficients: [
            c[0] * k,
            c[1] * k,
            c[2] * k,
            c[3] * k,
            c[4] * k,
            c[5] * k,
            c[6] * k,
            c[7] * k,
        ],
    }
}

/// OSU035 (0.35 um): OSU018's coefficients times 4 (see `scaled`).
pub const OSU035: AreaModel = scaled("osu035", 4.0);

/// OSU050 (0.5 um): OSU018's coefficients times 9 (see `scaled`).
pub const OSU050: AreaModel = scaled("osu050", 9.0);

/// The area model of library `tech`, if there is one.
pub fn model(tech: &str) -> Option<&'static AreaModel> {
    [&OSU018, &OSU035, &OSU050]
        .into_iter()
        .find(|m| m.tech == tech)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::Stage;
    use crate::passes::folding::{FoldFile, FoldSpec, LayerFold};
    use crate::random::{random_model, Rng};
    use flip::encoding::Encoding;

    /// The area of a 64-64-10 model's design folded `pe1 x simd1`, `pe2 x simd2`.
    fn area(model: &flip::model::Model, folds: [(usize, usize); 2]) -> f64 {
        let file = FoldFile {
            pixels_per_beat: 1,
            input: Default::default(),
            layers: folds
                .iter()
                .map(|&(pe, simd)| LayerFold { pe, simd })
                .collect(),
            load_weights: Vec::new(),
            fifos: None,
            stage_levels: Some(3),
            read_registers: Some(1),
            activation_stage: Some(true),
            input_ram: None,
            input_ram_layers: None,
            table_inputs: Vec::new(),
            dual_port_tables: None,
            block_rom_layers: Vec::new(),
            mmv: Vec::new(),
        };
        let d = crate::compile(model, &FoldSpec::Manual(file)).unwrap();
        OSU018.design_area_um2(&d)
    }

    #[test]
    fn more_lanes_cost_more_area() {
        let model = random_model(&mut Rng(3), 64, 8, Encoding::BitPlanes(2), &[64, 10]);
        // More PEs for the same SIMD, and more SIMD for the same PEs: more XNOR-popcount
        // lanes, adder trees and accumulators, the same weights; never less area. (Up to a
        // weight memory of more than 2 words per lane: a layer unfolded further has constant
        // weights, its XNORs become wires and inverters and it needs no accumulator, which
        // the next test checks. The step counters lose a bit per doubling, hence the 0.5%.)
        let lanes = |pe: usize, simd: usize| pe * simd <= 64 * 64 / 4;
        for simd in [1, 4, 16, 64] {
            let mut last = 0.0;
            for pe in [1, 2, 4, 8, 16, 32, 64]
                .into_iter()
                .filter(|&p| lanes(p, simd))
            {
                let a = area(&model, [(pe, simd), (1, 2)]);
                assert!(a >= 0.995 * last, "PE {pe} SIMD {simd}: {a:.0} < {last:.0}");
                last = a;
            }
        }
        for pe in [1, 4, 16, 64] {
            let mut last = 0.0;
            for simd in [1, 2, 4, 8, 16, 32, 64]
                .into_iter()
                .filter(|&s| lanes(pe, s))
            {
                let a = area(&model, [(pe, simd), (1, 2)]);
                assert!(a >= 0.995 * last, "PE {pe} SIMD {simd}: {a:.0} < {last:.0}");
                last = a;
            }
        }
    }

    #[test]
    fn constant_weights_need_no_weight_logic() {
        let model = random_model(&mut Rng(3), 64, 8, Encoding::BitPlanes(2), &[64, 10]);
        let features = |pe: usize, simd: usize| {
            let file = FoldFile {
                pixels_per_beat: 1,
                input: Default::default(),
                layers: vec![LayerFold { pe, simd }, LayerFold { pe: 1, simd: 2 }],
                load_weights: Vec::new(),
                fifos: None,
                stage_levels: Some(3),
                read_registers: Some(1),
                activation_stage: Some(true),
                input_ram: None,
                input_ram_layers: None,
                table_inputs: Vec::new(),
                dual_port_tables: None,
                block_rom_layers: Vec::new(),
                mmv: Vec::new(),
            };
            let d = crate::compile(&model, &FoldSpec::Manual(file)).unwrap();
            let l1 = Stage::Mvtu(d.mvtus().next().unwrap().clone());
            block_features(l1.block())
        };
        let unfolded = features(64, 64);
        let quarter = features(64, 16);
        // rom_bit and xnor_bit: none for one word per lane, some for four.
        assert_eq!((unfolded[1], unfolded[2]), (0.0, 0.0));
        assert!(quarter[1] > 0.0 && quarter[2] > 0.0);
        // Larger adder trees all the same.
        assert!(unfolded[3] > quarter[3]);
    }

    #[test]
    fn every_rom_is_logic_and_every_ram_flip_flops() {
        let c = Family::Asic.costs();
        assert_eq!(c.rom(128, 64).brams, 0);
        assert_eq!(c.rom(128, 64).logic_bits, 128 * 64);
        assert_eq!(c.rom(100, 3).logic_bits, 128 * 3);
        assert_eq!(c.rom(1, 64).logic_bits, 0);
        // A first layer whose input frame goes to RAM: on an FPGA block RAM, here flip-flops.
        let model = random_model(&mut Rng(5), 784, 8, Encoding::BitPlanes(2), &[32, 10]);
        let d = crate::compile(&model, &FoldSpec::auto(None)).unwrap();
        let l1 = d.mvtus().next().unwrap();
        assert!(
            l1.input_ram(),
            "the test needs a layer with its input in RAM"
        );
        let stage = Stage::Mvtu(l1.clone());
        let fpga = stage.block().estimate_for(Family::Ice40);
        let asic = stage.block().estimate_for(Family::Asic);
        assert_eq!(asic.brams, 0);
        // Two frames of every plane's bits.
        assert!(
            asic.ffs >= fpga.ffs + 2 * 784 * 2,
            "{} vs {}",
            asic.ffs,
            fpga.ffs
        );
    }

    #[test]
    fn libraries_are_found_by_name() {
        assert_eq!(model("osu018").unwrap().tech, "osu018");
        assert!(model("osu035").is_some() && model("osu050").is_some());
        assert!(model("sky130").is_none());
        // A larger feature size: a larger cell of every kind.
        for (i, name) in NAMES.iter().enumerate() {
            assert!(OSU035.coefficients[i] >= OSU018.coefficients[i], "{name}");
            assert!(OSU050.coefficients[i] >= OSU035.coefficients[i], "{name}");
        }
    }
}
