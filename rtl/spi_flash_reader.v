// Reads WORDS 16-bit words from the configuration SPI flash once after reset, for weights kept in
// SPRAM, which the bitstream cannot initialise. The iCE40 leaves the flash in deep power-down
// after configuring, so Release Power-Down (0xAB) comes first, then CS stays high for WAKE_CYCLES
// clocks (tRES1 is 3 us: 36 clocks at 12 MHz) before Read Data (0x03) and the 24-bit address.
// SPI mode 0 at SCK = clk / 2, MSB first. Words are big-endian in flash and come back to back:
// with edge 0 the first clock edge that sees `rst` low, `w_valid` is set by edge
// 112 + WAKE_CYCLES and then every 32 edges; two edges after the last word CS is high, SCK low
// and `done` set, until the next reset.
module spi_flash_reader #(
    parameter [23:0] ADDR = 24'h100000,
    parameter integer WORDS = 1,  // 1 .. 2^20
    parameter integer WAKE_CYCLES = 100  // >= 1
) (
    input  wire        clk,
    input  wire        rst,
    output reg         spi_cs_n,
    output reg         spi_sck,
    output reg         spi_mosi,
    input  wire        spi_miso,
    output reg         w_valid,
    output reg  [15:0] w_data,
    output reg         done
);
    // Both commands as one bit string, indexed by `bits` from the top. The slot between them
    // stands for the CS-high gap so the index runs on through it; starting at 7 puts the first
    // data bit at index 48, a multiple of 16, so the same counter then counts bits within words.
    localparam [63:0] SEND = {7'd0, 8'hAB, 1'b0, 8'h03, ADDR, 16'd0};
    localparam [5:0] FIRST = 6'd7;
    localparam [5:0] WAKE_END = 6'd15;
    localparam [5:0] SEND_END = 6'd48;
    // One counter serves the gap and the words: they never overlap, and it saves LUTs.
    localparam integer LEFT_MAX = WORDS > WAKE_CYCLES ? WORDS : WAKE_CYCLES;
    localparam integer LW = LEFT_MAX > 1 ? $clog2(LEFT_MAX) : 1;
    localparam integer GAP_I = WAKE_CYCLES - 1;
    localparam [LW-1:0] GAP = GAP_I[LW-1:0];
    localparam integer LAST_I = WORDS - 1;
    localparam [LW-1:0] LAST = LAST_I[LW-1:0];
    localparam [1:0] CS_HIGH = 2'd0, COMMAND = 2'd1, DATA = 2'd2, STOP = 2'd3;

    reg [1:0] state;
    reg [5:0] bits;  // SCK rising edges so far, from FIRST
    reg [LW-1:0] left;  // CS_HIGH: clocks until CS falls; DATA: words after this one
    reg [14:0] shift;

    always @(posedge clk) begin
        w_valid <= 1'b0;
        if (rst) begin
            state <= CS_HIGH;
            bits <= FIRST;
            left <= {LW{1'b0}};
            spi_cs_n <= 1'b1;
            spi_sck <= 1'b0;
            spi_mosi <= 1'b0;
            done <= 1'b0;
        end else begin
            case (state)
                CS_HIGH:
                if (left != 0) left <= left - 1'b1;
                else begin
                    spi_cs_n <= 1'b0;
                    spi_mosi <= SEND[6'd63-bits];
                    state <= COMMAND;
                end
                COMMAND:
                if (!spi_sck) begin
                    bits <= bits + 1'b1;
                    // 0xAB acts when CS rises, and tRES1 counts from there.
                    if (bits == WAKE_END) begin
                        spi_cs_n <= 1'b1;
                        left <= GAP;
                        state <= CS_HIGH;
                    end else spi_sck <= 1'b1;
                end else begin
                    spi_sck <= 1'b0;
                    spi_mosi <= SEND[6'd63-bits];
                    // The flash puts out the first data bit on this falling edge.
                    if (bits == SEND_END) begin
                        left <= LAST;
                        state <= DATA;
                    end
                end
                DATA:
                if (!spi_sck) begin
                    // MISO changed on the falling edge a whole clock ago.
                    spi_sck <= 1'b1;
                    bits <= bits + 1'b1;
                    shift <= {shift[13:0], spi_miso};
                    if (bits[3:0] == 4'd15) begin
                        w_valid <= 1'b1;
                        w_data <= {shift, spi_miso};
                        if (left != 0) left <= left - 1'b1;
                        else state <= STOP;
                    end
                end else spi_sck <= 1'b0;
                default:  // STOP: mode 0 wants SCK low before CS rises
                if (spi_sck) spi_sck <= 1'b0;
                else begin
                    spi_cs_n <= 1'b1;
                    done <= 1'b1;
                end
            endcase
        end
    end
endmodule
