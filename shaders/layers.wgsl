// The kernels of the layers beyond Dense: dropout with its counter-based generator, batch
// normalization, PReLU, maxout and the weight penalties. Each matches its reference function
// in src/backend/cpu/layers.rs. Per-column reductions are one thread per column (as bias_grad).
//
// Each entry point binds its outputs first, then its inputs, as the kernel table lists them.

struct Params {
    rows: u32,
    cols: u32,
    // maxout's pieces
    pieces: u32,
    // the accumulator slot of penalty_sum
    slot: u32,
    // dropout's scale; batch normalization's ε; the penalty's l1 (its l2 in `b`)
    a: f32,
    b: f32,
    // the penalty's scale
    c: f32,
    // dropout: draws below this are dropped; the key and the step of the generator
    drop_below: u32,
    key0: u32,
    key1: u32,
    step: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// One Threefry-2x32 round with rotation r.
fn tf_round(x: vec2<u32>, r: u32) -> vec2<u32> {
    let x0 = x.x + x.y;
    return vec2(x0, ((x.y << r) | (x.y >> (32u - r))) ^ x0);
}

// Threefry-2x32, 20 rounds (Random123): the block (c0, c1) under the key (k0, k1). Unrolled,
// so that every rotation is a constant and nothing is indexed at run time (a private array
// indexed in a loop can live in memory, on lavapipe and on GPUs alike).
fn threefry2x32(c0: u32, c1: u32, k0: u32, k1: u32) -> vec2<u32> {
    let k2 = 0x1BD11BDAu ^ k0 ^ k1;
    var x = vec2(c0 + k0, c1 + k1);
    x = tf_round(tf_round(tf_round(tf_round(x, 13u), 15u), 26u), 6u);
    x += vec2(k1, k2 + 1u);
    x = tf_round(tf_round(tf_round(tf_round(x, 17u), 29u), 16u), 24u);
    x += vec2(k2, k0 + 2u);
    x = tf_round(tf_round(tf_round(tf_round(x, 13u), 15u), 26u), 6u);
    x += vec2(k0, k1 + 3u);
    x = tf_round(tf_round(tf_round(tf_round(x, 17u), 29u), 16u), 24u);
    x += vec2(k1, k2 + 4u);
    x = tf_round(tf_round(tf_round(tf_round(x, 13u), 15u), 26u), 6u);
    x += vec2(k2, k0 + 5u);
    return x;
}

// Each group of entry points below declares its own bindings; an entry point uses only its
// group's, so the numbers may repeat across groups with another access.

// ---- dropout. Bindings: y, keep, x. One invocation per pair of elements 2j, 2j + 1, decided
// by the two words of draw j at this step: keep = scale (in `a`) where the word is ≥
// drop_below, else 0; y = x keep.
@group(0) @binding(1) var<storage, read_write> do_y: array<f32>;
@group(0) @binding(2) var<storage, read_write> do_keep: array<f32>;
@group(0) @binding(3) var<storage, read> do_x: array<f32>;

@compute @workgroup_size(WG_1D)
fn dropout(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = flat_index(gid, nwg);
    let n = p.rows * p.cols;
    let i = 2u * j;
    if (i >= n) {
        return;
    }
    let draw = threefry2x32(j, p.step, p.key0, p.key1);
    let k0 = select(0.0, p.a, draw.x >= p.drop_below);
    do_keep[i] = k0;
    do_y[i] = do_x[i] * k0;
    if (i + 1u < n) {
        let k1 = select(0.0, p.a, draw.y >= p.drop_below);
        do_keep[i + 1u] = k1;
        do_y[i + 1u] = do_x[i + 1u] * k1;
    }
}

// ---- element-wise product. Bindings: c, a, b.
@group(0) @binding(1) var<storage, read_write> mul_c: array<f32>;
@group(0) @binding(2) var<storage, read> mul_a: array<f32>;
@group(0) @binding(3) var<storage, read> mul_b: array<f32>;

// c = a b (the dropout's backward: dx = dy keep).
@compute @workgroup_size(WG_1D)
fn multiply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.rows * p.cols) {
        mul_c[i] = mul_a[i] * mul_b[i];
    }
}

// ---- randomized leaky ReLU. Forward bindings: y, x; backward: dx, x, dy. The slopes lie in
// [lower, upper] = [a, b]: lower + (upper - lower) u, u from the second word of the draw.
@group(0) @binding(1) var<storage, read_write> rr_out: array<f32>;
@group(0) @binding(2) var<storage, read> rr_x: array<f32>;
@group(0) @binding(3) var<storage, read> rr_dy: array<f32>;

