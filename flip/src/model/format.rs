//! The `.fcm` model file: a versioned, line-oriented text format (see `docs/model-format.md`).
//!
//! [`to_string`] writes a [`Model`], [`parse`] reads one back (with `nom`) and checks it with
//! [`Model::check`]; [`save`] and [`load`] do the same through the file system. Every malformed
//! input is reported as a [`FormatError`] with its line, column, what was expected there and
//! what was found instead.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use nom::branch::alt;
use nom::bytes::complete::{is_not, take_till1, take_while1};
use nom::character::complete::{char, one_of, space0};
use nom::combinator::map;
use nom::error::{ErrorKind, ParseError};
use nom::multi::fold_many0;
use nom::sequence::preceded;

use super::{
    Activation, BinaryLayer, Conv, FloatLayer, InputSpec, Layer, MaxPool, Metadata, Model,
};
use crate::bits::{words_for, BitMatrix, WORD_BITS};
use crate::encoding::Encoding;

/// First word of every model file.
pub const MAGIC: &str = "flipchip-model";

/// The newest format version this crate reads and writes: version 2 adds convolution and
/// max-pool layers, version 3 per-class score scales. Older files still load, and a model is
/// written in the oldest version that holds it, so older readers keep reading what they can.
pub const VERSION: u32 = 3;

/// Meta keys that map to [`Metadata`] fields when written bare (unquoted).
const RESERVED_KEYS: [&str; 4] = ["dataset", "optimizer", "seed", "test_accuracy"];

/// A malformed model text: where, what was expected there and what was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: expected {expected}, found {found}")]
pub struct FormatError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What the format requires at this point.
    pub expected: String,
    /// What the text holds instead (a quoted token, `end of line` or `end of file`).
    pub found: String,
}

/// A model file that could not be read or written.
///
/// The message starts with the path and includes the underlying error's message, so
/// [`std::error::Error::source`] returns `None` (otherwise `{:#}` chains would print it twice).
#[derive(Debug)]
pub enum FileError {
    /// The file system failed.
    Io {
        /// The model file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file was read but is not a valid model.
    Format {
        /// The model file.
        path: PathBuf,
        /// Where and why.
        source: FormatError,
    },
}

impl FileError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FileError::Io { path, .. } | FileError::Format { path, .. } => path,
        }
    }
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            FileError::Format { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for FileError {}

// ------------------------------------------------------------------------------------------
// Writing
// ------------------------------------------------------------------------------------------

/// The model as `.fcm` text. Consistent models (see [`Model::check`]) parse back to an equal
/// model, floats bit for bit.
pub fn to_string(model: &Model) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail, so the fmt::Results below are ignored.
    let scaled = model.layers.iter().any(|l| {
        matches!(l, Layer::Binary(b) if matches!(&b.activation, Activation::Scores { scale, .. } if !scale.is_empty()))
    });
    let version = if scaled {
        3
    } else if model.is_convolutional() {
        2
    } else {
        1
    };
    let _ = writeln!(s, "{MAGIC} {version}");
    let i = &model.input;
    let _ = writeln!(
        s,
        "input width {} height {} channels {} pixel_bits {}",
        i.width, i.height, i.channels, i.pixel_bits
    );
    let _ = writeln!(s, "encoding {}", i.encoding);
    let m = &model.meta;
    let _ = writeln!(s, "meta dataset {}", quote(&m.dataset));
    let _ = writeln!(s, "meta optimizer {}", quote(&m.optimizer));
    let _ = writeln!(s, "meta seed \"{}\"", m.seed);
    if let Some(a) = m.test_accuracy {
        let _ = writeln!(s, "meta test_accuracy \"{a:?}\"");
    }
    for (k, v) in &m.extra {
        let key = if is_bare_key(k) && !RESERVED_KEYS.contains(&k.as_str()) {
            k.clone()
        } else {
            quote(k)
        };
        let _ = writeln!(s, "meta {key} {}", quote(v));
    }
    for (n, layer) in model.layers.iter().enumerate() {
        let n = n + 1;
        s.push('\n');
        match layer {
            Layer::Binary(l) => {
                let kind = match l.activation {
                    Activation::Threshold { .. } => "threshold",
                    Activation::Scores { .. } => "scores",
                };
                let _ = writeln!(
                    s,
                    "layer {n} binary {} outputs {} {kind}",
                    shape_words(l.inputs, l.conv),
                    l.outputs
                );
                s.push_str("weights\n");
                for r in 0..l.weights.rows() {
                    push_hex_row(&mut s, l.weights.row(r), l.inputs);
                    s.push('\n');
                }
                match &l.activation {
                    Activation::Threshold { thresholds, invert } => {
                        s.push_str("thresholds");
                        for t in thresholds {
                            let _ = write!(s, " {t}");
                        }
                        s.push_str("\ninvert ");
                        s.extend(invert.iter().map(|&b| if b { '1' } else { '0' }));
                        s.push('\n');
                    }
                    Activation::Scores { bias, scale } => {
                        if !scale.is_empty() {
                            s.push_str("scale");
                            for m in scale {
                                let _ = write!(s, " {m}");
                            }
                            s.push('\n');
                        }
                        s.push_str("bias");
                        for b in bias {
                            let _ = write!(s, " {b}");
                        }
                        s.push('\n');
                    }
                }
            }
            Layer::Float(l) => {
                let _ = writeln!(
                    s,
                    "layer {n} float {} outputs {}",
                    shape_words(l.inputs, l.conv),
                    l.outputs
                );
                s.push_str("weights\n");
                for row in l.weights.chunks(l.inputs.max(1)) {
                    push_floats(&mut s, row);
                    s.push('\n');
                }
                s.push_str("scale");
                push_floats_spaced(&mut s, &l.scale);
                s.push_str("\nshift");
                push_floats_spaced(&mut s, &l.shift);
                s.push('\n');
            }
            Layer::MaxPool(p) => {
                let _ = writeln!(
                    s,
                    "layer {n} maxpool size {} height {} width {} channels {}",
                    p.size, p.height, p.width, p.channels
                );
            }
        }
        s.push_str("end\n");
    }
    s
}

/// `inputs I` for a dense layer, `conv kernel K height H width W channels C` for a convolution.
fn shape_words(inputs: usize, conv: Option<Conv>) -> String {
    match conv {
        None => format!("inputs {inputs}"),
        Some(c) => format!(
            "conv kernel {} height {} width {} channels {}",
            c.kernel, c.height, c.width, c.channels
        ),
    }
}

/// Appends one weight row as `ceil(inputs / 4)` hex digits, most significant first: the last
/// digit holds inputs 3..0 (bit `i` = input `i`), as in the Verilog literal `inputs'h...`.
fn push_hex_row(s: &mut String, row: &[u64], inputs: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = inputs.div_ceil(4);
    for j in (0..digits).rev() {
        let bit = 4 * j;
        let mut nibble = row
            .get(bit / WORD_BITS)
            .map_or(0, |w| (w >> (bit % WORD_BITS)) & 0xf);
        let live = inputs - bit;
        if live < 4 {
            nibble &= (1 << live) - 1;
        }
        s.push(HEX[nibble as usize] as char);
    }
}

