// v3 and v4: the convolution's three products as implicit GEMM. Each product of a
// convolution's training step is C[M, N] = A[M, K] · B[K, N] with A gathered from the images
// (and B, for the input gradient, from the kernel) as it is loaded: no buffer of windows, as
// v2's im2col writes. With P = Ho·Wo output positions and T = kh·kw·C taps:
//
//   MODE 0, forward       z  [N·P, F]   = win(x)  [N·P, T]      · kernel  [T, F]   (+ bias, act)
//   MODE 1, input grad    dx [N·H·W, C] = win(dz) [N·H·W, kh·kw·F] · kernel' [kh·kw·F, C]
//   MODE 2, kernel grad   dK [T, F]     = win(x)ᵀ [T, N·P]      · dz      [N·P, F]
//
// win(x) row (n, o) is the window of output o of image n, tap (i, j, c) at column
// (i·kw + j)·C + c (0 in the padding); win(dz) row (n, y, x) holds, at column (i·kw + j)·F + f,
// dz[n, oy, ox, f] for the output (oy, ox) whose tap (i, j) reads (y, x), and 0 where none
// does (a stride leaves such gaps); kernel'[(i, j, f), c] = kernel[(i, j, c), f]. Every sum
// runs over K in increasing order, so results do not depend on scheduling.
//
// v3 `conv_gemm_direct`: a TM × TN register block per invocation read straight from storage,
// each row's decomposition hoisted out of the walk over K and the taps walked as nested loops
// (no division inside them): for software adapters, like matmul v2. v4 `conv_gemm`: matmul
// v1's workgroup-memory tiles, loaded through the gathers: for real GPUs.
//
// The kernel gradient's K (every position of every image) is long and its output small, so
// it runs split: workgroup z sums the slice of K from z·k_slice (whole images) into its part
// of a scratch buffer, and `conv_gemm_slices` adds the parts in slice order.
//
// Bindings: the product's output; A's source (x, or dz for the input gradient); B's (the
// kernel, or dz for the kernel gradient); the bias (B's source again where there is none);
// and, for the forward's `*_bias_act` entry points, act(z).

@group(0) @binding(1) var<storage, read_write> g_out: array<f32>;
@group(0) @binding(2) var<storage, read> g_a: array<f32>;
@group(0) @binding(3) var<storage, read> g_b: array<f32>;
@group(0) @binding(4) var<storage, read> g_bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> g_act: array<f32>;

override MODE: u32 = 0u;
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override BK: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;

var<workgroup> tile_a: array<f32, WG_Y * TM * BK>;
var<workgroup> tile_b: array<f32, BK * WG_X * TN>;

fn positions() -> u32 {
    return p.out_h * p.out_w;
}

fn taps() -> u32 {
    return p.k_h * p.k_w * p.in_c;
}

fn gemm_m() -> u32 {
    if (MODE == 0u) {
        return p.rows * positions();
    }
    if (MODE == 1u) {
        return p.rows * p.in_h * p.in_w;
    }
    return taps();
}

fn gemm_n() -> u32 {
    return select(p.filters, p.in_c, MODE == 1u);
}

fn gemm_k() -> u32 {
    if (MODE == 0u) {
        return taps();
    }
    if (MODE == 1u) {
        return p.k_h * p.k_w * p.filters;
    }
    return p.rows * positions();
}

// Workgroup z's range of K: its slice, or all of K.
fn k_range(z: u32) -> vec2<u32> {
    if (p.k_slice == 0u) {
        return vec2<u32>(0u, gemm_k());
    }
    let begin = z * p.k_slice;
    return vec2<u32>(begin, min(gemm_k(), begin + p.k_slice));
}

// ---- the gathers, one element at a time (v4's tile loads)

// win(x)[m, t]: output row m = (n, o), tap t = (i, j, c).
fn x_window(m: u32, t: u32) -> f32 {
    let n = m / positions();
    let o = m % positions();
    let kc = p.k_w * p.in_c;
    let i = t / kc;
    let j = (t % kc) / p.in_c;
    let c = t % p.in_c;
    let y = tap(o / p.out_w, i, p.s_h, p.pad_t, p.in_h);
    let x = tap(o % p.out_w, j, p.s_w, p.pad_l, p.in_w);
    if (y < 0 || x < 0) {
        return 0.0;
    }
    return g_a[n * in_len() + (u32(y) * p.in_w + u32(x)) * p.in_c + c];
}

