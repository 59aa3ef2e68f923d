// v4 `matmul_subgroup`: v3 with op(A) shared through the subgroup instead of loaded by every
// invocation. Compiled after matmul_vec4.wgsl (its bindings, blocks, load_b, mac, store_row)
// and only for adapters whose subgroups are exactly 8 invocations wide (the host checks, and
// checks the first product against the reference).
//
// A subgroup of 8 invocations computes an 8 × 64 block of C: invocation `lane` owns columns
// lane·8.. of it, so all eight need the same 8 rows of op(A). Per step of 4 in K each loads one
// of the 8 vec4 those rows take and `subgroupBroadcast` hands them round: 1 load of A instead
// of 8, plus the 8 of op(B). Where loads cost far more than register moves (lavapipe runs an
// invocation-by-invocation loop for every load) this is the difference.
//
// Rows and columns are derived from the subgroup, not the local invocation id, so the mapping
// holds however the adapter groups invocations. No invocation returns early: every lane must
// take part in the broadcasts, so out-of-range ones load clamped data and skip their stores.

// op(A)'s rows row0..row0 + 8 at k0..k0 + 4, one load per lane, shared by broadcasts. Every lane
// of the subgroup must call it (uniform control flow).
fn share_a(row0: u32, k0: u32, lane: u32) -> ABlock {
    if (TRANS_A) {
        // Stored [K, M]: lane 2·kk + h loads rows row0 + 4h.. at k0 + kk.
        let m4 = p.m / 4u;
        let mine = a[(k0 + lane / 2u) * m4 + min(row0 / 4u + lane % 2u, m4 - 1u)];
        let l0 = subgroupBroadcast(mine, 0u);
        let h0 = subgroupBroadcast(mine, 1u);
        let l1 = subgroupBroadcast(mine, 2u);
        let h1 = subgroupBroadcast(mine, 3u);
        let l2 = subgroupBroadcast(mine, 4u);
        let h2 = subgroupBroadcast(mine, 5u);
        let l3 = subgroupBroadcast(mine, 6u);
        let h3 = subgroupBroadcast(mine, 7u);
        return rows_from_columns(l0, l1, l2, l3, h0, h1, h2, h3);
    }
    // Stored [M, K]: lane i loads row row0 + i at k0..k0 + 4.
    let mine = a[min(row0 + lane, p.m - 1u) * (p.k / 4u) + k0 / 4u];
    return ABlock(
        subgroupBroadcast(mine, 0u),
        subgroupBroadcast(mine, 1u),
        subgroupBroadcast(mine, 2u),
        subgroupBroadcast(mine, 3u),
        subgroupBroadcast(mine, 4u),
        subgroupBroadcast(mine, 5u),
        subgroupBroadcast(mine, 6u),
        subgroupBroadcast(mine, 7u),
    );
}

// v4's block: rows row0..row0 + 8 for the subgroup, columns col0..col0 + 8 for this lane.
fn subgroup_block(row0: u32, col0: u32, lane: u32) -> Acc8 {
    var acc: Acc8;
    for (var k0 = 0u; k0 < p.k; k0 += 4u) {
        acc = mac8(acc, share_a(row0, k0, lane), load_b(k0, col0));
    }
    return acc;
}

@compute @workgroup_size(8u * WG_Y)
fn matmul_subgroup(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row0 = (wid.y * WG_Y + sg) * 8u;
    let col0 = (wid.x * 8u + lane) * 8u;
    store8(row0, col0, subgroup_block(row0, col0, lane));
}

@compute @workgroup_size(8u * WG_Y)
fn matmul_subgroup_bias_act(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row0 = (wid.y * WG_Y + sg) * 8u;
    let col0 = (wid.x * 8u + lane) * 8u;
    store8_bias_act(row0, col0, subgroup_block(row0, col0, lane));
}

// v5 `matmul_subgroup16`: v4 with 16 rows per invocation (a 16 × 64 block per subgroup): two
// shared loads of op(A) and the same 8 of op(B) per step of 4 in K, for twice the
// multiply-adds. The accumulators no longer fit in registers on a CPU; spilling them costs less
// than the loads it saves there.
struct Acc16 {
    top: Acc8,
    bottom: Acc8,
}

fn subgroup16_block(row0: u32, col0: u32, lane: u32) -> Acc16 {
    var acc: Acc16;
    for (var k0 = 0u; k0 < p.k; k0 += 4u) {
        let bv = load_b(k0, col0);
        acc.top = mac8(acc.top, share_a(row0, k0, lane), bv);
        acc.bottom = mac8(acc.bottom, share_a(row0 + 8u, k0, lane), bv);
    }
    return acc;
}

@compute @workgroup_size(8u * WG_Y)
fn matmul_subgroup16(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row0 = (wid.y * WG_Y + sg) * 16u;
    let col0 = (wid.x * 8u + lane) * 8u;
    let acc = subgroup16_block(row0, col0, lane);
    store8(row0, col0, acc.top);
    store8(row0 + 8u, col0, acc.bottom);
}

@compute @workgroup_size(8u * WG_Y)
fn matmul_subgroup16_bias_act(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row0 = (wid.y * WG_Y + sg) * 16u;
    let col0 = (wid.x * 8u + lane) * 8u;
    let acc = subgroup16_block(row0, col0, lane);
    store8_bias_act(row0, col0, acc.top);
    store8_bias_act(row0 + 8u, col0, acc.bottom);
}
