// The convolutional layers' kernels: 2-D convolution (forward, input gradient, kernel and bias
// gradients) and max and average pooling, on channels-last images: image n's element
// (y, x, c) is at n·H·W·C + (y·W + x)·C + c, and an output's (oy, ox, f) the same way. Each
// matches its reference function in src/backend/reference/conv.rs.
//
// v1, direct: one invocation per output element, each a loop over what it sums, every
// gradient written as a gather (no atomics, so the sums run in a fixed order): the structure
// that runs every shape. v2 lays the windows out as rows (im2col, and col2im for the input
// gradient) for the tuned matmul kernels. v3 and v4, implicit GEMM (the gather folded into
// the product's loads, no buffer of windows), are in conv_gemm.wgsl.
//
// Each entry point binds its outputs first, then its inputs, as the kernel table lists them.

// The uniform and the window arithmetic are in conv_common.wgsl.

// ---- the convolution. Forward bindings: z, x, kernel, bias (the kernel again where there
// is no bias).
@group(0) @binding(1) var<storage, read_write> cv_out: array<f32>;
@group(0) @binding(2) var<storage, read> cv_a: array<f32>;
@group(0) @binding(3) var<storage, read> cv_b: array<f32>;
@group(0) @binding(4) var<storage, read> cv_bias: array<f32>;

// z[n, (oy·Wo + ox)·F + f] = bias[f] + Σ_{i, j, c} x[n, y, x, c] · k[((i·kw + j)·C + c)·F + f].
@compute @workgroup_size(WG_1D)
fn conv2d_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    if (idx >= p.rows * out_len()) {
        return;
    }
    let n = idx / out_len();
    let r = idx % out_len();
    let f = r % p.filters;
    let o = r / p.filters;
    let oy = o / p.out_w;
    let ox = o % p.out_w;
    var sum = 0.0;
    for (var i = 0u; i < p.k_h; i++) {
        let y = tap(oy, i, p.s_h, p.pad_t, p.in_h);
        if (y < 0) {
            continue;
        }
        for (var j = 0u; j < p.k_w; j++) {
            let x = tap(ox, j, p.s_w, p.pad_l, p.in_w);
            if (x < 0) {
                continue;
            }
            let xb = n * in_len() + (u32(y) * p.in_w + u32(x)) * p.in_c;
            let kb = (i * p.k_w + j) * p.in_c * p.filters + f;
            for (var c = 0u; c < p.in_c; c++) {
                sum += cv_a[xb + c] * cv_b[kb + c * p.filters];
            }
        }
    }
    if (p.has_bias != 0u) {
        sum += cv_bias[f];
    }
    cv_out[idx] = sum;
}

// ---- its input gradient. Bindings: dx, dz, kernel.
// dx[n, y, x, c] = Σ over the taps (i, j) of the outputs (oy, ox) reading (y, x) of
// Σ_f dz[n, oy, ox, f] · k[i, j, c, f].
@compute @workgroup_size(WG_1D)
fn conv2d_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    if (idx >= p.rows * in_len()) {
        return;
    }
    let n = idx / in_len();
    let r = idx % in_len();
    let c = r % p.in_c;
    let pos = r / p.in_c;
    let y = pos / p.in_w;
    let x = pos % p.in_w;
    var sum = 0.0;
    for (var i = 0u; i < p.k_h; i++) {
        let oy = reader(y, i, p.s_h, p.pad_t, p.out_h);
        if (oy < 0) {
            continue;
        }
        for (var j = 0u; j < p.k_w; j++) {
            let ox = reader(x, j, p.s_w, p.pad_l, p.out_w);
            if (ox < 0) {
                continue;
            }
            let db = n * out_len() + (u32(oy) * p.out_w + u32(ox)) * p.filters;
            let kb = ((i * p.k_w + j) * p.in_c + c) * p.filters;
            for (var f = 0u; f < p.filters; f++) {
                sum += cv_a[db + f] * cv_b[kb + f];
            }
        }
    }
    cv_out[idx] = sum;
}

