#!/usr/bin/env bash
# Regenerates the QONNX fixtures in qonnx/fixtures/ (committed, so the tests need no Python):
# Brevitas-exported W1A1 networks, a hand-written MultiThreshold graph, models that must not
# import, and qonnx's classes and scores on fixed inputs. With --export it also exports
# flipchip models with `flipchip export --qonnx`, runs them through qonnx and stores the classes
# (qonnx/fixtures/export/). Makes its environment with `scripts/setup.sh --qonnx`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup.sh --qonnx >&2
py="$root/target/qonnx-venv/bin/python"
if [ "${1:-}" = "--only" ]; then
  # Some fixtures (perclass, normalize, viewflatten, unsupported-shapes), e.g. `--only perclass`,
  # without remaking the rest.
  nice -n 10 "$py" scripts/qonnx-fixtures.py "$@"
elif [ "${1:-}" != "--export-only" ]; then
  nice -n 10 "$py" scripts/qonnx-fixtures.py
fi
if [ "${1:-}" = "--export" ] || [ "${1:-}" = "--export-only" ]; then
  cargo build --release --bin flipchip >&2
  # `--export-only --only perclass-export` remakes one of them.
  nice -n 10 "$py" scripts/qonnx-export-check.py "${CARGO_TARGET_DIR:-$root/target}/release/flipchip" "${@:2}"
fi
du -sh qonnx/fixtures
