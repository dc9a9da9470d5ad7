//! `board_top.v`: the accelerator behind a UART.
//!
//! Protocol: the host sends a frame as the bytes of its input beats, in the order the
//! accelerator reads them, each beat as `ceil(input_width / 8)` bytes, the lowest first: for a
//! design taking pixel bytes (`input_format` `pixels`) that is one byte per pixel (the wrapper
//! packs `input_width / 8` of them into a beat, the earliest in the low byte); for packed input
//! (`packed`) the pixels binarised with the model's threshold, 8 to a byte, the earliest in
//! bit 0 (a 784-pixel frame is 98 bytes when a beat is a multiple of 8 pixels; otherwise each
//! beat's last byte is padded with zeros above its pixels). For every frame the board sends back
//! one byte, the class. Frames may follow each other back to back. A frame left incomplete for [`IDLE_RESET_BITS`] bit times
//! (about 0.1 s at 115200 baud) resets the accelerator, so the next byte starts a new frame.

use std::fmt::Write as _;

use serde::Serialize;
use sim::trace::{InputFormat, Ports, MAX_INPUT_BITS};

use crate::board::Board;
use crate::pll::{self, Pll};
use crate::BoardError;

/// Name of the generated board-level top module.
pub const TOP: &str = "board_top";

/// Silence (in bit times) after which a partial frame is dropped.
pub const IDLE_RESET_BITS: u64 = 11_520;

/// The board-level primitives the wrapper instantiates: `(file name, Verilog)`.
pub const RTL: &[(&str, &str)] = &[
    ("uart_rx.v", include_str!("../../rtl/uart_rx.v")),
    ("uart_tx.v", include_str!("../../rtl/uart_tx.v")),
    (
        "spi_flash_reader.v",
        include_str!("../../rtl/spi_flash_reader.v"),
    ),
];

/// Clocks the flash gets to wake from deep power-down before the read (10 us; it needs 3).
pub fn wake_cycles(core_mhz: f64) -> u64 {
    (core_mhz * 10.0).ceil() as u64 + 1
}

/// Clocks from the end of the power-on reset until the last weight word is loaded (the
/// reader's schedule: 113 + wake cycles to the first word, 32 per word).
pub fn load_cycles(core_mhz: f64, words: u64) -> u64 {
    if words == 0 {
        0
    } else {
        113 + wake_cycles(core_mhz) + 32 * words + 2
    }
}

/// How the core is clocked.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Clocking {
    /// The board oscillator.
    pub board_mhz: f64,
    /// The core clock (the PLL's output, or the oscillator).
    pub core_mhz: f64,
    /// The PLL, when the core clock differs from the oscillator.
    pub pll: Option<Pll>,
    /// Divide the oscillator by this even number in the fabric instead, for clocks below the
    /// PLL's range (the iCE40 PLL stops at 16 MHz).
    pub divider: Option<u32>,
    /// UART baud rate.
    pub baud: u32,
    /// Core clocks per UART bit (`core / baud`, rounded).
    pub clks_per_bit: u64,
}

impl Clocking {
    /// The clocking for `freq` (MHz; `None` = the board clock).
    pub fn new(board: &Board, freq: Option<f64>) -> Result<Clocking, BoardError> {
        let board_mhz = board.clock.mhz;
        let Some(f) = freq.filter(|f| (f - board_mhz).abs() > 1e-6) else {
            return Ok(Clocking::with(board_mhz, board_mhz, None, board.uart.baud));
        };
        if let Some(pll) = pll::compute(board.clock.pll, board_mhz, f) {
            let core_mhz = pll.output_mhz;
            return Ok(Clocking::with(
                board_mhz,
                core_mhz,
                Some(pll),
                board.uart.baud,
            ));
        }
        // Below the PLL's range: an even divider of the oscillator, if one lands within 1%.
        let n = (board_mhz / f / 2.0).round() * 2.0;
        if (2.0..=64.0).contains(&n) && (board_mhz / n - f).abs() <= f * 0.01 {
            let mut c = Clocking::with(board_mhz, board_mhz / n, None, board.uart.baud);
            c.divider = Some(n as u32);
            return Ok(c);
        }
        Err(BoardError::Pll {
            board: board.name.clone(),
            from_mhz: board_mhz,
            to_mhz: f,
            below_mhz: pll::nearest_below(board.clock.pll, board_mhz, f),
        })
    }

