// Prepended to every wgtrain shader (see src/backend/gpu/kernels.rs).
//
// Binding convention: @binding(0) is the kernel's `Params` uniform, bound with a dynamic offset
// into one per-submit arena; storage buffers follow in the order the kernel table lists them.

const WG_1D: u32 = 256u;

// Flat element index for a 1-D problem dispatched as a 2-D grid of WG_1D-wide workgroups
// (a grid dimension holds at most 65535 workgroups, so large tensors spill into y).
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG_1D;
}

// Row index for row-wise kernels dispatched with 64-wide workgroups.
const WG_ROWS: u32 = 64u;
fn row_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG_ROWS;
}

// 1 / (1 + e^-x) without overflow for any finite x.
fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

// ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|): finite for any finite x.
fn softplus(x: f32) -> f32 {
    return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

// tanh with its argument clamped: tanh(±9) is ±1 in f32, and some drivers return NaN
// (inf / inf) for large arguments of the built-in.
fn tanh_safe(x: f32) -> f32 {
    return tanh(clamp(x, -9.0, 9.0));
}

// erf(x), Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7 (WGSL has no erf).
fn erf_approx(x: f32) -> f32 {
    let ax = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * ax);
    let poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t
        + 0.254829592) * t;
    let y = 1.0 - poly * exp(-ax * ax);
    return select(y, -y, x < 0.0);
}
