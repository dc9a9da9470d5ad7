#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what the tests need, then test every crate.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --release --workspace "$@"