/// Appends floats separated by spaces, in Rust's shortest round-tripping form.
fn push_floats(s: &mut String, xs: &[f32]) {
    for (k, x) in xs.iter().enumerate() {
        if k > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{x:?}");
    }
}

/// Appends floats, each preceded by a space.
fn push_floats_spaced(s: &mut String, xs: &[f32]) {
    for x in xs {
        let _ = write!(s, " {x:?}");
    }
}

/// Characters of a meta key that may be written without quotes.
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn is_bare_key(k: &str) -> bool {
    !k.is_empty() && k.chars().all(is_key_char)
}

/// A double-quoted string with `\"`, `\\`, `\n`, `\r` and `\t` escapes.
fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

// ------------------------------------------------------------------------------------------
// Reading: token-level parsers (nom) on one line at a time
// ------------------------------------------------------------------------------------------

/// A parse failure inside one line: the rest of the line where it happened and what was
/// expected there; `found` overrides the default description of the text at `at`.
#[derive(Debug)]
struct PErr<'a> {
    at: &'a str,
    expected: String,
    found: Option<String>,
}

impl<'a> ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(at: &'a str, kind: ErrorKind) -> Self {
        PErr {
            at,
            expected: kind.description().to_string(),
            found: None,
        }
    }

    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, T> = nom::IResult<&'a str, T, PErr<'a>>;

fn fail<T>(at: &str, expected: String) -> PResult<'_, T> {
    Err(nom::Err::Error(PErr {
        at,
        expected,
        found: None,
    }))
}

fn fail_found<T>(at: &str, expected: String, found: String) -> PResult<'_, T> {
    Err(nom::Err::Error(PErr {
        at,
        expected,
        found: Some(found),
    }))
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Skips spaces and tabs.
fn ws(i: &str) -> &str {
    i.trim_start_matches(is_space)
}

/// How the text at `at` is reported: its first token, quoted, or `end of line`.
fn describe(at: &str) -> String {
    let at = ws(at);
    if at.is_empty() || at.starts_with('#') {
        return "end of line".into();
    }
    let token = at.split(is_space).next().unwrap_or(at);
    let mut chars = token.chars();
    let short: String = chars.by_ref().take(32).collect();
    if chars.next().is_some() {
        format!("{short:?}...")
    } else {
        format!("{short:?}")
    }
}

/// The next space-separated token (a `#` starts a comment, which ends the line).
fn token<'a>(i: &'a str, what: impl Fn() -> String) -> PResult<'a, &'a str> {
    let i = ws(i);
    match take_till1::<_, _, PErr>(is_space)(i) {
        Ok((rest, t)) if !t.starts_with('#') => Ok((rest, t)),
        _ => fail(i, what()),
    }
}

/// Exactly the word `kw`.
fn keyword<'a>(i: &'a str, kw: &str) -> PResult<'a, ()> {
    keyword_or(i, kw, || format!("{kw:?}"))
}

/// Exactly the word `kw`, described as `what` when missing.
fn keyword_or<'a>(i: &'a str, kw: &str, what: impl Fn() -> String) -> PResult<'a, ()> {
    let i = ws(i);
    let (rest, t) = token(i, &what)?;
    if t == kw {
        Ok((rest, ()))
    } else {
        fail(i, what())
    }
}

/// A number token parsed with [`FromStr`].
fn number<'a, T: FromStr>(i: &'a str, what: impl Fn() -> String) -> PResult<'a, T> {
    let i = ws(i);
    let (rest, t) = token(i, &what)?;
    match t.parse() {
        Ok(v) => Ok((rest, v)),
        Err(_) => fail(i, what()),
    }
}

/// A size that must be at least 1.
fn positive<'a>(i: &'a str, what: &str) -> PResult<'a, usize> {
    let i = ws(i);
    let what = || format!("a positive number of {what}");
    let (rest, v) = number::<usize>(i, what)?;
    if v == 0 {
        return fail(i, what());
    }
    Ok((rest, v))
}

/// The end of the line (spaces and a comment may come first).
fn eol<'a>(i: &'a str, what: impl Fn() -> String) -> PResult<'a, ()> {
    let (i, _) = space0::<_, PErr>(i)?;
    if i.is_empty() || i.starts_with('#') {
        Ok(("", ()))
    } else {
        fail(i, what())
    }
}

fn end_of_line() -> String {
    "end of line".into()
}

/// `count` numbers, then the end of the line.
fn numbers<'a, T: FromStr>(
    mut i: &'a str,
    count: usize,
    what: &str,
    plural: &str,
    out: &mut Vec<T>,
) -> PResult<'a, ()> {
    for k in 0..count {
        let (rest, v) = number(i, || format!("{what} ({} of {count})", k + 1))?;
        out.push(v);
        i = rest;
    }
    eol(i, || format!("end of line after {count} {plural}"))
}

/// One piece of a quoted string.
enum Piece<'a> {
    Text(&'a str),
    Char(char),
}

/// A double-quoted string with `\"`, `\\`, `\n`, `\r` and `\t` escapes.
fn quoted<'a>(i: &'a str, what: &str) -> PResult<'a, String> {
    let i = ws(i);
    let Ok((i, _)) = char::<_, PErr>('"')(i) else {
        return fail(i, what.to_string());
    };
    let (i, s) = fold_many0(
        alt((
            map(is_not("\"\\"), Piece::Text),
            map(preceded(char('\\'), one_of("\"\\nrt")), |c| {
                Piece::Char(match c {
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    c => c,
                })
            }),
        )),
        String::new,
        |mut acc, piece| {
            match piece {
                Piece::Text(t) => acc.push_str(t),
                Piece::Char(c) => acc.push(c),
            }
            acc
        },
    )(i)?;
    match char::<_, PErr>('"')(i) {
        Ok((i, _)) => Ok((i, s)),
        Err(_) => fail(i, r#"a closing " (escapes are \" \\ \n \r \t)"#.to_string()),
    }
}

/// `flipchip-model 1` or `flipchip-model 2`; returns the version.
fn header_line(i: &str) -> PResult<'_, u32> {
    let (i, _) = keyword_or(i, MAGIC, || format!("{MAGIC:?} (a flipchip model file)"))?;
    let i = ws(i);
    let version_what = || format!("{MAGIC} version 1 to {VERSION}");
    let (rest, v) = number::<u32>(i, version_what)?;
    if !(1..=VERSION).contains(&v) {
        return fail(i, version_what());
    }
    let (rest, _) = eol(rest, end_of_line)?;
    Ok((rest, v))
}

/// `input width W height H channels C pixel_bits B`
fn input_line(i: &str) -> PResult<'_, (usize, usize, usize, u8)> {
    let start = i;
    let (i, _) = keyword(i, "input")?;
    let (i, _) = keyword(i, "width")?;
    let (i, width) = positive(i, "pixels per row")?;
    let (i, _) = keyword(i, "height")?;
    let (i, height) = positive(i, "rows")?;
    let (i, _) = keyword(i, "channels")?;
    let (i, channels) = positive(i, "channels")?;
    let (i, _) = keyword(i, "pixel_bits")?;
    let i = ws(i);
    let bits_what = || "pixel bits 1..=8".to_string();
    let (rest, bits) = number::<u8>(i, bits_what)?;
    if !(1..=8).contains(&bits) {
        return fail(i, bits_what());
    }
    let (rest, _) = eol(rest, end_of_line)?;
    if width
        .checked_mul(height)
        .and_then(|p| p.checked_mul(channels))
        .is_none()
    {
        return fail(
            ws(start),
            "an input whose pixel count fits in memory".into(),
        );
    }
    Ok((rest, (width, height, channels, bits)))
}