    /// A clocking without PLL at `core_mhz`, for simulation.
    pub fn simulation(board: &Board) -> Clocking {
        Clocking::with(board.clock.mhz, board.clock.mhz, None, board.uart.baud)
    }

    fn with(board_mhz: f64, core_mhz: f64, pll: Option<Pll>, baud: u32) -> Clocking {
        let clks_per_bit = ((core_mhz * 1e6 / f64::from(baud)).round() as u64).max(4);
        Clocking {
            board_mhz,
            core_mhz,
            pll,
            divider: None,
            baud,
            clks_per_bit,
        }
    }
}

fn bits_for(n: u64) -> u32 {
    (64 - n.leading_zeros()).max(1)
}

/// Verilog that assembles received bytes into input beats: declarations, reset and the step
/// taken on each received byte (`beat_done`: this byte completes a beat).
struct Packer {
    decl: String,
    reset: String,
    step: String,
}

impl Packer {
    fn new(iw: u32, per_beat: u64, format: InputFormat) -> Packer {
        let what = match format {
            InputFormat::Pixels => "pixel bytes",
            InputFormat::Packed => "bytes of 8 packed pixels",
        };
        if per_beat == 1 {
            return Packer {
                decl: "    wire beat_done = 1'b1;\n".into(),
                reset: String::new(),
                step: format!(
                    "                s_valid <= 1'b1;\n                s_data <= rx_data[{}:0];\n",
                    iw - 1
                ),
            };
        }
        // The beat's earlier bytes, the earliest lowest; the last byte goes on top, and bits
        // above the beat's width (the padding of a packed beat) are dropped.
        let held = 8 * (per_beat as u32 - 1);
        let bw = bits_for(per_beat - 1);
        let shift = if held > 8 {
            format!("{{rx_data, rx_pack[{}:8]}}", held - 1)
        } else {
            "rx_data".to_string()
        };
        let (beat, pad) = if iw == held + 8 {
            ("{rx_data, rx_pack}".to_string(), String::new())
        } else {
            (
                format!("rx_beat[{}:0]", iw - 1),
                format!(
                    "    wire [{}:0] rx_beat = {{rx_data, rx_pack}};\n    \
                     /* verilator lint_off UNUSEDSIGNAL */\n    wire [{}:0] rx_pad = rx_beat[{}:{iw}];\n    \
                     /* verilator lint_on UNUSEDSIGNAL */\n",
                    held + 7,
                    held + 7 - iw,
                    held + 7
                ),
            )
        };
        Packer {
            decl: format!(
                "    // {per_beat} {what} per beat.\n    reg [{}:0] rx_pack;\n    \
                 reg [{}:0] beat_bytes;\n    wire beat_done = (beat_bytes == {bw}'d{});\n{pad}",
                held - 1,
                bw - 1,
                per_beat - 1
            ),
            reset: format!("            beat_bytes <= {bw}'d0;\n"),
            step: format!(
                "                if (beat_done) begin\n                    beat_bytes <= {bw}'d0;\n                    \
                 s_valid <= 1'b1;\n                    s_data <= {beat};\n                \
                 end else begin\n                    beat_bytes <= beat_bytes + {bw}'d1;\n                    \
                 rx_pack <= {shift};\n                end\n"
            ),
        }
    }
}