// ---- its kernel gradient. Bindings: dkernel, x, dz.
// dk[i, j, c, f] = Σ_n Σ_{(oy, ox) whose tap (i, j) is inside} x[n, y, x, c] · dz[n, oy, ox, f].
@compute @workgroup_size(WG_1D)
fn conv2d_backward_kernel(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    let taps = p.k_h * p.k_w * p.in_c * p.filters;
    if (idx >= taps) {
        return;
    }
    let f = idx % p.filters;
    let c = (idx / p.filters) % p.in_c;
    let t = idx / (p.filters * p.in_c);
    let i = t / p.k_w;
    let j = t % p.k_w;
    var sum = 0.0;
    for (var n = 0u; n < p.rows; n++) {
        for (var oy = 0u; oy < p.out_h; oy++) {
            let y = tap(oy, i, p.s_h, p.pad_t, p.in_h);
            if (y < 0) {
                continue;
            }
            for (var ox = 0u; ox < p.out_w; ox++) {
                let x = tap(ox, j, p.s_w, p.pad_l, p.in_w);
                if (x < 0) {
                    continue;
                }
                let xv = cv_a[n * in_len() + (u32(y) * p.in_w + u32(x)) * p.in_c + c];
                sum += xv * cv_b[n * out_len() + (oy * p.out_w + ox) * p.filters + f];
            }
        }
    }
    cv_out[idx] = sum;
}

// ---- its bias gradient. Bindings: dbias, dz. db[f] = Σ_n Σ_o dz[n, o, f].
@compute @workgroup_size(WG_1D)
fn conv2d_backward_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let f = flat_index(gid, nwg);
    if (f >= p.filters) {
        return;
    }
    var sum = 0.0;
    let positions = p.rows * p.out_h * p.out_w;
    for (var o = 0u; o < positions; o++) {
        sum += cv_a[o * p.filters + f];
    }
    cv_out[f] = sum;
}

// ---- pooling. Max pooling's forward binds y, winners, x; the others their output, then
// their input (x or dy), then max pooling's backward the winners.
@group(0) @binding(1) var<storage, read_write> pl_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> pl_win: array<f32>;
@group(0) @binding(3) var<storage, read> pl_in: array<f32>;
@group(0) @binding(2) var<storage, read> pl_src: array<f32>;
@group(0) @binding(3) var<storage, read> pl_winners: array<f32>;

// The first largest input of output (oy, ox)'s window in channel c, scanned by rows then
// columns: its position within image n, p·C + c.
fn max_pool_winner(n: u32, oy: u32, ox: u32, c: u32) -> u32 {
    var best = 0xffffffffu;
    var best_v = 0.0;
    for (var i = 0u; i < p.k_h; i++) {
        let y = tap(oy, i, p.s_h, p.pad_t, p.in_h);
        if (y < 0) {
            continue;
        }
        for (var j = 0u; j < p.k_w; j++) {
            let x = tap(ox, j, p.s_w, p.pad_l, p.in_w);
            if (x < 0) {
                continue;
            }
            let at = (u32(y) * p.in_w + u32(x)) * p.in_c + c;
            let v = pl_in[n * in_len() + at];
            if (best == 0xffffffffu || v > best_v) {
                best = at;
                best_v = v;
            }
        }
    }
    return best;
}

// Bindings: y, winners, x.
@compute @workgroup_size(WG_1D)
fn max_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    if (idx >= p.rows * out_len()) {
        return;
    }
    let n = idx / out_len();
    let r = idx % out_len();
    let c = r % p.filters;
    let o = r / p.filters;
    let win = max_pool_winner(n, o / p.out_w, o % p.out_w, c);
    pl_out[idx] = pl_in[n * in_len() + win];
    pl_win[idx] = f32(win);
}

// Bindings: dx, dy, winners. dx[n, p] = Σ dy over the outputs whose winner is p, gathered over
// the windows that hold p, in output order.
@compute @workgroup_size(WG_1D)
fn max_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    if (idx >= p.rows * in_len()) {
        return;
    }
    let n = idx / in_len();
    let r = idx % in_len();
    let c = r % p.in_c;
    let pos = r / p.in_c;
    let y = pos / p.in_w;
    let x = pos % p.in_w;
    var sum = 0.0;
    // Output rows and columns in increasing order: the kernel tap runs backwards.
    for (var ii = 0u; ii < p.k_h; ii++) {
        let oy = reader(y, p.k_h - 1u - ii, p.s_h, p.pad_t, p.out_h);
        if (oy < 0) {
            continue;
        }
        for (var jj = 0u; jj < p.k_w; jj++) {
            let ox = reader(x, p.k_w - 1u - jj, p.s_w, p.pad_l, p.out_w);
            if (ox < 0) {
                continue;
            }
            let o = n * out_len() + (u32(oy) * p.out_w + u32(ox)) * p.filters + c;
            if (u32(pl_winners[o]) == r) {
                sum += pl_src[o];
            }
        }
    }
    pl_out[idx] = sum;
}

