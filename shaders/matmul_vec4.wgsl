// v3 `matmul_vec4`: C[M, N] = op(A) · op(B) with every operand read as vec4.
//
// Same contract and transposes as matmul.wgsl (TRANS_A: A stored [K, M]; TRANS_B: B stored
// [N, K]), for shapes whose contiguous dimensions are multiples of 4: K and N always (C is
// written as vec4 too), plus M when TRANS_A (the host checks and falls back to v2 otherwise).
//
// Each thread owns a TM × TN = 8 × 8 block of C, held as 8 rows × 2 vec4, and walks K four at a
// time: per step it loads 4 vec4 of op(A) and 4 vec4 of op(B) (32 values for 256
// multiply-adds), straight from storage with no workgroup memory. On a software adapter
// (lavapipe) every load is a per-lane loop and costs far more than arithmetic, so values per
// load instruction is what counts.
//
// Out-of-range rows and columns are clamped to the last valid ones for loading (their results
// are computed and thrown away), so loads need no branches; only the stores are guarded.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    _pad: u32,
    // The activation's parameters, for the fused epilogue (act_math.wgsl).
    q: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b: array<vec4<f32>>;
// The `*_bias_act` entry points' epilogue: c = op(A)·op(B) + bias (a [1, N] row), act_out =
// act(c), with the activation chosen by the ACT override (act_math.wgsl).
@group(0) @binding(4) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> act_out: array<vec4<f32>>;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

const TM: u32 = 8u;
const TN: u32 = 8u;

