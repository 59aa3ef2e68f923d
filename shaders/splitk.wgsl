// Split-K's second pass: C = Σ_s partial[s], the slices of K that matmul v6 computed in
// separate workgroups (matmul_tiled8.wgsl), summed in slice order so that the result does
// not depend on scheduling; with the forward's epilogue, C + bias and act(C + bias).
// One invocation per vec4 of C ([M, N], N a multiple of 4).

struct Params {
    // vec4 in C: M · N / 4
    len4: u32,
    // vec4 per row of C: N / 4
    n4: u32,
    slices: u32,
    _pad: u32,
    // The activation's parameters (act_math.wgsl).
    q: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> partial: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> act_out: array<vec4<f32>>;

fn slice_sum(i: u32) -> vec4<f32> {
    var s = partial[i];
    for (var k = 1u; k < p.slices; k++) {
        s += partial[k * p.len4 + i];
    }
    return s;
}

// Bindings: c, partial.
@compute @workgroup_size(WG_1D)
fn splitk_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.len4) {
        c[i] = slice_sum(i);
    }
}

// Bindings: c, partial, bias, act_out.
@compute @workgroup_size(WG_1D)
fn splitk_sum_bias_act(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < p.len4) {
        let v = slice_sum(i) + bias[i % p.n4];
        c[i] = v;
        act_out[i] = vec4<f32>(
            act_forward(v.x, p.q),
            act_forward(v.y, p.q),
            act_forward(v.z, p.q),
            act_forward(v.w, p.q),
        );
    }
}
