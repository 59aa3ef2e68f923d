// Optimizer updates, one thread per parameter element. The math matches
// `cpu::optimizer_step` and is documented on `Optimizer` in src/backend/ops.rs.

struct Params {
    len: u32,
    lr: f32,
    // momentum μ, or Adam's β1
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    // Adam's bias corrections 1 - β1^t and 1 - β2^t, computed in f64 on the host.
    bias_correction1: f32,
    bias_correction2: f32,
    // Slot of `guard` that must be finite for the update to happen.
    guard_slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
// The training loop's running loss sum: an update is skipped once it is NaN or infinite, so
// the weights stay those of the last step with a finite loss (TerminateOnNaN).
@group(0) @binding(2) var<storage, read> guard: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> s1: array<f32>;
@group(0) @binding(5) var<storage, read_write> s2: array<f32>;

// NaN or ±infinity: all exponent bits set. Tested on the bits because WGSL has no isnan and
// drivers may fold `x != x` away.
fn not_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

fn skip(i: u32) -> bool {
    return i >= p.len || not_finite(guard[p.guard_slot]);
}

override NESTEROV: bool = false;

// p -= lr g. Bindings: param, guard, grad.
@compute @workgroup_size(WG_1D)
fn opt_sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (!skip(i)) {
        param[i] -= p.lr * grad[i];
    }
}

// Keras momentum: v = μ v - lr g; p += v (or p += μ v - lr g with Nesterov). Bindings: param,
// guard, grad, v.
@compute @workgroup_size(WG_1D)
fn opt_momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (skip(i)) {
        return;
    }
    let g = grad[i];
    let v = p.beta1 * s1[i] - p.lr * g;
    s1[i] = v;
    if (NESTEROV) {
        param[i] += p.beta1 * v - p.lr * g;
    } else {
        param[i] += v;
    }
}

// Adam / AdamW. Bindings: param, guard, grad, m, v.
@compute @workgroup_size(WG_1D)
fn opt_adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (skip(i)) {
        return;
    }
    let g = grad[i];
    let m = p.beta1 * s1[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * s2[i] + (1.0 - p.beta2) * g * g;
    s1[i] = m;
    s2[i] = v;
    let m_hat = m / p.bias_correction1;
    let v_hat = v / p.bias_correction2;
    let decayed = param[i] * (1.0 - p.lr * p.weight_decay);
    param[i] = decayed - p.lr * m_hat / (sqrt(v_hat) + p.eps);
}