// Two vec4 of a row of C (or of op(B) at one k): columns j..j+4 and j+4..j+8.
struct Pair {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

// op(B) for 4 consecutive k and 8 columns.
struct BBlock {
    k0: Pair,
    k1: Pair,
    k2: Pair,
    k3: Pair,
}

// op(A)'s 8 rows for 4 consecutive k: r_i holds row i at k0..k0+4. Named fields, not an array,
// so nothing is indexed at run time (with arrays in loops this kernel ran 2.6× slower on
// lavapipe, most likely from arrays kept in scratch memory).
struct ABlock {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
    r4: vec4<f32>,
    r5: vec4<f32>,
    r6: vec4<f32>,
    r7: vec4<f32>,
}

// Eight rows over 4 k from op(A) stored transposed: `lK` holds rows 0..4 at k0 + K and `hK`
// rows 4..8; each row is gathered from the four (a register shuffle).
fn rows_from_columns(
    l0: vec4<f32>,
    l1: vec4<f32>,
    l2: vec4<f32>,
    l3: vec4<f32>,
    h0: vec4<f32>,
    h1: vec4<f32>,
    h2: vec4<f32>,
    h3: vec4<f32>,
) -> ABlock {
    return ABlock(
        vec4(l0.x, l1.x, l2.x, l3.x),
        vec4(l0.y, l1.y, l2.y, l3.y),
        vec4(l0.z, l1.z, l2.z, l3.z),
        vec4(l0.w, l1.w, l2.w, l3.w),
        vec4(h0.x, h1.x, h2.x, h3.x),
        vec4(h0.y, h1.y, h2.y, h3.y),
        vec4(h0.z, h1.z, h2.z, h3.z),
        vec4(h0.w, h1.w, h2.w, h3.w),
    );
}

fn load_a(row0: u32, k0: u32) -> ABlock {
    if (TRANS_A) {
        // Stored [K, M]: rows are contiguous, 2 vec4 per k; transposed into rows in registers.
        let m4 = p.m / 4u;
        let g0 = min(row0 / 4u, m4 - 1u);
        let g1 = min(row0 / 4u + 1u, m4 - 1u);
        let b0 = k0 * m4;
        let b1 = b0 + m4;
        let b2 = b1 + m4;
        let b3 = b2 + m4;
        let l0 = a[b0 + g0];
        let l1 = a[b1 + g0];
        let l2 = a[b2 + g0];
        let l3 = a[b3 + g0];
        let h0 = a[b0 + g1];
        let h1 = a[b1 + g1];
        let h2 = a[b2 + g1];
        let h3 = a[b3 + g1];
        return rows_from_columns(l0, l1, l2, l3, h0, h1, h2, h3);
    }
    // Stored [M, K]: k is contiguous, one vec4 per row.
    let k4 = p.k / 4u;
    let last = p.m - 1u;
    let kq = k0 / 4u;
    return ABlock(
        a[min(row0, last) * k4 + kq],
        a[min(row0 + 1u, last) * k4 + kq],
        a[min(row0 + 2u, last) * k4 + kq],
        a[min(row0 + 3u, last) * k4 + kq],
        a[min(row0 + 4u, last) * k4 + kq],
        a[min(row0 + 5u, last) * k4 + kq],
        a[min(row0 + 6u, last) * k4 + kq],
        a[min(row0 + 7u, last) * k4 + kq],
    );
}

fn load_b(k0: u32, col0: u32) -> BBlock {
    if (TRANS_B) {
        // Stored [N, K]: k is contiguous, one vec4 per column; transposed in registers.
        let k4 = p.k / 4u;
        let last = p.n - 1u;
        let kq = k0 / 4u;
        let c0 = b[min(col0, last) * k4 + kq];
        let c1 = b[min(col0 + 1u, last) * k4 + kq];
        let c2 = b[min(col0 + 2u, last) * k4 + kq];
        let c3 = b[min(col0 + 3u, last) * k4 + kq];
        let c4 = b[min(col0 + 4u, last) * k4 + kq];
        let c5 = b[min(col0 + 5u, last) * k4 + kq];
        let c6 = b[min(col0 + 6u, last) * k4 + kq];
        let c7 = b[min(col0 + 7u, last) * k4 + kq];
        return BBlock(
            Pair(vec4(c0.x, c1.x, c2.x, c3.x), vec4(c4.x, c5.x, c6.x, c7.x)),
            Pair(vec4(c0.y, c1.y, c2.y, c3.y), vec4(c4.y, c5.y, c6.y, c7.y)),
            Pair(vec4(c0.z, c1.z, c2.z, c3.z), vec4(c4.z, c5.z, c6.z, c7.z)),
            Pair(vec4(c0.w, c1.w, c2.w, c3.w), vec4(c4.w, c5.w, c6.w, c7.w)),
        );
    }
    // Stored [K, N]: columns are contiguous, 2 vec4 per k.
    let n4 = p.n / 4u;
    let g0 = min(col0 / 4u, n4 - 1u);
    let g1 = min(col0 / 4u + 1u, n4 - 1u);
    let b0 = k0 * n4;
    let b1 = b0 + n4;
    let b2 = b1 + n4;
    let b3 = b2 + n4;
    return BBlock(
        Pair(b[b0 + g0], b[b0 + g1]),
        Pair(b[b1 + g0], b[b1 + g1]),
        Pair(b[b2 + g0], b[b2 + g1]),
        Pair(b[b3 + g0], b[b3 + g1]),
    );
}

// acc += a_row (4 values over k) · the 4 × 8 block of op(B), in k order.
fn mac(acc: Pair, a_row: vec4<f32>, bb: BBlock) -> Pair {
    var r = acc;
    r.lo = fma(vec4(a_row.x), bb.k0.lo, r.lo);
    r.hi = fma(vec4(a_row.x), bb.k0.hi, r.hi);
    r.lo = fma(vec4(a_row.y), bb.k1.lo, r.lo);
    r.hi = fma(vec4(a_row.y), bb.k1.hi, r.hi);
    r.lo = fma(vec4(a_row.z), bb.k2.lo, r.lo);
    r.hi = fma(vec4(a_row.z), bb.k2.hi, r.hi);
    r.lo = fma(vec4(a_row.w), bb.k3.lo, r.lo);
    r.hi = fma(vec4(a_row.w), bb.k3.hi, r.hi);
    return r;
}

// The 8 rows of C an invocation owns.
struct Acc8 {
    r0: Pair,
    r1: Pair,
    r2: Pair,
    r3: Pair,
    r4: Pair,
    r5: Pair,
    r6: Pair,
    r7: Pair,
}

// acc += the 8 × 4 block of op(A) · the 4 × 8 block of op(B), row by row, in k order.
fn mac8(acc: Acc8, av: ABlock, bv: BBlock) -> Acc8 {
    return Acc8(
        mac(acc.r0, av.r0, bv),
        mac(acc.r1, av.r1, bv),
        mac(acc.r2, av.r2, bv),
        mac(acc.r3, av.r3, bv),
        mac(acc.r4, av.r4, bv),
        mac(acc.r5, av.r5, bv),
        mac(acc.r6, av.r6, bv),
        mac(acc.r7, av.r7, bv),
    );
}

fn act4(v: vec4<f32>) -> vec4<f32> {
    return vec4(
        act_forward(v.x, p.q),
        act_forward(v.y, p.q),
        act_forward(v.z, p.q),
        act_forward(v.w, p.q),
    );
}

// Row `row` of C at columns col0..col0 + 8.
fn store_row(row: u32, col0: u32, r: Pair) {
    if (row >= p.m || col0 >= p.n) {
        return;
    }
    let i = (row * p.n + col0) / 4u;
    c[i] = r.lo;
    if (col0 + 4u < p.n) {
        c[i + 1u] = r.hi;
    }
}

// The same with the epilogue: C's row plus the bias, and its activation. A separate function
// (not a flag) so the plain entry points never touch the epilogue's bindings.
fn store_row_bias_act(row: u32, col0: u32, r: Pair) {
    if (row >= p.m || col0 >= p.n) {
        return;
    }
    let i = (row * p.n + col0) / 4u;
    let j = col0 / 4u;
    let lo = r.lo + bias[j];
    c[i] = lo;
    act_out[i] = act4(lo);
    if (col0 + 4u < p.n) {
        let hi = r.hi + bias[j + 1u];
        c[i + 1u] = hi;
        act_out[i + 1u] = act4(hi);
    }
}

fn store8(row0: u32, col0: u32, acc: Acc8) {
    store_row(row0, col0, acc.r0);
    store_row(row0 + 1u, col0, acc.r1);
    store_row(row0 + 2u, col0, acc.r2);
    store_row(row0 + 3u, col0, acc.r3);
    store_row(row0 + 4u, col0, acc.r4);
    store_row(row0 + 5u, col0, acc.r5);
    store_row(row0 + 6u, col0, acc.r6);
    store_row(row0 + 7u, col0, acc.r7);
}

fn store8_bias_act(row0: u32, col0: u32, acc: Acc8) {
    store_row_bias_act(row0, col0, acc.r0);
    store_row_bias_act(row0 + 1u, col0, acc.r1);
    store_row_bias_act(row0 + 2u, col0, acc.r2);
    store_row_bias_act(row0 + 3u, col0, acc.r3);
    store_row_bias_act(row0 + 4u, col0, acc.r4);
    store_row_bias_act(row0 + 5u, col0, acc.r5);
    store_row_bias_act(row0 + 6u, col0, acc.r6);
    store_row_bias_act(row0 + 7u, col0, acc.r7);
}

// Each invocation's 8 × 8 block: rows gid.y·8.., columns gid.x·8...
fn vec4_block(row0: u32, col0: u32) -> Acc8 {
    var acc: Acc8;
    for (var k0 = 0u; k0 < p.k; k0 += 4u) {
        acc = mac8(acc, load_a(row0, k0), load_b(k0, col0));
    }
    return acc;
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * TM;
    let col0 = gid.x * TN;
    if (row0 < p.m && col0 < p.n) {
        store8(row0, col0, vec4_block(row0, col0));
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_vec4_bias_act(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * TM;
    let col0 = gid.x * TN;
    if (row0 < p.m && col0 < p.n) {
        store8_bias_act(row0, col0, vec4_block(row0, col0));
    }
}
