//! Model -> dataflow IR -> Verilog and reports.
