#!/usr/bin/env bash
# Re-derives the flip optimizer's defaults on validation data: a coordinate sweep, one setting
# at a time around the current defaults, each configuration trained under several seeds with
# `flipchip seeds`. Only validation accuracy is printed and used to rank; the test split is
# never looked at here.
#   scripts/sweep-flip.sh fmnist [SEEDS]   Fashion-MNIST 784-256-256-10, 10 epochs (default)
#   scripts/sweep-flip.sh fmnist-round2    the same around the first round's winners
#   scripts/sweep-flip.sh fmnist-round3    around the defaults with the centred signal
#   scripts/sweep-flip.sh fmnist-round4    the full batch-norm backward (center=full) and
#                                          other input encodings (SEEDS 1,2,3)
#   scripts/sweep-flip.sh fmnist-augment   training images mirrored and/or shifted by a pixel
#                                          (`--augment`; + joins variants), SEEDS 1,2,3
#   scripts/sweep-flip.sh fmnist-decay     fixed accumulator decays against decay=auto, SEEDS 1,2,3
#   scripts/sweep-flip.sh fmnist-noise     training-time noise on hidden sums (`noise`), SEEDS 1,2,3
#   scripts/sweep-flip.sh fmnist-binaryconnect|fmnist-bop   the baselines' defaults
#   scripts/sweep-flip.sh fmnist-paired SEEDS   around the defaults again under many seeds (the
#                                          docs' figures: SEEDS 4,5,...,19); the table adds each
#                                          setting's mean per-seed difference from the first
#                                          row (the defaults) and its standard error
#   scripts/sweep-flip.sh digits [SEEDS]   the embedded digits with `flipchip train`'s defaults
#   scripts/sweep-flip.sh fmnist-conv-subset [SEEDS]   the CNN c32-c32-p-c64-c64-p-256-10 on
#                                          the first 12,000 Fashion-MNIST training images
#                                          (1,200 of them validation), 2 epochs: a screen that
#                                          fits in minutes per configuration
#   scripts/sweep-flip.sh fmnist-conv-screen [SEEDS]   the same CNN on all the training images,
#                                          3 epochs (SEEDS 1 for the figures in the docs)
#   scripts/sweep-flip.sh fmnist-conv [SEEDS]   the same CNN, 10 epochs: accumulator widths
#                                          (SEEDS 1,2,3), then settings around the 16-bit
#                                          defaults (SEEDS 1 for their figures)
# SEEDS defaults to 1,2. Results: build/sweep-flip-<set>/results.csv and a table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-fmnist}
seeds=${2:-1,2}
scripts/setup.sh >/dev/null
cargo build --release --quiet
FC=target/release/flipchip
OUT=build/sweep-flip-$which
mkdir -p "$OUT"
case "$which" in
  fmnist)
    base=(--data /usr/share/datasets/fashion-mnist --arch 784-256-256-10 --epochs 10)
    grid=(
      "batch=50 batch=100 batch=200"
      "lr=0.5 lr=0.7 lr=1 lr=1.4 lr=2"
      "lr_end=0.02 lr_end=0.05 lr_end=0.1"
      "lr_threshold=0.02 lr_threshold=0.05 lr_threshold=0.1"
      "window=0.5 window=0.7 window=1"
      "temperature=0.25 temperature=0.35 temperature=0.5"
      "threshold=8 threshold=16 threshold=32"
      "center=off,lr=1 center=on,lr=1 center=on,lr=1.4"
    )
    ;;
  fmnist-round2)
    # Around the first round's winners (batch 200 and lr_end 0.02, each +0.19 points of
    # validation accuracy over the old defaults; every other change was within one std).
    base=(--data /usr/share/datasets/fashion-mnist --arch 784-256-256-10 --epochs 10)
    w="batch=200,lr_end=0.02"
    grid=(
      "$w $w,batch=400 $w,lr=0.7 $w,lr=1.4 $w,lr_end=0.01"
      "$w,threshold=32 $w,temperature=0.5 $w,lr_threshold=0.02"
    )
    ;;
  fmnist-round3)
    # Around the defaults with the centred signal (center=on, lr 1.4, batch 200).
    base=(--data /usr/share/datasets/fashion-mnist --arch 784-256-256-10 --epochs 10)
    grid=(
      "lr_threshold=0.1 lr_threshold=0.2 threshold=12 threshold=24"
      "batch=150 batch=300 lr_end=0.1 acc_bits=16"
    )
    ;;
  fmnist-round4)
    # Against the defaults: the signal less its fit to each hidden neuron's own sums as well
    # as its mean (center=full), and thermometer or 8-plane inputs instead of 4 bit planes (an entry
    # encoding=E is passed as --encoding E).
    base=(--data /usr/share/datasets/fashion-mnist --arch 784-256-256-10 --epochs 10)
    grid=(
      "center=on center=full"
      "encoding=thermometer:64,128,192 encoding=thermometer:32,96,160,224 encoding=bitplanes:8"
    )
    ;;
  fmnist-paired)
    # The first entry is the defaults (threshold=16 is the default value); the rest move one
    # setting a small step either way, too small to tell apart over three seeds.
    base=(--data /usr/share/datasets/fashion-mnist --arch 784-256-256-10 --epochs 10)
    grid=(
      "threshold=16 lr=1.2 lr=1.7 lr_end=0.02 temperature=0.5"
      "threshold=12 threshold=24 window=0.6 window=0.85 lr_threshold=0.03 lr_threshold=0.08"
    )
    ;;
  fmnist-augment)
    base=(--data /usr/share/datasets/fashion-mnist --arch 784-256-256-10 --epochs 10)
    grid=("augment=none augment=hflip augment=shift:1 augment=hflip+shift:1")
    ;;
  fmnist-decay)
    # A fixed accumulator decay against BOLD's rule (decay=auto, the default).
    base=(--data /usr/share/datasets/fashion-mnist --arch 784-256-256-10 --epochs 10)
    grid=("decay=0.9 decay=0.97 decay=1")
    ;;
  fmnist-noise)
    # Uniform noise on the hidden sums during training, in units of each layer's spread.
    base=(--data /usr/share/datasets/fashion-mnist --arch 784-256-256-10 --epochs 10)
    grid=("noise=0.1 noise=0.25 noise=0.5")
    ;;
  fmnist-binaryconnect)
    # The baselines' defaults, the same way (their learning rates and the batch).
    base=(--data /usr/share/datasets/fashion-mnist --arch 784-256-256-10 --epochs 10)
    o=optimizer=binaryconnect
    grid=("$o,lr=0.0025 $o,lr=0.005 $o,lr=0.01" "$o,batch=200")
    ;;
  fmnist-bop)
    base=(--data /usr/share/datasets/fashion-mnist --arch 784-256-256-10 --epochs 10)
    o=optimizer=bop
    grid=("$o,gamma=0.0005 $o,gamma=0.001 $o,gamma=0.002" "$o,tau=0.0000001 $o,tau=0.00001" "$o,batch=200")
    ;;
  fmnist-conv-subset)
    # A full epoch of this CNN takes minutes on 2 cores; the screen trains on a subset, written
    # once as IDX files under build/ (the test files are copied unchanged and not looked at).
    sub=build/fmnist-12k
    if [ ! -f "$sub/train-labels-idx1-ubyte" ]; then
      mkdir -p "$sub"
      python3 - /usr/share/datasets/fashion-mnist "$sub" 12000 <<'PY'
