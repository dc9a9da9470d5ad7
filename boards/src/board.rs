//! A board as data: `boards/<name>/board.toml` plus the constraint file it names.
//!
//! The constraint file assigns the wrapper's fixed port names (`clk`, `uart_rx`, `uart_tx`,
//! `btn_rst`, `led[i]`) to pins; [`Board::parse`] checks that it agrees with the pins the TOML
//! lists, so the two cannot drift apart silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::BoardError;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The board's FPGA family decides which PLL arithmetic applies and whose LUT costs the
/// compiler's estimates use. Everything else about a family (tool names, arguments, cell names)
/// is data in the board file.
pub use compiler::blocks::Family;

/// The PLL primitive that can derive the core clock from the board clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PllPrimitive {
    /// iCE40 PLL fed straight from a PLL input pad.
    #[serde(rename = "SB_PLL40_PAD")]
    Sb40Pad,
    /// iCE40 PLL fed from the fabric (any clock pin).
    #[serde(rename = "SB_PLL40_CORE")]
    Sb40Core,
    /// ECP5 PLL.
    #[serde(rename = "EHXPLLL")]
    Ehxplll,
}

/// The board oscillator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clock {
    /// Package pin of the oscillator.
    pub pin: String,
    /// Oscillator frequency.
    pub mhz: f64,
    /// PLL used when `--freq` asks for another frequency.
    pub pll: PllPrimitive,
}

/// The USB-serial bridge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uart {
    /// Pin the FPGA receives on (the bridge's TXD).
    pub rx: String,
    /// Pin the FPGA sends on (the bridge's RXD).
    pub tx: String,
    /// Baud rate of the bitstream (8N1).
    pub baud: u32,
}

/// One LED or button.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Io {
    /// Name on the board's silkscreen or schematic.
    pub name: String,
    /// Package pin.
    pub pin: String,
    /// Lit / pressed when the pin is low.
    #[serde(default)]
    pub active_low: bool,
}

/// Which executables and arguments build a bitstream for this board.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tools {
    /// Yosys executables to try, in order.
    pub yosys: Vec<String>,
    /// The yosys synthesis command (`synth_ice40`, `synth_ecp5`).
    pub synth: String,
    /// nextpnr executables to try, in order.
    pub nextpnr: Vec<String>,
    /// Device, package and constraint arguments; `{constraints}` and `{config}` are filled in.
    pub nextpnr_args: Vec<String>,
    /// File name of nextpnr's placed-and-routed output.
    pub config: String,
    /// Bitstream packer executables to try, in order.
    pub pack: Vec<String>,
    /// Packer arguments; `{config}` and `{bitstream}` are filled in.
    pub pack_args: Vec<String>,
    /// File name of the bitstream.
    pub bitstream: String,
    /// How to install the tools (named in the error when one is missing).
    pub install: String,
}

/// Yosys cell names per resource, each with the LUT4s (or units) one cell counts as. A name
/// ending in `*` matches every cell type with that prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cells {
    /// Logic cells (LUT4 and carry cells).
    pub luts: BTreeMap<String, u64>,
    /// Flip-flops.
    pub ffs: BTreeMap<String, u64>,
    /// Block RAMs (EBR).
    pub bram: BTreeMap<String, u64>,
    /// Single-port large RAMs.
    pub spram: BTreeMap<String, u64>,
    /// Multiplier / DSP blocks.
    pub dsp: BTreeMap<String, u64>,
}

/// The configuration SPI flash, from which the wrapper reads weights that live in RAM (iCE40
/// SPRAM) once after power-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flash {
    /// Clock pin (`flash_sck`).
    pub sck: String,
    /// Chip select pin, active low (`flash_cs_n`).
    pub cs_n: String,
    /// FPGA -> flash data pin (`flash_mosi`).
    pub mosi: String,
    /// Flash -> FPGA data pin (`flash_miso`).
    pub miso: String,
    /// Byte address of the weight image, past the bitstream.
    pub offset: u32,
    /// Command that writes the image there: `{image}` and `{offset}` are filled in.
    pub program: String,
}

