#!/usr/bin/env bash
# Speed of the software reference (`flipchip eval`) against PyTorch float inference and Larq
# Compute Engine on the 10,000 Fashion-MNIST test images, 784-256-256-10, all cores, measured
# side by side in one run. Two cases:
#   one-bit     flipchip threshold:T model; LCE with binarised input (every layer binary)
#   bitplanes4  flipchip bitplanes:4 model; LCE with float pixels into binary weights
# PyTorch runs the same float MLP in both (OpenBLAS threads). Every contender is timed over
# ROUNDS interleaved rounds of REPEATS runs each and the fastest run counts (what the machine
# can do when the other users of its cores are quiet); medians are printed beside.
# Also prints flipchip's images/s as a fraction of the popcount kernel's measured peak.
#   scripts/bench-reference.sh                 (about 3 minutes the first time, with training)
#   ROUNDS=5 REPEATS=9 scripts/bench-reference.sh
# Installs Debian's python3-torch and libopenblas0-pthread (scripts/setup.sh --peers) and a throwaway venv with LCE
# under build/ (pip); flipchip itself depends on none of them.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
ROUNDS=${ROUNDS:-3}
REPEATS=${REPEATS:-9}
T=${THRESHOLD:-64}
OUT=build/bench-reference
VENV=build/lce-venv
mkdir -p "$OUT"
cargo build --release --quiet
cargo build --release --quiet -p flip --example reference_bench
FC=target/release/flipchip

# ---- PyTorch (Debian) ------------------------------------------------------------------------
TORCH_PY=/usr/bin/python3
torch_ok=1
if ! scripts/setup.sh --peers >"$OUT/setup.log" 2>&1; then
  echo "scripts/setup.sh --peers FAILED (see $OUT/setup.log); no PyTorch comparison" >&2
  torch_ok=0
fi
if [ $torch_ok = 1 ] && ! "$TORCH_PY" -c "import torch" 2>/dev/null; then
  echo "python3-torch is installed but 'import torch' fails; no PyTorch comparison" >&2
  torch_ok=0
fi

# ---- Larq Compute Engine (pip, throwaway venv) -------------------------------------------------
lce_ok=1
if ! "$VENV/bin/pip" show larq-compute-engine tensorflow-cpu tf-keras larq >/dev/null 2>&1; then
  echo "installing larq-compute-engine 0.16.0, tensorflow-cpu 2.16, tf-keras 2.16, larq into $VENV" >&2
  if ! (python3 -m venv "$VENV" && "$VENV/bin/pip" install -q larq-compute-engine==0.16.0 \
      'tensorflow-cpu==2.16.*' 'tf-keras==2.16.*' larq) >"$OUT/pip.log" 2>&1; then
    echo "pip install of LCE FAILED (see $OUT/pip.log); no LCE comparison" >&2
    lce_ok=0
  fi
fi

cat >"$OUT/mnist.py" <<'PY'
import gzip, os
import numpy as np

def idx(data, name):
    with gzip.open(os.path.join(data, name)) as f:
        b = f.read()
    return np.frombuffer(b, np.uint8, offset=16 if "images" in name else 8)

def load(data):
    return (idx(data, "train-images-idx3-ubyte.gz").reshape(-1, 784),
            idx(data, "train-labels-idx1-ubyte.gz"),
            idx(data, "t10k-images-idx3-ubyte.gz").reshape(-1, 784),
            idx(data, "t10k-labels-idx1-ubyte.gz"))
PY

cat >"$OUT/torch_bench.py" <<'PY'
# usage: torch_bench.py DATA OUT REPEATS  -> one JSON line
# Trains the float MLP for one epoch once (saved to OUT/torch.pt), then times inference of the
# test set: uint8 pixels to float, forward, argmax, comparison, at batch 10,000 and 1,000.
import json, os, sys, time
import numpy as np
import torch
sys.path.insert(0, os.path.dirname(__file__))
from mnist import load

data, out, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(os.cpu_count())
xtr, ytr, xte, yte = (torch.from_numpy(a.astype(np.int64) if a.ndim == 1 else a.copy())
                      for a in load(data))
model = torch.nn.Sequential(
    torch.nn.Linear(784, 256), torch.nn.ReLU(),
    torch.nn.Linear(256, 256), torch.nn.ReLU(),
    torch.nn.Linear(256, 10))
path = os.path.join(out, "torch.pt")
if os.path.exists(path):
    model.load_state_dict(torch.load(path))
