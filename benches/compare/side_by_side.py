#!/usr/bin/env python3
"""wgtrain's CPU backend against PyTorch eager and JAX jit, in rounds, on one machine.

These machines are shared and noisy (the same binary moves by 20-30% within minutes), so a
single pair of runs is not a ratio. Each round runs the three programs back to back, in an
order that rotates from round to round, on the same workloads; the ratio of each round is
wgtrain's figure over the peer's in that round, and the figure to quote is the median of the
rounds' ratios. MM-M's ratio is to the machine SGEMM that `wgtrain bench --backend cpu`
measures in the same process. MNIST-E2E (the wall time from process start to the first epoch
at >= 98% test accuracy) runs once per program after the rounds, with --mnist.

    python3 benches/compare/side_by_side.py --rounds 5 --out bench-out/side_by_side.json
    python3 benches/compare/side_by_side.py --rounds 3 --mnist ../shared/data/mnist

Needs target/release/wgtrain (WGTRAIN_BIN overrides), torch, and jax with optax (a peer that
is not installed is skipped with a note). Prints a table; --out also writes every run's JSON.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = ["MLP-A", "MLP-B"]


def run_json(cmd):
    print("  $ " + " ".join(cmd), file=sys.stderr)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def programs(bin_path, workloads, mnist=None):
    """name -> the command that runs `workloads` (one JSON object on stdout)."""
    flags = [a for w in workloads for a in ("--workload", w)]
    extra = ["--mnist", mnist] if mnist else []
    out = {"wgtrain": [bin_path, "bench", "--backend", "cpu", "--json", "--no-reference"] + flags + extra}
    for peer, script in (("pytorch", "torch_mlp.py"), ("jax", "jax_mlp.py")):
        module = "torch" if peer == "pytorch" else "jax"
        try:
            __import__(module)
        except ImportError:
            print(f"note: {peer} skipped: python3 cannot import {module}", file=sys.stderr)
            continue
        out[peer] = [sys.executable, os.path.join(HERE, script)] + flags + extra
    return out


def by_workload(doc):
    return {r["workload"]: r for r in doc["results"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--mnist", help="also MNIST-E2E, once per program, from this folder")
    p.add_argument("--out", help="write every run's JSON and the summary here")
    args = p.parse_args()
    bin_path = os.environ.get("WGTRAIN_BIN", "target/release/wgtrain")
    progs = programs(bin_path, TRAINING + ["MM-M"])
    names = list(progs)
    rounds = []
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        print(f"round {r + 1} of {args.rounds}: {', '.join(order)}", file=sys.stderr)
        rounds.append({name: run_json(progs[name]) for name in order})

    summary = {}
    print(f"\n{'workload':<10}{'program':<10}" + "".join(f"{'round ' + str(i + 1):>12}" for i in range(len(rounds))) + f"{'median':>12}")
    for w in TRAINING:
        for name in names:
            vals = [by_workload(rd[name])[w]["samples_per_sec"] for rd in rounds]
            print(f"{w:<10}{name:<10}" + "".join(f"{v:>12,.0f}" for v in vals) + f"{statistics.median(vals):>12,.0f}")
            summary.setdefault(w, {})[name] = vals
        for peer in names[1:]:
            ratios = [a / b for a, b in zip(summary[w]["wgtrain"], summary[w][peer])]
            print(f"{w:<10}{'/ ' + peer:<10}" + "".join(f"{x:>11.2f}x" for x in ratios) + f"{statistics.median(ratios):>11.2f}x")
            summary[w][f"ratio_to_{peer}"] = ratios
    mm = [by_workload(rd["wgtrain"])["MM-M"]["gflops"] for rd in rounds]
    sgemm = [rd["wgtrain"]["sgemm"]["gflops"] for rd in rounds]
    share = [a / b for a, b in zip(mm, sgemm)]
    print(f"{'MM-M':<10}{'GFLOP/s':<10}" + "".join(f"{v:>12.1f}" for v in mm) + f"{statistics.median(mm):>12.1f}")
    print(f"{'SGEMM':<10}{'GFLOP/s':<10}" + "".join(f"{v:>12.1f}" for v in sgemm) + f"{statistics.median(sgemm):>12.1f}")
    print(f"{'MM-M':<10}{'/ SGEMM':<10}" + "".join(f"{100 * x:>11.0f}%" for x in share) + f"{100 * statistics.median(share):>11.0f}%")
    summary["MM-M"] = {"gflops": mm, "sgemm_gflops": sgemm, "share": share}

    if args.mnist:
        print("\nMNIST-E2E, once per program:", file=sys.stderr)
        mnist = {}
        for name, cmd in programs(bin_path, ["MNIST-E2E"], args.mnist).items():
            r = by_workload(run_json(cmd))["MNIST-E2E"]
            mnist[name] = r
            acc = ", ".join(f"{a:.4f}" for a in r["test_accuracy"])
            to_98 = r.get("seconds_to_98")
            to_98 = "never" if to_98 is None else f"{to_98:.1f} s"
            print(f"MNIST-E2E {name:<10} >= 98% at {to_98} from process start; wall {r['wall_s']:.1f} s; test accuracy {acc}")
        summary["MNIST-E2E"] = mnist

    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"rounds": rounds, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