// win(dz)[m, t]: input pixel m = (n, y, x), t = (i, j, f).
fn dz_window(m: u32, t: u32) -> f32 {
    let hw = p.in_h * p.in_w;
    let n = m / hw;
    let pos = m % hw;
    let kf = p.k_w * p.filters;
    let i = t / kf;
    let j = (t % kf) / p.filters;
    let f = t % p.filters;
    let oy = reader(pos / p.in_w, i, p.s_h, p.pad_t, p.out_h);
    let ox = reader(pos % p.in_w, j, p.s_w, p.pad_l, p.out_w);
    if (oy < 0 || ox < 0) {
        return 0.0;
    }
    return g_a[n * out_len() + (u32(oy) * p.out_w + u32(ox)) * p.filters + f];
}

fn load_a(row: u32, kk: u32, k_end: u32) -> f32 {
    if (row >= gemm_m() || kk >= k_end) {
        return 0.0;
    }
    if (MODE == 0u) {
        return x_window(row, kk);
    }
    if (MODE == 1u) {
        return dz_window(row, kk);
    }
    return x_window(kk, row);
}

fn load_b(kk: u32, col: u32, k_end: u32) -> f32 {
    if (kk >= k_end || col >= gemm_n()) {
        return 0.0;
    }
    if (MODE == 1u) {
        // kernel'[(i, j, f), c] = kernel[((i·kw + j)·C + c)·F + f]
        let f = kk % p.filters;
        return g_b[((kk / p.filters) * p.in_c + col) * p.filters + f];
    }
    // the kernel [T, F], or dz [N·P, F]
    return g_b[kk * p.filters + col];
}