else:
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for i in range(0, len(xtr), 256):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xtr[i:i + 256].float() / 255), ytr[i:i + 256])
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), path)
model.eval()
best = None
with torch.inference_mode():
    for batch in (10000, 1000):
        times = []
        for r in range(repeats):
            t = time.perf_counter()
            correct = 0
            for i in range(0, len(xte), batch):
                pred = model(xte[i:i + batch].float() / 255).argmax(1)
                correct += int((pred == yte[i:i + batch]).sum())
            times.append(time.perf_counter() - t)
        r = dict(batch=batch, threads=torch.get_num_threads(), best=len(xte) / min(times),
                 median=len(xte) / float(np.median(times)), accuracy=correct / len(xte))
        if best is None or r["best"] > best["best"]:
            best = r
print(json.dumps(best))
PY

cat >"$OUT/lce_bench.py" <<'PY'
# usage: lce_bench.py DATA OUT CASE T REPEATS  -> one JSON line
# Trains a Larq BNN of the flipchip shape for one epoch once and converts it with
# lce.convert_keras_model (saved to OUT/lce-CASE.tflite), then times LCE's interpreter on the
# test set at batch 1,000 (pixels to float input, inference, argmax, comparison) with 1 and 2
# threads; the faster thread count is reported.
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# larq needs Keras 2 (tf-keras); TensorFlow 2.16 defaults to Keras 3.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
sys.path.insert(0, os.path.dirname(__file__))
from mnist import load

data, out, case, T, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
xtr, ytr, xte, yte = load(data)

def prep(px):
    # one-bit: sign(pixel - T) is the binarised input (ste_sign maps 0 to +1, like v >= T)
    x = px.astype(np.float32)
    x = (x - T) / 255.0 if case == "onebit" else x / 255.0
    return x.reshape(-1, 1, 1, 784)