/// The Verilog of `board_top` for a design with `ports` on `board`.
pub fn board_top(board: &Board, ports: &Ports, clk: &Clocking) -> Result<String, BoardError> {
    if ports.input_width as usize > MAX_INPUT_BITS {
        return Err(BoardError::Unsupported(format!(
            "input beats of {} bits; the UART wrapper packs bytes into beats of at most \
             {MAX_INPUT_BITS} bits",
            ports.input_width
        )));
    }
    if ports.class_width > 8 {
        return Err(BoardError::Unsupported(format!(
            "{} classes do not fit the one result byte",
            ports.classes
        )));
    }
    let flash = match (&board.flash, ports.load_words) {
        (_, 0) => None,
        (Some(f), _) => Some(f),
        (None, n) => {
            return Err(BoardError::Unsupported(format!(
                "a design that loads {n} weight words into RAM at power-up: board {} has no \
                 [flash] to read them from; keep every layer's weights in ROM for this board",
                board.name
            )))
        }
    };
    let iw = ports.input_width;
    let cw = ports.class_width;
    let per_beat = u64::from(iw.div_ceil(8));
    let frame = u64::from(ports.beats_per_frame) * per_beat;
    let fw = bits_for(frame.saturating_sub(1));
    let n_leds = board.leds.len();
    let idle_clks = IDLE_RESET_BITS * clk.clks_per_bit;

    let pack = Packer::new(iw, per_beat, ports.input_format);
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "// Generated by flipchip build; do not edit.");
    let _ = writeln!(w, "// Board: {} ({}).", board.name, board.description);
    let _ = writeln!(
        w,
        "// Clock: {} MHz on pin {} -> core {:.3} MHz ({}).",
        board.clock.mhz,
        board.clock.pin,
        clk.core_mhz,
        match (&clk.pll, clk.divider) {
            (Some(_), _) => "PLL".to_string(),
            (None, Some(n)) => format!("divided by {n} in the fabric"),
            (None, None) => "no PLL".to_string(),
        }
    );
    let _ = writeln!(
        w,
        "// UART {} 8N1 on rx pin {} / tx pin {}, CLKS_PER_BIT core clocks per bit.",
        clk.baud, board.uart.rx, board.uart.tx
    );
    let sent = match ports.input_format {
        InputFormat::Pixels => "one per pixel".to_string(),
        InputFormat::Packed => {
            format!("{iw} binarised pixels per beat, 8 to a byte, the earliest in bit 0")
        }
    };
    let _ = writeln!(
        w,
        "// Protocol: send {frame} bytes per frame ({sent}, {per_beat} per beat); receive one byte per frame, the class."
    );
    let _ = writeln!(
        w,
        "// A partial frame followed by IDLE_RESET_CLKS clocks of silence resets the accelerator."
    );
    let _ = writeln!(
        w,
        "// LEDs: led[0..{cw}) = last class in binary; led[{cw}] = frame being received; led[{}] = \
         UART overrun or framing error since reset (where the board has that many LEDs).",
        cw + 1
    );
    let reset_comment = board.reset.as_ref().map_or("none".to_string(), |r| {
        format!(
            "{} on pin {}{}",
            r.name,
            r.pin,
            if r.active_low { ", active low" } else { "" }
        )
    });
    let _ = writeln!(
        w,
        "// Reset: power-on and PLL lock; button {reset_comment}."
    );
    if let Some(f) = flash {
        let _ = writeln!(
            w,
            "// Weights: {} words of 16 bits read from the SPI flash at 0x{:x} after power-on (write them\n\
             // with `{}`); frames wait until they are loaded, and led[{}] lights then.",
            ports.load_words,
            f.offset,
            f.program_command(crate::flow::files::FLASH_IMAGE),
            cw + 2
        );
    }
    let _ = writeln!(w, "module {TOP} #(");
    let _ = writeln!(
        w,
        "    parameter integer CLKS_PER_BIT = {},\n    parameter integer IDLE_RESET_CLKS = {idle_clks}",
        clk.clks_per_bit
    );
    let _ = writeln!(w, ") (");
    let _ = writeln!(w, "    input  wire clk,");
    let _ = writeln!(w, "    input  wire uart_rx,");
    let _ = writeln!(w, "    output wire uart_tx,");
    if board.reset.is_some() {
        let _ = writeln!(w, "    input  wire btn_rst,");
    }
    if flash.is_some() {
        let _ = writeln!(
            w,
            "    output wire flash_sck,\n    output wire flash_cs_n,\n    output wire flash_mosi,\n    \
             input  wire flash_miso,"
        );
    }
    let _ = writeln!(w, "    output wire [{}:0] led", n_leds - 1);
    let _ = writeln!(w, ");");

    // Clock.
    let _ = writeln!(w, "    wire core_clk;\n    wire pll_locked;");
    match (&clk.pll, clk.divider) {
        (Some(p), _) => w.push_str(&p.verilog()),
        (None, Some(n)) => {
            let cw = bits_for(u64::from(n / 2 - 1));
            let _ = writeln!(
                w,
                "    // The oscillator divided by {n}: a toggle every {half} cycles, on a global \
                 clock net.\n    reg [{cwm1}:0] clk_div_count = {cw}'d0;\n    \
                 reg clk_div = 1'b0;\n    always @(posedge clk) begin\n        \
                 if (clk_div_count == {cw}'d{last}) begin\n            \
                 clk_div_count <= {cw}'d0;\n            clk_div <= !clk_div;\n        \
                 end else clk_div_count <= clk_div_count + {cw}'d1;\n    end\n    \
                 assign core_clk = clk_div;\n    assign pll_locked = 1'b1;",
                half = n / 2,
                cwm1 = cw - 1,
                last = n / 2 - 1,
            );
        }
        (None, None) => {
            let _ = writeln!(
                w,
                "    assign core_clk = clk;\n    assign pll_locked = 1'b1;"
            );
        }
    }

    // Reset.
    let _ = writeln!(
        w,
        "\n    // Reset for 15 cycles after configuration and PLL lock, and while the button is held.\n    \
         reg [3:0] por_count = 4'd0;\n    wire por_done = &por_count;\n    reg sys_rst = 1'b0;"
    );
    let pressed = match &board.reset {
        Some(r) => {
            let idle = if r.active_low { "1'b1" } else { "1'b0" };
            let _ = writeln!(
                w,
                "    reg btn_meta = {idle};\n    reg btn_sync = {idle};\n    \
                 always @(posedge core_clk) begin\n        btn_meta <= btn_rst;\n        \
                 btn_sync <= btn_meta;\n    end"
            );
            if r.active_low {
                "!btn_sync"
            } else {
                "btn_sync"
            }
        }
        None => "1'b0",
    };
    let _ = writeln!(
        w,
        "    always @(posedge core_clk) begin\n        if (!pll_locked) por_count <= 4'd0;\n        \
         else if (!por_done) por_count <= por_count + 4'd1;\n        \
         sys_rst <= !por_done || {pressed};\n    end"
    );

    if let Some(f) = flash {
        let _ = writeln!(
            w,
            "\n    // Weights from the flash, once after power-on (not on the button or idle reset).\n    \
             reg load_rst = 1'b1;\n    always @(posedge core_clk) load_rst <= !por_done;\n    \
             wire load_valid;\n    wire [15:0] load_data;\n    wire loaded;\n    \
             /* verilator lint_off UNUSEDSIGNAL */\n    wire load_done;\n    \
             /* verilator lint_on UNUSEDSIGNAL */\n    \
             spi_flash_reader #(\n        .ADDR(24'h{:06x}),\n        .WORDS({}),\n        \
             .WAKE_CYCLES({})\n    ) flash_reader (\n        .clk(core_clk),\n        .rst(load_rst),\n        \
             .spi_cs_n(flash_cs_n),\n        .spi_sck(flash_sck),\n        .spi_mosi(flash_mosi),\n        \
             .spi_miso(flash_miso),\n        .w_valid(load_valid),\n        .w_data(load_data),\n        \
             .done(load_done)\n    );",
            f.offset,
            ports.load_words,
            wake_cycles(clk.core_mhz)
        );
    }

    // Receive.
    let _ = write!(
        w,
        r#"
    // UART -> pixel stream; one holding register, since a byte takes 10 bit times to arrive.
    wire rx_valid;
    wire [7:0] rx_data;
    wire rx_frame_error;
    uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) uart_rx_i (
        .clk(core_clk),
        .rst(sys_rst),
        .rx(uart_rx),
        .valid(rx_valid),
        .data(rx_data),
        .frame_error(rx_frame_error)
    );

    // Bytes of the current frame so far; silence in the middle of a frame drops it.
    localparam integer IDLE_W = $clog2(IDLE_RESET_CLKS + 1);
    localparam integer IDLE_LAST_I = IDLE_RESET_CLKS - 1;
    localparam [IDLE_W-1:0] IDLE_LAST = IDLE_LAST_I[IDLE_W-1:0];
    reg [{fwm1}:0] frame_bytes;
    reg [IDLE_W-1:0] idle_count;
    reg idle_abort;
    always @(posedge core_clk) begin
        idle_abort <= 1'b0;
        if (sys_rst || idle_abort) begin
            frame_bytes <= {fw}'d0;
            idle_count <= {{IDLE_W{{1'b0}}}};
        end else if (rx_valid) begin
            frame_bytes <= (frame_bytes == {fw}'d{last}) ? {fw}'d0 : frame_bytes + {fw}'d1;
            idle_count <= {{IDLE_W{{1'b0}}}};
        end else if (frame_bytes != {fw}'d0) begin
            if (idle_count == IDLE_LAST) idle_abort <= 1'b1;
            else idle_count <= idle_count + 1'b1;
        end
    end
    wire core_rst = sys_rst || idle_abort;
    // The accelerator's reset from a register of its own: its fan-out reaches every layer, and
    // as an OR in front of them it was the critical path of the ULX3S Fashion-MNIST design at
    // 125 MHz (idle_abort across the device into that OR and back to the receiver, 6.7 ns of
    // routing). A cycle later than the receiver's is harmless: no beat is valid in between.
    reg acc_rst = 1'b1;
    always @(posedge core_clk) acc_rst <= core_rst;

    reg s_valid;
    reg [{iwm1}:0] s_data;
    wire s_ready;
    reg rx_error;
{pack}    always @(posedge core_clk) begin
        if (core_rst) begin
            s_valid <= 1'b0;
            s_data <= {iw}'d0;
{pack_reset}        end else begin
            if (s_valid && s_ready) s_valid <= 1'b0;
            if (rx_valid) begin
{pack_step}            end
        end
    end
    // Sticky until reset: a beat completed before the last was taken, or a bad stop bit.
    always @(posedge core_clk) begin
        if (sys_rst) rx_error <= 1'b0;
        else if ((rx_valid && beat_done && s_valid && !s_ready) || rx_frame_error) rx_error <= 1'b1;
    end
"#,
        fwm1 = fw - 1,
        last = frame - 1,
        iwm1 = iw - 1,
        pack = pack.decl,
        pack_reset = pack.reset,
        pack_step = pack.step,
    );
    if iw < 8 {
        let _ = writeln!(
            w,
            "    /* verilator lint_off UNUSEDSIGNAL */\n    wire [{}:0] rx_unused = rx_data[7:{iw}];\n    /* verilator lint_on UNUSEDSIGNAL */",
            7 - iw
        );
    }

    // The accelerator.
    let scores = ports.classes * ports.score_width;
    let stages = ports.stages.len().max(1);
    let _ = write!(
        w,
        r#"
    wire m_valid;
    wire m_ready;
    wire [{cwm1}:0] m_class;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [{scm1}:0] m_scores;
    wire [{stm1}:0] dbg_fire;
    /* verilator lint_on UNUSEDSIGNAL */
    {top} accelerator (
        .clk(core_clk),
        .rst(acc_rst),
        .s_valid(s_valid),
        .s_ready(s_ready),
        .s_data(s_data),
        .m_valid(m_valid),
        .m_ready(m_ready),
        .m_class(m_class),
        .m_scores(m_scores),
        .dbg_fire(dbg_fire){load_ports}
    );

    // Class -> UART, one byte per frame.
    uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) uart_tx_i (
        .clk(core_clk),
        .rst(sys_rst),
        .valid(m_valid),
        .ready(m_ready),
        .data({class_byte}),
        .tx(uart_tx)
    );

    reg [{cwm1}:0] shown_class;
    always @(posedge core_clk) begin
        if (sys_rst) shown_class <= {cw}'d0;
        else if (m_valid && m_ready) shown_class <= m_class;
    end
"#,
        cwm1 = cw - 1,
        scm1 = scores.max(1) - 1,
        stm1 = stages - 1,
        top = ports.top,
        load_ports = if flash.is_some() {
            ",\n        .load_rst(load_rst),\n        .load_valid(load_valid),\n        \
             .load_data(load_data),\n        .loaded(loaded)"
        } else {
            ""
        },
        class_byte = if cw == 8 {
            "m_class".to_string()
        } else {
            format!("{{{}'d0, m_class}}", 8 - cw)
        },
    );

    // LEDs, most significant first in the concatenation.
    let mut bits = Vec::new();
    for i in (0..n_leds).rev() {
        let on = match i as u32 {
            i if i < cw => format!("shown_class[{i}]"),
            i if i == cw => format!("(frame_bytes != {fw}'d0)"),
            i if i == cw + 1 => "rx_error".to_string(),
            i if i == cw + 2 && flash.is_some() => "loaded".to_string(),
            _ => "1'b0".to_string(),
        };
        let lit = if board.leds[i].active_low {
            format!("!{on}")
        } else {
            on
        };
        bits.push(lit);
    }
    // Registered, so that no path from the design's logic ends at a pad: the ULX3S SFC
    // at 106 MHz had its critical path from the frame byte count through the compare to led[4].
    let _ = writeln!(
        w,
        "    reg [{}:0] led_q;\n    always @(posedge core_clk) led_q <= {{{}}};\n    assign led = led_q;",
        n_leds - 1,
        bits.join(", ")
    );
    let _ = writeln!(w, "endmodule");
    Ok(s)
}
