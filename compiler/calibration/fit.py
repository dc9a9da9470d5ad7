#!/usr/bin/env python3
"""Fits the LUT cost coefficients of compiler/src/blocks/cost.rs to Yosys runs.

usage: fit.py FAMILY BUILD_DIR...   (each BUILD_DIR from `flipchip compile`, holding
       stat_<family>.txt written by `yosys -p "read_verilog ...; synth_<family> -top
       flipchip_top; tee -q -o stat_<family>.txt stat"`)

Features mirror the estimate functions exactly (ROM placement rule, adder-tree bits, ...);
the coefficients come from non-negative least squares (exact: every subset of features
solved unconstrained, the best non-negative one kept; plain Python, no numpy) on relative error (each design's row
divided by its LUT count, so small and large designs weigh the same). Prints the fit and
each design's error, and the rows as CSV (calibration data).
"""
import json, math, sys
import itertools

FAM = sys.argv[1]
SHAPES = {"ice40": [(256, 16), (512, 8), (1024, 4), (2048, 2)],
          "ecp5": [(512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)]}[FAM]
BRAM_COST = {"ice40": 64, "ecp5": 128}[FAM]
NAMES = ["rom_bit", "popcount_bit", "acc_bit", "activation_bit", "select_bit", "select_flat", "stream_bit",
         "block"]


def bits_for(m):
    return max(1, int(m).bit_length())


def tree_bits(simd):
    nodes, bits = [1] * simd, 0
    while len(nodes) > 1:
        nxt = []
        for i in range(0, len(nodes), 2):
            if i + 1 < len(nodes):
                m = nodes[i] + nodes[i + 1]
                bits += bits_for(m)
                nxt.append(m)
            else:
                nxt.append(nodes[i])
        nodes = nxt
    return bits


def rom(depth, width):
    """(logic bits, blocks)"""
    if depth <= 1 or width == 0:
        return 0, 0
    blocks = min(-(-depth // (d * (w // width))) if width <= w else -(-depth // d) * -(-width // w)
                 for d, w in SHAPES)
    if blocks * BRAM_COST * 16 < depth * width:
        return 0, blocks
    return depth * width, 0


def features(d):
    r = json.load(open(f"{d}/report.json"))
    p = json.load(open(f"{d}/ports.json"))
    f = dict.fromkeys(NAMES, 0.0)
    brams = 0
    layers = [l for l in r["layers"] if "pe" in l]
    sw = p["score_width"]
    for i, l in enumerate(layers):
        pe, simd, n_in, n_out, planes = l["pe"], l["simd"], l["inputs"], l["outputs"], l["planes"]
        nf, sf = n_out // pe, n_in // simd
        acc = bits_for(n_in * ((1 << planes) - 1))
        scores = i == len(layers) - 1
        aw = sw if scores else acc + 1
        roms = [(nf * sf, pe * simd), (nf, pe * aw)] + ([] if scores else [(nf, pe)])
        for dd, ww in roms:
            b, k = rom(dd, ww)
            f["rom_bit"] += b
            brams += k
        accumulate = sf * planes > 1
        in_bits = n_in * planes
        f["popcount_bit"] += pe * (simd + tree_bits(simd))
        f["acc_bit"] += pe * acc if accumulate else 0
        f["activation_bit"] += pe * aw
        f["select_bit"] += sum(min(in_bits, simd << k) for k in range(bits_for(in_bits - 1))) if accumulate else 0
        f["block"] += 1
        f["select_flat"] += simd * in_bits if accumulate else 0
    w = layers[0]["inputs"] * layers[0]["planes"]
    bpp = layers[0]["inputs"] // p["beats_per_frame"]
    f["stream_bit"] += w
    f["activation_bit"] += 8 * bpp + (p["classes"] - 1) * (2 * sw + p["class_width"])
    f["block"] += 2
    return f, brams


def luts(d):
    cells = {}
    for line in open(f"{d}/stat_{FAM}.txt"):
        w = line.split()
        if len(w) == 2 and w[1].isdigit():
            cells[w[0]] = int(w[1])
    if FAM == "ice40":
        return cells.get("SB_LUT4", 0), cells.get("SB_RAM40_4K", 0)
    return cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0), cells.get("DP16KD", 0)


rows = []
for d in sys.argv[2:]:
    f, b = features(d)
    y, yb = luts(d)
    rows.append((d, f, b, y, yb))
def lstsq(rows, ys):
    """Unconstrained least squares via the normal equations (Gauss-Jordan)."""
    n = len(rows[0])
    m = [[sum(r[i] * r[j] for r in rows) for j in range(n)] + [sum(r[i] * y for r, y in zip(rows, ys))] for i in range(n)]
    for c in range(n):
        p = max(range(c, n), key=lambda k: abs(m[k][c]))
        if abs(m[p][c]) < 1e-12:
            return None
        m[c], m[p] = m[p], m[c]
        for k in range(n):
            if k != c:
                t = m[k][c] / m[c][c]
                m[k] = [a - t * b for a, b in zip(m[k], m[c])]
    return [m[i][n] / m[i][i] for i in range(n)]


def nnls(A, y):
    best, best_err = [0.0] * len(A[0]), float("inf")
    for k in range(1, len(A[0]) + 1):
        for sub in itertools.combinations(range(len(A[0])), k):
            x = lstsq([[r[i] for i in sub] for r in A], y)
            if x is None or min(x) < 0:
                continue
            full = [0.0] * len(A[0])
            for i, v in zip(sub, x):
                full[i] = v
            err = sum((sum(a * c for a, c in zip(r, full)) - yy) ** 2 for r, yy in zip(A, y))
            if err < best_err:
                best, best_err = full, err
    return best


A = [[r[1][n] / r[3] for n in NAMES] for r in rows]
coef = nnls(A, [1.0] * len(rows))
print("coefficients:", ", ".join(f"{n}: {c:.4f}" for n, c in zip(NAMES, coef)))
print("design,yosys_luts,fit_luts,error_pct,yosys_brams,model_brams," + ",".join(NAMES))
for d, f, b, yy, yb in rows:
    est = sum(f[n] * c for n, c in zip(NAMES, coef))
    print(f"{d},{yy},{est:.0f},{100 * (est - yy) / yy:+.1f},{yb},{b}," + ",".join(f"{f[n]:.0f}" for n in NAMES))
