// UART receiver, 8N1, LSB first. `rx` is synchronised through two flip-flops, the start bit is
// confirmed at its middle and every later bit is sampled at its middle, CLKS_PER_BIT clocks
// apart (CLKS_PER_BIT = clock / baud, rounded; 104 for 115200 baud at 12 MHz).
// `valid` is high for one cycle with `data` when a byte with a good stop bit arrives; a byte
// whose stop bit reads 0 is dropped and pulses `frame_error` instead.
module uart_rx #(
    parameter integer CLKS_PER_BIT = 104
) (
    input  wire       clk,
    input  wire       rst,
    input  wire       rx,
    output reg        valid,
    output reg  [7:0] data,
    output reg        frame_error
);
    localparam integer CW = $clog2(CLKS_PER_BIT + 1);
    localparam integer FULL_I = CLKS_PER_BIT - 1;
    localparam [CW-1:0] FULL = FULL_I[CW-1:0];
    localparam integer HALF_I = CLKS_PER_BIT / 2 - 1;
    localparam [CW-1:0] HALF = HALF_I[CW-1:0];
    localparam [1:0] IDLE = 2'd0, START = 2'd1, DATA = 2'd2, STOP = 2'd3;

    reg rx_meta = 1'b1;
    reg rx_sync = 1'b1;
    always @(posedge clk) begin
        rx_meta <= rx;
        rx_sync <= rx_meta;
    end

    reg [1:0] state;
    reg [CW-1:0] count;
    reg [2:0] bit_index;
    reg [7:0] shift;

    always @(posedge clk) begin
        valid <= 1'b0;
        frame_error <= 1'b0;
        if (rst) begin
            state <= IDLE;
            count <= {CW{1'b0}};
            bit_index <= 3'd0;
            shift <= 8'd0;
            data <= 8'd0;
        end else begin
            case (state)
                IDLE:
                if (!rx_sync) begin
                    state <= START;
                    count <= HALF;
                end
                START:
                if (count != 0) count <= count - 1'b1;
                else if (!rx_sync) begin
                    state <= DATA;
                    count <= FULL;
                    bit_index <= 3'd0;
                end else state <= IDLE;  // a glitch, not a start bit
                DATA:
                if (count != 0) count <= count - 1'b1;
                else begin
                    shift <= {rx_sync, shift[7:1]};
                    count <= FULL;
                    bit_index <= bit_index + 1'b1;
                    if (bit_index == 3'd7) state <= STOP;
                end
                default:  // STOP: back to IDLE at the middle of the stop bit
                if (count != 0) count <= count - 1'b1;
                else begin
                    state <= IDLE;
                    if (rx_sync) begin
                        valid <= 1'b1;
                        data <= shift;
                    end else frame_error <= 1'b1;
                end
            endcase
        end
    end
endmodule