import gzip, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def read(name):
    with gzip.open(f"{src}/{name}.gz") as f:
        return f.read()
d = read("train-images-idx3-ubyte")
_, _, h, w = struct.unpack(">IIII", d[:16])
open(f"{dst}/train-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 2051, n, h, w) + d[16:16 + n * h * w])
d = read("train-labels-idx1-ubyte")
open(f"{dst}/train-labels-idx1-ubyte", "wb").write(struct.pack(">II", 2049, n) + d[8:8 + n])
for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]:
    open(f"{dst}/{name}", "wb").write(read(name))
PY
    fi
    base=(--data "$sub" --arch c32-c32-p-c64-c64-p-256-10 --encoding bitplanes:4 --epochs 2)
    grid=(
      "batch=200 batch=50 batch=20"
      "lr=0.2 lr=0.5"
      "window=0.3 window=1.5"
      "temperature=1 center=off threshold=32"
      "batch=50,window=0.3 batch=50,lr=0.7 batch=50,lr=2"
      "batch=10 batch=100"
      "lr_threshold=0.02 lr_threshold=0.1 window=1"
      "lr=0.7 lr=1 lr=2"
      "temperature=0.25 temperature=0.5 temperature=0.7"
      "threshold=8 threshold=24"
      "lr=1,temperature=0.5 lr=1,temperature=0.7 lr=0.7,temperature=0.5"
    )
    ;;
  fmnist-conv-screen)
    # Around the defaults from before convolutions took 16-bit accumulators.
    base=(--data /usr/share/datasets/fashion-mnist --arch c32-c32-p-c64-c64-p-256-10 --encoding bitplanes:4 --epochs 3
      --set conv_acc_bits=8)
    grid=(
      "threshold=16 lr=0.7 lr=2.8 threshold=8 threshold=32,lr=2.8"
      "temperature=0.2 window=0.4 window=1"
      "conv_acc_bits=16,acc_bits=16 conv_acc_bits=16"
    )
    ;;
  fmnist-conv)
    base=(--data /usr/share/datasets/fashion-mnist --arch c32-c32-p-c64-c64-p-256-10 --encoding bitplanes:4 --epochs 10)
    grid=(
      "conv_acc_bits=8 conv_acc_bits=16 acc_bits=16"
      "threshold=24 lr_end=0.2 window=1 window=0.5 center=off ste=box lr=1 lr=2 lr_threshold=0.1 decay=1"
    )
    ;;
  digits)
    base=()
    grid=(
      "lr=0.25 lr=0.5 lr=1"
      "temperature=0.5 temperature=1 temperature=2"
      "window=0.5 window=0.7 window=1"
      "threshold=8 threshold=16 threshold=32"
    )
    ;;
  *) echo "usage: $0 fmnist|fmnist-round2|fmnist-round3|fmnist-round4|fmnist-paired|fmnist-augment|fmnist-decay|fmnist-noise|fmnist-binaryconnect|fmnist-bop|fmnist-conv-subset|fmnist-conv-screen|fmnist-conv|digits [SEEDS]" >&2; exit 2 ;;
