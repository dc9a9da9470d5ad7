//! `flipchip`: train a binary neural network and take it to hardware.

mod cmd;
mod heap;

use clap::{Parser, Subcommand};

/// Binary neural networks from Boolean-domain training to FPGA bitstreams.
#[derive(Parser)]
#[command(name = "flipchip", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model and write it as a .fcm file.
    Train(cmd::train::Args),
    /// Train one configuration once per seed and report the spread of the results.
    Seeds(cmd::seeds::Args),
    /// Measure a model's test accuracy with the software reference.
    Eval(cmd::eval::Args),
    /// Truncate a float model f32 -> f16 -> int8 -> binary and report each precision.
    Quantize(cmd::quantize::Args),
    /// Lower a model into a streaming accelerator in Verilog.
    Compile(cmd::compile::Args),
    /// Compile a model and build a bitstream for a board (accelerator behind a UART).
    Build(cmd::build::Args),
    /// Synthesise a model to standard cells (OSU libraries): area, timing, power, layout.
    Asic(cmd::asic::Args),
    /// Explore foldings for a device: frames/s against LUTs, Pareto front, optional Yosys runs.
    Dse(cmd::dse::Args),
    /// Fit the LUT estimate's coefficients to Yosys runs on build directories.
    Calibrate(cmd::calibrate::Args),
    /// Run a compiled design in the cycle-accurate simulator.
    Sim(cmd::sim::Args),
    /// Check reference, simulator and RTL against each other.
    Verify(cmd::verify::Args),
    /// Import a binary QONNX model (Brevitas, FINN) into a .fcm model file.
    Import(cmd::import::Args),
    /// Write a model as a QONNX graph.
    Export(cmd::export::Args),
    /// Prove a compiled design's stream properties with SymbiYosys.
    Prove(cmd::prove::Args),
    /// Run a regression suite: models x foldings x checks, in parallel, with JUnit and JSON.
    Regress(cmd::regress::Args),
    /// Run the whole flow on the embedded 8x8 digits.
    Demo(cmd::demo::Args),
    /// Run one unit of work of a heavy step (what --executor runs on a node).
    #[command(hide = true)]
    Unit(cmd::unit::Args),
}

fn main() {
    heap::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => cmd::train::run(a),
        Command::Seeds(a) => cmd::seeds::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Quantize(a) => cmd::quantize::run(a),
        Command::Compile(a) => cmd::compile::run(a),
        Command::Build(a) => cmd::build::run(a),
        Command::Asic(a) => cmd::asic::run(a),
        Command::Dse(a) => cmd::dse::run(a),
        Command::Calibrate(a) => cmd::calibrate::run(a),
        Command::Sim(a) => cmd::sim::run(a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Unit(a) => cmd::unit::run(a),
        Command::Import(a) => cmd::import::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Prove(a) => cmd::prove::run(a),
        Command::Regress(a) => cmd::regress::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