/// `encoding bitplanes P` | `encoding threshold T` | `encoding thermometer T1 T2 ...`
fn encoding_line(i: &str, pixel_bits: u8, pixels: usize) -> PResult<'_, Encoding> {
    let (i, _) = keyword(i, "encoding")?;
    let kind_at = ws(i);
    let kinds = || r#""bitplanes", "threshold" or "thermometer""#.to_string();
    let (i, kind) = token(kind_at, kinds)?;
    let args = ws(i);
    let (rest, enc) = match kind {
        "bitplanes" => {
            let (r, p) = number::<u8>(args, || "a number of bit planes".into())?;
            (r, Encoding::BitPlanes(p))
        }
        "threshold" => {
            let (r, t) = number::<u16>(args, || "a threshold pixel level".into())?;
            (r, Encoding::Threshold(t))
        }
        "thermometer" => {
            let mut levels = Vec::new();
            let mut r = args;
            loop {
                let next = ws(r);
                if !levels.is_empty() && (next.is_empty() || next.starts_with('#')) {
                    break;
                }
                let (r2, t) = number::<u16>(next, || "a thermometer pixel level".into())?;
                levels.push(t);
                r = r2;
            }
            (r, Encoding::Thermometer(levels))
        }
        _ => return fail(kind_at, kinds()),
    };
    let (rest, _) = eol(rest, end_of_line)?;
    if let Err(msg) = enc.check(pixel_bits) {
        return fail(
            args,
            format!("an encoding for {pixel_bits}-bit pixels ({msg})"),
        );
    }
    if pixels.checked_mul(enc.bits_per_pixel()).is_none() {
        return fail(args, "an encoding whose input width fits in memory".into());
    }
    Ok((rest, enc))
}

/// `meta KEY "VALUE"`: bare reserved keys fill the [`Metadata`] fields, any other key (and any
/// quoted key) goes to `extra`.
fn meta_line<'a>(
    i: &'a str,
    meta: &mut Metadata,
    seen: &mut BTreeSet<&'static str>,
) -> PResult<'a, ()> {
    let (i, _) = keyword(i, "meta")?;
    let key_at = ws(i);
    let (i, key, bare) = if key_at.starts_with('"') {
        let (i, k) = quoted(key_at, "a meta key")?;
        (i, k, false)
    } else {
        match take_while1::<_, _, PErr>(is_key_char)(key_at) {
            Ok((i, k)) => (i, k.to_string(), true),
            Err(_) => {
                return fail(
                    key_at,
                    "a meta key (letters, digits, _ . - or a quoted string)".into(),
                )
            }
        }
    };
    let value_at = ws(i);
    let (rest, value) = quoted(value_at, "a double-quoted meta value")?;
    let (rest, _) = eol(rest, || "end of line after the meta value".into())?;
    let field = if bare {
        RESERVED_KEYS.iter().copied().find(|&k| k == key)
    } else {
        None
    };
    let duplicate = || fail(key_at, "a meta key not given before".into());
    match field {
        Some(f) => {
            if !seen.insert(f) {
                return duplicate();
            }
            match f {
                "dataset" => meta.dataset = value,
                "optimizer" => meta.optimizer = value,
                "seed" => match value.parse() {
                    Ok(v) => meta.seed = v,
                    Err(_) => {
                        return fail(value_at, "a seed (an unsigned integer) in quotes".into())
                    }
                },
                _ => match value.parse() {
                    Ok(v) => meta.test_accuracy = Some(v),
                    Err(_) => return fail(value_at, "an accuracy (a number) in quotes".into()),
                },
            }
        }
        None => {
            if meta.extra.contains_key(&key) {
                return duplicate();
            }
            meta.extra.insert(key, value);
        }
    }
    Ok((rest, ()))
}

/// What a layer header announces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Threshold,
    Scores,
    Float,
    Pool(MaxPool),
}

struct Header {
    kind: Kind,
    inputs: usize,
    outputs: usize,
    conv: Option<Conv>,
}

/// `height H width W channels C` (of a convolution's or pool's input feature map).
fn map_words(i: &str) -> PResult<'_, (usize, usize, usize)> {
    let (i, _) = keyword(i, "height")?;
    let (i, h) = positive(i, "rows")?;
    let (i, _) = keyword(i, "width")?;
    let (i, w) = positive(i, "pixels per row")?;
    let (i, _) = keyword(i, "channels")?;
    let (i, c) = positive(i, "channels")?;
    if h.checked_mul(w).and_then(|p| p.checked_mul(c)).is_none() {
        return fail(i, "a feature map whose size fits in memory".into());
    }
    Ok((i, (h, w, c)))
}

/// `layer N binary inputs I outputs O threshold|scores` | `layer N float inputs I outputs O`,
/// with `conv kernel K height H width W channels C` in place of `inputs I` for a convolution
/// (version 2), or `layer N maxpool size S height H width W channels C` (version 2).
fn layer_header<'a>(i: &'a str, n: usize, what: &str, version: u32) -> PResult<'a, Header> {
    let (i, _) = keyword_or(i, "layer", || what.to_string())?;
    let num_at = ws(i);
    let num_what = || format!("layer number {n}");
    let (i, num) = number::<usize>(num_at, num_what)?;
    if num != n {
        return fail(num_at, num_what());
    }
    let kind_at = ws(i);
    let kinds = || {
        if version >= 2 {
            r#""binary", "float" or "maxpool""#.to_string()
        } else {
            r#""binary" or "float""#.to_string()
        }
    };
    let (i, kind) = token(kind_at, kinds)?;
    let float = match kind {
        "binary" => false,
        "float" => true,
        "maxpool" if version >= 2 => {
            let (i, _) = keyword(i, "size")?;
            let (i, size) = positive(i, "a pool size")?;
            let (i, (height, width, channels)) = map_words(i)?;
            let (i, _) = eol(i, end_of_line)?;
            let p = MaxPool {
                height,
                width,
                channels,
                size,
            };
            return Ok((
                i,
                Header {
                    kind: Kind::Pool(p),
                    inputs: 0,
                    outputs: 0,
                    conv: None,
                },
            ));
        }
        _ => return fail(kind_at, kinds()),
    };
    let shape_at = ws(i);
    let (i, inputs, conv) = if version >= 2 && shape_at.starts_with("conv") {
        let (i, _) = keyword(i, "conv")?;
        let (i, _) = keyword(i, "kernel")?;
        let (i, kernel) = positive(i, "a kernel size")?;
        let (i, (height, width, channels)) = map_words(i)?;
        let c = Conv {
            height,
            width,
            channels,
            kernel,
        };
        let Some(window) = kernel
            .checked_mul(kernel)
            .and_then(|k| k.checked_mul(channels))
        else {
            return fail(shape_at, "a window whose size fits in memory".into());
        };
        (i, window, Some(c))
    } else {
        let (i, _) = keyword_or(i, "inputs", || {
            if version >= 2 {
                r#""inputs" or "conv""#.to_string()
            } else {
                r#""inputs""#.to_string()
            }
        })?;
        let (i, inputs) = positive(i, "inputs")?;
        (i, inputs, None)
    };
    let (i, _) = keyword(i, "outputs")?;
    let (i, outputs) = positive(i, "outputs")?;
    let (i, kind) = if float {
        (i, Kind::Float)
    } else {
        let act_at = ws(i);
        let acts = || r#""threshold" or "scores""#.to_string();
        let (i, a) = token(act_at, acts)?;
        match a {
            "threshold" => (i, Kind::Threshold),
            "scores" => (i, Kind::Scores),
            _ => return fail(act_at, acts()),
        }
    };
    let (i, _) = eol(i, end_of_line)?;
    Ok((
        i,
        Header {
            kind,
            inputs,
            outputs,
            conv,
        },
    ))
}