// ---- v4: matmul v1's tiled block through the gathers. Every invocation of the workgroup
// calls it (it has barriers); the range of K is the workgroup's, so uniform.
fn tiled_block(lid: vec3<u32>, li: u32, row0: u32, col0: u32, kr: vec2<u32>) -> array<array<f32, TN>, TM> {
    let bm = WG_Y * TM;
    let bn = WG_X * TN;
    let threads = WG_X * WG_Y;
    var acc: array<array<f32, TN>, TM>;
    for (var k0 = kr.x; k0 < kr.y; k0 += BK) {
        // Consecutive invocations on consecutive addresses: along the channels of a tap
        // (rows of the kernel gradient's A, columns of the others').
        for (var i = li; i < bm * BK; i += threads) {
            var r: u32;
            var kk: u32;
            if (MODE == 2u) { r = i % bm; kk = i / bm; } else { r = i / BK; kk = i % BK; }
            tile_a[r * BK + kk] = load_a(row0 + r, k0 + kk, kr.y);
        }
        for (var i = li; i < BK * bn; i += threads) {
            var col: u32;
            var kk: u32;
            if (MODE == 1u) { col = i / BK; kk = i % BK; } else { kk = i / bn; col = i % bn; }
            tile_b[kk * bn + col] = load_b(k0 + kk, col0 + col, kr.y);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var av: array<f32, TM>;
            var bv: array<f32, TN>;
            for (var i = 0u; i < TM; i++) {
                av[i] = tile_a[(lid.y * TM + i) * BK + kk];
            }
            for (var j = 0u; j < TN; j++) {
                bv[j] = tile_b[kk * bn + lid.x * TN + j];
            }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) {
                    acc[i][j] = fma(av[i], bv[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    return acc;
}

// ---- v3: register blocks straight from storage, one function per product.

// B's row `brow` (TN columns from col0 of a row of N) into registers.
fn b_row(brow: u32, col0: u32, n: u32, stride: u32) -> array<f32, TN> {
    var bv: array<f32, TN>;
    for (var j = 0u; j < TN; j++) {
        if (col0 + j < n) {
            bv[j] = g_b[brow + j * stride];
        }
    }
    return bv;
}

fn mac(acc: ptr<function, array<array<f32, TN>, TM>>, av: array<f32, TM>, bv: array<f32, TN>) {
    for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
            (*acc)[i][j] = fma(av[i], bv[j], (*acc)[i][j]);
        }
    }
}

// The forward's block: output rows m0.. (positions), filters f0...
fn forward_direct(m0: u32, f0: u32) -> array<array<f32, TN>, TM> {
    let m_len = gemm_m();
    var top: array<i32, TM>;
    var left: array<i32, TM>;
    var image: array<u32, TM>;
    var live: array<bool, TM>;
    for (var i = 0u; i < TM; i++) {
        let m = m0 + i;
        let o = m % positions();
        live[i] = m < m_len;
        top[i] = i32((o / p.out_w) * p.s_h) - i32(p.pad_t);
        left[i] = i32((o % p.out_w) * p.s_w) - i32(p.pad_l);
        image[i] = (m / positions()) * in_len();
    }
    var acc: array<array<f32, TN>, TM>;
    for (var ki = 0u; ki < p.k_h; ki++) {
        for (var kj = 0u; kj < p.k_w; kj++) {
            var at: array<u32, TM>;
            var inside: array<bool, TM>;
            for (var i = 0u; i < TM; i++) {
                let y = top[i] + i32(ki);
                let x = left[i] + i32(kj);
                inside[i] = live[i] && y >= 0 && y < i32(p.in_h) && x >= 0 && x < i32(p.in_w);
                if (inside[i]) {
                    at[i] = image[i] + (u32(y) * p.in_w + u32(x)) * p.in_c;
                }
            }
            let t0 = (ki * p.k_w + kj) * p.in_c;
            for (var c = 0u; c < p.in_c; c++) {
                var av: array<f32, TM>;
                for (var i = 0u; i < TM; i++) {
                    if (inside[i]) {
                        av[i] = g_a[at[i] + c];
                    }
                }
                mac(&acc, av, b_row((t0 + c) * p.filters + f0, f0, p.filters, 1u));
            }
        }
    }
    return acc;
}

// The input gradient's block: input pixels m0.., channels c0...
fn input_grad_direct(m0: u32, c0: u32) -> array<array<f32, TN>, TM> {
    let hw = p.in_h * p.in_w;
    let m_len = gemm_m();
    var py: array<u32, TM>;
    var px: array<u32, TM>;
    var image: array<u32, TM>;
    var live: array<bool, TM>;
    for (var i = 0u; i < TM; i++) {
        let m = m0 + i;
        let pos = m % hw;
        live[i] = m < m_len;
        py[i] = pos / p.in_w;
        px[i] = pos % p.in_w;
        image[i] = (m / hw) * out_len();
    }
    var acc: array<array<f32, TN>, TM>;
    for (var ki = 0u; ki < p.k_h; ki++) {
        for (var kj = 0u; kj < p.k_w; kj++) {
            var at: array<u32, TM>;
            var read: array<bool, TM>;
            for (var i = 0u; i < TM; i++) {
                let oy = reader(py[i], ki, p.s_h, p.pad_t, p.out_h);
                let ox = reader(px[i], kj, p.s_w, p.pad_l, p.out_w);
                read[i] = live[i] && oy >= 0 && ox >= 0;
                if (read[i]) {
                    at[i] = image[i] + (u32(oy) * p.out_w + u32(ox)) * p.filters;
                }
            }
            let kb = ((ki * p.k_w + kj) * p.in_c + c0) * p.filters;
            for (var f = 0u; f < p.filters; f++) {
                var av: array<f32, TM>;
                for (var i = 0u; i < TM; i++) {
                    if (read[i]) {
                        av[i] = g_a[at[i] + f];
                    }
                }
                mac(&acc, av, b_row(kb + f, c0, p.in_c, p.filters));
            }
        }
    }
    return acc;
}

// The kernel gradient's block: taps t0.., filters f0.., over the images of K's range.
fn kernel_grad_direct(t0: u32, f0: u32, kr: vec2<u32>) -> array<array<f32, TN>, TM> {
    let kc = p.k_w * p.in_c;
    var dy: array<i32, TM>;
    var dx: array<i32, TM>;
    var ch: array<u32, TM>;
    var live: array<bool, TM>;
    for (var i = 0u; i < TM; i++) {
        let t = t0 + i;
        live[i] = t < taps();
        dy[i] = i32(t / kc) - i32(p.pad_t);
        dx[i] = i32((t % kc) / p.in_c) - i32(p.pad_l);
        ch[i] = t % p.in_c;
    }
    var acc: array<array<f32, TN>, TM>;
    let n_end = kr.y / positions();
    for (var n = kr.x / positions(); n < n_end; n++) {
        let xb = n * in_len();
        for (var oy = 0u; oy < p.out_h; oy++) {
            for (var ox = 0u; ox < p.out_w; ox++) {
                var av: array<f32, TM>;
                for (var i = 0u; i < TM; i++) {
                    let y = i32(oy * p.s_h) + dy[i];
                    let x = i32(ox * p.s_w) + dx[i];
                    if (live[i] && y >= 0 && y < i32(p.in_h) && x >= 0 && x < i32(p.in_w)) {
                        av[i] = g_a[xb + (u32(y) * p.in_w + u32(x)) * p.in_c + ch[i]];
                    }
                }
                let zrow = (n * positions() + oy * p.out_w + ox) * p.filters + f0;
                mac(&acc, av, b_row(zrow, f0, p.filters, 1u));
            }
        }
    }
    return acc;
}

// ---- stores

// The in-range part of a block at (row0, col0) into part `part` of the output (the forward
// with its bias).
fn store_block(row0: u32, col0: u32, acc: array<array<f32, TN>, TM>, part: u32) {
    let m_len = gemm_m();
    let n_len = gemm_n();
    for (var i = 0u; i < TM; i++) {
        let row = row0 + i;
        if (row >= m_len) {
            break;
        }
        for (var j = 0u; j < TN; j++) {
            let col = col0 + j;
            if (col < n_len) {
                var v = acc[i][j];
                if (MODE == 0u && p.has_bias != 0u) {
                    v += g_bias[col];
                }
                g_out[part + row * n_len + col] = v;
            }
        }
    }
}

// The forward's fused epilogue: z = the product + bias, act(z). A function of its own (not a
// flag), as in matmul.wgsl, so that the plain entry points never touch the act binding.
fn store_block_act(row0: u32, col0: u32, acc: array<array<f32, TN>, TM>) {
    let m_len = gemm_m();
    let n_len = gemm_n();
    for (var i = 0u; i < TM; i++) {
        let row = row0 + i;
        if (row >= m_len) {
            break;
        }
        for (var j = 0u; j < TN; j++) {
            let col = col0 + j;
            if (col < n_len) {
                var v = acc[i][j];
                if (p.has_bias != 0u) {
                    v += g_bias[col];
                }
                g_out[row * n_len + col] = v;
                g_act[row * n_len + col] = act_forward(v, p.q);
            }
        }
    }
}

// Where workgroup z's part of a split product starts.
fn part_of(z: u32) -> u32 {
    return select(0u, z * gemm_m() * gemm_n(), p.slices > 1u);
}

fn direct_block(row0: u32, col0: u32, z: u32) -> array<array<f32, TN>, TM> {
    if (MODE == 0u) {
        return forward_direct(row0, col0);
    }
    if (MODE == 1u) {
        return input_grad_direct(row0, col0);
    }
    return kernel_grad_direct(row0, col0, k_range(z));
}

// ---- entry points

@compute @workgroup_size(WG_X, WG_Y, 1)
fn conv_gemm(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * WG_Y * TM;
    let col0 = wid.x * WG_X * TN;
    let acc = tiled_block(lid, li, row0, col0, k_range(wid.z));
    store_block(row0 + lid.y * TM, col0 + lid.x * TN, acc, part_of(wid.z));
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn conv_gemm_bias_act(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * WG_Y * TM;
    let col0 = wid.x * WG_X * TN;
    let acc = tiled_block(lid, li, row0, col0, k_range(0u));
    store_block_act(row0 + lid.y * TM, col0 + lid.x * TN, acc);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn conv_gemm_direct(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * TM;
    let col0 = gid.x * TN;
    if (row0 < gemm_m() && col0 < gemm_n()) {
        store_block(row0, col0, direct_block(row0, col0, gid.z), part_of(gid.z));
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn conv_gemm_direct_bias_act(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * TM;
    let col0 = gid.x * TN;
    if (row0 < gemm_m() && col0 < gemm_n()) {
        store_block_act(row0, col0, forward_direct(row0, col0));
    }
}

// The split kernel gradient's parts summed in slice order. Bindings: dK, the parts.
@compute @workgroup_size(WG_1D)
fn conv_gemm_slices(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    let len = taps() * p.filters;
    if (idx >= len) {
        return;
    }
    var sum = g_a[idx];
    for (var s = 1u; s < p.slices; s++) {
        sum += g_a[s * len + idx];
    }
    g_out[idx] = sum;
}