fn rrelu_slope(i: u32) -> f32 {
    let word = threefry2x32(i, p.step, p.key0, p.key1).y;
    let u = f32(word >> 8u) * (1.0 / 16777216.0);
    return p.a + (p.b - p.a) * u;
}

@compute @workgroup_size(WG_1D)
fn rrelu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.rows * p.cols) {
        return;
    }
    let x = rr_x[i];
    rr_out[i] = select(rrelu_slope(i) * x, x, x >= 0.0);
}

@compute @workgroup_size(WG_1D)
fn rrelu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.rows * p.cols) {
        return;
    }
    let dy = rr_dy[i];
    rr_out[i] = select(rrelu_slope(i) * dy, dy, rr_x[i] >= 0.0);
}

// ---- batch statistics. Bindings: mean, var, x.
@group(0) @binding(1) var<storage, read_write> st_mean: array<f32>;
@group(0) @binding(2) var<storage, read_write> st_var: array<f32>;
@group(0) @binding(3) var<storage, read> st_x: array<f32>;

// mean[c] = Σ_r x / N; var[c] = Σ_r (x - mean)² / N (two passes). One thread per column.
@compute @workgroup_size(WG_1D)
fn batchnorm_stats(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat_index(gid, nwg);
    if (c >= p.cols) {
        return;
    }
    var sum = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        sum += st_x[r * p.cols + c];
    }
    let mean = sum / f32(p.rows);
    var sq = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        let d = st_x[r * p.cols + c] - mean;
        sq += d * d;
    }
    st_mean[c] = mean;
    st_var[c] = sq / f32(p.rows);
}

// ---- batch normalization forward. Bindings: y, x, mean, var, gamma, beta.
@group(0) @binding(1) var<storage, read_write> bf_y: array<f32>;
@group(0) @binding(2) var<storage, read> bf_x: array<f32>;
@group(0) @binding(3) var<storage, read> bf_mean: array<f32>;
@group(0) @binding(4) var<storage, read> bf_var: array<f32>;
@group(0) @binding(5) var<storage, read> bf_gamma: array<f32>;
@group(0) @binding(6) var<storage, read> bf_beta: array<f32>;

// y = gamma (x - mean) / √(var + ε) + beta, ε in `a`.
@compute @workgroup_size(WG_1D)
fn batchnorm_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.rows * p.cols) {
        return;
    }
    let c = i % p.cols;
    let inv = 1.0 / sqrt(bf_var[c] + p.a);
    bf_y[i] = bf_gamma[c] * (bf_x[i] - bf_mean[c]) * inv + bf_beta[c];
}

// ---- batch normalization backward (training). Bindings: dx, dgamma, dbeta, x, mean, var,
// gamma, dy.
@group(0) @binding(1) var<storage, read_write> bb_dx: array<f32>;
@group(0) @binding(2) var<storage, read_write> bb_dgamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> bb_dbeta: array<f32>;
@group(0) @binding(4) var<storage, read> bb_x: array<f32>;
@group(0) @binding(5) var<storage, read> bb_mean: array<f32>;
@group(0) @binding(6) var<storage, read> bb_var: array<f32>;
@group(0) @binding(7) var<storage, read> bb_gamma: array<f32>;
@group(0) @binding(8) var<storage, read> bb_dy: array<f32>;

// Per column: dbeta = Σ dy, dgamma = Σ dy x̂, dx = gamma / √(var + ε) (dy - dbeta / N -
// x̂ dgamma / N). One thread per column.
@compute @workgroup_size(WG_1D)
fn batchnorm_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat_index(gid, nwg);
    if (c >= p.cols) {
        return;
    }
    let inv = 1.0 / sqrt(bb_var[c] + p.a);
    let mean = bb_mean[c];
    var sum_dy = 0.0;
    var sum_dy_xhat = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        let i = r * p.cols + c;
        sum_dy += bb_dy[i];
        sum_dy_xhat += bb_dy[i] * (bb_x[i] - mean) * inv;
    }
    let n = f32(p.rows);
    let scale = bb_gamma[c] * inv;
    for (var r = 0u; r < p.rows; r++) {
        let i = r * p.cols + c;
        let xhat = (bb_x[i] - mean) * inv;
        bb_dx[i] = scale * (bb_dy[i] - sum_dy / n - xhat * sum_dy_xhat / n);
    }
    bb_dgamma[c] = sum_dy_xhat;
    bb_dbeta[c] = sum_dy;
}

// ---- PReLU forward. Bindings: y, x, alpha.
@group(0) @binding(1) var<storage, read_write> pf_y: array<f32>;
@group(0) @binding(2) var<storage, read> pf_x: array<f32>;
@group(0) @binding(3) var<storage, read> pf_alpha: array<f32>;

