// Activation kernels: element-wise forward and backward (the math is in act_math.wgsl) and the
// row-wise softmax.

struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
    // The activation's parameters (act_math.wgsl).
    q: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> z: array<f32>;
@group(0) @binding(3) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read> da: array<f32>;

// out = act(z), element-wise. Bindings: out, z.
@compute @workgroup_size(WG_1D)
fn act_forward_main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.rows * p.cols) {
        out[i] = act_forward(z[i], p.q);
    }
}

// out = da ⊙ act'(z), element-wise. Bindings: out, z, a, da.
@compute @workgroup_size(WG_1D)
fn act_backward_main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.rows * p.cols) {
        out[i] = da[i] * act_derivative(z[i], a[i], p.q);
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

// The row-wise softmax for wide rows: a workgroup of WG_ROWS threads per row, each taking
// every WG_ROWS-th column, the row's max and sum reduced by row_reduce (rows.wgsl). The dispatch
// picks these from ROW_WIDE columns (src/backend/gpu/mod.rs).
// Bindings: out, z.
@compute @workgroup_size(WG_ROWS)
fn softmax_forward_wide(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: the whole workgroup leaves or none does (barriers follow).
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    var m = -3.4028235e38;
    for (var c = li; c < p.cols; c += WG_ROWS) {
        m = max(m, z[base + c]);
    }
    m = row_reduce(li, m, true);
    var s = 0.0;
    for (var c = li; c < p.cols; c += WG_ROWS) {
        let e = exp(z[base + c] - m);
        out[base + c] = e;
        s += e;
    }
    let inv = 1.0 / row_reduce(li, s, false);
    for (var c = li; c < p.cols; c += WG_ROWS) {
        out[base + c] *= inv;
    }
}

// Bindings: out, z (unused), a, da.
@compute @workgroup_size(WG_ROWS)
fn softmax_backward_wide(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    var dot = 0.0;
    for (var c = li; c < p.cols; c += WG_ROWS) {
        dot += a[base + c] * da[base + c];
    }
    dot = row_reduce(li, dot, false);
    for (var c = li; c < p.cols; c += WG_ROWS) {
        out[base + c] = a[base + c] * (da[base + c] - dot);
    }
}
