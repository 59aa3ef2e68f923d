// Activations and their derivatives. The ACT_* codes are the table in src/backend/ops.rs
// (`Activation::spec`); tests/op_table.rs checks that they agree.
//
// Backward takes what forward saved: z (the pre-activation) and a (the output).

const ACT_LINEAR: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_LEAKY_RELU: u32 = 2u;
const ACT_ELU: u32 = 3u;
const ACT_SIGMOID: u32 = 4u;
const ACT_TANH: u32 = 5u;
const ACT_SOFTPLUS: u32 = 6u;
const ACT_GELU: u32 = 7u;
const ACT_GELU_TANH: u32 = 8u;
const ACT_SILU: u32 = 9u;
const ACT_SOFTMAX: u32 = 10u;

const INV_SQRT_2: f32 = 0.70710678118654752;
const INV_SQRT_2PI: f32 = 0.39894228040143268;
const SQRT_2_OVER_PI: f32 = 0.79788456080286536;
const GELU_C: f32 = 0.044715;

struct Params {
    rows: u32,
    cols: u32,
    alpha: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> z: array<f32>;
@group(0) @binding(3) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read> da: array<f32>;

// Which activation this pipeline runs; specialised at pipeline creation, so the switches below
// fold away.
override ACT: u32 = 0u;

fn act_forward(x: f32) -> f32 {
    switch ACT {
        case ACT_RELU: { return max(x, 0.0); }
        case ACT_LEAKY_RELU: { return select(p.alpha * x, x, x > 0.0); }
        case ACT_ELU: { return select(p.alpha * (exp(min(x, 0.0)) - 1.0), x, x > 0.0); }
        case ACT_SIGMOID: { return sigmoid(x); }
        case ACT_TANH: { return tanh_safe(x); }
        case ACT_SOFTPLUS: { return softplus(x); }
        case ACT_GELU: { return 0.5 * x * (1.0 + erf_approx(x * INV_SQRT_2)); }
        case ACT_GELU_TANH: {
            return 0.5 * x * (1.0 + tanh_safe(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)));
        }
        case ACT_SILU: { return x * sigmoid(x); }
        default: { return x; }
    }
}

// d a / d z at (x, y) where y = act_forward(x).
fn act_derivative(x: f32, y: f32) -> f32 {
    switch ACT {
        case ACT_RELU: { return select(0.0, 1.0, x > 0.0); }
        case ACT_LEAKY_RELU: { return select(p.alpha, 1.0, x > 0.0); }
        case ACT_ELU: { return select(y + p.alpha, 1.0, x > 0.0); }
        case ACT_SIGMOID: { return y * (1.0 - y); }
        case ACT_TANH: { return 1.0 - y * y; }
        case ACT_SOFTPLUS: { return sigmoid(x); }
        case ACT_GELU: {
            return 0.5 * (1.0 + erf_approx(x * INV_SQRT_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
        }
        case ACT_GELU_TANH: {
            let t = tanh_safe(SQRT_2_OVER_PI * (x + GELU_C * x * x * x));
            return 0.5 * (1.0 + t)
                + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x);
        }
        case ACT_SILU: {
            let s = sigmoid(x);
            return s * (1.0 + x * (1.0 - s));
        }
        default: { return 1.0; }
    }
}

// out = act(z), element-wise. Bindings: out, z.
@compute @workgroup_size(WG_1D)
fn act_forward_main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.rows * p.cols) {
        out[i] = act_forward(z[i]);
    }
}

// out = da ⊙ act'(z), element-wise. Bindings: out, z, a, da.
@compute @workgroup_size(WG_1D)
fn act_backward_main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.rows * p.cols) {
        out[i] = da[i] * act_derivative(z[i], a[i]);
    }
}

// Row-wise softmax, stable: out[r, :] = exp(z - max) / Σ exp(z - max). One thread per row.
// Bindings: out, z.
@compute @workgroup_size(WG_ROWS)
fn softmax_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_index(gid, nwg);
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    var m = z[base];
    for (var c = 1u; c < p.cols; c++) {
        m = max(m, z[base + c]);
    }
    var s = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        let e = exp(z[base + c] - m);
        out[base + c] = e;
        s += e;
    }
    let inv = 1.0 / s;
    for (var c = 0u; c < p.cols; c++) {
        out[base + c] *= inv;
    }
}

// Softmax backward as a Jacobian-vector product: dz = a ⊙ (da - Σ_c a_c da_c), row-wise.
// Bindings: out, z (unused, bound for a uniform layout), a, da.
@compute @workgroup_size(WG_ROWS)
fn softmax_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_index(gid, nwg);
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    var dot = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        dot += a[base + c] * da[base + c];
    }
    for (var c = 0u; c < p.cols; c++) {
        out[base + c] = a[base + c] * (da[base + c] - dot);
    }
}
