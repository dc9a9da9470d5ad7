// Simulation model of the iCEBreaker's W25Q128 SPI flash, just enough for the power-up weight
// load: Release Power-Down (0xAB), Deep Power-Down (0xB9) and Read Data (0x03, 24-bit address,
// bytes MSB first with auto-increment). IMAGE holds BYTES bytes for addresses BASE onwards, one
// byte (2 hex digits) per line; other addresses read 0xFF, as erased flash does.
// Powered down, the part ignores everything except 0xAB and MISO stays high, so a reader that
// forgets the wake-up gets 0xFFFF words. tRES1 is not modelled: there is no time here.
// Mode 0: inputs are taken on SCK rising edges and MISO changes on falling edges, the first
// data bit on the falling edge after the last address bit. So a reader that raises SCK and
// samples MISO on the same clock edge gets the bit put out half an SCK period before. Only
// edge-triggered blocks, so that Verilator runs it without --timing.
module spi_flash_model #(
    parameter IMAGE = "flash.hex",
    parameter [23:0] BASE = 24'h100000,
    parameter integer BYTES = 1,
    parameter POWERED_DOWN = 1  // the iCE40 leaves the flash like this after configuring
) (
    input  wire spi_cs_n,
    input  wire spi_sck,
    input  wire spi_mosi,
    output wire spi_miso
);
    localparam integer AW = BYTES > 1 ? $clog2(BYTES) : 1;
    reg [7:0] mem[0:BYTES-1];
    initial $readmemh(IMAGE, mem);

    reg asleep = POWERED_DOWN != 0;
    reg [5:0] bits = 6'd0;  // SCK rising edges since CS fell, held at 32
    reg [7:0] cmd = 8'd0;
    reg [23:0] addr = 24'd0;

    // Like the real part, power commands act when CS rises, and only after a whole byte.
    always @(posedge spi_sck or posedge spi_cs_n) begin
        if (spi_cs_n) begin
            if (bits >= 6'd8 && cmd == 8'hAB) asleep <= 1'b0;
            else if (bits == 6'd8 && cmd == 8'hB9) asleep <= 1'b1;
            bits <= 6'd0;
        end else begin
            if (bits < 6'd8) cmd <= {cmd[6:0], spi_mosi};
            else if (bits < 6'd32) addr <= {addr[22:0], spi_mosi};
            if (bits != 6'd32) bits <= bits + 1'b1;
        end
    end

    function out_bit(input [23:0] a, input [2:0] b);
        reg [23:0] offset;
        begin
            offset = a - BASE;  // wraps, so addresses below BASE land above BYTES
            out_bit = {8'd0, offset} < BYTES ? mem[offset[AW-1:0]][3'd7-b] : 1'b1;
        end
    endfunction

    // Data bits sent in this read: byte offset from `addr` above, bit within the byte below. The
    // address wraps at 2^24 like the real part's.
    reg [26:0] sent = 27'd0;
    reg miso = 1'b1;  // idles high, as a pull-up would leave the undriven line
    always @(negedge spi_sck or posedge spi_cs_n) begin
        if (spi_cs_n) begin
            sent <= 27'd0;
            miso <= 1'b1;
        end else if (!asleep && cmd == 8'h03 && bits == 6'd32) begin
            miso <= out_bit(addr + sent[26:3], sent[2:0]);
            sent <= sent + 1'b1;
        end
    end
    assign spi_miso = miso;
endmodule
