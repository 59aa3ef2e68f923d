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
// neighbouring threads are neighbouring addresses in each row.
@compute @workgroup_size(WG_1D)
fn bias_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
