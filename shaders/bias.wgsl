// Bias broadcast and its gradient, for Z[N, C] and a bias row b[1, C].

struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;

// Z[r, c] += b[c]. dst = Z [N, C], src = b [1, C].
@compute @workgroup_size(WG_1D)
fn bias_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.rows * p.cols) {
        return;
    }
    dst[i] += src[i % p.cols];
}

// db[c] = Σ_r dY[r, c]. dst = db [1, C], src = dY [N, C]. One thread per column: the reads of
// neighbouring threads are neighbouring addresses in each row, and there is no barrier (on a
// software adapter, where each barrier is a context switch, the faster of the two).
@compute @workgroup_size(WG_1D)
fn bias_grad_columns(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat_index(gid, nwg);
    if (c >= p.cols) {
        return;
    }
    var sum = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        sum += src[r * p.cols + c];
    }
    dst[c] = sum;
}

// The same as a column reduction over blocks of rows, for real GPUs: a workgroup takes 32 neighbouring columns (neighbouring addresses in each row, so its
// loads coalesce) and 8 lanes of rows; lane l sums rows l, l + 8, l + 16, ... of its column,
// then a fixed tree over the 8 lanes in workgroup memory gives the column's sum. The order of
// the additions is fixed, so the result is the same run to run.
const BG_COLS: u32 = 32u;
const BG_LANES: u32 = 8u;
var<workgroup> bg_partial: array<f32, 256>;

@compute @workgroup_size(32, 8)
fn bias_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = (wid.x + wid.y * nwg.x) * BG_COLS + lid.x;
    var sum = 0.0;
    if (c < p.cols) {
        for (var r = lid.y; r < p.rows; r += BG_LANES) {
            sum += src[r * p.cols + c];
        }
    }
    let li = lid.y * BG_COLS + lid.x;
    bg_partial[li] = sum;
    workgroupBarrier();
    for (var half = BG_LANES / 2u; half > 0u; half >>= 1u) {
        if (lid.y < half) {
            bg_partial[li] += bg_partial[li + half * BG_COLS];
        }
        workgroupBarrier();
    }
    if (lid.y == 0u && c < p.cols) {
        dst[c] = bg_partial[lid.x];
    }
}
