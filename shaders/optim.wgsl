// Optimizer updates, one thread per parameter element (or per four, over a whole parameter
// group). The math matches `cpu::optimizer_step` and is documented on `Optimizer` in
// src/backend/ops.rs; what a guarded update does is documented on `Backend::optimizer_step`.

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
    // A guarded update's slots of `acc` (GuardSlots) and its step t.
    loss_slot: u32,
    flag_slot: u32,
    step_slot: u32,
    t: u32,
}

// One layout for every rule, guarded or not: the parameter, the accumulator, the gradient,
// then each state tensor the rule keeps, each tensor followed by where its new values go when
// guarded. An unguarded update writes in place, and binds small unused buffers in the
// accumulator's and the outputs' places.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
// The training loop's accumulator, as u32 bits: the loss sum is read, the flags and the
// step written, atomically (many invocations may raise the same flag).
@group(0) @binding(2) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> param_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> s1: array<f32>;
@group(0) @binding(6) var<storage, read_write> s1_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> s2: array<f32>;
@group(0) @binding(8) var<storage, read_write> s2_out: array<f32>;

// Set for the guarded pipelines.
override GUARDED: bool = false;
override NESTEROV: bool = false;

// NaN or ±infinity: all exponent bits set. Tested on the bits because WGSL has no isnan and
// drivers may fold `x != x` away.
fn not_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

fn not_finite4(v: vec4<f32>) -> bool {
    return any((bitcast<vec4<u32>>(v) & vec4(0x7f800000u)) == vec4(0x7f800000u));
}

// This step's flag: raised when its result is not finite, or when it was skipped.
fn raise_flag() {
    atomicStore(&acc[p.flag_slot + p.t % 2u], 1u);
}

// Whether invocation `i` has nothing to do: past the end, or (guarded) the loss so far is not
// finite or the previous step raised its flag. Neither slot is written by this dispatch, so
// every invocation decides alike.
fn stop(i: u32) -> bool {
    if (i >= p.len) {
        return true;
    }
    if (GUARDED) {
        let loss = bitcast<f32>(atomicLoad(&acc[p.loss_slot]));
        let previous = atomicLoad(&acc[p.flag_slot + (p.t + 1u) % 2u]);
        if (not_finite(loss) || previous != 0u) {
            if (i == 0u) {
                raise_flag();
            }
            return true;
        }
        if (i == 0u) {
            atomicStore(&acc[p.step_slot], p.t);
        }
    }
    return false;
}

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

// One thread per element of one tensor.

@compute @workgroup_size(WG_1D)
fn opt_sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (stop(i)) {
        return;
    }
    let new_param = param[i] - p.lr * grad[i];
    if (GUARDED) {
        param_out[i] = new_param;
        if (not_finite(new_param)) {
            raise_flag();
        }
    } else {
        param[i] = new_param;
    }
}

@compute @workgroup_size(WG_1D)
fn opt_momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (stop(i)) {
        return;
    }
    let r = momentum_step(vec4(grad[i]), vec4(s1[i]));
    let new_param = param[i] + r.delta.x;
    if (GUARDED) {
        param_out[i] = new_param;
        s1_out[i] = r.v.x;
        if (not_finite(new_param) || not_finite(r.v.x)) {
            raise_flag();
        }
    } else {
        param[i] = new_param;
        s1[i] = r.v.x;
    }
}

@compute @workgroup_size(WG_1D)
fn opt_adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (stop(i)) {
        return;
    }
    let r = adam_step(vec4(param[i]), vec4(grad[i]), vec4(s1[i]), vec4(s2[i]));
    if (GUARDED) {
        param_out[i] = r.param.x;
        s1_out[i] = r.m.x;
        s2_out[i] = r.v.x;
        if (not_finite(r.param.x) || not_finite(r.m.x) || not_finite(r.v.x)) {
            raise_flag();
        }
    } else {
        param[i] = r.param.x;
        s1[i] = r.m.x;
        s2[i] = r.v.x;
    }
}

// One thread per 4 elements of a whole parameter group (Backend::zeros_group): every layer's
// weights and biases in one buffer, updated by one dispatch. `p.len` counts vec4s here. The
// gaps between the group's tensors are zero in parameters, gradients, state and outputs alike,
// and every rule maps zeros to zeros, so they stay zero.
@group(0) @binding(1) var<storage, read_write> param4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> grad4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> param_out4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> s1_4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> s1_out4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> s2_4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> s2_out4: array<vec4<f32>>;

@compute @workgroup_size(WG_1D)
fn opt_sgd4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (stop(i)) {
        return;
    }
    let new_param = param4[i] - p.lr * grad4[i];
    if (GUARDED) {
        param_out4[i] = new_param;
        if (not_finite4(new_param)) {
            raise_flag();
        }
    } else {
        param4[i] = new_param;
    }
}

@compute @workgroup_size(WG_1D)
fn opt_momentum4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (stop(i)) {
        return;
    }
    let r = momentum_step(grad4[i], s1_4[i]);
    let new_param = param4[i] + r.delta;
    if (GUARDED) {
        param_out4[i] = new_param;
        s1_out4[i] = r.v;
        if (not_finite4(new_param) || not_finite4(r.v)) {
            raise_flag();
        }
    } else {
        param4[i] = new_param;
        s1_4[i] = r.v;
    }
}

@compute @workgroup_size(WG_1D)
fn opt_adam4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (stop(i)) {
        return;
    }
    let r = adam_step(param4[i], grad4[i], s1_4[i], s2_4[i]);
    if (GUARDED) {
        param_out4[i] = r.param;
        s1_out4[i] = r.m;
        s2_out4[i] = r.v;
        if (not_finite4(r.param) || not_finite4(r.m) || not_finite4(r.v)) {
            raise_flag();
        }
    } else {
        param4[i] = r.param;
        s1_4[i] = r.m;
        s2_4[i] = r.v;
    }
}

// Keras' moving average of a batch normalization's statistics, guarded like the updates:
// param = μ param + (1 - μ) batch, with μ in `lr` and the batch's statistic in `grad`.
@compute @workgroup_size(WG_1D)
fn moving_average(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (stop(i)) {
        return;
    }
    let value = p.lr * param[i] + (1.0 - p.lr) * grad[i];
    if (GUARDED) {
        param_out[i] = value;
        if (not_finite(value)) {
            raise_flag();
        }
    } else {
        param[i] = value;
    }
}
