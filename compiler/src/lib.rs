//! Model -> dataflow IR -> Verilog and reports.
//!
//! [`lower`] turns a binary [`Model`] into an unfolded [`ir::Design`]; the [`passes`] fold it
//! and lay out its memories; [`check::check`] validates it; [`verilog::emit`] prints it and
//! each block's [`blocks::CycleModel`] simulates it (driven by the `sim` crate).
//!
//! Cycle conventions (the same in the Verilog and the cycle models):
//! - cycle 0 is the first cycle after reset; registers change on the edge that ends a cycle;
//! - a layer needs `vectors * (outputs / pe) * planes * (inputs / simd)` cycles per frame
//!   (`vectors`: a convolution's windows, 1 for a dense layer), the input adapter `pixels`,
//!   the argmax `max(classes - 1, 1)` (a scan, one compare per cycle), the pixel-stream units
//!   (sliding window, pool, collect) one cycle per pixel; the design's cycles per frame is the
//!   slowest stage's (for a dense model exactly; a conv model's bursty streams stretch it
//!   unless FIFOs sized by simulation absorb the bursts, see [`passes`]);
//! - latency from the first pixel's handshake to the result's handshake, never stalled:
//!   `pixels + sum over layers of (layer cycles + 1) + classes` for a dense model; a conv
//!   model's stages overlap, the sum is a bound, and the simulator measures it.

pub mod asic_area;
pub mod blocks;
pub mod calibrate;
pub mod check;
pub mod dse;
pub mod equiv;
pub mod formal;
pub mod ir;
pub mod passes;
pub mod random;
pub mod verilog;

use std::path::{Path, PathBuf};

use flip::model::{Layer, Model};
use serde_json::json;

use crate::blocks::collect::Collect;
use crate::blocks::pool::MaxPoolUnit;
use crate::blocks::swu::SlidingWindow;
use crate::blocks::Estimate;
use crate::ir::{Argmax, Design, InputAdapter, Mvtu, MvtuActivation, Stage};
use crate::passes::fifos::Fifos;
use crate::passes::folding::{FoldFile, FoldSpec, Folding, LayerFold};
use crate::passes::input_buffer::InputBuffer;
use crate::passes::memory::{BlockRoms, Memory, Placement};
use crate::passes::pipelining::Pipelining;
use crate::passes::tables::Tables;
use crate::passes::vector_ram::VectorRam;
use crate::passes::Pass;

