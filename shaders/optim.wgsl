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

// The update rules, written once on vec4 and used by both kernel families below.

// Keras momentum: v = μ v - lr g; the parameter moves by v (or μ v - lr g with Nesterov).
struct MomentumStep {
    delta: vec4<f32>,
    v: vec4<f32>,
}

fn momentum_step(g: vec4<f32>, v0: vec4<f32>) -> MomentumStep {
    let v = p.beta1 * v0 - p.lr * g;
    if (NESTEROV) {
        return MomentumStep(p.beta1 * v - p.lr * g, v);
    }
    return MomentumStep(v, v);
}

// Adam / AdamW: the new parameter and moments.
struct AdamStep {
    param: vec4<f32>,
    m: vec4<f32>,
    v: vec4<f32>,
}

fn adam_step(param0: vec4<f32>, g: vec4<f32>, m0: vec4<f32>, v0: vec4<f32>) -> AdamStep {
    let m = p.beta1 * m0 + (1.0 - p.beta1) * g;
    let v = p.beta2 * v0 + (1.0 - p.beta2) * g * g;
    let m_hat = m / p.bias_correction1;
    let v_hat = v / p.bias_correction2;
    let decayed = param0 * (1.0 - p.lr * p.weight_decay);
    return AdamStep(decayed - p.lr * m_hat / (sqrt(v_hat) + p.eps), m, v);
}

// One thread per element of one tensor. Bindings: param, guard, grad (, s1 (, s2)).

@compute @workgroup_size(WG_1D)
fn opt_sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (!skip(i)) {
        param[i] -= p.lr * grad[i];
    }
}

@compute @workgroup_size(WG_1D)
fn opt_momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (skip(i)) {
        return;
    }
    let r = momentum_step(vec4(grad[i]), vec4(s1[i]));
    s1[i] = r.v.x;
    param[i] += r.delta.x;
}

@compute @workgroup_size(WG_1D)
fn opt_adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (skip(i)) {
        return;
    }
    let r = adam_step(vec4(param[i]), vec4(grad[i]), vec4(s1[i]), vec4(s2[i]));
    param[i] = r.param.x;
    s1[i] = r.m.x;
    s2[i] = r.v.x;
}

// One thread per 4 elements of a whole parameter group (Backend::zeros_group): every layer's
// weights and biases in one buffer, updated by one dispatch. `p.len` counts vec4s here. The
// gaps between the group's tensors are zero in parameters, gradients and state alike, and
// every rule maps zeros to zeros, so they stay zero.
@group(0) @binding(1) var<storage, read_write> param4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> grad4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> s1_4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> s2_4: array<vec4<f32>>;

@compute @workgroup_size(WG_1D)
fn opt_sgd4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (!skip(i)) {
        param4[i] -= p.lr * grad4[i];
    }
}

@compute @workgroup_size(WG_1D)
fn opt_momentum4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (skip(i)) {
        return;
    }
    let r = momentum_step(grad4[i], s1_4[i]);
    s1_4[i] = r.v;
    param4[i] += r.delta;
}

@compute @workgroup_size(WG_1D)
fn opt_adam4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (skip(i)) {
        return;
    }
    let r = adam_step(param4[i], grad4[i], s1_4[i], s2_4[i]);
    param4[i] = r.param;
    s1_4[i] = r.m;
    s2_4[i] = r.v;
}
