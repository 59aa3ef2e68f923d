#!/usr/bin/env python3
"""The data-parallel scaling model of docs/SCALING.md, as a calculation anyone can rerun with
their own measured figures (every default below is an assumption named in that document).

A data-parallel step on N ranks, each with a per-rank batch of b rows, takes

    T(N, b) = T_c(b) + T_rb + T_ar(N) + T_up

T_c(b) = t0 + b * t1            the rank's forward, backward and update (measured on one rank)
T_rb = T_up = S / pcie + rt     the flat gradient's read-back and upload, one round trip each
T_ar(N) = 2 (N-1)/N * S / beta + 2 (N-1) * alpha
                                a ring allreduce (reduce-scatter, then allgather) of S bytes

Usage: scaling_model.py [--t0-ms 0.15] [--t1-us 0.33] [--params 669706] ...
"""

import argparse


def allreduce_ms(n, s_bytes, beta_gbs, alpha_us):
    if n == 1:
        return 0.0
    return 2 * (n - 1) / n * s_bytes / (beta_gbs * 1e9) * 1e3 + 2 * (n - 1) * alpha_us / 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", type=int, default=669_706, help="parameters (MLP-A: 669,706)")
    p.add_argument("--batch", type=int, default=128, help="the one-GPU batch (MLP-A: 128)")
    p.add_argument("--t0-ms", type=float, default=0.15, help="fixed step time on one GPU (launches, update)")
    p.add_argument("--t1-us", type=float, default=0.33, help="step time per row on one GPU")
    p.add_argument("--pcie-gbs", type=float, default=25.0, help="read-back and upload GB/s")
    p.add_argument("--rt-us", type=float, default=30.0, help="one submit, wait and map round trip")
    p.add_argument("--shm-gbs", type=float, default=10.0, help="shared-memory allreduce GB/s per rank")
    p.add_argument("--shm-alpha-us", type=float, default=1.0, help="shared-memory message latency")
    p.add_argument("--net-gbs", type=float, default=10.0, help="network GB/s per machine (100 Gb/s at 80%%)")
    p.add_argument("--net-alpha-us", type=float, default=10.0, help="network message latency (TCP)")
    a = p.parse_args()

    s = 4 * a.params + 4  # f32 gradients and the guard's flag
    def t_c(b):
        return a.t0_ms + b * a.t1_us / 1e3

    t_copy = s / (a.pcie_gbs * 1e9) * 1e3 + a.rt_us / 1e3
    one = t_c(a.batch)
    print(f"S = {s:,} bytes per allreduce; read-back or upload {t_copy:.3f} ms; "
          f"one GPU at batch {a.batch}: {one:.3f} ms/step, {a.batch / one * 1e3:,.0f} samples/s")
    print()
    print(f"{'setting':<40} {'N':>3} {'batch/rank':>10} {'T_c ms':>7} {'T_ar ms':>8} {'T_x ms':>7} "
          f"{'step ms':>8} {'samples/s':>10} {'x 1 GPU':>8} {'comm %':>7}")
    settings = [
        ("8 GPUs, one machine (shm)", 8, a.shm_gbs, a.shm_alpha_us),
        ("4 machines, 1 GPU each, 100 Gb/s", 4, a.net_gbs, a.net_alpha_us),
        # A flat ring over 4 machines of 8 GPUs: each of its 2(N-1) steps waits for the chunk
        # that crosses the network, so the network's figures set its pace.
        ("4 machines x 8 GPUs, 100 Gb/s", 32, a.net_gbs, a.net_alpha_us),
    ]
    for name, n, beta, alpha in settings:
        for label, b in (("strong", a.batch // n), ("weak", a.batch)):
            ar = allreduce_ms(n, s, beta, alpha)
            tx = 2 * t_copy + ar
            step = t_c(b) + tx
            rate = n * b / step * 1e3
            print(f"{name + ', ' + label:<40} {n:>3} {b:>10} {t_c(b):>7.3f} {ar:>8.3f} {tx:>7.3f} "
                  f"{step:>8.3f} {rate:>10,.0f} {rate / (a.batch / one * 1e3):>8.2f} {100 * tx / step:>7.1f}")
    print()
    for name, n, beta, alpha in settings:
        tx = 2 * t_copy + allreduce_ms(n, s, beta, alpha)
        # Efficiency E = T_c / (T_c + T_x) >= 0.8 needs T_c >= 4 T_x.
        b80 = max(0.0, (4 * tx - a.t0_ms) / (a.t1_us / 1e3))
        print(f"{name}: 80% efficiency needs a per-rank batch of about {b80:,.0f} rows")
    # What overlapping buckets could hide: at most the backward of the layers below the top
    # one (two thirds of the step's compute, as the backward is about twice the forward).
    print()
    for name, n, beta, alpha in settings:
        for b in (a.batch, 4096):
            tx = 2 * t_copy + allreduce_ms(n, s, beta, alpha)
            backward = 2 / 3 * (t_c(b) - a.t0_ms)
            hidden = min(tx, backward)
            step = t_c(b) + tx
            print(f"{name}, batch {b}/rank: overlap hides at most {hidden:.3f} ms of {step:.3f} "
                  f"({100 * hidden / step:.0f}%)")


if __name__ == "__main__":
    main()