impl Flash {
    /// The command that writes `image` to the flash at the offset.
    pub fn program_command(&self, image: &str) -> String {
        self.program
            .replace("{offset}", &format!("0x{:x}", self.offset))
            .replace("{image}", image)
    }
}

/// One board, as read from its folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Folder name, used as `--board NAME`.
    pub name: String,
    /// One line for people.
    pub description: String,
    /// FPGA family.
    pub family: Family,
    /// Device as nextpnr spells it (`up5k`, `85k`).
    pub device: String,
    /// Package as nextpnr spells it.
    pub package: String,
    /// File name of the constraint file in the board folder.
    pub constraints: String,
    /// The oscillator.
    pub clock: Clock,
    /// The USB-serial bridge.
    pub uart: Uart,
    /// LEDs, class bit 0 first.
    #[serde(default)]
    pub leds: Vec<Io>,
    /// Button that resets the accelerator.
    #[serde(default)]
    pub reset: Option<Io>,
    /// SPI flash for weights loaded after power-up; boards without it build only designs
    /// whose weights are all ROMs.
    #[serde(default)]
    pub flash: Option<Flash>,
    /// The tool chain.
    pub tools: Tools,
    /// Yosys cell names per resource.
    pub cells: Cells,
    /// nextpnr's cell names per resource in its utilisation report (first present wins).
    pub utilisation: BTreeMap<String, Vec<String>>,
    /// Contents of the constraint file.
    #[serde(skip)]
    pub constraints_text: String,
}

impl Board {
    /// Loads a board: `spec` is a folder holding `board.toml`, or the name of a board shipped
    /// with flipchip ([`names`]).
    pub fn load(spec: &str) -> Result<Board, BoardError> {
        let dir = Path::new(spec);
        if dir.join("board.toml").is_file() {
            return Board::load_dir(dir);
        }
        let Some((_, files)) = embedded::EMBEDDED.iter().find(|(n, _)| *n == spec) else {
            return Err(BoardError::Unknown {
                name: spec.to_string(),
                known: names().join(", "),
            });
        };
        let file = |name: &str| files.iter().find(|(f, _)| *f == name).map(|(_, t)| *t);
        let origin = PathBuf::from(format!("boards/{spec}"));
        let toml = file("board.toml").expect("build.rs embeds only folders with board.toml");
        Board::parse(&origin, toml, |name| {
            file(name)
                .map(str::to_string)
                .ok_or_else(|| BoardError::Io {
                    path: origin.join(name),
                    message: "no such file in the board folder".into(),
                })
        })
    }

    /// Loads a board from a folder on disk.
    pub fn load_dir(dir: &Path) -> Result<Board, BoardError> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read_to_string(&p).map_err(|e| BoardError::Io {
                path: p,
                message: e.to_string(),
            })
        };
        let toml = read("board.toml")?;
        Board::parse(dir, &toml, read)
    }

    /// Parses `board.toml` text; `read` fetches the constraint file it names. `origin` names
    /// the folder in messages.
    pub fn parse(
        origin: &Path,
        toml_text: &str,
        read: impl Fn(&str) -> Result<String, BoardError>,
    ) -> Result<Board, BoardError> {
        let invalid = |message: String| BoardError::Invalid {
            path: origin.join("board.toml"),
            message,
        };
        let mut b: Board = toml::from_str(toml_text).map_err(|e| invalid(e.to_string()))?;
        if b.clock.mhz <= 0.0 || b.uart.baud == 0 {
            return Err(invalid("clock.mhz and uart.baud must be positive".into()));
        }
        if b.leds.is_empty() {
            return Err(invalid(
                "at least one LED is needed to show the class".into(),
            ));
        }
        b.constraints_text = read(&b.constraints)?;
        let pins = parse_constraints(&b.constraints, &b.constraints_text);
        for (port, want) in b.ports() {
            match pins.get(&port) {
                Some(got) if *got == want => {}
                Some(got) => {
                    return Err(BoardError::Invalid {
                        path: origin.join(&b.constraints),
                        message: format!("port {port} is on pin {got}, board.toml says {want}"),
                    })
                }
                None => {
                    return Err(BoardError::Invalid {
                        path: origin.join(&b.constraints),
                        message: format!("port {port} (pin {want} in board.toml) is not assigned"),
                    })
                }
            }
        }
        Ok(b)
    }

    /// Every port of `board_top` with the pin board.toml gives it.
    pub fn ports(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("clk".to_string(), self.clock.pin.clone()),
            ("uart_rx".to_string(), self.uart.rx.clone()),
            ("uart_tx".to_string(), self.uart.tx.clone()),
        ];
        if let Some(r) = &self.reset {
            v.push(("btn_rst".to_string(), r.pin.clone()));
        }
        for (i, l) in self.leds.iter().enumerate() {
            v.push((format!("led[{i}]"), l.pin.clone()));
        }
        if let Some(f) = &self.flash {
            for (port, pin) in [
                ("flash_sck", &f.sck),
                ("flash_cs_n", &f.cs_n),
                ("flash_mosi", &f.mosi),
                ("flash_miso", &f.miso),
            ] {
                v.push((port.to_string(), pin.clone()));
            }
        }
        v
    }

    /// The constraint file's extension (`pcf`, `lpf`).
    pub fn constraints_kind(&self) -> &str {
        Path::new(&self.constraints)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
    }
}