// How many taps of output (oy, ox) lie inside the image: average pooling's divisor.
fn inside(oy: u32, ox: u32) -> f32 {
    var count = 0u;
    for (var i = 0u; i < p.k_h; i++) {
        for (var j = 0u; j < p.k_w; j++) {
            if (tap(oy, i, p.s_h, p.pad_t, p.in_h) >= 0 && tap(ox, j, p.s_w, p.pad_l, p.in_w) >= 0) {
                count++;
            }
        }
    }
    return f32(count);
}

// Bindings: y, x.
@compute @workgroup_size(WG_1D)
fn avg_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    if (idx >= p.rows * out_len()) {
        return;
    }
    let n = idx / out_len();
    let r = idx % out_len();
    let c = r % p.filters;
    let o = r / p.filters;
    let oy = o / p.out_w;
    let ox = o % p.out_w;
    var sum = 0.0;
    for (var i = 0u; i < p.k_h; i++) {
        let y = tap(oy, i, p.s_h, p.pad_t, p.in_h);
        if (y < 0) {
            continue;
        }
        for (var j = 0u; j < p.k_w; j++) {
            let x = tap(ox, j, p.s_w, p.pad_l, p.in_w);
            if (x < 0) {
                continue;
            }
            sum += pl_src[n * in_len() + (u32(y) * p.in_w + u32(x)) * p.in_c + c];
        }
    }
    pl_out[idx] = sum / inside(oy, ox);
}

// Bindings: dx, dy. dx[n, p] = Σ_{outputs o reading p} dy[n, o] / count(o).
@compute @workgroup_size(WG_1D)
fn avg_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    if (idx >= p.rows * in_len()) {
        return;
    }
    let n = idx / in_len();
    let r = idx % in_len();
    let c = r % p.in_c;
    let pos = r / p.in_c;
    let y = pos / p.in_w;
    let x = pos % p.in_w;
    var sum = 0.0;
    for (var i = 0u; i < p.k_h; i++) {
        let oy = reader(y, i, p.s_h, p.pad_t, p.out_h);
        if (oy < 0) {
            continue;
        }
        for (var j = 0u; j < p.k_w; j++) {
            let ox = reader(x, j, p.s_w, p.pad_l, p.out_w);
            if (ox < 0) {
                continue;
            }
            let o = (u32(oy) * p.out_w + u32(ox)) * p.filters + c;
            sum += pl_src[n * out_len() + o] / inside(u32(oy), u32(ox));
        }
    }
    pl_out[idx] = sum;
}

// ---- v2, im2col: the windows as rows, for the tuned matmul kernels to multiply. Bindings:
// cols, x. cols[n·P + o, t·C + c] = x[n, tap t of o, c] (0 in the padding), P = Ho·Wo.
@compute @workgroup_size(WG_1D)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    let taps = p.k_h * p.k_w * p.in_c;
    let positions = p.out_h * p.out_w;
    if (idx >= p.rows * positions * taps) {
        return;
    }
    let r = idx / taps;
    let col = idx % taps;
    let c = col % p.in_c;
    let t = col / p.in_c;
    let n = r / positions;
    let o = r % positions;
    let y = tap(o / p.out_w, t / p.k_w, p.s_h, p.pad_t, p.in_h);
    let x = tap(o % p.out_w, t % p.k_w, p.s_w, p.pad_l, p.in_w);
    var v = 0.0;
    if (y >= 0 && x >= 0) {
        v = cv_a[n * in_len() + (u32(y) * p.in_w + u32(x)) * p.in_c + c];
    }
    cv_out[idx] = v;
}

// Its backward, col2im. Bindings: dx, dcols. dx[n, y, x, c] = the sum of the entries of dcols
// that read it: over the taps (i, j) of the outputs (oy, ox) reading (y, x).
@compute @workgroup_size(WG_1D)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    if (idx >= p.rows * in_len()) {
        return;
    }
    let taps = p.k_h * p.k_w * p.in_c;
    let n = idx / in_len();
    let r = idx % in_len();
    let c = r % p.in_c;
    let pos = r / p.in_c;
    let y = pos / p.in_w;
    let x = pos % p.in_w;
    var sum = 0.0;
    for (var i = 0u; i < p.k_h; i++) {
        let oy = reader(y, i, p.s_h, p.pad_t, p.out_h);
        if (oy < 0) {
            continue;
        }
        for (var j = 0u; j < p.k_w; j++) {
            let ox = reader(x, j, p.s_w, p.pad_l, p.out_w);
            if (ox < 0) {
                continue;
            }
            let row = n * p.out_h * p.out_w + u32(oy) * p.out_w + u32(ox);
            sum += cv_a[row * taps + (i * p.k_w + j) * p.in_c + c];
        }
    }
    cv_out[idx] = sum;
}