/// Value of a hex digit already known to be one.
fn nibble(b: u8) -> u64 {
    (b as char).to_digit(16).map_or(0, u64::from)
}

/// One weight row: exactly `ceil(inputs / 4)` hex digits, most significant first, padding
/// bits zero. Appends `words_for(inputs)` words to `out`.
fn hex_row<'a>(i: &'a str, inputs: usize, out: &mut Vec<u64>) -> PResult<'a, ()> {
    let i = ws(i);
    let what = || format!("a hex weight row of {inputs} bits");
    let (rest, t) = token(i, what)?;
    if let Some((k, _)) = t.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        // A keyword (a row is missing) is reported at its start, a bad digit where it is.
        let keyword = [
            "bias",
            "end",
            "invert",
            "scale",
            "thresholds",
            "layer",
            "weights",
        ]
        .contains(&t);
        let at = if keyword { i } else { i.get(k..).unwrap_or(i) };
        return fail_found(at, what(), describe(t));
    }
    let digits = inputs.div_ceil(4);
    if t.len() != digits {
        return fail_found(
            i,
            format!("a hex weight row of {inputs} bits ({digits} hex digits)"),
            format!("{} ({} hex digits)", describe(t), t.len()),
        );
    }
    let live = inputs - 4 * (digits - 1);
    let lead = t.bytes().next().map_or(0, nibble);
    if lead >> live != 0 {
        return fail_found(
            i,
            format!(
                "a leading hex digit of at most {:x} (the bits above input {} are padding and \
                 must be 0)",
                (1u32 << live) - 1,
                inputs - 1
            ),
            describe(t),
        );
    }
    let base = out.len();
    out.resize(base + words_for(inputs), 0);
    for (j, b) in t.bytes().rev().enumerate() {
        let bit = 4 * j;
        if let Some(w) = out.get_mut(base + bit / WORD_BITS) {
            *w |= nibble(b) << (bit % WORD_BITS);
        }
    }
    eol(rest, || "end of line after the weight row".into())
}

/// `invert 0101...`: one direction bit per neuron.
fn invert_line<'a>(i: &'a str, outputs: usize, out: &mut Vec<bool>) -> PResult<'a, ()> {
    let (i, _) = keyword(i, "invert")?;
    let i = ws(i);
    let what = || format!("{outputs} direction bits (one 0 or 1 per neuron)");
    let (rest, t) = token(i, what)?;
    if let Some((k, _)) = t.char_indices().find(|&(_, c)| c != '0' && c != '1') {
        return fail_found(i.get(k..).unwrap_or(i), what(), describe(t));
    }
    if t.len() != outputs {
        return fail_found(i, what(), format!("{} ({} bits)", describe(t), t.len()));
    }
    out.extend(t.bytes().map(|b| b == b'1'));
    eol(rest, || "end of line after the direction bits".into())
}

/// A line consisting of the single word `kw`.
fn word_line<'a>(i: &'a str, kw: &str) -> PResult<'a, ()> {
    let (i, _) = keyword(i, kw)?;
    eol(i, end_of_line)
}

// ------------------------------------------------------------------------------------------
// Reading: lines
// ------------------------------------------------------------------------------------------

/// One significant line (not blank, not only a comment).
#[derive(Clone, Copy)]
struct Line<'a> {
    /// 1-based line number.
    no: usize,
    /// The line without its line break.
    text: &'a str,
}

impl<'a> Line<'a> {
    fn error(&self, e: PErr<'a>) -> FormatError {
        let offset = self.text.len().saturating_sub(e.at.len());
        let column = self
            .text
            .get(..offset)
            .map_or(offset, |s| s.chars().count())
            + 1;
        FormatError {
            line: self.no,
            column,
            found: e.found.unwrap_or_else(|| describe(e.at)),
            expected: e.expected,
        }
    }

    /// Runs a line parser over the whole line.
    fn run<T>(self, p: impl FnOnce(&'a str) -> PResult<'a, T>) -> Result<T, FormatError> {
        match p(self.text) {
            Ok((_, v)) => Ok(v),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(self.error(e)),
            Err(nom::Err::Incomplete(_)) => Err(FormatError {
                line: self.no,
                column: 1,
                expected: "a complete line".into(),
                found: "end of line".into(),
            }),
        }
    }

    /// True when the line's first word is `kw`.
    fn starts_with_word(&self, kw: &str) -> bool {
        ws(self.text).split(is_space).next() == Some(kw)
    }
}

/// The significant lines of a text and a read position.
struct Src<'a> {
    lines: Vec<Line<'a>>,
    next: usize,
    /// Line and column just past the last character.
    eof: (usize, usize),
}

impl<'a> Src<'a> {
    fn new(text: &'a str) -> Self {
        let mut lines = Vec::new();
        let mut eof = (1, 1);
        for (k, raw) in text.split('\n').enumerate() {
            eof = (k + 1, raw.chars().count() + 1);
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let body = ws(line);
            if !body.is_empty() && !body.starts_with('#') {
                lines.push(Line {
                    no: k + 1,
                    text: line,
                });
            }
        }
        Src {
            lines,
            next: 0,
            eof,
        }
    }

    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.next).copied()
    }

    /// The next significant line, or an end-of-file error saying what was expected.
    fn next(&mut self, what: impl FnOnce() -> String) -> Result<Line<'a>, FormatError> {
        match self.peek() {
            Some(l) => {
                self.next += 1;
                Ok(l)
            }
            None => Err(FormatError {
                line: self.eof.0,
                column: self.eof.1,
                expected: what(),
                found: "end of file".into(),
            }),
        }
    }
}

/// The first `layer N` mentioned in a [`Model::check`] message.
fn layer_in_message(msg: &str) -> Option<usize> {
    msg.match_indices("layer ").find_map(|(k, m)| {
        let rest = msg.get(k + m.len()..)?;
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest.get(..end)?.parse().ok()
    })
}

