// UART transmitter, 8N1, LSB first, CLKS_PER_BIT clocks per bit (clock / baud, rounded).
// A ready/valid sink: a byte is taken when `valid && ready`; `ready` is high while the line is
// idle, i.e. from the end of the previous stop bit on.
module uart_tx #(
    parameter integer CLKS_PER_BIT = 104
) (
    input  wire       clk,
    input  wire       rst,
    input  wire       valid,
    output wire       ready,
    input  wire [7:0] data,
    output reg        tx
);
    localparam integer CW = $clog2(CLKS_PER_BIT + 1);
    localparam integer FULL_I = CLKS_PER_BIT - 1;
    localparam [CW-1:0] FULL = FULL_I[CW-1:0];

    reg [8:0] shift;  // data bits then the stop bit, sent from bit 0
    reg [3:0] bits_left;  // start + 8 data + stop still to finish
    reg [CW-1:0] count;
    assign ready = (bits_left == 4'd0);

    always @(posedge clk) begin
        if (rst) begin
            tx <= 1'b1;
            shift <= 9'h1ff;
            bits_left <= 4'd0;
            count <= {CW{1'b0}};
        end else if (bits_left == 4'd0) begin
            if (valid) begin
                tx <= 1'b0;  // start bit
                shift <= {1'b1, data};
                bits_left <= 4'd10;
                count <= FULL;
            end
        end else if (count != 0) begin
            count <= count - 1'b1;
        end else begin
            bits_left <= bits_left - 1'b1;
            count <= FULL;
            if (bits_left != 4'd1) begin
                tx <= shift[0];
                shift <= {1'b1, shift[8:1]};
            end
        end
    end
endmodule
