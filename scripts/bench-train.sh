#!/usr/bin/env bash
# Training benchmark (issue "training you can trust"): every figure is the mean +- sample std
# over seeds 1, 2, 3 (`flipchip seeds`), trained with a 10% validation split carved from the
# training set; test accuracy is reported, never used.
#   Fashion-MNIST 784-256-256-10, 10 epochs, default batch, 4 bit planes: flip (8- and 16-bit
#   accumulators), BinaryConnect and Bop, run back to back so that epoch times compare;
#   the embedded digits with the defaults of `flipchip train`.
#   scripts/bench-train.sh            all runs (about 15 minutes on 2 cores)
#   scripts/bench-train.sh flip       digits, flip and BinaryConnect only (the speed target)
#   scripts/bench-train.sh peers      also the PyTorch peer (scripts/peers/torch_bnn_mlp.py:
#                                     latent f32, STE, batch norm, Adam) over the same seeds
#   scripts/bench-train.sh summary    print the table and checks of the last run again
#   SEEDS=1,2,3,4,5 scripts/bench-train.sh    other seeds
# Targets checked at the end: flip's mean test accuracy >= 88.3% (the PyTorch STE/Adam/batch-norm
# peer after 10 epochs), flip's epoch time <= 0.5x BinaryConnect's in this run, <= 1.5 bytes of
# training state per weight, peak memory; digits default run < 30 s and >= 93%.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cargo build --release --quiet
FC=target/release/flipchip
FMNIST=/usr/share/datasets/fashion-mnist
OUT=build/bench-train
SEEDS=${SEEDS:-1,2,3}
mkdir -p "$OUT"
only=${1:-all}

run() { # name, args...
  local name=$1; shift
  echo "bench-train: $name (seeds $SEEDS)" >&2
  "$FC" seeds --seeds "$SEEDS" --quiet --json --out "$OUT/$name.fcm" "$@" \
    2>"$OUT/$name.log" | tail -1 >"$OUT/$name.json"
}
if [ "$only" != summary ]; then
# The digits default is timed as a user runs it: one `flipchip train`, wall clock included.
"$FC" train --quiet --json --out "$OUT/digits-default.fcm" 2>/dev/null | tail -1 >"$OUT/digits-default.json"
run digits-flip
# Each optimizer at its own default batch (flip 200, the baselines 100).
F=(--data "$FMNIST" --arch 784-256-256-10 --epochs 10)
run fmnist-flip "${F[@]}"
run fmnist-binaryconnect "${F[@]}" --optimizer binaryconnect
# The same defaults trained on all 60,000 training images (no validation split): the settings
# were chosen on validation data (scripts/sweep-flip.sh), the test split is looked at once.
run fmnist-flip-all "${F[@]}" --val 0
if [ "$only" = peers ]; then
  scripts/setup.sh --peers >/dev/null
  echo "bench-train: PyTorch peer (seeds $SEEDS)" >&2
  /usr/bin/python3 scripts/peers/torch_bnn_mlp.py "$FMNIST" --seeds "$SEEDS" >"$OUT/torch.jsonl"
fi
if [ "$only" = all ] || [ "$only" = peers ]; then
  run fmnist-flip-acc16 "${F[@]}" --set acc_bits=16
  run fmnist-bop "${F[@]}" --optimizer bop
fi
fi

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def get(n):
    p = os.path.join(out, n + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
def pm(d, k, scale=1.0, digits=2):
    if d.get(k + "_mean") is None:
        return "-"
    s = d.get(k + "_std")
    s = "-" if s is None else f"{s*scale:.{digits}f}"
    return f'{d[k + "_mean"]*scale:.{digits}f} +- {s}'
print(f'{"run":<22} {"test accuracy %":>17} {"val accuracy %":>17} {"s/epoch":>15} '
      f'{"state B/w":>9} {"peak MiB":>9}')
for n in ["digits-flip", "fmnist-flip", "fmnist-flip-all", "fmnist-flip-acc16", "fmnist-binaryconnect", "fmnist-bop"]:
    d = get(n)
    if not d:
        continue
    peak = max((r.get("peak_memory_mib") or 0) for r in d["runs"])
    print(f'{n:<22} {pm(d, "accuracy", 100):>17} {pm(d, "val_accuracy", 100):>17} '
          f'{pm(d, "epoch_seconds", 1, 3):>15} {d["state_bytes_per_weight_mean"]:9.3f} {peak:9.1f}')
torch = os.path.join(out, "torch.jsonl")
if os.path.exists(torch):
    rs = [json.loads(l) for l in open(torch) if l.strip()]
    import statistics as st
    def ms(k, scale=1.0, digits=2):
        v = [r[k] * scale for r in rs if r.get(k) is not None]
        if not v:
            return "-"
        return f'{st.mean(v):.{digits}f} +- {st.stdev(v):.{digits}f}' if len(v) > 1 else f'{v[0]:.{digits}f} +- -'
    print(f'{"pytorch peer":<22} {ms("accuracy", 100):>17} {ms("val_accuracy", 100):>17} '
          f'{ms("epoch_seconds", 1, 3):>15} {"":>9} {max(r["peak_memory_mib"] for r in rs):9.1f}')
checks = []
d = get("digits-default")
checks.append(("digits default train: test accuracy >= 93%", d["accuracy"] >= 0.93, f'{d["accuracy"]*100:.2f}%'))
checks.append(("digits default train: under 30 s", d["seconds"] < 30, f'{d["seconds"]:.1f} s'))
f, bc = get("fmnist-flip"), get("fmnist-binaryconnect")
peak = max((r.get("peak_memory_mib") or 1e9) for r in f["runs"])
ratio = f["epoch_seconds_mean"] / bc["epoch_seconds_mean"]
checks += [
    ("fmnist flip: mean test accuracy >= 88.3%", f["accuracy_mean"] >= 0.883, f'{f["accuracy_mean"]*100:.2f}%'),
    ("fmnist flip: epoch <= 0.5x BinaryConnect's", ratio <= 0.5,
     f'{f["epoch_seconds_mean"]:.3f} s / {bc["epoch_seconds_mean"]:.3f} s = {ratio:.2f}x'),
    ("fmnist flip: state <= 1.5 B/weight", f["state_bytes_per_weight_mean"] <= 1.5, f'{f["state_bytes_per_weight_mean"]:.3f}'),
    ("fmnist flip: peak <= 650/4 MiB", peak <= 162.5, f'{peak:.1f} MiB'),
]
if os.path.exists(torch):
    te = sum(r["epoch_seconds"] for r in rs) / len(rs)
    checks.append(("fmnist flip: epoch <= 0.5x the PyTorch peer's", f["epoch_seconds_mean"] <= 0.5 * te,
                   f'{f["epoch_seconds_mean"]:.3f} s / {te:.3f} s = {f["epoch_seconds_mean"] / te:.2f}x'))
for name, ok, val in checks:
    print(f'{"PASS" if ok else "FAIL"}  {name}: {val}')
PY
