#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what the tests need, then test every crate.
set -euo pipefail
cd "$(dirname "$0")/.."
# Every tool a test needs, the ECP5 ones included, so that no test has a reason to skip.
scripts/setup.sh --ecp5 --slurm --formal --asic
# A test whose tool is missing fails instead of skipping: a machine without tools cannot pass.
export FLIPCHIP_REQUIRE_TOOLS=1
cargo test --release --workspace "$@"
