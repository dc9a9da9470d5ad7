#!/usr/bin/python3
"""PyTorch peer of `flipchip train --arch c32-c32-p-c64-c64-p-256-10`: a binary CNN with latent
f32 weights, the straight-through estimator, batch norm and Adam, as BNN users train one today
(BinaryNet / Larq style).

Same data handling as flipchip and the MLP peer (torch_bnn_mlp.py): 10% of the training images
held out (seeded; --val-fraction), 4-bit input levels centred to -15..15 and scaled to [-1, 1]
(flipchip's bitplanes:4 values), binary weights in every layer (the first layer reads the
multi-level input), each convolution or hidden dense layer followed by batch norm and sign (the
hardtanh straight-through gradient), 2x2 max-pools after the sign as in flipchip's layer
order, 3x3 convolutions with stride 1 and no padding. Prints one JSON line per seed with test
and validation accuracy, seconds per epoch (training steps only, each epoch and their mean) and
peak memory (the process's peak resident set).

    python3 scripts/peers/torch_bnn_cnn.py DIR [--arch c32-c32-p-c64-c64-p-256-10]
        [--epochs 10] [--batch 100] [--seeds 1,2,3] [--threads N] [--val-fraction 0.1]
"""
import argparse, json, os, resource, sys, time

import numpy as np
import torch
import torch.nn as nn


# The IDX reader, the straight-through sign and the binary linear layer are the MLP peer's, so
# both peers binarise exactly alike (this script's directory is on sys.path when it runs).
from torch_bnn_mlp import BinaryLinear, Sign, SignSTE, find, idx  # noqa: E402


class BinaryConv2d(nn.Conv2d):
    def forward(self, x):
        return nn.functional.conv2d(x, SignSTE.apply(self.weight))


def model(arch, side, channels):
    """The layers of a flipchip --arch string (cN, cNkK, p, widths) for side x side images."""
    layers, c, h, flat = [], channels, side, None
    tokens = arch.split("-")
    for i, t in enumerate(tokens):
        last = i + 1 == len(tokens)
        if t == "p":
            layers.append(nn.MaxPool2d(2))
            h //= 2
        elif t.startswith("c"):
            ch, _, k = t[1:].partition("k")
            k = int(k) if k else 3
            layers += [BinaryConv2d(c, int(ch), k, bias=False), nn.BatchNorm2d(int(ch)), Sign()]
            c, h = int(ch), h - k + 1
        else:
            if flat is None:
                layers.append(nn.Flatten())
                flat = c * h * h
            m = int(t)
            layers += [BinaryLinear(flat, m, bias=False), nn.BatchNorm1d(m)]
            if not last:
                layers.append(Sign())
            flat = m
    return nn.Sequential(*layers)


def accuracy(net, x, y, batch=1000):
    net.eval()
    hits = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            hits += (net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return hits / len(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--arch", default="c32-c32-p-c64-c64-p-256-10")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--val-fraction", type=float, default=0.1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    xtr = idx(find(a.data, "train-images-idx3-ubyte"))
    ytr = idx(find(a.data, "train-labels-idx1-ubyte"))
    xte = idx(find(a.data, "t10k-images-idx3-ubyte"))
    yte = idx(find(a.data, "t10k-labels-idx1-ubyte"))
    side = xtr.shape[1]
    # 4-bit levels centred as flipchip's bitplanes:4 input values: 2q - 15, q = pixel >> 4.
    prep = lambda x: (torch.tensor(2.0 * (x >> 4).astype(np.float32) - 15.0) / 15.0).unsqueeze(1)
    for seed in [int(s) for s in a.seeds.split(",")]:
        torch.manual_seed(seed)
        perm = np.random.default_rng(seed).permutation(len(ytr))
        nval = int(round(a.val_fraction * len(ytr)))
        val, tr = perm[:nval], perm[nval:]
        x, y = prep(xtr[tr]), torch.tensor(ytr[tr].astype(np.int64))
        xv, yv = prep(xtr[val]), torch.tensor(ytr[val].astype(np.int64))
        xt, yt = prep(xte), torch.tensor(yte.astype(np.int64))
        net = model(a.arch, side, 1)
        binary = [m for m in net if isinstance(m, (BinaryLinear, BinaryConv2d))]
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs)
        lossf = nn.CrossEntropyLoss()
        times = []
        for epoch in range(a.epochs):
            net.train()
            t0 = time.perf_counter()
            order = torch.randperm(len(y))
            for i in range(0, len(y), a.batch):
                b = order[i:i + a.batch]
                opt.zero_grad()
                lossf(net(x[b]), y[b]).backward()
                opt.step()
                # BinaryConnect's clip keeps latent weights where the STE passes a gradient.
                with torch.no_grad():
                    for m in binary:
                        m.weight.clamp_(-1, 1)
            sched.step()
            times.append(time.perf_counter() - t0)
            print(f"seed {seed} epoch {epoch + 1}/{a.epochs}: {times[-1]:.1f} s", file=sys.stderr,
                  flush=True)
        print(json.dumps({
            "peer": "pytorch-ste-adam-bn-cnn", "torch": torch.__version__, "arch": a.arch,
            "seed": seed, "threads": a.threads, "epochs": a.epochs, "batch": a.batch,
            "accuracy": accuracy(net, xt, yt),
            "val_accuracy": accuracy(net, xv, yv) if nval else None,
            "epoch_seconds": sum(times) / len(times), "epoch_seconds_each": times,
            "weights": sum(m.weight.numel() for m in binary),
            "peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }), flush=True)


if __name__ == "__main__":
    main()
