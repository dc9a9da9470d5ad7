//! FPGA boards and the bitstream flow behind `flipchip build`.
//!
//! A board is data ([`board::Board`], from `boards/<name>/board.toml` and its constraint file);
//! [`wrapper`] puts a compiled accelerator behind a UART on that board; [`flow`] runs yosys,
//! nextpnr and the bitstream packer and gathers their reports ([`report`]) into `build.json`;
//! [`uart_sim`] runs the whole board top under Verilator with a bit-level UART.

pub mod board;
pub mod flow;
pub mod outreg;
pub mod pll;
pub mod pnr;
pub mod report;
pub mod uart_sim;
pub mod wrapper;

use std::path::PathBuf;

pub use board::Board;

/// Why a board could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// No shipped board has this name and it is not a folder with a `board.toml`.
    #[error("unknown board {name:?} (known: {known}; or give a folder holding board.toml)")]
    Unknown {
        /// The name given.
        name: String,
        /// The shipped boards.
        known: String,
    },
    /// A board file could not be read.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A board file is malformed or disagrees with another.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Neither a PLL setting nor a divider reaches the frequency asked for.
    #[error(
        "{board}: neither a PLL setting nor an even divider turns {from_mhz} MHz into {to_mhz} MHz \
         (within 1%){}",
        below_mhz.map_or(String::new(), |b| format!("; the PLL makes {b:.3} MHz, ask for that"))
    )]
    Pll {
        /// The board.
        board: String,
        /// Board clock.
        from_mhz: f64,
        /// Requested clock.
        to_mhz: f64,
        /// The fastest clock the PLL makes below it, if any.
        below_mhz: Option<f64>,
    },
    /// The design's interface does not fit the wrapper.
    #[error("the board wrapper does not support {0}")]
    Unsupported(String),
}
