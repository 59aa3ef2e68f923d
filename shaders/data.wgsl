// A batch gathered on the device from a dataset kept there:
// dst[i, :] = src[order[offset + i], :], the order's values the bits of u32 row indices.

struct Params {
    // dst's length: rows · cols
    len: u32,
    cols: u32,
    offset: u32,
    // src's rows: an index past them is clamped to the last (the reference reports it)
    src_rows: u32,
    // gather_pair4's second tensor: its columns and dst_y's length
    y_cols: u32,
    y_len: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> order: array<f32>;

// Bindings: dst, src, order. One invocation per element of dst.
@compute @workgroup_size(WG_1D)
fn gather_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.len) {
        let row = i / p.cols;
        let col = i - row * p.cols;
        let r = min(bitcast<u32>(order[p.offset + row]), p.src_rows - 1u);
        dst[i] = src[r * p.cols + col];
    }
}

@group(0) @binding(1) var<storage, read_write> dst4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> src4: array<vec4<f32>>;

// vec4 i of the batch (p.len and p.cols counted in vec4), from its row of src.
fn gather4(i: u32) {
    let row = i / p.cols;
    let col = i - row * p.cols;
    let r = min(bitcast<u32>(order[p.offset + row]), p.src_rows - 1u);
    dst4[i] = src4[r * p.cols + col];
}

// The same for rows of a multiple of 4 columns, a vec4 per invocation (p.len and p.cols in
// vec4). Bindings: dst, src, order.
@compute @workgroup_size(WG_1D)
fn gather_rows4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.len) {
        gather4(i);
    }
}

@group(0) @binding(4) var<storage, read_write> dst_y: array<f32>;
@group(0) @binding(5) var<storage, read> src_y: array<f32>;

// A batch's features and targets in one pass: gather_rows4 of the features for the first
// p.len invocations, then the scalar gather of the targets (p.y_cols each) by the same order.
// Bindings: dst, src, order, dst_y, src_y.
@compute @workgroup_size(WG_1D)
fn gather_pair4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.len) {
        gather4(i);
    } else if (i - p.len < p.y_len) {
        let j = i - p.len;
        let row = j / p.y_cols;
        let col = j - row * p.y_cols;
        let r = min(bitcast<u32>(order[p.offset + row]), p.src_rows - 1u);
        dst_y[j] = src_y[r * p.y_cols + col];
    }
}
