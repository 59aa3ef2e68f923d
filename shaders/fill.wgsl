// dst[i] = value: zeroes accumulators and optimizer state without a host upload; and
// dst[i] = src[i], a copy on the device (the best weights kept by early stopping).

struct Params {
    len: u32,
    value: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG_1D)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.len) {
        dst[i] = p.value;
    }
}

@group(0) @binding(2) var<storage, read> src: array<f32>;

// Bindings: dst, src.
@compute @workgroup_size(WG_1D)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.len) {
        dst[i] = src[i];
    }
}
