// A workgroup's reduction over one row, for the row-wise kernels of wide rows (softmax, the
// losses): each of the WG_ROWS threads brings its value, a fixed tree in workgroup memory
// combines them (deterministic: the order does not depend on scheduling), and every thread
// gets the result. Every thread of the workgroup must call it (it has barriers).
var<workgroup> row_partial: array<f32, WG_ROWS>;

// max when `take_max`, else the sum.
fn row_reduce(li: u32, v: f32, take_max: bool) -> f32 {
    row_partial[li] = v;
    workgroupBarrier();
    for (var half = WG_ROWS / 2u; half > 0u; half >>= 1u) {
        if (li < half) {
            let o = row_partial[li + half];
            row_partial[li] = select(row_partial[li] + o, max(row_partial[li], o), take_max);
        }
        workgroupBarrier();
    }
    let r = row_partial[0];
    workgroupBarrier();
    return r;
}
