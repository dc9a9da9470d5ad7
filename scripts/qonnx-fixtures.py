"""Makes the QONNX fixtures of the qonnx crate (qonnx/fixtures/): small W1A1 networks built and
exported with Brevitas, one hand-written graph with MultiThreshold activations, and networks
that must not import; for each importable one the classes and scores qonnx's execute_onnx gives
on fixed inputs. Run through scripts/qonnx-fixtures.sh, which makes the environment."""

import gzip
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

import brevitas.nn as qnn
from brevitas.core.scaling import ScalingImplType
from brevitas.export import export_qonnx
from brevitas.quant import (
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFloat,
)
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.cleanup import cleanup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "qonnx", "fixtures")
rng = np.random.default_rng(15)
torch.manual_seed(15)


class BinaryWeights(SignedBinaryWeightPerTensorConst):
    """+-1 weights. Brevitas's default constant scale 0.1 makes qonnx's float32 sums round
    differently for different weight rows, so classes with equal exact scores would be told apart
    by rounding noise; with scale 1 the sums are exact and ties go to the lowest class index in
    qonnx (numpy's argmax) as in flipchip."""

    scaling_const = 1.0


def sign_act():
    return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)


def bin_linear(i, o, bias=False):
    return qnn.QuantLinear(i, o, bias=bias, weight_quant=BinaryWeights)


def bin_conv(i, o, k=3):
    return qnn.QuantConv2d(i, o, k, bias=False, weight_quant=BinaryWeights)


def randomise_bn(m, r=None):
    """Random statistics, negative scales included, so thresholds and direction bits vary. The
    means and variances follow the spread of a sum of +-1 products over the layer's fan-in,
    so that neurons neither all fire nor all stay off."""
    r = rng if r is None else r
    fan_in = None
    for mod in m.modules():
        if isinstance(mod, (qnn.QuantLinear, qnn.QuantConv2d)):
            fan_in = mod.weight[0].numel()
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = mod.num_features
            sd = float(np.sqrt(fan_in))
            with torch.no_grad():
                mod.running_mean.copy_(torch.tensor(r.normal(0, 0.5 * sd, c), dtype=torch.float32))
                mod.running_var.copy_(torch.tensor(r.uniform(0.25, 2, c) * fan_in, dtype=torch.float32))
                mod.weight.copy_(torch.tensor(r.normal(0, 1, c), dtype=torch.float32))
                mod.bias.copy_(torch.tensor(r.normal(0, 1, c), dtype=torch.float32))


def to_float(pixels, bits, lo, hi):
    vmax = np.float32(2**bits - 1)
    return (pixels.astype(np.float32) / vmax * np.float32(hi - lo) + np.float32(lo)).astype(np.float32)


def run_qonnx(path, pixels, shape, bits, lo, hi):
    """Classes (numpy argmax: the first of equal maxima) and scores from qonnx's execution."""
    # execute_onnx checks the input against its declared shape: a dynamic batch axis (kept
    # only so that the file holds PyTorch's shape computations) is declared as 1 in memory;
    # the nodes, Shape included, still run on the actual tensors.
    model = ModelWrapper(path)
    for d in model.graph.input[0].type.tensor_type.shape.dim:
        if d.dim_param:
            d.dim_value = 1
    # execute_onnx needs every tensor's shape; inference only annotates, the nodes stay.
    model = model.transform(InferShapes())
    iname = model.graph.input[0].name
    oname = model.graph.output[0].name
    classes, scores = [], []
    for img in pixels:
        x = to_float(img, bits, lo, hi)
        # Pixels are stored as flipchip reads them (row by row, channels interleaved); the
        # graph takes NCHW.
        if len(shape) == 4:
            _, c, h, w = shape
            x = x.reshape(h, w, c).transpose(2, 0, 1)
        x = x.reshape(shape)
        y = execute_onnx(model, {iname: x})[oname].reshape(-1)
        classes.append(int(np.argmax(y)))
        scores.append([float(v) for v in y])
    return classes, scores


def save(name, module, shape, pixels, bits, lo, hi, note):
    module.eval()
    path = os.path.join(OUT, name + ".onnx")
    export_qonnx(module, torch.zeros(shape), export_path=path)
    finish(name, path, shape, pixels, bits, lo, hi, note)


def finish(name, path, shape, pixels, bits, lo, hi, note):
    classes, scores = run_qonnx(path, pixels, shape, bits, lo, hi)
    spread = len(set(classes))
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(
            {
                "note": note,
                "onnx": name + ".onnx",
                "input_range": [lo, hi],
                "pixel_bits": bits,
                "shape": list(shape),
                "inputs": [[int(v) for v in img] for img in pixels],
                "classes": classes,
                "scores": scores,
            },
            f,
        )
        f.write("\n")
    print(f"{name}: {len(classes)} inputs, {spread} distinct classes, {os.path.getsize(path)} bytes")


