#!/usr/bin/python3
"""PyTorch peer of `flipchip train`: a binary MLP with latent f32 weights, the straight-through
estimator, batch norm and Adam, as BNN users train one today (BinaryNet / Larq style).

Same data handling as flipchip: 10% of the training images held out (seeded; --val-fraction), 4-bit input
levels centred to -15..15 (flipchip's bitplanes:4 values), binary weights in every layer,
sign activations with the hardtanh straight-through gradient. Prints one JSON line per seed with
test and validation accuracy, seconds per epoch (training steps only) and peak memory.

    python3 scripts/peers/torch_bnn_mlp.py DIR [--arch 784-256-256-10] [--epochs 10]
        [--batch 100] [--seeds 1,2,3] [--threads N] [--val-fraction 0.1]
"""
import argparse, gzip, json, os, resource, struct, time

import numpy as np
import torch
import torch.nn as nn


def idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        data = f.read()
    _, _, dt, nd = struct.unpack(">BBBB", data[:4])
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def find(d, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise SystemExit(f"{d}: no {stem} file")


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)


class BinaryLinear(nn.Linear):
    def forward(self, x):
        return nn.functional.linear(x, SignSTE.apply(self.weight))


def model(widths):
    layers = []
    for i, (n, m) in enumerate(zip(widths, widths[1:])):
        layers += [BinaryLinear(n, m, bias=False), nn.BatchNorm1d(m)]
        if i + 2 < len(widths):
            layers.append(Sign())
    return nn.Sequential(*layers)


class Sign(nn.Module):
    def forward(self, x):
        return SignSTE.apply(x)


def accuracy(net, x, y):
    net.eval()
    with torch.no_grad():
        return (net(x).argmax(1) == y).float().mean().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--arch", default="784-256-256-10")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--val-fraction", type=float, default=0.1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    xtr = idx(find(a.data, "train-images-idx3-ubyte")).reshape(-1, 784)
    ytr = idx(find(a.data, "train-labels-idx1-ubyte"))
    xte = idx(find(a.data, "t10k-images-idx3-ubyte")).reshape(-1, 784)
    yte = idx(find(a.data, "t10k-labels-idx1-ubyte"))
    # 4-bit levels centred as flipchip's bitplanes:4 input values: 2q - 15, q = pixel >> 4.
    prep = lambda x: torch.tensor(2.0 * (x >> 4).astype(np.float32) - 15.0) / 15.0
    widths = [int(w) for w in a.arch.split("-")]
    for seed in [int(s) for s in a.seeds.split(",")]:
        torch.manual_seed(seed)
        perm = np.random.default_rng(seed).permutation(len(ytr))
        nval = int(round(a.val_fraction * len(ytr)))
        val, tr = perm[:nval], perm[nval:]
        x, y = prep(xtr[tr]), torch.tensor(ytr[tr].astype(np.int64))
        xv, yv = prep(xtr[val]), torch.tensor(ytr[val].astype(np.int64))
        xt, yt = prep(xte), torch.tensor(yte.astype(np.int64))
        net = model(widths)
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
                    for m in net:
                        if isinstance(m, BinaryLinear):
                            m.weight.clamp_(-1, 1)
            sched.step()
            times.append(time.perf_counter() - t0)
        print(json.dumps({
            "peer": "pytorch-ste-adam-bn", "torch": torch.__version__, "seed": seed,
            "threads": a.threads, "accuracy": accuracy(net, xt, yt),
            "val_accuracy": accuracy(net, xv, yv) if nval else None, "epoch_seconds": sum(times) / len(times),
            "peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }), flush=True)


if __name__ == "__main__":
    main()
