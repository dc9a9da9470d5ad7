//! Verilator and Icarus harnesses for generated designs.
