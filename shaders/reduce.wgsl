// The reductions the metrics need. Each adds one number into acc[slot], so a training loop
// can accumulate loss sums and correct counts on the GPU for a whole epoch and read them back
// once. One workgroup does the whole reduction: a strided pass, then a tree in workgroup
// memory, so the result does not depend on scheduling (deterministic run to run).

struct Params {
    rows: u32,
    cols: u32,
    slot: u32,
    // Width of `target`: 1 for integer labels, otherwise equal to cols.
    target_cols: u32,
    threshold: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<f32>;

var<workgroup> partial: array<f32, WG_1D>;

fn add_to_slot(li: u32, v: f32) {
    partial[li] = v;
    workgroupBarrier();
    for (var stride = WG_1D / 2u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            partial[li] += partial[li + stride];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        acc[p.slot] += partial[0];
    }
}

// First index of the largest value in row r of a [rows, width] array (Keras' argmax).
fn argmax_x(r: u32) -> u32 {
    var best = 0u;
    for (var c = 1u; c < p.cols; c++) {
        if (x[r * p.cols + c] > x[r * p.cols + best]) {
            best = c;
        }
    }
    return best;
}

fn argmax_target(r: u32) -> u32 {
    var best = 0u;
    for (var c = 1u; c < p.target_cols; c++) {
        if (targets[r * p.target_cols + c] > targets[r * p.target_cols + best]) {
            best = c;
        }
    }
    return best;
}

// acc[slot] += Σ x. Bindings: acc, x.
@compute @workgroup_size(WG_1D)
fn sum_into(@builtin(local_invocation_index) li: u32) {
    var v = 0.0;
    for (var i = li; i < p.rows * p.cols; i += WG_1D) {
        v += x[i];
    }
    add_to_slot(li, v);
}

// acc[slot] += #rows whose argmax(x) equals the label (target [N, 1]) or argmax(target)
// (target [N, C], one-hot or probabilities). Bindings: acc, x, target.
@compute @workgroup_size(WG_1D)
fn argmax_correct(@builtin(local_invocation_index) li: u32) {
    var v = 0.0;
    for (var r = li; r < p.rows; r += WG_1D) {
        var label: u32;
        if (p.target_cols == 1u) {
            label = u32(targets[r]);
        } else {
            label = argmax_target(r);
        }
        v += select(0.0, 1.0, argmax_x(r) == label);
    }
    add_to_slot(li, v);
}

// acc[slot] += #elements where (x > threshold ? 1 : 0) equals target exactly (Keras'
// binary_accuracy). Bindings: acc, x, target.
@compute @workgroup_size(WG_1D)
fn threshold_correct(@builtin(local_invocation_index) li: u32) {
    var v = 0.0;
    for (var i = li; i < p.rows * p.cols; i += WG_1D) {
        let predicted = select(0.0, 1.0, x[i] > p.threshold);
        v += select(0.0, 1.0, predicted == targets[i]);
    }
    add_to_slot(li, v);
}
