// The element-wise activations and their derivatives, shared by activation.wgsl and the matmul
// epilogues. The ACT_* codes are the table in src/backend/ops.rs (`Activation::spec`);
// tests/op_table.rs checks that they agree. `q` holds the parameters (`Activation::params`):
// q.x is leaky ReLU's slope or ELU's α; the Soboleva tanh's a, b, c, d are q.xyzw.
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
const ACT_BINARY_STEP: u32 = 11u;
const ACT_SELU: u32 = 12u;
const ACT_GAUSSIAN: u32 = 13u;
const ACT_SOBOLEVA_TANH: u32 = 14u;

const SELU_LAMBDA: f32 = 1.0507009873554805;
const SELU_ALPHA: f32 = 1.6732632423543772;

const INV_SQRT_2: f32 = 0.70710678118654752;
const INV_SQRT_2PI: f32 = 0.39894228040143268;
const SQRT_2_OVER_PI: f32 = 0.79788456080286536;
const GELU_C: f32 = 0.044715;

// Which activation this pipeline runs; specialised at pipeline creation, so the switches below
// fold away.
override ACT: u32 = 0u;

// The Soboleva tanh (e^{az} - e^{-bz}) / (e^{cz} + e^{-dz}) and its derivative, numerator and
// denominator scaled by e^{-cz} (z > 0) or e^{dz} (z ≤ 0) so that neither overflows where the
// quotient is finite (as cpu::soboleva_f64).
fn soboleva(x: f32, q: vec4<f32>) -> vec2<f32> {
    let a = q.x;
    let b = q.y;
    let c = q.z;
    let d = q.w;
    var n: f32;
    var dn: f32;
    var den: f32;
    var dden: f32;
    if (x > 0.0) {
        let s = exp(-(c + d) * x);
        let e1 = exp((a - c) * x);
        let e2 = exp(-(b + c) * x);
        n = e1 - e2;
        dn = a * e1 + b * e2;
        den = 1.0 + s;
        dden = c - d * s;
    } else {
        let s = exp((c + d) * x);
        let e1 = exp((a + d) * x);
        let e2 = exp((d - b) * x);
        n = e1 - e2;
        dn = a * e1 + b * e2;
        den = s + 1.0;
        dden = c * s - d;
    }
    let f = n / den;
    return vec2(f, dn / den - f * dden / den);
}

fn act_forward(x: f32, q: vec4<f32>) -> f32 {
    let alpha = q.x;
    switch ACT {
        case ACT_RELU: { return max(x, 0.0); }
        case ACT_LEAKY_RELU: { return select(alpha * x, x, x > 0.0); }
        case ACT_ELU: { return select(alpha * (exp(min(x, 0.0)) - 1.0), x, x > 0.0); }
        case ACT_SIGMOID: { return sigmoid(x); }
        case ACT_TANH: { return tanh_safe(x); }
        case ACT_SOFTPLUS: { return softplus(x); }
        case ACT_GELU: { return 0.5 * x * (1.0 + erf_approx(x * INV_SQRT_2)); }
        case ACT_GELU_TANH: {
            return 0.5 * x * (1.0 + tanh_safe(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)));
        }
        case ACT_SILU: { return x * sigmoid(x); }
        case ACT_BINARY_STEP: { return select(0.0, 1.0, x >= 0.0); }
        case ACT_SELU: { return select(SELU_LAMBDA * SELU_ALPHA * (exp(min(x, 0.0)) - 1.0), SELU_LAMBDA * x, x > 0.0); }
        case ACT_GAUSSIAN: { return exp(-x * x); }
        case ACT_SOBOLEVA_TANH: { return soboleva(x, q).x; }
        default: { return x; }
    }
}

// d a / d z at (x, y) where y = act_forward(x).
fn act_derivative(x: f32, y: f32, q: vec4<f32>) -> f32 {
    let alpha = q.x;
    switch ACT {
        case ACT_RELU: { return select(0.0, 1.0, x > 0.0); }
        case ACT_LEAKY_RELU: { return select(alpha, 1.0, x > 0.0); }
        case ACT_ELU: { return select(y + alpha, 1.0, x > 0.0); }
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
        case ACT_BINARY_STEP: { return 0.0; }
        case ACT_SELU: { return select(y + SELU_LAMBDA * SELU_ALPHA, SELU_LAMBDA, x > 0.0); }
        case ACT_GAUSSIAN: { return -2.0 * x * y; }
        case ACT_SOBOLEVA_TANH: { return soboleva(x, q).y; }
        default: { return 1.0; }
    }
}