@compute @workgroup_size(WG_1D)
fn prelu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.rows * p.cols) {
        return;
    }
    let x = pf_x[i];
    pf_y[i] = select(pf_alpha[i % p.cols] * x, x, x > 0.0);
}

// ---- PReLU backward. Bindings: dx, dalpha, x, alpha, dy. One thread per column, so that the
// slope's gradient is summed without atomics.
@group(0) @binding(1) var<storage, read_write> pb_dx: array<f32>;
@group(0) @binding(2) var<storage, read_write> pb_dalpha: array<f32>;
@group(0) @binding(3) var<storage, read> pb_x: array<f32>;
@group(0) @binding(4) var<storage, read> pb_alpha: array<f32>;
@group(0) @binding(5) var<storage, read> pb_dy: array<f32>;

@compute @workgroup_size(WG_1D)
fn prelu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat_index(gid, nwg);
    if (c >= p.cols) {
        return;
    }
    let alpha = pb_alpha[c];
    var sum = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        let i = r * p.cols + c;
        let x = pb_x[i];
        let dy = pb_dy[i];
        if (x > 0.0) {
            pb_dx[i] = dy;
        } else {
            pb_dx[i] = alpha * dy;
            sum += dy * x;
        }
    }
    pb_dalpha[c] = sum;
}

// ---- maxout. Forward bindings: y, z; backward: dz, z, dy. `cols` is the units.
@group(0) @binding(1) var<storage, read_write> mx_out: array<f32>;
@group(0) @binding(2) var<storage, read> mx_z: array<f32>;
@group(0) @binding(3) var<storage, read> mx_dy: array<f32>;

// The first of unit u's pieces holding their largest value, in row r.
fn maxout_winner(r: u32, u: u32) -> u32 {
    let base = (r * p.cols + u) * p.pieces;
    var best = 0u;
    for (var k = 1u; k < p.pieces; k++) {
        if (mx_z[base + k] > mx_z[base + best]) {
            best = k;
        }
    }
    return best;
}

// y[r, u] = max_k z[r, u · pieces + k]. One thread per output.
@compute @workgroup_size(WG_1D)
fn maxout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.rows * p.cols) {
        return;
    }
    let r = i / p.cols;
    let u = i % p.cols;
    mx_out[i] = mx_z[i * p.pieces + maxout_winner(r, u)];
}

// dz = dy at the winning piece, 0 at the others. One thread per output.
@compute @workgroup_size(WG_1D)
fn maxout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.rows * p.cols) {
        return;
    }
    let win = maxout_winner(i / p.cols, i % p.cols);
    for (var k = 0u; k < p.pieces; k++) {
        mx_out[i * p.pieces + k] = select(0.0, mx_dy[i], k == win);
    }
}

// ---- the weight penalty. Sum bindings: acc, w; gradient: grad, w.
@group(0) @binding(1) var<storage, read_write> pn_out: array<f32>;
@group(0) @binding(2) var<storage, read> pn_w: array<f32>;

var<workgroup> partial: array<f32, WG_1D>;

// acc[slot] += scale (l1 Σ |w| + l2 Σ w²), with l1, l2, scale in a, b, c. A workgroup sums
// its chunk with a strided pass, then a tree (the order does not depend on scheduling). With
// `pieces` = 0 one workgroup takes all of w and adds into acc[slot]; otherwise workgroup g
// takes elements [g·pieces, (g+1)·pieces) and writes its term to acc[g], partials that
// sum_into (reduce.wgsl) then adds into the slot.
@compute @workgroup_size(WG_1D)
fn penalty_sum(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    let len = p.rows * p.cols;
    let start = g * p.pieces;
    let end = select(min(start + p.pieces, len), len, p.pieces == 0u);
    var l1 = 0.0;
    var l2 = 0.0;
    for (var i = start + li; i < end; i += WG_1D) {
        let w = pn_w[i];
        l1 += abs(w);
        l2 += w * w;
    }
    partial[li] = p.a * l1 + p.b * l2;
    workgroupBarrier();
    for (var stride = WG_1D / 2u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            partial[li] += partial[li + stride];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        if (p.pieces == 0u) {
            pn_out[p.slot] += p.c * partial[0];
        } else {
            pn_out[g] = p.c * partial[0];
        }
    }
}

// grad += l1 sign(w) + 2 l2 w.
@compute @workgroup_size(WG_1D)
fn penalty_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.rows * p.cols) {
        return;
    }
    let w = pn_w[i];
    pn_out[i] += p.a * sign(w) + 2.0 * p.b * w;
}
