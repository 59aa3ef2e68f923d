// C[M, N] = op(A) · op(B), any M, N, K ≥ 1.
//
// A is stored [M, K] row-major, or [K, M] when TRANS_A (the kernel reads Aᵀ); B is stored
// [K, N], or [N, K] when TRANS_B. Backprop's three products are all first-class variants:
//   forward      Y  = X · W      (TRANS_A = false, TRANS_B = false)
//   input grad   dX = dY · Wᵀ    (TRANS_B = true)
//   weight grad  dW = Xᵀ · dY    (TRANS_A = true)
//
// Four numbered variants, validated against the reference by the same parity tests and timed
// side by side by `cargo bench --bench matmul`; v1 and v2 are here, v3 in matmul_vec4.wgsl and
// v4 in matmul_subgroup.wgsl:
//
// v1 `matmul` (tiled): a workgroup of WG_X × WG_Y threads computes a BM × BN =
// (WG_Y·TM) × (WG_X·TN) block of C; each thread holds a TM × TN register block. K is walked in
// steps of BK through two workgroup-memory tiles, loaded cooperatively with the index order
// that keeps consecutive threads on consecutive addresses for either storage order. The kernel
// for real GPUs, where workgroup memory is fast and global loads are not.
//
// v2 `matmul_direct`: the same TM × TN register block per thread, read straight from storage,
// no workgroup memory and no barriers. Faster than v1 on a software adapter (lavapipe), where
// workgroup memory is emulated and every barrier is a context switch; it runs the shapes v3 and
// v4 cannot (dimensions that are not multiples of 4).
//
// Out-of-range elements load as 0, so no shape needs padding.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    _pad: u32,
    // The activation's parameters, for the fused epilogue (act_math.wgsl).
    q: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
// The `*_bias_act` entry points' epilogue: c = op(A)·op(B) + bias (a [1, N] row), act_out =
// act(c), with the activation chosen by the ACT override (act_math.wgsl).
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> act_out: array<f32>;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override BK: u32 = 16u;
// The register block is a function-scope array, whose size WGSL requires to be a constant.
const TM: u32 = 4u;
const TN: u32 = 4u;

var<workgroup> tile_a: array<f32, WG_Y * TM * BK>;
var<workgroup> tile_b: array<f32, BK * WG_X * TN>;

fn load_a(row: u32, kk: u32) -> f32 {
    if (row >= p.m || kk >= p.k) {
        return 0.0;
    }
    if (TRANS_A) {
        return a[kk * p.m + row];
    }
    return a[row * p.k + kk];
}

fn load_b(kk: u32, col: u32) -> f32 {
    if (kk >= p.k || col >= p.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[col * p.k + kk];
    }
    return b[kk * p.n + col];
}

// v1's block for one thread: rows row0 + lid.y·TM.., columns col0 + lid.x·TN... Every thread of
// the workgroup must call it (it has barriers).
fn tiled_block(lid: vec3<u32>, li: u32, row0: u32, col0: u32) -> array<array<f32, TN>, TM> {
    let bm = WG_Y * TM;
    let bn = WG_X * TN;
    let threads = WG_X * WG_Y;
    var acc: array<array<f32, TN>, TM>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        for (var i = li; i < bm * BK; i += threads) {
            var r: u32;
            var kk: u32;
            if (TRANS_A) { r = i % bm; kk = i / bm; } else { r = i / BK; kk = i % BK; }
            tile_a[r * BK + kk] = load_a(row0 + r, k0 + kk);
        }
        for (var i = li; i < BK * bn; i += threads) {
            var col: u32;
            var kk: u32;
            if (TRANS_B) { col = i / BK; kk = i % BK; } else { kk = i / bn; col = i % bn; }
            tile_b[kk * bn + col] = load_b(k0 + kk, col0 + col);
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

// v2's block for the thread at rows row0.., columns col0...
fn direct_block(row0: u32, col0: u32) -> array<array<f32, TN>, TM> {
    var acc: array<array<f32, TN>, TM>;
    for (var kk = 0u; kk < p.k; kk++) {
        var av: array<f32, TM>;
        var bv: array<f32, TN>;
        for (var i = 0u; i < TM; i++) {
            av[i] = load_a(row0 + i, kk);
        }
        for (var j = 0u; j < TN; j++) {
            bv[j] = load_b(kk, col0 + j);
        }
        for (var i = 0u; i < TM; i++) {
            for (var j = 0u; j < TN; j++) {
                acc[i][j] = fma(av[i], bv[j], acc[i][j]);
            }
        }
    }
    return acc;
}

// The in-range part of a TM × TN block of C at (row0, col0).
fn store_block(row0: u32, col0: u32, acc: array<array<f32, TN>, TM>) {
    for (var i = 0u; i < TM; i++) {
        let row = row0 + i;
        if (row >= p.m) {
            break;
        }
        for (var j = 0u; j < TN; j++) {
            let col = col0 + j;
            if (col < p.n) {
                c[row * p.n + col] = acc[i][j];
            }
        }
    }
}

// The same with the epilogue: C plus the bias, and its activation. A separate function (not a
// flag) so the plain entry points never touch the epilogue's bindings.
fn store_block_bias_act(row0: u32, col0: u32, acc: array<array<f32, TN>, TM>) {
    for (var i = 0u; i < TM; i++) {
        let row = row0 + i;
        if (row >= p.m) {
            break;
        }
        for (var j = 0u; j < TN; j++) {
            let col = col0 + j;
            if (col < p.n) {
                let z = acc[i][j] + bias[col];
                c[row * p.n + col] = z;
                act_out[row * p.n + col] = act_forward(z, p.q);
            }
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let row0 = wid.y * WG_Y * TM;
    let col0 = wid.x * WG_X * TN;
    let acc = tiled_block(lid, li, row0, col0);
    store_block(row0 + lid.y * TM, col0 + lid.x * TN, acc);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_bias_act(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let row0 = wid.y * WG_Y * TM;
    let col0 = wid.x * WG_X * TN;
    let acc = tiled_block(lid, li, row0, col0);
    store_block_bias_act(row0 + lid.y * TM, col0 + lid.x * TN, acc);
}

// v2: see the top of the file. Each thread computes rows gid.y·TM.. and columns gid.x·TN..
@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_direct(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * TM;
    let col0 = gid.x * TN;
    if (row0 < p.m && col0 < p.n) {
        store_block(row0, col0, direct_block(row0, col0));
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_direct_bias_act(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * TM;
    let col0 = gid.x * TN;
    if (row0 < p.m && col0 < p.n) {
        store_block_bias_act(row0, col0, direct_block(row0, col0));
    }
}