/// Parses `.fcm` text and checks the model ([`Model::check`]); a failed check is reported at
/// the header line of the offending layer (line 1 when no layer is named).
pub fn parse(text: &str) -> Result<Model, FormatError> {
    let mut src = Src::new(text);
    let version = src
        .next(|| format!("the header \"{MAGIC} {VERSION}\""))?
        .run(header_line)?;
    let (width, height, channels, pixel_bits) =
        src.next(|| r#"the "input" line"#.into())?.run(input_line)?;
    let pixels = width * height * channels; // checked for overflow by input_line
    let encoding = src
        .next(|| r#"the "encoding" line"#.into())?
        .run(|i| encoding_line(i, pixel_bits, pixels))?;
    let input = InputSpec {
        width,
        height,
        channels,
        pixel_bits,
        encoding,
    };

    let mut meta = Metadata::default();
    let mut seen = BTreeSet::new();
    while let Some(line) = src.peek().filter(|l| l.starts_with_word("meta")) {
        src.next += 1;
        line.run(|i| meta_line(i, &mut meta, &mut seen))?;
    }

    let mut layers = Vec::new();
    let mut layer_lines = Vec::new();
    while layers.is_empty() || src.peek().is_some() {
        let n = layers.len() + 1;
        let what = if n == 1 {
            r#""meta" or "layer""#
        } else {
            r#""layer" or end of file"#
        };
        let line = src.next(|| what.to_string())?;
        let h = line.run(|i| layer_header(i, n, what, version))?;
        layer_lines.push(line.no);
        if let Kind::Pool(p) = h.kind {
            src.next(|| r#""end""#.into())?
                .run(|i| word_line(i, "end"))?;
            layers.push(Layer::MaxPool(p));
            continue;
        }
        src.next(|| r#""weights""#.into())?
            .run(|i| word_line(i, "weights"))?;
        let (inputs, outputs) = (h.inputs, h.outputs);
        let layer = if h.kind == Kind::Float {
            let mut weights = Vec::new();
            for r in 0..outputs {
                src.next(|| format!("float weight row {} of {outputs}", r + 1))?
                    .run(|i| numbers(i, inputs, "an f32 weight", "weights", &mut weights))?;
            }
            let mut scale = Vec::new();
            src.next(|| r#""scale""#.into())?.run(|i| {
                let (i, _) = keyword(i, "scale")?;
                numbers(i, outputs, "an f32 scale", "scales", &mut scale)
            })?;
            let mut shift = Vec::new();
            src.next(|| r#""shift""#.into())?.run(|i| {
                let (i, _) = keyword(i, "shift")?;
                numbers(i, outputs, "an f32 shift", "shifts", &mut shift)
            })?;
            Layer::Float(FloatLayer {
                inputs,
                outputs,
                weights,
                scale,
                shift,
                conv: h.conv,
            })
        } else {
            let mut words = Vec::new();
            for r in 0..outputs {
                src.next(|| format!("hex weight row {} of {outputs}", r + 1))?
                    .run(|i| hex_row(i, inputs, &mut words))?;
            }
            // Allocated only now, from rows actually present in the text.
            let mut weights = BitMatrix::zeros(outputs, inputs);
            for (r, row) in words.chunks_exact(words_for(inputs)).enumerate() {
                weights.set_row(r, row);
            }
            let activation = if h.kind == Kind::Threshold {
                let mut thresholds = Vec::new();
                src.next(|| r#""thresholds""#.into())?.run(|i| {
                    let (i, _) = keyword(i, "thresholds")?;
                    numbers(
                        i,
                        outputs,
                        "an integer threshold",
                        "thresholds",
                        &mut thresholds,
                    )
                })?;
                let mut invert = Vec::new();
                src.next(|| r#""invert""#.into())?
                    .run(|i| invert_line(i, outputs, &mut invert))?;
                Activation::Threshold { thresholds, invert }
            } else {
                let mut scale = Vec::new();
                if version >= 3
                    && src
                        .peek()
                        .is_some_and(|l| l.text.trim_start().starts_with("scale"))
                {
                    src.next(|| r#""scale""#.into())?.run(|i| {
                        let (i, _) = keyword(i, "scale")?;
                        numbers(
                            i,
                            outputs,
                            "a positive integer score scale",
                            "scales",
                            &mut scale,
                        )
                    })?;
                }
                let mut bias = Vec::new();
                src.next(|| r#""bias""#.into())?.run(|i| {
                    let (i, _) = keyword(i, "bias")?;
                    numbers(i, outputs, "an integer score offset", "offsets", &mut bias)
                })?;
                Activation::Scores { bias, scale }
            };
            Layer::Binary(BinaryLayer {
                inputs,
                outputs,
                weights,
                activation,
                conv: h.conv,
            })
        };
        src.next(|| r#""end""#.into())?
            .run(|i| word_line(i, "end"))?;
        layers.push(layer);
    }

    let model = Model {
        input,
        layers,
        meta,
    };
    model.check().map_err(|e| FormatError {
        line: layer_in_message(&e.0)
            .and_then(|n| layer_lines.get(n.wrapping_sub(1)))
            .copied()
            .unwrap_or(1),
        column: 1,
        expected: "a consistent model".into(),
        found: e.0,
    })?;
    Ok(model)
}

// ------------------------------------------------------------------------------------------
// Files
// ------------------------------------------------------------------------------------------

/// Writes the model to `path` atomically: into a temporary file in the same directory, then
/// renamed over `path`.
pub fn save(model: &Model, path: &Path) -> Result<(), FileError> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = path.with_file_name(tmp_name);
    let text = to_string(model);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// Reads and parses a model file.
pub fn load(path: &Path) -> Result<Model, FileError> {
    let bytes = std::fs::read(path).map_err(|source| FileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |source| FileError::Format {
        path: path.to_path_buf(),
        source,
    };
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let good = std::str::from_utf8(good).unwrap_or_default();
            let last = good.rsplit('\n').next().unwrap_or_default();
            return Err(format(FormatError {
                line: good.matches('\n').count() + 1,
                column: last.chars().count() + 1,
                expected: "UTF-8 text".into(),
                found: bytes
                    .get(e.valid_up_to())
                    .map_or("end of file".into(), |b| format!("byte 0x{b:02x}")),
            }));
        }
    };
    parse(text).map_err(format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::train::rng::splitmix as next;

    fn random_binary(encoding: Encoding, pixel_bits: u8, widths: &[usize], seed: u64) -> Model {
        let mut s = seed;
        let input = InputSpec {
            width: widths[0],
            height: 1,
            channels: 1,
            pixel_bits,
            encoding,
        };
        let mut n_in = input.encoded_inputs();
        let mut layers = Vec::new();
        for (k, &n_out) in widths[1..].iter().enumerate() {
            let mut weights = BitMatrix::zeros(n_out, n_in);
            for r in 0..n_out {
                for c in 0..n_in {
                    weights.set(r, c, next(&mut s) & 1 == 1);
                }
            }
            let mut int = || (next(&mut s) % 2001) as i32 - 1000;
            let activation = if k + 2 == widths.len() {
                let bias = (0..n_out).map(|_| int()).collect();
                // Per-class scales one time in two.
                let scale = if next(&mut s) & 1 == 1 {
                    (0..n_out)
                        .map(|_| 1 + (next(&mut s) % 300) as u32)
                        .collect()
                } else {
                    Vec::new()
                };
                Activation::Scores { bias, scale }
            } else {
                Activation::Threshold {
                    thresholds: (0..n_out).map(|_| int()).collect(),
                    invert: (0..n_out).map(|_| next(&mut s) & 1 == 1).collect(),
                }
            };
            layers.push(Layer::Binary(BinaryLayer {
                conv: None,
                inputs: n_in,
                outputs: n_out,
                weights,
                activation,
            }));
            n_in = n_out;
        }
        let mut extra = BTreeMap::new();
        extra.insert("epochs".to_string(), "10".to_string());
        extra.insert("seed".to_string(), "reserved name as an extra".to_string());
        extra.insert(
            "with space".to_string(),
            "tab\tquote\" back\\slash # hash".to_string(),
        );
        extra.insert(String::new(), "line\nbreak\r".to_string());
        extra.insert("empty".to_string(), String::new());
        Model {
            input,
            layers,
            meta: Metadata {
                dataset: "fashion-mnist \"v2\"".into(),
                optimizer: "flip".into(),
                seed: u64::MAX,
                test_accuracy: Some(0.8831),
                extra,
            },
        }
    }

    fn small() -> Model {
        random_binary(Encoding::Threshold(7), 4, &[9, 6, 3], 1)
    }

    fn err(text: &str) -> FormatError {
        match parse(text) {
            Ok(_) => panic!("parsed:\n{text}"),
            Err(e) => e,
        }
    }

    /// Text of `small()` with line `line` (1-based) replaced.
    fn edit(line: usize, new: &str) -> String {
        let text = to_string(&small());
        let mut lines: Vec<&str> = text.lines().collect();
        lines[line - 1] = new;
        lines.join("\n") + "\n"
    }

    fn line_of(text: &str, prefix: &str) -> usize {
        text.lines().position(|l| l.starts_with(prefix)).unwrap() + 1
    }

    #[test]
    fn binary_models_round_trip() {
        for (enc, bits) in [
            (Encoding::BitPlanes(3), 5),
            (Encoding::Thermometer(vec![4, 8, 12]), 5),
            (Encoding::Threshold(128), 8),
        ] {
            let m = random_binary(enc, bits, &[37, 13, 5, 3], 42);
            m.check().unwrap();
            let text = to_string(&m);
            let back = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, m);
            assert_eq!(to_string(&back), text);
        }
        // no accuracy, no extras
        let mut m = small();
        m.meta = Metadata::default();
        assert_eq!(parse(&to_string(&m)).unwrap(), m);
        assert!(!to_string(&m).contains("test_accuracy"));
    }

    #[test]
    fn hex_rows_read_as_verilog_literals() {
        // 6 inputs, bits 0 and 5 set: 6'h21
        let mut m = small();
        let mut w = BitMatrix::zeros(1, 6);
        w.set(0, 0, true);
        w.set(0, 5, true);
        m.input.width = 6;
        m.layers = vec![Layer::Binary(BinaryLayer {
            conv: None,
            inputs: 6,
            outputs: 1,
            weights: w,
            activation: Activation::Scores {
                bias: vec![-2],
                scale: Vec::new(),
            },
        })];
        let text = to_string(&m);
        assert!(text.contains("\nweights\n21\nbias -2\nend\n"), "{text}");
        assert_eq!(parse(&text).unwrap(), m);
        // a row spanning words: bit 64 of 68 inputs is the lowest bit of the leading digit
        let mut w = BitMatrix::zeros(1, 68);
        w.set(0, 64, true);
        w.set(0, 3, true);
        let mut row = String::new();
        push_hex_row(&mut row, w.row(0), 68);
        assert_eq!(row, format!("1{}8", "0".repeat(15)));
    }

    #[test]
    fn float_models_round_trip_bit_for_bit() {
        let special = [
            f32::from_bits(1),
            f32::MIN_POSITIVE / 3.0,
            -0.0,
            0.0,
            1e38,
            -1e38,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            f32::EPSILON,
            0.1,
            1.0 / 3.0,
            -7.5,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        let mut s = 9u64;
        let mut pick = || {
            let k = next(&mut s);
            if k.is_multiple_of(3) {
                special[(k / 3) as usize % special.len()]
            } else {
                f32::from_bits((k >> 32) as u32)
            }
        };
        let mut layers = Vec::new();
        for (i, o) in [(10, 7), (7, 2)] {
            layers.push(Layer::Float(FloatLayer {
                conv: None,
                inputs: i,
                outputs: o,
                weights: (0..i * o).map(|_| pick()).collect(),
                scale: (0..o).map(|_| pick()).collect(),
                shift: (0..o).map(|_| pick()).collect(),
            }));
        }
        let Layer::Float(first) = &mut layers[0] else {
            unreachable!()
        };
        first.weights[..special.len()].copy_from_slice(&special);
        let m = Model {
            input: InputSpec {
                width: 5,
                height: 2,
                channels: 1,
                pixel_bits: 8,
                encoding: Encoding::Threshold(0),
            },
            layers,
            meta: Metadata {
                test_accuracy: Some(1e-300),
                ..Metadata::default()
            },
        };
        let text = to_string(&m);
        let back = parse(&text).unwrap();
        let bits = |m: &Model| -> Vec<u32> {
            m.layers
                .iter()
                .flat_map(|l| match l {
                    Layer::Float(f) => f.weights.iter().chain(&f.scale).chain(&f.shift),
                    Layer::Binary(_) | Layer::MaxPool(_) => unreachable!(),
                })
                .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
                .collect()
        };
        assert_eq!(bits(&back), bits(&m));
        assert_eq!(back.meta, m.meta);
        assert_eq!(to_string(&back), text);
    }

    #[test]
    fn header_errors() {
        let e = err("flipchip-modle 1\n");
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.expected.contains("flipchip-model"), "{e}");
        assert_eq!(e.found, "\"flipchip-modle\"");

        let e = err("# a comment\n\nflipchip-model 4\n");
        assert_eq!((e.line, e.column), (3, 16));
        assert_eq!(e.expected, "flipchip-model version 1 to 3");
        assert_eq!(
            e.to_string(),
            "line 3, column 16: expected flipchip-model version 1 to 3, found \"4\""
        );

        let e = err("");
        assert_eq!((e.line, e.column, e.found.as_str()), (1, 1, "end of file"));

        let e = err(&edit(2, "input width 9 height 1 channels 1 pixel_bits 9"));
        assert_eq!((e.line, e.column), (2, 46));
        let e = err(&edit(3, "encoding bitplanes 5"));
        assert_eq!((e.line, e.column), (3, 20));
        assert!(e.expected.contains("bit planes must be"), "{e}");
        let e = err(&edit(3, "encoding gray 3"));
        assert_eq!((e.line, e.column), (3, 10));
    }

    #[test]
    fn meta_errors() {
        let e = err(&edit(5, "meta dataset \"x\""));
        assert_eq!((e.line, e.column), (5, 6));
        assert_eq!(e.expected, "a meta key not given before");
        let e = err(&edit(6, "meta seed \"-1\""));
        assert_eq!((e.line, e.column), (6, 11));
        let e = err(&edit(6, "meta seed \"1"));
        assert_eq!((e.line, e.column, e.found.as_str()), (6, 13, "end of line"));
        let e = err(&edit(6, r#"meta seed "\x""#));
        assert_eq!((e.line, e.column), (6, 12));
    }

    #[test]
    fn weight_row_errors() {
        let text = to_string(&small());
        // layer 1: 9 inputs -> 3 hex digits, leading digit holds input 8 only
        let row = line_of(&text, "weights") + 1;
        let e = err(&edit(row, "0z1"));
        assert_eq!((e.line, e.column), (row, 2));
        assert_eq!(e.expected, "a hex weight row of 9 bits");
        assert_eq!(e.found, "\"0z1\"");
        // indentation and trailing comments are fine
        assert!(parse(&edit(row, "  001 # comment")).is_ok());
        let e = err(&edit(row, "\t\t0z1"));
        assert_eq!((e.line, e.column), (row, 4));
        // a missing row: the keyword that follows is reported at its start
        let b = line_of(&text, "bias");
        let e = err(&edit(b - 1, "bias 1 2 3"));
        assert_eq!((e.line, e.column), (b - 1, 1));
        assert_eq!(e.found, "\"bias\"");
    }

    #[test]
    fn weight_row_length_and_padding() {
        let text = to_string(&small());
        let row = line_of(&text, "weights") + 1;
        let e = err(&edit(row, "01"));
        assert_eq!((e.line, e.column), (row, 1));
        assert_eq!(e.expected, "a hex weight row of 9 bits (3 hex digits)");
        assert_eq!(e.found, "\"01\" (2 hex digits)");
        let e = err(&edit(row, "0001"));
        assert_eq!(e.found, "\"0001\" (4 hex digits)");
        let e = err(&edit(row, "2ff"));
        assert_eq!((e.line, e.column), (row, 1));
        assert!(
            e.expected.starts_with("a leading hex digit of at most 1"),
            "{e}"
        );
        // upper case is accepted
        let good = edit(row, "1FF");
        assert!(parse(&good).is_ok());
        let e = err(&edit(row, "1ff 0"));
        assert_eq!((e.line, e.column), (row, 5));
    }

    #[test]
    fn activation_errors() {
        let text = to_string(&small());
        let t = line_of(&text, "thresholds");
        let e = err(&edit(t, "thresholds 1 2 3 4 5"));
        assert_eq!((e.line, e.column), (t, 21));
        assert_eq!(e.expected, "an integer threshold (6 of 6)");
        assert_eq!(e.found, "end of line");
        let e = err(&edit(t, "thresholds 1 2 3 4 5 6 7"));
        assert_eq!((e.line, e.column), (t, 24));
        assert_eq!(e.expected, "end of line after 6 thresholds");
        let e = err(&edit(t, "thresholds 1 2 x 4 5 6"));
        assert_eq!((e.line, e.column), (t, 16));
        let e = err(&edit(t + 1, "invert 01010"));
        assert_eq!((e.line, e.column), (t + 1, 8));
        assert_eq!(e.found, "\"01010\" (5 bits)");
        let e = err(&edit(t + 1, "invert 010120"));
        assert_eq!((e.line, e.column), (t + 1, 12));
        let b = line_of(&text, "bias");
        let e = err(&edit(b, "bias 1 2"));
        assert_eq!((e.line, e.column), (b, 9));
    }

    #[test]
    fn structure_errors() {
        let text = to_string(&small());
        // missing end
        let end = line_of(&text, "end");
        let e = err(&edit(end, ""));
        assert_eq!((e.line, e.column), (end + 2, 1));
        assert_eq!(e.expected, "\"end\"");
        assert_eq!(e.found, "\"layer\"");
        // wrong layer number
        let l2 = line_of(&text, "layer 2");
        let e = err(&edit(l2, "layer 3 binary inputs 6 outputs 3 scores"));
        assert_eq!((e.line, e.column), (l2, 7));
        // dimension mismatch between layers, caught by Model::check at the layer's line
        let e = err(&edit(l2, "layer 2 binary inputs 7 outputs 3 scores"));
        assert_eq!((e.line, e.column), (l2, 1));
        assert_eq!(e.found, "layer 2 has 7 inputs but receives 6");
        // thresholds on the last layer
        let b = line_of(&text, "bias");
        let text2 = edit(l2, "layer 2 binary inputs 6 outputs 3 threshold");
        let text2 = text2.replace(
            text.lines().nth(b - 1).unwrap(),
            "thresholds 1 2 3\ninvert 000",
        );
        let e = err(&text2);
        assert_eq!((e.line, e.column), (l2, 1));
        assert_eq!(e.found, "last layer 2 must produce scores, not thresholds");
        // junk after the last layer
        let e = err(&(text.clone() + "junk\n"));
        assert_eq!(e.expected, "\"layer\" or end of file");
        // no layers at all
        let header: String = text.lines().take(7).map(|l| format!("{l}\n")).collect();
        let e = err(&header);
        assert_eq!(e.found, "end of file");
        assert_eq!(e.line, 8);
    }

    #[test]
    fn truncated_files_fail_without_panicking() {
        let text = to_string(&small());
        let complete = text.rfind("end").unwrap() + 3;
        for cut in 0..text.len() {
            let r = parse(&text[..cut]);
            if cut < complete {
                let e = r.expect_err("truncated text parsed");
                assert!(e.line >= 1 && e.column >= 1);
            }
        }
        let first_row = line_of(&text, "weights") + 1;
        let cut: String = text
            .lines()
            .take(first_row)
            .map(|l| format!("{l}\n"))
            .collect();
        let e = err(&cut);
        assert_eq!((e.line, e.column), (first_row + 1, 1));
        assert_eq!(e.expected, "hex weight row 2 of 6");
        assert_eq!(e.found, "end of file");
        // every single-byte corruption fails cleanly or parses to a checked model
        let bytes = text.as_bytes();
        for k in (0..bytes.len()).step_by(3) {
            for b in [b'#', b' ', b'\n', b'"', b'9', b'f', b'-'] {
                let mut t = bytes.to_vec();
                t[k] = b;
                if let Ok(s) = std::str::from_utf8(&t) {
                    if let Ok(m) = parse(s) {
                        m.check().unwrap();
                    }
                }
            }
        }
    }

    #[test]
    fn files_round_trip_and_errors_name_the_path() {
        let dir = std::env::temp_dir().join(format!("flip-format-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.fcm");
        let m = small();
        save(&m, &path).unwrap();
        save(&m, &path).unwrap(); // overwrite
        assert_eq!(load(&path).unwrap(), m);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("model.fcm")]);

        let missing = dir.join("missing.fcm");
        let e = load(&missing).unwrap_err();
        assert!(matches!(e, FileError::Io { .. }));
        assert!(
            e.to_string()
                .starts_with(&format!("{}: ", missing.display())),
            "{e}"
        );

        std::fs::write(&path, "flipchip-model 1\ninput width 1 height 1 channels 1 pixel_bits 8\nencoding threshold 300\n").unwrap();
        let e = load(&path).unwrap_err();
        assert!(matches!(e, FileError::Format { .. }));
        assert!(
            e.to_string()
                .starts_with(&format!("{}: line 3, column 20: expected ", path.display())),
            "{e}"
        );

        std::fs::write(&path, b"flipchip-model 1\n\xff").unwrap();
        let FileError::Format { source, .. } = load(&path).unwrap_err() else {
            panic!()
        };
        assert_eq!(
            (source.line, source.column, source.found.as_str()),
            (2, 1, "byte 0xff")
        );

        assert!(save(&m, &dir.join("no-such-dir").join("m.fcm")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn per_class_scales_round_trip_as_version_3_and_are_checked() {
        let mut m = small();
        let text1 = to_string(&m);
        assert!(text1.starts_with("flipchip-model 1\n"), "{text1}");
        let Some(Layer::Binary(l)) = m.layers.last_mut() else {
            panic!("binary")
        };
        let Activation::Scores { scale, .. } = &mut l.activation else {
            panic!("scores")
        };
        *scale = (1..=l.outputs as u32).map(|c| 7 * c).collect();
        let text = to_string(&m);
        assert!(text.starts_with("flipchip-model 3\n"), "{text}");
        assert!(text.contains("\nscale 7 14 "), "{text}");
        assert_eq!(parse(&text).unwrap(), m);
        // A scale line belongs to version 3.
        let e = err(&text.replace("flipchip-model 3", "flipchip-model 2"));
        assert_eq!(e.line, line_of(&text, "scale"));
        assert_eq!(e.expected, "\"bias\"");
        // Scales are at least 1.
        let zero = text.replace("\nscale 7 ", "\nscale 0 ");
        let e = err(&zero);
        assert!(e.to_string().contains("score scale 0 of class 0"), "{e}");
        // Too few scales.
        let b = line_of(&text, "scale");
        let e = err(&edit(b, "scale 1"));
        assert_eq!(e.line, b);
    }

    #[test]
    fn score_offsets_that_could_overflow_are_refused_at_the_edge() {
        // small(): last layer has 6 one-plane inputs, so its sums reach 6.
        let mut m = small();
        let Some(Layer::Binary(l)) = m.layers.last_mut() else {
            panic!("binary")
        };
        let Activation::Scores { bias, .. } = &mut l.activation else {
            panic!("scores")
        };
        bias[1] = i32::MAX - 6;
        bias[2] = i32::MIN;
        let text = to_string(&m);
        assert_eq!(parse(&text).unwrap(), m);
        // one more and the largest sum of class 1 no longer fits
        let text = text.replace(&format!(" {}", i32::MAX - 6), &format!(" {}", i32::MAX - 5));
        let e = err(&text);
        assert_eq!(e.line, line_of(&text, "layer 2"));
        assert_eq!(
            e.found,
            format!(
                "layer 2: score offset {} of class 1 plus the largest sum 6 overflows a 32-bit score",
                i32::MAX - 5
            )
        );
        let dir = std::env::temp_dir().join(format!("flip-overflow-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big-bias.fcm");
        std::fs::write(&path, &text).unwrap();
        let msg = load(&path).unwrap_err().to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(msg.contains("layer 2: score offset"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sums_that_cannot_fit_32_bits_are_refused() {
        let mut m = random_binary(Encoding::BitPlanes(8), 8, &[3, 2], 1);
        // 255 * inputs must stay below 2^31: fake a first layer wide enough to break it.
        let wide = (i32::MAX as usize) / 255 + 1;
        m.input.width = wide;
        let Layer::Binary(l) = &mut m.layers[0] else {
            panic!("binary")
        };
        l.inputs = wide;
        l.weights = BitMatrix::zeros(2, wide);
        let e = m.check().unwrap_err();
        assert!(e.0.starts_with("layer 1: popcount sums up to"), "{e}");
    }

    /// The example of `docs/model-format.md`, with its worked sum.
    const DOC_EXAMPLE: &str = r#"flipchip-model 1
# 2x2 grey image, top two bits of each pixel as two bit planes
input width 2 height 2 channels 1 pixel_bits 8
encoding bitplanes 2
meta dataset "toy"
meta optimizer "flip"
meta seed "7"
meta test_accuracy "0.75"
meta epochs "3"

layer 1 binary inputs 4 outputs 3 threshold
weights
3
a
f
thresholds 6 4 9
invert 010
end

layer 2 binary inputs 3 outputs 2 scores
weights
5
2
bias 0 -1
end
"#;

    #[test]
    fn documented_example_parses_and_sums_as_described() {
        let m = parse(DOC_EXAMPLE).unwrap();
        let Layer::Binary(l) = &m.layers[0] else {
            panic!("binary example")
        };
        let pixels = [200, 200, 0, 0];
        let mut x = vec![0u64; m.input.encoding.encoded_words(4)];
        m.input.encoding.encode(8, &pixels, &mut x);
        let mut sums = [0i32; 3];
        crate::reference::layer_sums(&l.weights, 4, &x, 2, &mut sums);
        assert_eq!(sums[0], 12);
        assert_eq!(parse(&to_string(&m)).unwrap(), m);
    }

    /// The convolutional example of `docs/model-format.md`, with the sums it describes.
    #[test]
    fn documented_conv_example_computes_as_described() {
        let text = "flipchip-model 2
input width 6 height 6 channels 1 pixel_bits 8
encoding threshold 128

layer 1 binary conv kernel 3 height 6 width 6 channels 1 outputs 2 threshold
weights
1ff
010
thresholds 5 1
invert 00
end

layer 2 maxpool size 2 height 4 width 4 channels 2
end

layer 3 binary inputs 8 outputs 2 scores
weights
0f
f0
bias 0 0
end
";
        let doc = include_str!("../../../docs/model-format.md");
        assert!(doc.contains(text), "the documented example is this text");
        let m = parse(text).unwrap();
        let mut img = [0u8; 36];
        for y in 0..3 {
            for x in 0..3 {
                img[y * 6 + x] = 200;
            }
        }
        assert_eq!(crate::reference::binary_scores(&m, &img), vec![5, 3]);
        assert_eq!(parse(&to_string(&m)).unwrap(), m);
    }

    #[test]
    fn conv_models_round_trip_as_version_2() {
        use crate::model::arch::parse as arch;
        let input = InputSpec {
            width: 9,
            height: 9,
            channels: 2,
            pixel_bits: 8,
            encoding: Encoding::BitPlanes(3),
        };
        let specs = arch("c5k2-p-c6-13-3", input.pixels()).unwrap();
        let mut m = crate::model::random::binary(4, input, &specs, 3);
        // Without per-class scales, which would make it version 3.
        if let Some(Layer::Binary(l)) = m.layers.last_mut() {
            if let Activation::Scores { scale, .. } = &mut l.activation {
                scale.clear();
            }
        }
        let text = to_string(&m);
        assert!(text.starts_with("flipchip-model 2\n"), "{text}");
        assert!(text.contains(
            "layer 1 binary conv kernel 2 height 9 width 9 channels 2 outputs 5 threshold\n"
        ));
        assert!(text.contains("layer 2 maxpool size 2 height 8 width 8 channels 5\nend\n"));
        assert_eq!(parse(&text).unwrap(), m);
        assert_eq!(m.arch(), "c5k2-p-c6-13-3");
        // Dense models stay version 1, which older readers read.
        assert!(to_string(&small()).starts_with("flipchip-model 1\n"));
        // A version-1 file cannot hold a convolution.
        let v1 = text.replacen("flipchip-model 2", "flipchip-model 1", 1);
        let e = parse(&v1).unwrap_err();
        assert_eq!(e.expected, r#""inputs""#, "{e}");
        // Shapes that do not chain are refused at the layer that breaks them.
        let bad = text.replace("height 8 width 8 channels 5", "height 8 width 8 channels 4");
        let e = parse(&bad).unwrap_err();
        assert_eq!(e.found, "layer 2 pools 8x8x4 but receives 8x8x5", "{e}");
    }
}