/// Why a model could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The model is not a well-formed binary model.
    #[error("model: {0}")]
    Model(String),
    /// A folding is impossible; the message names the layer.
    #[error("folding: {0}")]
    Folding(String),
    /// The IR is not well formed.
    #[error("invalid design: {0}")]
    Invalid(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A fold file is not valid JSON of the expected shape.
    #[error("{}: {message}", path.display())]
    FoldFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// The words of the top's weight-load port, one 16-bit hex word per line (`$readmemh`), in
/// the build directory of a design with loaded weights.
pub const LOAD_HEX: &str = "weights.hex";

/// Name of the top module of every generated design.
pub const TOP: &str = "flipchip_top";

/// What flows between two stages while lowering: a feature map (one pixel per beat, as the
/// sliding window, pool and collect units take it) or one vector per frame (as the input
/// adapter makes it for a dense first layer, and every dense layer passes it on).
#[derive(Clone, Copy)]
enum Flow {
    Map {
        height: usize,
        width: usize,
        channels: usize,
        planes: usize,
    },
    Vector {
        bits: usize,
        planes: usize,
    },
}

/// The model as an unfolded design (every layer `pe = simd = 1`, memories not laid out).
///
/// A dense layer becomes an MVTU. A convolution becomes a sliding window unit and an MVTU that
/// computes one output pixel (every output channel) per window. A max-pool becomes a max-pool
/// unit. The first dense layer after a feature map gets a collect unit in front that flattens
/// the map into one beat. The input adapter of a model that starts with a convolution or pool
/// streams one encoded pixel per beat; otherwise it packs the whole frame into one beat.
pub fn lower(model: &Model) -> Result<Design, CompileError> {
    model.check().map_err(|e| CompileError::Model(e.0))?;
    if !model.is_binary() {
        return Err(CompileError::Model(
            "only binary models can be compiled (this one has float layers)".into(),
        ));
    }
    let enc = &model.input.encoding;
    // Channels of an image pixel, when the first layer reads pixels one at a time.
    let stream = model.is_convolutional().then_some(model.input.channels);
    let mut flow = if stream.is_some() {
        Flow::Map {
            height: model.input.height,
            width: model.input.width,
            channels: model.input.channels * enc.bits_per_pixel(),
            planes: enc.planes(),
        }
    } else {
        Flow::Vector {
            bits: model.input.encoded_inputs(),
            planes: enc.planes(),
        }
    };
    let mut stages = vec![Stage::Input(InputAdapter {
        pixels: model.input.pixels(),
        pixels_per_beat: 1,
        format: Default::default(),
        pixel_bits: model.input.pixel_bits,
        encoding: enc.clone(),
        stream,
        chunk: None,
    })];
    for (i, layer) in model.layers.iter().enumerate() {
        let index = i + 1;
        let shape = |m: String| CompileError::Model(format!("layer {index}: {m}"));
        let l = match layer {
            Layer::Binary(l) => l,
            Layer::Float(_) => unreachable!("checked binary above"),
            Layer::MaxPool(p) => {
                let Flow::Map {
                    height,
                    width,
                    channels,
                    planes,
                } = flow
                else {
                    return Err(shape("a max-pool after a dense layer".into()));
                };
                if planes != 1 {
                    return Err(shape(format!(
                        "a max-pool of a {planes}-plane input cannot be compiled (pool after a \
                         convolution, or encode the input in one plane)"
                    )));
                }
                if (p.height, p.width, p.channels) != (height, width, channels) {
                    return Err(shape(format!(
                        "the max-pool expects a {}x{}x{} map but gets {height}x{width}x{channels}",
                        p.height, p.width, p.channels
                    )));
                }
                stages.push(Stage::Pool(MaxPoolUnit {
                    index,
                    height,
                    width,
                    channels,
                    size: p.size,
                }));
                flow = Flow::Map {
                    height: p.out_height(),
                    width: p.out_width(),
                    channels,
                    planes: 1,
                };
                continue;
            }
        };
        let activation = MvtuActivation::from(&l.activation);
        let (vectors, planes) = match (l.conv, flow) {
            (
                Some(c),
                Flow::Map {
                    height,
                    width,
                    channels,
                    planes,
                },
            ) => {
                if (c.height, c.width, c.channels) != (height, width, channels)
                    || l.inputs != c.window()
                {
                    return Err(shape(format!(
                        "the convolution expects a {}x{}x{} map ({} window bits) but gets \
                         {height}x{width}x{channels}",
                        c.height, c.width, c.channels, l.inputs
                    )));
                }
                stages.push(Stage::Window(SlidingWindow {
                    index,
                    height,
                    width,
                    channels,
                    planes,
                    kernel: c.kernel,
                }));
                flow = Flow::Map {
                    height: c.out_height(),
                    width: c.out_width(),
                    channels: l.outputs,
                    planes: 1,
                };
                (c.output_pixels(), planes)
            }
            (Some(_), Flow::Vector { .. }) => {
                return Err(shape("a convolution after a dense layer".into()));
            }
            (
                None,
                Flow::Map {
                    height,
                    width,
                    channels,
                    planes,
                },
            ) => {
                if planes != 1 || l.inputs != height * width * channels {
                    return Err(shape(format!(
                        "the dense layer expects {} inputs but the {height}x{width}x{channels} \
                         map before it has {} bits in {planes} plane(s)",
                        l.inputs,
                        height * width * channels
                    )));
                }
                stages.push(Stage::Collect(Collect {
                    index,
                    pixels: height * width,
                    channels,
                }));
                flow = Flow::Vector {
                    bits: l.outputs,
                    planes: 1,
                };
                (1, 1)
            }
            (None, Flow::Vector { bits, planes }) => {
                if l.inputs != bits {
                    return Err(shape(format!(
                        "the dense layer expects {} inputs but gets {bits}",
                        l.inputs
                    )));
                }
                flow = Flow::Vector {
                    bits: l.outputs,
                    planes: 1,
                };
                (1, planes)
            }
        };
        stages.push(Stage::Mvtu(Mvtu {
            index,
            inputs: l.inputs,
            outputs: l.outputs,
            vectors,
            planes,
            idle_outputs: 0,
            pe: 1,
            simd: 1,
            weights: l.weights.clone(),
            activation,
            stage_levels: passes::pipelining::DEFAULT_STAGE_LEVELS,
            read_registers: 1,
            activation_stage: true,
            memory: None,
            chunk_interval: 0,
            out_chunk: 0,
            table: 0,
            dual_port_tables: false,
            block_rom: false,
            mmv: 1,
        }));
    }
    stages.push(Stage::Argmax(Argmax {
        classes: model.classes(),
        score_width: 0,
    }));
    Ok(Design {
        top: TOP.into(),
        model: format!("{}, encoding {}", model.arch(), model.input.encoding),
        stages,
        family: Default::default(),
    })
}

/// Lowers, folds, lays out memories and checks. Weight memories are ROMs except for the
/// layers a fold file lists in `load_weights`.
pub fn compile(model: &Model, fold: &FoldSpec) -> Result<Design, CompileError> {
    compile_with(model, fold, &Placement::Rom)
}

/// [`compile`] with the weight memories placed as `placement` says, unless the fold file
/// lists `load_weights` (the file wins: it is how a build directory records its design).
pub fn compile_with(
    model: &Model,
    fold: &FoldSpec,
    placement: &Placement,
) -> Result<Design, CompileError> {
    let placement = match fold {
        FoldSpec::Manual(f) if !f.load_weights.is_empty() => {
            &Placement::Loaded(f.load_weights.clone())
        }
        _ => placement,
    };
    let mut d = lower(model)?;
    let (input_ram, input_ram_layers, table_inputs, mmv) = match fold {
        FoldSpec::Manual(f) => (
            f.input_ram,
            f.input_ram_layers.clone(),
            f.table_inputs.clone(),
            f.mmv.clone(),
        ),
        FoldSpec::Auto { .. } => (None, None, Vec::new(), Vec::new()),
    };
    let mut passes: Vec<Box<dyn Pass>> = vec![
        Box::new(Folding(fold.clone())),
        Box::new(Tables(table_inputs)),
        Box::new(passes::mmv::Mmv(mmv)),
        Box::new(InputBuffer(input_ram)),
        Box::new(VectorRam(input_ram_layers)),
        Box::new(Memory(placement.clone())),
    ];
    if let FoldSpec::Manual(f) = fold {
        // Before pipelining, which registers a block RAM's read twice.
        passes.push(Box::new(BlockRoms(f.block_rom_layers.clone())));
    }
    if let FoldSpec::Manual(FoldFile {
        fifos: Some(fifos), ..
    }) = fold
    {
        passes.push(Box::new(Fifos(fifos.clone())));
    }
    if let FoldSpec::Manual(FoldFile {
        stage_levels: Some(levels),
        read_registers,
        activation_stage,
        ..
    }) = fold
    {
        passes.push(Box::new(Pipelining {
            stage_levels: *levels,
            read_registers: read_registers.unwrap_or(1),
            activation_stage: activation_stage.unwrap_or(true),
        }));
    }
    for p in &passes {
        p.run(&mut d)?;
    }
    if let FoldSpec::Manual(FoldFile {
        dual_port_tables: Some(dual),
        ..
    }) = fold
    {
        passes::tables::set_dual_port(&mut d, *dual);
    }
    check::check(&d)?;
    Ok(d)
}

/// Reads a fold file (`{"layers":[{"pe":..,"simd":..},..]}`).
pub fn read_fold_file(path: &Path) -> Result<FoldFile, CompileError> {
    let text = std::fs::read_to_string(path).map_err(|source| CompileError::Io {
        path: path.into(),
        source,
    })?;
    let f: FoldFile = serde_json::from_str(&text).map_err(|e| CompileError::FoldFile {
        path: path.into(),
        message: e.to_string(),
    })?;
    Ok(f)
}

/// The folding a design was built with, as a fold file.
pub fn fold_file(d: &Design) -> FoldFile {
    let pipelining = Pipelining::of(d);
    FoldFile {
        pixels_per_beat: d.input().pixels_per_beat,
        input: d.input().format,
        layers: d
            .mvtus()
            .map(|l| LayerFold {
                pe: l.pe,
                simd: l.simd,
            })
            .collect(),
        load_weights: d
            .mvtus()
            .filter(|l| l.is_loaded())
            .map(|l| l.index)
            .collect(),
        // A design with pixel streams records its FIFOs, none included, so that rebuilding
        // it from the file gives the same design; a dense design has none to record.
        fifos: d.input().stream.map(|_| passes::fifos::listed(d)),
        stage_levels: pipelining.as_ref().map(|p| p.stage_levels),
        read_registers: pipelining.as_ref().map(|p| p.read_registers),
        activation_stage: pipelining.as_ref().map(|p| p.activation_stage),
        // Recorded wherever the folding allows a choice, so that the file rebuilds this design.
        input_ram: passes::input_buffer::choice(d),
        input_ram_layers: passes::vector_ram::choice(d),
        table_inputs: passes::tables::listed(d),
        dual_port_tables: passes::tables::dual_port_listed(d),
        block_rom_layers: d.mvtus().filter(|l| l.block_rom).map(|l| l.index).collect(),
        mmv: passes::mmv::listed(d),
    }
}

/// `report.json`: per stage and total cycles, latency and resource estimates.
pub fn report(d: &Design) -> serde_json::Value {
    let mut total = Estimate::default();
    let stages: Vec<serde_json::Value> = d
        .blocks()
        .map(|b| {
            let e = b.estimate_for(d.family);
            total = total + e;
            let mut v = json!({
                "name": b.name(),
                "cycles_per_frame": b.cycles(),
                "latency_cycles": b.latency(),
                "est_luts": e.luts,
                "est_ffs": e.ffs,
                "memory_bits": e.memory_bits,
                "est_sprams": e.sprams,
            });
            for (k, x) in b.report_fields() {
                v[k] = x;
            }
            v
        })
        .collect();
    let lanes: usize = d.mvtus().map(|l| l.pe * l.simd).sum();
    let cycles = d.cycles_per_frame();
    json!({
        "top": d.top,
        "model": d.model,
        "pixels_per_beat": d.input().pixels_per_beat,
        "input_format": d.input().format,
        "layers": stages,
        "total": {
            "cycles_per_frame": cycles,
            "latency_cycles": d.latency_cycles(),
            "est_luts": total.luts,
            "est_ffs": total.ffs,
            "memory_bits": total.memory_bits,
            "est_sprams": total.sprams,
            // XNOR-popcount lanes and what the whole design spends per lane.
            "lanes": lanes,
            "est_luts_per_lane": total.luts as f64 / lanes.max(1) as f64,
            // A streaming design cannot beat one frame per cycle: how far from that it is.
            "limit_cycles_per_frame": 1,
            "fraction_of_limit": 1.0 / cycles.max(1) as f64,
        },
    })
}

/// Writes the Verilog, `ports.json`, `report.json` and `fold.json` into `dir` (created if
/// needed). Returns the paths written.
pub fn write_build(d: &Design, dir: &Path) -> Result<Vec<PathBuf>, CompileError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CompileError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut files = verilog::emit(d);
    // Formal properties beside the design, never read by synthesis or simulation.
    if let Some(props) = formal::checker(d) {
        files.push((formal::file_name(d), props));
    }
    let pretty = |v: &serde_json::Value| {
        let mut s = serde_json::to_string_pretty(v).expect("JSON values serialise");
        s.push('\n');
        s
    };
    files.push(("ports.json".into(), pretty(&json!(d.ports()))));
    files.push(("report.json".into(), pretty(&report(d))));
    files.push(("fold.json".into(), pretty(&json!(fold_file(d)))));
    let image = d.load_image();
    if !image.is_empty() {
        let hex: String = image.iter().map(|w| format!("{w:04x}\n")).collect();
        files.push((LOAD_HEX.into(), hex));
    }
    let mut written = Vec::new();
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(io(&p))?;
        written.push(p);
    }
    Ok(written)
}
