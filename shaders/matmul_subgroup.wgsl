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

@compute @workgroup_size(8u * WG_Y)
fn matmul_subgroup(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row0 = (wid.y * WG_Y + sg) * TM;
    let col0 = (wid.x * 8u + lane) * TN;
    let k4 = p.k / 4u;
    var c0: Pair;
    var c1: Pair;
    var c2: Pair;
    var c3: Pair;
    var c4: Pair;
    var c5: Pair;
    var c6: Pair;
    var c7: Pair;
    for (var k0 = 0u; k0 < p.k; k0 += 4u) {
        var av: ABlock;
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
            av = ABlock(
                vec4(l0.x, l1.x, l2.x, l3.x),
                vec4(l0.y, l1.y, l2.y, l3.y),
                vec4(l0.z, l1.z, l2.z, l3.z),
                vec4(l0.w, l1.w, l2.w, l3.w),
                vec4(h0.x, h1.x, h2.x, h3.x),
                vec4(h0.y, h1.y, h2.y, h3.y),
                vec4(h0.z, h1.z, h2.z, h3.z),
                vec4(h0.w, h1.w, h2.w, h3.w),
            );
        } else {
            // Stored [M, K]: lane i loads row row0 + i at k0..k0 + 4.
            let mine = a[min(row0 + lane, p.m - 1u) * k4 + k0 / 4u];
            av = ABlock(
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
        let bv = load_b(k0, min(col0, p.n - 1u));
        c0 = mac(c0, av.r0, bv);
        c1 = mac(c1, av.r1, bv);
        c2 = mac(c2, av.r2, bv);
        c3 = mac(c3, av.r3, bv);
        c4 = mac(c4, av.r4, bv);
        c5 = mac(c5, av.r5, bv);
        c6 = mac(c6, av.r6, bv);
        c7 = mac(c7, av.r7, bv);
    }
    if (col0 >= p.n) {
        return;
    }
    store_row(row0, col0, c0);
    store_row(row0 + 1u, col0, c1);
    store_row(row0 + 2u, col0, c2);
    store_row(row0 + 3u, col0, c3);
    store_row(row0 + 4u, col0, c4);
    store_row(row0 + 5u, col0, c5);
    store_row(row0 + 6u, col0, c6);
    store_row(row0 + 7u, col0, c7);
}
