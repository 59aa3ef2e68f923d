"""What the peer scripts in benches/compare share: BENCHMARKS.md's synthetic data, its FLOP
count, the MNIST files and the JSON row of one timed workload. numpy only, so that every peer
(PyTorch, JAX) trains on the very same bytes."""

import os
import statistics

import numpy as np

SAMPLES, FEATURES, CLASSES = 16384, 784, 10
GOLDEN = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1

# name -> (hidden layers, batch), as BENCHMARKS.md defines them
MLPS = {"MLP-A": ([512, 512], 128), "MLP-B": ([128], 64)}

# CNN-A's FLOPs a step of 128 as BENCHMARKS.md counts them (convolutions and products only)
CNN_A_FLOPS = 1_970_798_592.0
CNN_A_BATCH = 128

# name -> [(M, N, K, A transposed, B transposed)]
MATMULS = {
    "MM-S": [(128, 128, 128, False, False)],
    "MM-M": [(1024, 1024, 1024, False, False)],
    "MM-L": [(4096, 4096, 4096, False, False)],
    "MM-MLP": [(128, 512, 784, False, False), (128, 784, 512, False, True), (784, 512, 128, True, False)],
}


def splitmix(seed, idx):
    """v(seed, i) of BENCHMARKS.md for an array of indices, in wrapping u64 arithmetic."""
    z = (np.uint64(seed) + (idx.astype(np.uint64) + np.uint64(1)) * np.uint64(GOLDEN)) & np.uint64(MASK)
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(MASK)
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & np.uint64(MASK)
    return z ^ (z >> np.uint64(31))


def benchmark_data():
    """The 16384 synthetic rows and their labels, checked against BENCHMARKS.md's values."""
    with np.errstate(over="ignore"):
        m = splitmix(42, np.arange(SAMPLES * FEATURES, dtype=np.uint64)) >> np.uint64(40)
    m = m.reshape(SAMPLES, FEATURES)
    x = (m.astype(np.float64) / float(1 << 24)).astype(np.float32)
    sums = m[:, :780].reshape(SAMPLES, 10, 78).sum(axis=2, dtype=np.uint64)
    y = sums.argmax(axis=1).astype(np.int64)  # first index on ties, as specified
    assert np.allclose(x[0, :3], [0.74156487, 0.15991038, 0.2786011], atol=1e-7), x[0, :3]
    assert list(y[:10]) == [3, 3, 3, 7, 7, 1, 2, 9, 7, 7], y[:10]
    return x, y


def flops_per_step(hidden, batch):
    """Every matmul of a step at 2 FLOPs per multiply-add: forward and weight gradient of each
    layer, input gradient of every layer above the first."""
    flops, fan_in = 0.0, FEATURES
    for i, units in enumerate(list(hidden) + [CLASSES]):
        products = 2.0 if i == 0 else 3.0
        flops += products * 2.0 * batch * fan_in * units
        fan_in = units
    return flops


def mlp_row(name, hidden, batch, times, warm_losses, last_loss, startup, flops=None):
    """The JSON row of one training workload from its timed epochs (`flops` a step where
    it is not an MLP's); exits if the loss did not fall (a number without a falling loss is
    not a training number)."""
    t = statistics.median(times)
    first_loss = sum(warm_losses) / len(warm_losses)
    if not (last_loss < first_loss and last_loss < np.log(10)):
        raise SystemExit(f"{name}: the loss did not fall ({first_loss} -> {last_loss})")
    flops = flops if flops is not None else flops_per_step(hidden, batch)
    steps = SAMPLES // batch
    return {
        "workload": name,
        "samples_per_sec": SAMPLES / t,
        "gflops": flops * steps / t / 1e9,
        "ms_per_step": 1e3 * t / steps,
        "first_loss": first_loss,
        "final_loss": last_loss,
        "startup_s": startup,
        "flops_per_step": flops,
    }


def load_idx(path):
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(folder, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise SystemExit(f"MNIST-E2E: no {stem}(.gz) in {folder}")


def mnist(folder):
    """MNIST's training and test sets, images as [n, 784] f32 in [0, 1], labels int64."""
    xtr = load_idx(find(folder, "train-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255
    ytr = load_idx(find(folder, "train-labels-idx1-ubyte")).astype(np.int64)
    xte = load_idx(find(folder, "t10k-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255
    yte = load_idx(find(folder, "t10k-labels-idx1-ubyte")).astype(np.int64)
    return xtr, ytr, xte, yte
