#!/usr/bin/env bash
# Every measurement of docs/PERFORMANCE.md in one call, results under $OUT:
#   wgtrain.json      `wgtrain bench --json --profile` (all workloads that apply, MNIST-E2E if
#                     its folder is there), with the adapter
#   wgtrain_cpu.json  `wgtrain bench --backend cpu --json`: the fast CPU backend, with the
#                     machine's SGEMM rate measured in the same process
#   torch_cpu.json    benches/compare/torch_mlp.py on the CPU
#   jax_cpu.json      benches/compare/jax_mlp.py (jit) where jax and optax are installed
#   torch_cuda.json   ... on CUDA with TF32 off, and torch_cuda_tf32.json with it on (GPU only)
#   env.txt           date, kernel, CPU, GPU, Vulkan driver, versions
# wgtrain and its peers run back to back on the same machine, so their ratios compare.
#
#   OUT=bench-out benches/compare/run_all.sh
#
# WGTRAIN_BIN (default target/release/wgtrain), MNIST (default ../shared/data/mnist) and
# PYTHON (default python3) override where things are.
set -uo pipefail
OUT=${OUT:-bench-out}
BIN=${WGTRAIN_BIN:-target/release/wgtrain}
MNIST=${MNIST:-../shared/data/mnist}
PYTHON=${PYTHON:-python3}
here=$(dirname "$0")
mkdir -p "$OUT"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
chmod 700 "$XDG_RUNTIME_DIR"

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel: $(uname -a)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
    "$BIN" --version 2>&1
    "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1
} > "$OUT/env.txt"

status=0
echo "wgtrain bench..." >&2
"$BIN" bench --json --profile --mnist "$MNIST" > "$OUT/wgtrain.json" 2> "$OUT/wgtrain.log" || status=1

echo "wgtrain bench on the fast CPU backend..." >&2
"$BIN" bench --backend cpu --json --no-reference --mnist "$MNIST" > "$OUT/wgtrain_cpu.json" 2> "$OUT/wgtrain_cpu.log" || status=1

echo "pytorch on the CPU..." >&2
"$PYTHON" "$here/torch_mlp.py" --device cpu --mnist "$MNIST" > "$OUT/torch_cpu.json" 2> "$OUT/torch_cpu.log" || status=1

if "$PYTHON" -c 'import jax, optax' 2>/dev/null; then
    echo "jax on the CPU..." >&2
    JAX_PLATFORMS=cpu "$PYTHON" "$here/jax_mlp.py" --mnist "$MNIST" > "$OUT/jax_cpu.json" 2> "$OUT/jax_cpu.log" || status=1
else
    echo "note: jax skipped (python cannot import jax and optax)" >&2
fi

if "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "pytorch on CUDA, TF32 off..." >&2
    "$PYTHON" "$here/torch_mlp.py" --device cuda --mnist "$MNIST" > "$OUT/torch_cuda.json" 2> "$OUT/torch_cuda.log" || status=1
    echo "pytorch on CUDA, TF32 on..." >&2
    "$PYTHON" "$here/torch_mlp.py" --device cuda --tf32 --mnist "$MNIST" > "$OUT/torch_cuda_tf32.json" 2> "$OUT/torch_cuda_tf32.log" || status=1
fi
exit $status
