#!/usr/bin/env bash
# Training benchmark of the training issue: the flip optimizer against the BinaryConnect and
# Bop baselines on Fashion-MNIST 784-256-256-10 (10 epochs, batch 100), the 8- versus 16-bit
# accumulator, and the default run on the embedded digits. Prints one row per run and checks
# the targets. PyTorch reference on this class of machine: 88.3% after 10 epochs, 9.3 s/epoch,
# 650 MiB peak.
#   scripts/bench-train.sh            all runs (about 10 minutes on 2 cores)
#   scripts/bench-train.sh flip       only the flip runs
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cargo build --release --quiet
FC=target/release/flipchip
FMNIST=/usr/share/datasets/fashion-mnist
OUT=build/bench-train
mkdir -p "$OUT"
only=${1:-all}

row() { # name, json
  python3 - "$1" "$2" <<'PY'
import json, sys
name, d = sys.argv[1], json.loads(sys.argv[2])
peak = d.get("peak_memory_mib") or 0
print(f"{name:<24} {d['accuracy']*100:7.2f}% {d['epoch_seconds']:8.2f} s {d['seconds']:8.1f} s "
      f"{d['state_bytes_per_weight']:7.3f} B/w {peak:8.1f} MiB")
PY
}
run() { # name, args...
  local name=$1; shift
  local json
  json=$("$FC" train --quiet --json --out "$OUT/$name.fcm" "$@" 2>/dev/null | tail -1)
  echo "$json" > "$OUT/$name.json"
  row "$name" "$json"
}

echo "run                      accuracy    epoch    total     state      peak"
run digits-flip
if [ "$only" = all ] || [ "$only" = flip ]; then
  run fmnist-flip --data "$FMNIST" --arch 784-256-256-10 --epochs 10 --batch 100
  run fmnist-flip-acc16 --data "$FMNIST" --arch 784-256-256-10 --epochs 10 --batch 100 --set acc_bits=16
fi
if [ "$only" = all ]; then
  run fmnist-binaryconnect --data "$FMNIST" --arch 784-256-256-10 --epochs 10 --batch 100 --optimizer binaryconnect
  run fmnist-bop --data "$FMNIST" --arch 784-256-256-10 --epochs 10 --batch 100 --optimizer bop
fi

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def get(n):
    p = os.path.join(out, n + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
checks = []
d = get("digits-flip")
checks.append(("digits: accuracy >= 93%", d["accuracy"] >= 0.93, f'{d["accuracy"]*100:.2f}%'))
checks.append(("digits: under 30 s", d["seconds"] < 30, f'{d["seconds"]:.1f} s'))
f = get("fmnist-flip")
if f:
    checks += [
        ("fmnist flip: accuracy >= 88% in 10 epochs", f["accuracy"] >= 0.88, f'{f["accuracy"]*100:.2f}%'),
        ("fmnist flip: epoch <= 9.3/2 s", f["epoch_seconds"] <= 4.65, f'{f["epoch_seconds"]:.2f} s'),
        ("fmnist flip: state <= 1.5 B/weight", f["state_bytes_per_weight"] <= 1.5, f'{f["state_bytes_per_weight"]:.3f}'),
        ("fmnist flip: peak <= 650/4 MiB", (f.get("peak_memory_mib") or 1e9) <= 162.5, f'{f.get("peak_memory_mib") or 0:.1f} MiB'),
    ]
for name, ok, val in checks:
    print(f'{"PASS" if ok else "FAIL"}  {name}: {val}')
PY