esac

csv="$OUT/results.csv"
echo "setting,val_accuracy_mean,val_accuracy_std,val_accuracy_min,epoch_seconds_mean,val_runs" >"$csv"
total=0; for line in "${grid[@]}"; do for _ in $line; do total=$((total + 1)); done; done
done_n=0
for line in "${grid[@]}"; do
  for kv in $line; do
    done_n=$((done_n + 1))
    tag=${kv//=/_}
    tag=${tag//,/+}
    echo "sweep: [$done_n/$total] $kv (seeds $seeds)" >&2
    # A grid entry is one or more KEY=VALUE joined by commas; batch and optimizer are training
    # options, the rest optimizer settings (a later KEY overrides an earlier one).
    opt=()
    batch=""
    optimizer=""
    IFS=, read -r -a kvs <<<"$kv"
    for one in "${kvs[@]}"; do
      case "$one" in
        batch=*) batch=${one#batch=} ;;
        optimizer=*) optimizer=${one#optimizer=} ;;
        encoding=*) opt+=(--encoding "${one#encoding=}") ;;
        augment=*) v=${one#augment=}; opt+=(--augment "${v//+/,}") ;;
        *) opt+=(--set "$one") ;;
      esac
    done
    [ -z "$batch" ] || opt+=(--batch "$batch")
    [ -z "$optimizer" ] || opt+=(--optimizer "$optimizer")
    json=$("$FC" seeds "${base[@]}" "${opt[@]}" --seeds "$seeds" --quiet --json \
      --out "$OUT/$tag.fcm" 2>"$OUT/$tag.log" | tail -1)
    echo "$json" >"$OUT/$tag.json"
    python3 - "$kv" "$json" >>"$csv" <<'PY'
import json, sys
kv, d = sys.argv[1], json.loads(sys.argv[2])
runs = " ".join(f'{r["val_accuracy"]:.5f}' for r in d["runs"])
print(f'{kv.replace(",", " ")},{d["val_accuracy_mean"]:.5f},{d["val_accuracy_std"]:.5f},'
      f'{d["val_accuracy_min"]:.5f},{d["epoch_seconds_mean"]:.3f},{runs}')
PY
  done
done
python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
# Under one seed two settings share the split, the initial weights and the batch order, so
# the per-seed difference from the first row is far less noisy than either mean.
first = [float(v) for v in rows[0]["val_runs"].split()] if rows else []
print(f'{"setting":<22} {"val mean":>9} {"val std":>8} {"val min":>8} {"s/epoch":>8} '
      f'{"vs row 1":>9} {"se":>6}')
for r in rows:
    runs = [float(v) for v in r["val_runs"].split()]
    d = [100 * (a - b) for a, b in zip(runs, first)]
    paired = ""
    if len(d) > 1:
        m = sum(d) / len(d)
        se = (sum((x - m) ** 2 for x in d) / (len(d) - 1) / len(d)) ** 0.5
        paired = f' {m:+8.2f}  {se:5.2f}'
    group = lambda x: x["setting"].split(" ")[-1].split("=")[0]
    k = group(r)
    best = max((x for x in rows if group(x) == k),
               key=lambda x: float(x["val_accuracy_mean"]))
    mark = "  <- best" if r is best else ""
    print(f'{r["setting"]:<22} {float(r["val_accuracy_mean"])*100:8.2f}% '
          f'{float(r["val_accuracy_std"])*100:7.2f}% {float(r["val_accuracy_min"])*100:7.2f}% '
          f'{float(r["epoch_seconds_mean"]):8.2f}{paired}{mark}')
PY