path = os.path.join(out, f"lce-{case}.tflite")
if not os.path.exists(path):
    import tensorflow as tf
    import larq as lq
    import larq_compute_engine as lce
    # Dense layers as 1x1 convolutions of a 1x1 image: LCE has no binary fully connected op and
    # accelerates binary convolutions only (the equivalence its documentation recommends).
    binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                  kernel_constraint="weight_clip", use_bias=False)
    first = binary if case == "onebit" else dict(
        kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False)
    model = tf.keras.Sequential([
        tf.keras.Input((1, 1, 784)),
        lq.layers.QuantConv2D(256, 1, **first),
        tf.keras.layers.BatchNormalization(scale=False),
        lq.layers.QuantConv2D(256, 1, **binary),
        tf.keras.layers.BatchNormalization(scale=False),
        lq.layers.QuantConv2D(10, 1, **binary),
        tf.keras.layers.BatchNormalization(scale=False),
        tf.keras.layers.Flatten(),
    ])
    model.compile(tf.keras.optimizers.Adam(1e-3),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(prep(xtr), ytr, batch_size=256, epochs=1, verbose=0)
    with open(path, "wb") as f:
        f.write(lce.convert_keras_model(model))
flat = open(path, "rb").read()
ops = [o for o in ("LceQuantize", "LceBconv2d", "LceDequantize") if o.encode() in flat]
from larq_compute_engine.tflite.python.interpreter import Interpreter
batch = 1000
best = None
for threads in (1, 2):
    interp = Interpreter(flat, num_threads=threads)
    times = []
    for r in range(repeats):
        t = time.perf_counter()
        correct = 0
        for i in range(0, len(xte), batch):
            pred = interp.predict(prep(xte[i:i + batch])).reshape(batch, -1).argmax(1)
            correct += int((pred == yte[i:i + batch]).sum())
        times.append(time.perf_counter() - t)
    r = dict(threads=threads, batch=batch, best=len(xte) / min(times),
             median=len(xte) / float(np.median(times)), accuracy=correct / len(xte), lce_ops=ops)
    if best is None or r["best"] > best["best"]:
        best = r
print(json.dumps(best))
PY

# ---- flipchip models (short training runs; accuracy is reported, speed is the point) ----------
declare -A ENC=([onebit]="threshold:$T" [bitplanes4]="bitplanes:4")
for c in onebit bitplanes4; do
  if [ ! -f "$OUT/$c.fcm" ]; then
    "$FC" train --quiet --data "$DATA" --arch 784-256-256-10 --epochs 1 \
      --encoding "${ENC[$c]}" --out "$OUT/$c.fcm" >/dev/null 2>&1
  fi
done

# ---- interleaved rounds --------------------------------------------------------------------------
: >"$OUT/runs.jsonl"
record() { # who case json (empty when the run failed)
  if [ -n "$3" ]; then
    echo "{\"who\":\"$1\",\"case\":\"$2\",\"r\":$3}" >>"$OUT/runs.jsonl"
  else
    echo "$1 $2 run FAILED (see the logs in $OUT)" >&2
  fi
}
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  for c in onebit bitplanes4; do
    record flipchip $c "$("$FC" eval "$OUT/$c.fcm" --data "$DATA" --json --repeat "$REPEATS" 2>/dev/null | tail -1)"
    record peak $c "$(target/release/examples/reference_bench "$OUT/$c.fcm" "$DATA" 1 2>/dev/null | tail -1)"
    if [ $lce_ok = 1 ]; then
      record lce $c "$("$VENV/bin/python" "$OUT/lce_bench.py" "$DATA" "$OUT" $c "$T" "$REPEATS" 2>"$OUT/lce.log" | tail -1)"
    fi
  done
  if [ $torch_ok = 1 ]; then
    record torch all "$("$TORCH_PY" "$OUT/torch_bench.py" "$DATA" "$OUT" "$REPEATS" 2>"$OUT/torch.log" | tail -1)"
  fi
done

python3 - "$OUT/runs.jsonl" "$ROUNDS" "$REPEATS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
rounds, repeats = sys.argv[2], sys.argv[3]
def pick(who, case):
    return [r["r"] for r in runs if r["who"] == who and r["case"] in (case, "all")]
print(f"\n10,000 Fashion-MNIST test images, 784-256-256-10; fastest run of {rounds} rounds x "
      f"{repeats} runs (median of the rounds' fastest in brackets)")
print(f"{'case':<11} {'contender':<46} {'images/s':>11} {'(median)':>11} {'accuracy':>9}")
checks = []
for case, need_torch, need_lce in (("onebit", 5, 2), ("bitplanes4", 2, 1)):
    f = pick("flipchip", case)
    if not f:
        print(f"{case}: flipchip eval produced nothing"); checks.append((case, False)); continue
    f_best = max(r["images_per_second"] for r in f)
    f_med = statistics.median(r["images_per_second"] for r in f)
    kernel = f[0]["popcount_kernel"]
    print(f"{case:<11} {'flipchip eval (' + kernel + ', ' + str(f[0]['threads']) + ' threads)':<46} "
          f"{f_best:>11.0f} {f_med:>11.0f} {f[0]['accuracy']*100:>8.2f}%")
    rows = {}
    for who, label in (("torch", "PyTorch float (OpenBLAS)"), ("lce", "LCE")):
        rs = pick(who, case)
        if not rs:
            print(f"{'':<11} {label:<46} {'unavailable':>11}")
            continue
        best = max(rs, key=lambda r: r["best"])
        extra = f"batch {best['batch']}, {best['threads']} thr"
        print(f"{'':<11} {label + ' (' + extra + ')':<46} {best['best']:>11.0f} "
              f"{statistics.median(r['best'] for r in rs):>11.0f} {best['accuracy']*100:>8.2f}%")
        if who == "lce":
            print(f"{'':<11}   LCE ops in the converted model: {', '.join(best['lce_ops']) or 'none'}")
        rows[who] = best["best"]
    p = pick("peak", case)
    if p:
        words = p[0]["words_per_image"]
        # the kernel's best tight-loop rate over every round of both cases
        peak = max(k["peak_words_per_second"] for r in runs if r["who"] == "peak"
                   for k in r["r"]["kernels"] if k["kernel"] == kernel)
        print(f"{'':<11} popcount words/image {words}: {f_best*words:.3e} words/s = "
              f"{100*f_best*words/peak:.1f}% of the {kernel} kernel's measured peak {peak:.3e}")
    for who, need in (("torch", need_torch), ("lce", need_lce)):
        if who in rows:
            ratio = f_best / rows[who]
            checks.append((f"{case}: flipchip >= {need}x {who} ({ratio:.2f}x)", ratio >= need))
        else:
            checks.append((f"{case}: flipchip >= {need}x {who} (not measured)", False))
print()
for name, ok in checks:
    print(("PASS " if ok else "FAIL ") + name)
PY
