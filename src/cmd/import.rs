//! `flipchip import`: a QONNX model (as Brevitas exports it for FINN) into a model file.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

/// Import a binary QONNX model (Brevitas W1A1, FINN, hls4ml) into a .fcm model file.
#[derive(clap::Args)]
pub struct Args {
    /// The QONNX (.onnx) file.
    pub model: PathBuf,
    /// The model file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// The float range the model saw for pixel values 0..2^B-1: `0,1` as torchvision's
    /// `ToTensor`, `-1,1` for `x * 2 - 1`.
    #[arg(long, default_value = "0,1", value_parser = parse_range, allow_hyphen_values = true)]
    pub input_range: (f64, f64),
    /// Bits of a raw pixel value (8 for bytes; 5 for the embedded 0..16 digits).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub pixel_bits: u8,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
}

fn parse_range(s: &str) -> Result<(f64, f64), String> {
    let err = || format!("expected LO,HI with LO < HI (e.g. 0,1 or -1,1), found {s:?}");
    let (a, b) = s.split_once(',').ok_or_else(err)?;
    let lo: f64 = a.trim().parse().map_err(|_| err())?;
    let hi: f64 = b.trim().parse().map_err(|_| err())?;
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(err());
    }
    Ok((lo, hi))
}

/// Runs `flipchip import`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let opts = qonnx::Options {
        input_range: a.input_range,
        pixel_bits: a.pixel_bits,
    };
    let imported =
        qonnx::import_file(&a.model, opts).with_context(|| format!("{}", a.model.display()))?;
    let mut model = imported.model;
    model.meta.extra.insert(
        "source".into(),
        a.model
            .file_name()
            .map_or(String::new(), |f| f.to_string_lossy().into_owned()),
    );
    flip::model::format::save(&model, &a.out)?;
    let r = &imported.report;
    eprintln!(
        "{}: {} ({} layers, input {}x{}x{} {}), {} nodes folded into thresholds/scores/encoding, {} constant nodes evaluated -> {}",
        a.model.display(),
        r.arch,
        r.layers.len(),
        model.input.width,
        model.input.height,
        model.input.channels,
        r.encoding,
        r.folded.len(),
        r.constants_folded.len(),
        a.out.display()
    );
    if a.json {
        super::print_json(&json!({
            "model": a.model.display().to_string(),
            "out": a.out.display().to_string(),
            "arch": r.arch,
            "encoding": r.encoding,
            "input_range": [a.input_range.0, a.input_range.1],
            "pixel_bits": a.pixel_bits,
            "layers": r.layers,
            "folded": r.folded,
            "constants_folded": r.constants_folded,
        }));
    }
    Ok(())
}