def random_pixels(n, count, bits=8):
    return rng.integers(0, 2**bits, size=(n, count), dtype=np.int64)


class Mlp(nn.Module):
    def __init__(self, widths, input_quant, bias=False, last_bn=False):
        super().__init__()
        layers = [input_quant]
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            last = i == len(widths) - 2
            layers.append(bin_linear(a, b, bias=bias and not last))
            if not last:
                layers += [nn.BatchNorm1d(b), sign_act()]
            elif last_bn:
                layers.append(nn.BatchNorm1d(b))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x.reshape(x.shape[0], -1))


class Scale(nn.Module):
    """A constant factor on the class scores: +-1 sums are large for cross-entropy; exported as
    a scalar Mul, which the importer folds (it scales every class alike)."""

    def __init__(self, s):
        super().__init__()
        self.s = s

    def forward(self, x):
        return x * self.s


class Shift(nn.Module):
    """A constant added to the input before its sign (exported as a scalar Add on the input,
    which moves the encoding's threshold)."""

    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, x):
        return x + self.c


class Cnv(nn.Module):
    """CNV-like: conv-conv-pool, then dense layers, on a small 3-channel image."""

    def __init__(self):
        super().__init__()
        self.inq = sign_act()
        self.features = nn.Sequential(
            bin_conv(3, 8), nn.BatchNorm2d(8), sign_act(),
            bin_conv(8, 8), nn.BatchNorm2d(8), sign_act(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            bin_linear(3 * 3 * 8, 16), nn.BatchNorm1d(16), sign_act(), bin_linear(16, 10)
        )

    def forward(self, x):
        x = self.features(self.inq(x))
        return self.classifier(torch.flatten(x, 1))


def digits():
    path = os.path.join(ROOT, "flip", "data", "optdigits-8x8.csv.gz")
    rows = np.loadtxt(gzip.open(path, "rt"), delimiter=",", dtype=np.int64)
    return rows[:, :64], rows[:, 64]


def train_digits():
    """A 64-64-10 W1A1 MLP trained briefly (straight-through estimators) on the digits; pixel
    values 0..16 as 5-bit pixels seen as v / 31, shifted by -0.25 before the sign (the digits
    reach only 16 of 31, so a sign at the middle of the range would keep only saturated
    pixels)."""
    px, labels = digits()
    train_x, train_y = px[:1400], labels[:1400]
    test_x, test_y = px[1400:], labels[1400:]
    net = nn.Sequential(Shift(-0.25), Mlp([64, 64, 10], sign_act()), Scale(0.125))
    xs = torch.tensor(to_float(train_x, 5, 0, 1))
    ys = torch.tensor(train_y)
    fit(net, xs, ys, 30, 64)
    net.eval()
    with torch.no_grad():
        acc = (net(torch.tensor(to_float(test_x, 5, 0, 1))).argmax(1).numpy() == test_y).mean()
    print(f"digits: brevitas test accuracy {acc:.4f} on {len(test_y)} images")
    return net, test_x[:100], float(acc)


def fit(net, xs, ys, epochs, batch):
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for epoch in range(epochs):
        perm = torch.randperm(len(xs))
        net.train()
        for i in range(0, len(xs), batch):
            idx = perm[i : i + batch]
            loss = nn.functional.cross_entropy(net(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


FASHION = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion(summary):
    """A 784-64-10 W1A1 MLP trained by Brevitas on Fashion-MNIST for a few epochs; qonnx's
    classes on the 10,000 test images are stored (not the images: the tests read Debian's
    dataset-fashion-mnist)."""
    if not os.path.isdir(FASHION):
        print(f"{FASHION} missing (scripts/setup.sh installs it): no Fashion-MNIST fixture")
        return
    tr_x = idx(os.path.join(FASHION, "train-images-idx3-ubyte.gz")).reshape(-1, 784)
    tr_y = idx(os.path.join(FASHION, "train-labels-idx1-ubyte.gz"))
    te_x = idx(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz")).reshape(-1, 784)
    te_y = idx(os.path.join(FASHION, "t10k-labels-idx1-ubyte.gz"))
    net = nn.Sequential(Mlp([784, 64, 10], sign_act()), Scale(0.0625))
    fit(net, torch.tensor(to_float(tr_x, 8, -1, 1)), torch.tensor(tr_y.astype(np.int64)), 3, 100)
    net.eval()
    with torch.no_grad():
        acc = float((net(torch.tensor(to_float(te_x, 8, -1, 1))).argmax(1).numpy() == te_y).mean())
    path = os.path.join(OUT, "fashion.onnx")
    export_qonnx(net, torch.zeros((1, 1, 28, 28)), export_path=path)
    model = ModelWrapper(path).transform(InferShapes())
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    classes = []
    for img in te_x:
        x = to_float(img, 8, -1, 1).reshape(1, 1, 28, 28)
        classes.append(int(np.argmax(execute_onnx(model, {iname: x})[oname].reshape(-1))))
    qacc = float(np.mean(np.array(classes) == te_y))
    with open(os.path.join(OUT, "fashion.json"), "w") as f:
        json.dump({"note": "784-64-10 W1A1 trained 3 epochs by Brevitas on Fashion-MNIST, sign input on x*2-1",
                   "onnx": "fashion.onnx", "input_range": [-1.0, 1.0], "pixel_bits": 8,
                   "data": "fashion-mnist-t10k", "brevitas_accuracy": acc, "qonnx_accuracy": qacc,
                   "classes": classes}, f)
        f.write("\n")
    summary["fashion_brevitas_accuracy"] = acc
    summary["fashion_qonnx_accuracy"] = qacc
    print(f"fashion: brevitas test accuracy {acc:.4f}, qonnx {qacc:.4f}, {os.path.getsize(path)} bytes")


def multithreshold_graph(path):
    """A hand-written graph in FINN's streamlined style: Gemm (transB) with +-1 weights, a
    per-channel Mul and Add, MultiThreshold activations (one threshold per channel, out_scale 2,
    out_bias -1) and a scalar-scaled last layer."""
    n_in, n_hid, n_out = 16, 12, 5
    w1 = rng.choice([-1.0, 1.0], size=(n_hid, n_in)).astype(np.float32)
    w2 = rng.choice([-1.0, 1.0], size=(n_hid, n_out)).astype(np.float32)
    mul = rng.choice([-1.5, -0.5, 0.5, 2.0], size=(n_hid,)).astype(np.float32)
    add = rng.normal(0, 2, size=(n_hid,)).astype(np.float32)
    thr = rng.normal(0, 2, size=(n_hid, 1)).astype(np.float32)
    inits = [
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(mul, "mul"),
        numpy_helper.from_array(add, "add"),
        numpy_helper.from_array(thr, "thr"),
        numpy_helper.from_array(np.array([[127.5]], dtype=np.float32), "in_thr"),
        numpy_helper.from_array(np.array(0.25, dtype=np.float32), "out_scale"),
    ]
    nodes = [
        helper.make_node("MultiThreshold", ["x", "in_thr"], ["xq"], domain="qonnx.custom_op.general",
                         out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0, name="in_mt"),
        helper.make_node("Gemm", ["xq", "w1"], ["h"], transB=1, name="fc1"),
        helper.make_node("Mul", ["h", "mul"], ["hm"], name="scale1"),
        helper.make_node("Add", ["hm", "add"], ["ha"], name="shift1"),
        helper.make_node("MultiThreshold", ["ha", "thr"], ["hq"], domain="qonnx.custom_op.general",
                         out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0, name="act1"),
        helper.make_node("MatMul", ["hq", "w2"], ["o"], name="fc2"),
        helper.make_node("Mul", ["o", "out_scale"], ["y"], name="scale2"),
    ]
    graph = helper.make_graph(
        nodes, "multithreshold",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])],
        initializer=inits,
    )
    model = helper.make_model(graph, producer_name="qonnx-fixtures",
                              opset_imports=[helper.make_opsetid("", 13),
                                             helper.make_opsetid("qonnx.custom_op.general", 1)])
    onnx.save(model, path)


def perclass_fixture():
    """A batch norm after the last layer, whose scales differ between classes (negative ones
    included): flipchip carries them as integer score multipliers. Its own seeds, so that it is
    the same made alone (`--only perclass`) or with the rest."""
    torch.manual_seed(16)
    r = np.random.default_rng(16)
    net = nn.Sequential(sign_act(), bin_linear(64, 32), nn.BatchNorm1d(32), sign_act(),
                        bin_linear(32, 10), nn.BatchNorm1d(10))
    randomise_bn(net, r)
    pixels = r.integers(0, 256, size=(300, 64), dtype=np.int64)
    save("perclass", net, (1, 64), pixels, 8, -1.0, 1.0,
         "64-32-10, W1A1, batch norm with per-class scales after the last layer, sign input")


class Normalize(nn.Module):
    """torchvision's Normalize inside the model: (x - mean) / std per channel, with [1, C, 1, 1]
    constants, exported as a Sub and a Div on the graph input."""

    def __init__(self, mean, std):
        super().__init__()
        c = len(mean)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(1, c, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def uint2_input(max_val):
    """A 2-bit unsigned input quantiser with a constant scale max_val / 3 (four codes)."""
    return qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=2,
                             scaling_impl_type=ScalingImplType.CONST, max_val=max_val,
                             return_quant_tensor=True)


class ViewCnv(nn.Module):
    """A conv net that flattens as older PyTorch code does, x.view(x.size(0), -1); exported with
    a dynamic batch axis, the flatten's target shape is computed from the activation's shape
    (Shape -> Gather -> Unsqueeze -> Concat -> Reshape). `size_axis` 1 makes the unsupported
    variant x.view(x.size(1), -1), which folds the channels into the batch."""

    def __init__(self, channels, norm, size_axis=0):
        super().__init__()
        self.norm = norm
        self.size_axis = size_axis
        self.inq = sign_act()
        self.features = nn.Sequential(
            bin_conv(channels, 8), nn.BatchNorm2d(8), sign_act(),
            bin_conv(8, 8), nn.BatchNorm2d(8), sign_act(),
        )
        # x.view(8, -1) leaves 6 * 6 values per row.
        flat = 6 * 6 * 8 if size_axis == 0 else 6 * 6
        self.classifier = nn.Sequential(
            bin_linear(flat, 16), nn.BatchNorm1d(16), sign_act(), bin_linear(16, 10)
        )

    def forward(self, x):
        x = self.features(self.inq(self.norm(x)))
        return self.classifier(x.view(x.size(self.size_axis), -1))


def export_dynamic(module, shape, path):
    """Exports with a dynamic batch axis, so that PyTorch keeps shape computations in the graph."""
    module.eval()
    export_qonnx(module, torch.zeros(shape), export_path=path, input_names=["x"],
                 dynamic_axes={"x": {0: "batch"}})


def normalize_fixture():
    """MNIST's Normalize((0.1307,), (0.3081,)) before a 2-bit input quantiser: the Sub and Div
    move the quantiser's pixel thresholds (thermometer:63,122,181 on ToTensor's v / 255)."""
    torch.manual_seed(17)
    r = np.random.default_rng(17)
    net = nn.Sequential(Normalize([0.1307], [0.3081]), Mlp([144, 32, 10], uint2_input(2.25)))
    randomise_bn(net, r)
    pixels = r.integers(0, 256, size=(200, 144), dtype=np.int64)
    save("normalize", net, (1, 1, 12, 12), pixels, 8, 0.0, 1.0,
         "144-32-10 W1A1 on 1x12x12, MNIST normalisation (x - 0.1307) / 0.3081 as Sub/Div with "
         "[1,1,1,1] constants before a 2-bit unsigned input Quant (scale 0.75), random batch norm")


def viewflatten_fixture():
    """RGB input with Normalize((0.5,)*3, (0.5,)*3) (per-channel constants, equal), a sign, and
    PyTorch's dynamic flatten x.view(x.size(0), -1) between the convolutions and the dense
    layers."""
    torch.manual_seed(18)
    r = np.random.default_rng(18)
    net = ViewCnv(3, Normalize([0.5] * 3, [0.5] * 3))
    randomise_bn(net, r)
    pixels = r.integers(0, 256, size=(100, 3 * 10 * 10), dtype=np.int64)
    path = os.path.join(OUT, "viewflatten.onnx")
    export_dynamic(net, (1, 3, 10, 10), path)
    finish("viewflatten", path, (1, 3, 10, 10), pixels, 8, 0.0, 1.0,
           "c8-c8-16-10 W1A1 on 3x10x10, Normalize((0.5,)*3, (0.5,)*3) as [1,3,1,1] Sub/Div, "
           "x.view(x.size(0), -1) exported with a dynamic batch axis (Shape/Gather/Unsqueeze/"
           "Concat/Reshape)")


def unsupported_shapes_fixtures():
    """Variants of the two patterns above that must not import: CIFAR-10's per-channel
    normalisation before a sign (each channel would need its own pixel threshold), and
    x.view(x.size(1), -1)."""
    torch.manual_seed(19)
    r = np.random.default_rng(19)
    bad = os.path.join(OUT, "unsupported")
    os.makedirs(bad, exist_ok=True)
    cifar = ViewCnv(3, Normalize([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]))
    view1 = ViewCnv(1, nn.Identity(), size_axis=1)
    expected_path = os.path.join(bad, "expected.json")
    with open(expected_path) as f:
        expected = json.load(f)
    for name, m, shape, phrase in [
        ("normalize-rgb", cifar, (1, 3, 10, 10), "Sub applies per-channel constants"),
        ("view-batch", view1, (1, 1, 10, 10), "only a flatten to [1, 288] after the batch axis"),
    ]:
        randomise_bn(m, r)
        export_dynamic(m, shape, os.path.join(bad, name + ".onnx"))
        expected[name] = phrase
    with open(expected_path, "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    if sys.argv[1:2] == ["--only"]:
        for name in sys.argv[2:]:
            {"perclass": perclass_fixture, "normalize": normalize_fixture,
             "viewflatten": viewflatten_fixture,
             "unsupported-shapes": unsupported_shapes_fixtures}[name]()
        return
    os.makedirs(OUT, exist_ok=True)
    summary = {}

    tfc = Mlp([784, 64, 64, 64, 10], sign_act())
    randomise_bn(tfc)
    save("tfc", tfc, (1, 1, 28, 28), random_pixels(64, 784), 8, -1.0, 1.0,
         "TFC-like 784-64-64-64-10, W1A1, random batch-norm statistics, sign input on x*2-1")

    sfc_in = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=2, return_quant_tensor=True)
    sfc = Mlp([784, 96, 96, 10], sfc_in, bias=True)
    randomise_bn(sfc)
    save("sfc", sfc, (1, 784), random_pixels(64, 784), 8, 0.0, 1.0,
         "SFC-like 784-96-96-10 with biases, 2-bit unsigned input quantiser (a thermometer)")

    cnv = Cnv()
    randomise_bn(cnv)
    save("cnv", cnv, (1, 3, 10, 10), random_pixels(64, 300), 8, -1.0, 1.0,
         "CNV-like c8-c8-p-16-10 on 3x10x10, W1A1, random batch-norm statistics")

    # The same network after qonnx's cleanup (constant folding, shape inference), the form FINN
    # flows usually hand over: it must import to the same model.
    cleanup(os.path.join(OUT, "cnv.onnx"), out_file=os.path.join(OUT, "cnv-clean.onnx"))

    net, test_x, acc = train_digits()
    save("digits", net, (1, 64), test_x, 5, 0.0, 1.0,
         f"64-64-10 trained 30 epochs on the digits (brevitas test accuracy {acc:.4f}), 5-bit pixels")
    summary["digits_brevitas_accuracy"] = acc

    fashion(summary)

    path = os.path.join(OUT, "multithreshold.onnx")
    multithreshold_graph(path)
    finish("multithreshold", path, (1, 16), random_pixels(64, 16), 8, 0.0, 255.0,
           "hand-written: Gemm transB, per-channel Mul/Add, MultiThreshold activations")

    # Models that must not import, each with the error's key phrase.
    bad = os.path.join(OUT, "unsupported")
    os.makedirs(bad, exist_ok=True)
    relu = nn.Sequential(sign_act(), bin_linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), bin_linear(8, 4))
    w2 = nn.Sequential(sign_act(), qnn.QuantLinear(16, 8, bias=False, weight_bit_width=2),
                       nn.BatchNorm1d(8), sign_act(), bin_linear(8, 4))
    a2 = nn.Sequential(sign_act(), bin_linear(16, 8), nn.BatchNorm1d(8),
                       qnn.QuantIdentity(bit_width=2, return_quant_tensor=True), bin_linear(8, 4))
    expected = {}
    for name, m, phrase in [
        ("relu", relu, "Relu has no binary form"),
        ("weights-2bit", w2, "only binary weights"),
        ("act-2bit", a2, "only 1-bit (sign-like) activations"),
    ]:
        randomise_bn(m)
        m.eval()
        export_qonnx(m, torch.zeros((1, 16)), export_path=os.path.join(bad, name + ".onnx"))
        expected[name] = phrase
    with open(os.path.join(bad, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")

    perclass_fixture()
    normalize_fixture()
    viewflatten_fixture()
    unsupported_shapes_fixtures()

    versions = {
        "torch": torch.__version__,
        "brevitas": __import__("brevitas").__version__,
        "qonnx": __import__("importlib.metadata").metadata.version("qonnx"),
        "onnx": onnx.__version__,
        "onnxruntime": __import__("onnxruntime").__version__,
        "numpy": np.__version__,
    }
    summary["versions"] = versions
    with open(os.path.join(OUT, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
