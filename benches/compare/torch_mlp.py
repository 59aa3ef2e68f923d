#!/usr/bin/env python3
"""The BENCHMARKS.md workloads in PyTorch, for side-by-side runs with `wgtrain bench`.

Same data (the SplitMix64 synthetic set, generated here with numpy and checked against the
values BENCHMARKS.md gives), same networks, loss, optimizer, batch sizes and method: 10 warm-up
steps, then one epoch timed three times after the device has drained; the median samples/s,
GFLOP/s counted as `wgtrain bench` counts them (every matmul, forward and backward), and the
loss of the last timed epoch, which must have fallen.

    python3 benches/compare/torch_mlp.py --device cpu                  # here
    python3 benches/compare/torch_mlp.py --device cuda                 # fp32, TF32 off
    python3 benches/compare/torch_mlp.py --device cuda --tf32          # the second row

Prints one JSON object like `wgtrain bench --json`: {"peer", "device", "results": [...]}.
PyTorch's Linear layers start from its own (Kaiming-uniform) init, not Glorot's; the loss
curves differ a little, the work per step does not.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

PROCESS_START = time.perf_counter()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import (  # noqa: E402
    CLASSES, CNN_A_BATCH, CNN_A_FLOPS, FEATURES, MATMULS, MLPS, SAMPLES, benchmark_data, mlp_row, mnist,
)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def mlp(hidden, device):
    layers, fan_in = [], FEATURES
    for h in hidden:
        layers += [torch.nn.Linear(fan_in, h), torch.nn.ReLU()]
        fan_in = h
    layers.append(torch.nn.Linear(fan_in, CLASSES))
    return torch.nn.Sequential(*layers).to(device)


def cnn_a(device):
    """BENCHMARKS.md's CNN-A, channels first as PyTorch has it: the same work per step."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(1600, 128), torch.nn.ReLU(), torch.nn.Linear(128, CLASSES),
    ).to(device)


def run_mlp(name, hidden, batch, device, x, y, repeats=3):
    started = time.perf_counter()
    torch.manual_seed(0)
    model = cnn_a(device) if name == "CNN-A" else mlp(hidden, device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = torch.nn.CrossEntropyLoss()
    xs = torch.from_numpy(x).to(device)
    if name == "CNN-A":
        xs = xs.reshape(-1, 1, 28, 28)  # each row a 28×28 image, one channel
    ys = torch.from_numpy(y).to(device)
    steps = SAMPLES // batch

    def step(s):
        xb, yb = xs[s * batch:(s + 1) * batch], ys[s * batch:(s + 1) * batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss.detach()

    first = step(0).item()
    startup = time.perf_counter() - started
    warm = [first] + [step(s).item() for s in range(1, 10)]
    sync(device)
    times, last = [], float("nan")
    for _ in range(repeats):
        t = time.perf_counter()
        losses = [step(s) for s in range(steps)]
        sync(device)
        times.append(time.perf_counter() - t)
        last = float(torch.stack(losses).mean())
    return mlp_row(name, hidden, batch, times, warm, last, startup, CNN_A_FLOPS if name == "CNN-A" else None)


def run_matmul(name, shapes, device, repeats=3):
    g = torch.Generator().manual_seed(7)
    ops, flops = [], 0.0
    for (m, n, k, ta, tb) in shapes:
        a = torch.rand((k, m) if ta else (m, k), generator=g).to(device) * 2 - 1
        b = torch.rand((n, k) if tb else (k, n), generator=g).to(device) * 2 - 1
        ops.append((a.t() if ta else a, b.t() if tb else b))
        flops += 2.0 * m * n * k
    for a, b in ops:
        torch.matmul(a, b)
    sync(device)
    t0 = time.perf_counter()
    for a, b in ops:
        torch.matmul(a, b)
    sync(device)
    once = max(time.perf_counter() - t0, 1e-6)
    iters = max(1, min(1000, int(np.ceil(0.2 / once))))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(iters):
            for a, b in ops:
                torch.matmul(a, b)
        sync(device)
        times.append((time.perf_counter() - t) / iters)
    t = statistics.median(times)
    return {"workload": name, "gflops": flops / t / 1e9, "ms_per_step": 1e3 * t, "flops_per_step": flops}


def run_mnist(folder, device, max_epochs=10):
    """MLP-A's network and optimizer on MNIST in [0, 1], batch 128, shuffled, until the first
    epoch whose test accuracy is >= 98% (at most 10): the accuracy after each epoch, the time
    from process start to that epoch's end, and the whole wall time."""
    xtr, ytr, xte, yte = mnist(folder)
    torch.manual_seed(0)
    model = mlp([512, 512], device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = torch.nn.CrossEntropyLoss()
    xs, ys = torch.from_numpy(xtr).to(device), torch.from_numpy(ytr).to(device)
    xt, yt = torch.from_numpy(xte).to(device), torch.from_numpy(yte).to(device)
    accuracy, to_98, train_s = [], None, 0.0
    g = torch.Generator().manual_seed(0)
    for _ in range(max_epochs):
        t = time.perf_counter()
        order = torch.randperm(len(xs), generator=g).to(device)
        for s in range(0, len(xs), 128):
            idx = order[s:s + 128]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xs[idx]), ys[idx]).backward()
            opt.step()
        sync(device)
        train_s += time.perf_counter() - t
        with torch.no_grad():
            acc = float((model(xt).argmax(dim=1) == yt).float().mean())
        accuracy.append(acc)
        if acc >= 0.98:
            to_98 = time.perf_counter() - PROCESS_START
            break
    return {
        "workload": "MNIST-E2E",
        "samples_per_sec": len(accuracy) * len(xs) / train_s,
        "test_accuracy": accuracy,
        "seconds_to_98": to_98,
        "wall_s": time.perf_counter() - PROCESS_START,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls (CUDA)")
    p.add_argument("--workload", action="append", help="repeatable; default: all that apply")
    p.add_argument("--mnist", default="../shared/data/mnist")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    gpu = device.type == "cuda"
    wanted = args.workload or ["MM-S", "MM-M", "MM-MLP", "MLP-A", "MLP-B", "MNIST-E2E", "CNN-A"] + (["MM-L"] if gpu else [])
    results = []
    x = y = None
    for w in wanted:
        print(f"running {w} on torch {args.device}...", file=sys.stderr)
        if w in ("MLP-A", "MLP-B", "CNN-A") and x is None:
            x, y = benchmark_data()
        if w in MATMULS:
            results.append(run_matmul(w, MATMULS[w], device))
        elif w in MLPS:
            hidden, batch = MLPS[w]
            results.append(run_mlp(w, hidden, batch, device, x, y))
        elif w == "CNN-A":
            results.append(run_mlp(w, None, CNN_A_BATCH, device, x, y))
        elif w == "MNIST-E2E":
            if os.path.isdir(args.mnist):
                results.append(run_mnist(args.mnist, device))
            else:
                print(f"note: MNIST-E2E skipped: no folder {args.mnist}", file=sys.stderr)
        else:
            raise SystemExit(f"unknown workload {w}")
    name = torch.cuda.get_device_name(device) if gpu else f"cpu, {torch.get_num_threads()} threads"
    print(json.dumps({
        "peer": f"pytorch {torch.__version__}",
        "device": name,
        "tf32": args.tf32,
        "results": results,
    }))


if __name__ == "__main__":
    main()