/// Port -> pin assignments of a `.pcf` (`set_io [-flags] PORT PIN`) or `.lpf`
/// (`LOCATE COMP "PORT" SITE "PIN";`) file.
pub fn parse_constraints(file_name: &str, text: &str) -> BTreeMap<String, String> {
    let mut pins = BTreeMap::new();
    let lpf = file_name.ends_with(".lpf");
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if lpf {
            let words: Vec<&str> = line
                .trim_end_matches(';')
                .split_whitespace()
                .map(|w| w.trim_matches('"'))
                .collect();
            if let ["LOCATE", "COMP", port, "SITE", pin] = words[..] {
                pins.insert(port.to_string(), pin.to_string());
            }
        } else {
            let words: Vec<&str> = line
                .split_whitespace()
                .filter(|w| !w.starts_with('-'))
                .collect();
            if let ["set_io", port, pin] = words[..] {
                pins.insert(port.to_string(), pin.to_string());
            }
        }
    }
    pins
}

/// Names of the boards shipped with flipchip.
pub fn names() -> Vec<String> {
    embedded::EMBEDDED
        .iter()
        .map(|(n, _)| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_boards_load_and_agree_with_their_constraints() {
        assert!(names().contains(&"icebreaker".to_string()));
        assert!(names().contains(&"ulx3s".to_string()));
        for n in names() {
            let b = Board::load(&n).unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(b.name, n);
        }
        let ice = Board::load("icebreaker").unwrap();
        assert_eq!(ice.family, Family::Ice40);
        assert_eq!(ice.clock.mhz, 12.0);
        assert_eq!(ice.leds.len(), 7);
        let ulx = Board::load("ulx3s").unwrap();
        assert_eq!(ulx.family, Family::Ecp5);
        assert_eq!(ulx.uart.rx, "M1");
    }

    #[test]
    fn unknown_board_names_the_known_ones() {
        let e = Board::load("nosuchboard").unwrap_err().to_string();
        assert!(e.contains("icebreaker") && e.contains("ulx3s"), "{e}");
    }

    #[test]
    fn a_pin_disagreement_is_reported() {
        let (_, files) = embedded::EMBEDDED
            .iter()
            .find(|(n, _)| *n == "icebreaker")
            .unwrap();
        let toml = files.iter().find(|f| f.0 == "board.toml").unwrap().1;
        let pcf = files.iter().find(|f| f.0 == "icebreaker.pcf").unwrap().1;
        let bad = pcf.replace("uart_tx   9", "uart_tx   8");
        let e = Board::parse(Path::new("x"), toml, |_| Ok(bad.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("uart_tx") && e.contains('8'), "{e}");
    }
}
