#!/usr/bin/env bash
# The Slurm executor against the local one: `dse --synth K` on a digits model, once with
# `--executor local` (two Yosys runs at a time) and once with `--executor slurm` on the
# single-node cluster of scripts/slurm-local.sh (one job per CPU), both from scratch. Prints
# each wall time, their ratio, the jobs' submission-to-start overhead, and whether the two
# dse.json agree (wall times and directories aside).
#
#   scripts/bench-slurm.sh [ARCH] [K]     # default 64-128-10 (the demo's digits MLP) and 15
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:-64-128-10}"
k="${2:-15}"
scripts/setup.sh --slurm >/dev/null
cargo build --release --quiet
FC="${CARGO_TARGET_DIR:-target}/release/flipchip"
out="$(mktemp -d "${TMPDIR:-/tmp}/flipchip-bench-slurm.XXXXXX")"
cluster="$out/cluster"
trap 'scripts/slurm-local.sh stop "$cluster" 2>/dev/null || true; rm -rf "$out"' EXIT
eval "export $(scripts/slurm-local.sh start "$cluster" | tail -n 1)"

"$FC" train --arch "$arch" --epochs 1 --seed 1 --out "$out/model.fcm" --quiet >/dev/null
run() { # name, executor args...
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  "$FC" dse "$out/model.fcm" --device up5k --synth "$k" --out "$out/$name" "$@" 2>"$out/$name.log" >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
echo "== $arch, dse --synth $k on up5k"
# Slurm first: on a machine shared with other work, the order is one more source of noise.
slurm_s=$(run slurm --executor slurm)
local_s=$(run local --executor local)
echo "local executor: ${local_s} s"
echo "slurm executor: ${slurm_s} s ($(grep -c 'already done' "$out/slurm.log" || true) skipped)"
grep 'submission to start' "$out/slurm.log" || true
echo "ratio slurm/local: $(echo "scale=3; $slurm_s / $local_s" | bc)"
python3 - "$out/local/dse.json" "$out/slurm/dse.json" <<'PY'
import json, sys
def strip(p):
    d = json.load(open(p))
    d.pop("explore_seconds", None)
    for r in d["synth"]:
        for k in ("seconds", "dir", "cached"):
            r.pop(k, None)
    return d
a, b = strip(sys.argv[1]), strip(sys.argv[2])
print(f"synthesised designs: {len(a['synth'])}; dse.json identical but wall times: {a == b}")
for name, p in (("local", sys.argv[1]), ("slurm", sys.argv[2])):
    s = sum(r["seconds"] for r in json.load(open(p))["synth"])
    print(f"{name}: Yosys seconds summed over the designs: {s:.1f}")
PY
