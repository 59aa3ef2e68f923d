#!/usr/bin/env python3
"""The BENCHMARKS.md workloads in JAX (jit), for side-by-side runs with `wgtrain bench`.

The same data, networks, loss, optimizer, batch sizes and method as torch_mlp.py (the shared
parts are in workloads.py): each training step is one jitted function (forward, backward and
Adam from optax) with the parameters and optimizer state donated, so XLA fuses what it can
and updates in place; the batches are on the device before timing starts, as PyTorch's are
slices of one tensor. 10 warm-up steps (the first compiles), then one epoch timed three times
after the last step's results are ready; the median samples/s, GFLOP/s counted as
`wgtrain bench` counts them, and the loss of the last timed epoch, which must have fallen.

    pip install jax optax
    python3 benches/compare/jax_mlp.py                       # every workload that applies
    python3 benches/compare/jax_mlp.py --workload MLP-A      # one (repeatable)

Prints one JSON object like `wgtrain bench --json`: {"peer", "device", "results": [...]}.
The layers start from PyTorch's (Kaiming-uniform) init, not Glorot's; the loss curves differ a
little, the work per step does not.
"""

import argparse
import json
import os
import statistics
import sys
import time

PROCESS_START = time.perf_counter()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import CLASSES, FEATURES, MATMULS, MLPS, SAMPLES, benchmark_data, mlp_row, mnist  # noqa: E402


def init_mlp(hidden, seed=0):
    """Weights and biases uniform in ±1/sqrt(fan_in), as torch.nn.Linear draws them."""
    rng = np.random.default_rng(seed)
    params, fan_in = [], FEATURES
    for units in list(hidden) + [CLASSES]:
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_in, units)).astype(np.float32)
        b = rng.uniform(-bound, bound, (units,)).astype(np.float32)
        params.append((jnp.asarray(w), jnp.asarray(b)))
        fan_in = units
    return params


def forward(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def loss_fn(params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(forward(params, x), y).mean()


def make_step(opt):
    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    return jax.jit(step, donate_argnums=(0, 1))


def adam():
    return optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-8)


def run_mlp(name, hidden, batch, x, y, repeats=3):
    started = time.perf_counter()
    params = init_mlp(hidden)
    opt = adam()
    state = opt.init(params)
    step = make_step(opt)
    steps = SAMPLES // batch
    xb = [jax.device_put(x[s * batch:(s + 1) * batch]) for s in range(steps)]
    yb = [jax.device_put(y[s * batch:(s + 1) * batch].astype(np.int32)) for s in range(steps)]

    params, state, loss = step(params, state, xb[0], yb[0])
    warm = [float(loss)]
    startup = time.perf_counter() - started
    for s in range(1, 10):
        params, state, loss = step(params, state, xb[s], yb[s])
        warm.append(float(loss))
    times, last = [], float("nan")
    for _ in range(repeats):
        t = time.perf_counter()
        losses = []
        for s in range(steps):
            params, state, loss = step(params, state, xb[s], yb[s])
            losses.append(loss)
        jax.block_until_ready((params, losses))
        times.append(time.perf_counter() - t)
        last = float(jnp.mean(jnp.stack(losses)))
    return mlp_row(name, hidden, batch, times, warm, last, startup)


def run_matmul(name, shapes, repeats=3):
    rng = np.random.default_rng(7)
    ops, flops = [], 0.0
    for (m, n, k, ta, tb) in shapes:
        a = jnp.asarray(rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(np.float32))
        b = jnp.asarray(rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(np.float32))
        f = jax.jit(lambda a, b, ta=ta, tb=tb: (a.T if ta else a) @ (b.T if tb else b))
        ops.append((f, a, b))
        flops += 2.0 * m * n * k

    def once():
        return [f(a, b) for f, a, b in ops]

    jax.block_until_ready(once())
    t0 = time.perf_counter()
    jax.block_until_ready(once())
    first = max(time.perf_counter() - t0, 1e-6)
    iters = max(1, min(1000, int(np.ceil(0.2 / first))))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = [once() for _ in range(iters)]
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t) / iters)
    t = statistics.median(times)
    return {"workload": name, "gflops": flops / t / 1e9, "ms_per_step": 1e3 * t, "flops_per_step": flops}


def run_mnist(folder, max_epochs=10, batch=128):
    """torch_mlp.py's MNIST-E2E recipe: MLP-A's network and Adam, batch 128 shuffled each
    epoch (the last batch short), until the first epoch at >= 98% test accuracy (at most 10)."""
    xtr, ytr, xte, yte = mnist(folder)
    params = init_mlp([512, 512])
    opt = adam()
    state = opt.init(params)
    step = make_step(opt)
    xs, ys = jax.device_put(xtr), jax.device_put(ytr.astype(np.int32))
    xt, yt = jax.device_put(xte), jax.device_put(yte.astype(np.int32))

    @jax.jit
    def batch_of(xs, ys, idx):
        return xs[idx], ys[idx]

    @jax.jit
    def accuracy_of(params, x, y):
        return jnp.mean(jnp.argmax(forward(params, x), axis=1) == y)

    rng = np.random.default_rng(0)
    accuracy, to_98, train_s = [], None, 0.0
    for _ in range(max_epochs):
        t = time.perf_counter()
        order = rng.permutation(len(xtr)).astype(np.int32)
        for s in range(0, len(xtr), batch):
            xb, yb = batch_of(xs, ys, order[s:s + batch])
            params, state, _ = step(params, state, xb, yb)
        jax.block_until_ready(params)
        train_s += time.perf_counter() - t
        acc = float(accuracy_of(params, xt, yt))
        accuracy.append(acc)
        if acc >= 0.98:
            to_98 = time.perf_counter() - PROCESS_START
            break
    return {
        "workload": "MNIST-E2E",
        "samples_per_sec": len(accuracy) * len(xtr) / train_s,
        "test_accuracy": accuracy,
        "seconds_to_98": to_98,
        "wall_s": time.perf_counter() - PROCESS_START,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workload", action="append", help="repeatable; default: all that apply")
    p.add_argument("--mnist", default="../shared/data/mnist")
    args = p.parse_args()
    gpu = jax.default_backend() != "cpu"
    wanted = args.workload or ["MM-S", "MM-M", "MM-MLP", "MLP-A", "MLP-B", "MNIST-E2E"] + (["MM-L"] if gpu else [])
    results = []
    x = y = None
    for w in wanted:
        print(f"running {w} on jax {jax.default_backend()}...", file=sys.stderr)
        if w in MLPS and x is None:
            x, y = benchmark_data()
        if w in MATMULS:
            results.append(run_matmul(w, MATMULS[w]))
        elif w in MLPS:
            hidden, batch = MLPS[w]
            results.append(run_mlp(w, hidden, batch, x, y))
        elif w == "MNIST-E2E":
            if os.path.isdir(args.mnist):
                results.append(run_mnist(args.mnist))
            else:
                print(f"note: MNIST-E2E skipped: no folder {args.mnist}", file=sys.stderr)
        else:
            raise SystemExit(f"unknown workload {w}")
    device = jax.devices()[0]
    name = f"cpu, {os.cpu_count()} cores" if device.platform == "cpu" else device.device_kind
    print(json.dumps({"peer": f"jax {jax.__version__} (jit)", "device": name, "results": results}))


if __name__ == "__main__":
    main()
