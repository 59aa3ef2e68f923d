// The element-wise activations and their derivatives, shared by activation.wgsl and the matmul
// epilogues. The ACT_* codes are the table in src/backend/ops.rs (`Activation::spec`);
// tests/op_table.rs checks that they agree. `alpha` is leaky ReLU's slope or ELU's α.
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

// Which activation this pipeline runs; specialised at pipeline creation, so the switches below
// fold away.
override ACT: u32 = 0u;

fn act_forward(x: f32, alpha: f32) -> f32 {
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
        default: { return x; }
    }
}

// d a / d z at (x, y) where y = act_forward(x).
fn act_derivative(x: f32, y: f32, alpha: f32) -> f32 {
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
        default: { return 1.0; }
    }
}

