"""Checks `flipchip export --qonnx` against qonnx: trains small flipchip models (the embedded
digits: a bit-plane MLP, a conv net, a thermometer MLP; Fashion-MNIST when Debian's
dataset-fashion-mnist is installed), exports them, runs every exported graph with qonnx's
execute_onnx on every image (all 1797 digits in the CSV's order; the 10,000 Fashion-MNIST test
images) and stores qonnx's classes in qonnx/fixtures/export/, where the tests hold flipchip's
reference to them. Called by scripts/qonnx-fixtures.sh --export with the flipchip binary."""

import gzip
import json
import os
import subprocess
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "qonnx", "fixtures", "export")
FASHION = "/usr/share/datasets/fashion-mnist"


def digits():
    rows = np.loadtxt(gzip.open(os.path.join(ROOT, "flip", "data", "optdigits-8x8.csv.gz"), "rt"),
                      delimiter=",", dtype=np.int64)
    return rows[:, :64].reshape(-1, 1, 8, 8), rows[:, 64]


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion():
    images = idx(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz"))
    labels = idx(os.path.join(FASHION, "t10k-labels-idx1-ubyte.gz"))
    return images.reshape(-1, 1, 28, 28), labels


def run(flipchip, *args):
    subprocess.run([flipchip, *args], check=True, stdout=subprocess.DEVNULL)


def check(flipchip, name, train_args, data_name, images, labels, source="train"):
    """`source` "train" trains the model with `train_args`; "import" imports it with them (a
    QONNX fixture, e.g. one whose per-class score scales only an import makes)."""
    fcm = os.path.join(OUT, name + ".fcm")
    onnx_path = os.path.join(OUT, name + ".onnx")
    t = time.time()
    if source == "train":
        run(flipchip, "train", *train_args, "--seed", "1", "--quiet", "--out", fcm)
    else:
        # The source is stored relative to the repository.
        run(flipchip, "import", os.path.join(ROOT, train_args[0]), *train_args[1:], "--out", fcm)
    ckpt = fcm + ".ckpt"
    if os.path.exists(ckpt):
        os.remove(ckpt)
    run(flipchip, "export", fcm, "--qonnx", onnx_path)
    model = ModelWrapper(onnx_path).transform(InferShapes())
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    classes = []
    for k, img in enumerate(images):
        y = execute_onnx(model, {iname: img[None].astype(np.float32)})[oname].reshape(-1)
        classes.append(int(np.argmax(y)))
        if k % 2000 == 1999:
            print(f"{name}: {k + 1} of {len(images)} images", file=sys.stderr)
    acc = float(np.mean(np.array(classes) == labels))
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"model": name + ".fcm", "onnx": name + ".onnx", "data": data_name,
                   source: train_args, "qonnx_accuracy": acc, "classes": classes}, f)
        f.write("\n")
    print(f"{name}: {len(classes)} images through qonnx, accuracy {acc:.4f}, "
          f"{os.path.getsize(onnx_path)} bytes, {time.time() - t:.0f} s")


def perclass(flipchip, dx, dy):
    """The `perclass` fixture imported (per-class integer score multipliers, model file version
    3), exported again and run by qonnx on the fixture's 300 stored random pixel vectors (the
    digits' pixels, 0..16, all fall below its input threshold of 128)."""
    src = os.path.relpath(os.path.join(ROOT, "qonnx", "fixtures", "perclass.onnx"), ROOT)
    with open(os.path.join(ROOT, "qonnx", "fixtures", "perclass.json")) as f:
        meta = json.load(f)
    px = np.array(meta["inputs"], dtype=np.int64).reshape(-1, 1, 8, 8)
    # No labels: the accuracy stored is agreement with the original graph's classes.
    check(flipchip, "perclass-export", [src, "--input-range", "-1,1"], "perclass-inputs", px,
          np.array(meta["classes"]), source="import")


def main():
    flipchip = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    dx, dy = digits()
    if sys.argv[2:3] == ["--only"]:
        for name in sys.argv[3:]:
            {"perclass-export": perclass}[name](flipchip, dx, dy)
        return
    check(flipchip, "digits-mlp", ["--epochs", "5"], "optdigits-csv", dx, dy)
    check(flipchip, "digits-conv", ["--arch", "c16-p-32-10", "--encoding", "threshold:6", "--epochs", "3"],
          "optdigits-csv", dx, dy)
    check(flipchip, "digits-thermometer", ["--arch", "64-32-10", "--encoding", "thermometer:3,7,11",
                                           "--epochs", "3"], "optdigits-csv", dx, dy)
    if os.path.isdir(FASHION):
        fx, fy = fashion()
        check(flipchip, "fashion-mlp", ["--data", FASHION, "--arch", "784-64-10", "--encoding",
                                        "threshold:64", "--epochs", "2"], "fashion-mnist-t10k", fx, fy)
    else:
        print(f"{FASHION} missing (scripts/setup.sh installs dataset-fashion-mnist): no Fashion-MNIST check")
    perclass(flipchip, dx, dy)


if __name__ == "__main__":
    main()
