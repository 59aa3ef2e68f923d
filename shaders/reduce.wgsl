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
    // top-k's k; for crossentropy_sum, 1 when pred holds logits; for class_confusion, 1 when
    // a class is predicted above the threshold (0: where it is the row's argmax).
    k: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<f32>;

var<workgroup> partial: array<f32, WG_1D>;

fn add_to_slot(li: u32, v: f32) {
    add_to(li, v, p.slot);
}

// acc[slot] += Σ over the workgroup of v. Ends with every thread past the last barrier, so it
// may be called again at once.
fn add_to(li: u32, v: f32, slot: u32) {
    partial[li] = v;
    workgroupBarrier();
    for (var stride = WG_1D / 2u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            partial[li] += partial[li + stride];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        acc[slot] += partial[0];
    }
    workgroupBarrier();
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

// The first pass of a sum over many workgroups: acc[g] = Σ of x over workgroup g's chunk of
// p.k elements, each chunk summed as sum_into sums (a strided pass, then the tree); sum_into
// over the partials is the second. Bindings: acc (the partials), x.
@compute @workgroup_size(WG_1D)
fn sum_partials(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    let start = g * p.k;
    let end = min(start + p.k, p.rows * p.cols);
    var v = 0.0;
    for (var i = start + li; i < end; i += WG_1D) {
        v += x[i];
    }
    partial[li] = v;
    workgroupBarrier();
    for (var stride = WG_1D / 2u; stride > 0u; stride >>= 1u) {
        if (li < stride) {
            partial[li] += partial[li + stride];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        acc[g] = partial[0];
    }
}

// acc[slot] += #rows whose argmax(x) equals the label (target [N, 1]) or argmax(target)
// (target [N, C], one-hot or probabilities). Bindings: acc, x, target.
@compute @workgroup_size(WG_1D)
fn argmax_correct(@builtin(local_invocation_index) li: u32) {
    var v = 0.0;
    for (var r = li; r < p.rows; r += WG_1D) {
        v += select(0.0, 1.0, argmax_x(r) == label_of(r));
    }
    add_to_slot(li, v);
}

// The true class of row r: the label (target [N, 1]) or argmax(target) ([N, C]).
fn label_of(r: u32) -> u32 {
    if (p.target_cols == 1u) {
        return u32(targets[r]);
    }
    return argmax_target(r);
}

// acc[slot] += #rows whose true class has fewer than k classes scoring strictly higher
// (ties count as in the top k, as in_top_k does). Bindings: acc, x, target.
@compute @workgroup_size(WG_1D)
fn topk_correct(@builtin(local_invocation_index) li: u32) {
    var v = 0.0;
    for (var r = li; r < p.rows; r += WG_1D) {
        let label = label_of(r);
        if (label >= p.cols) {
            continue;
        }
        let score = x[r * p.cols + label];
        var higher = 0u;
        for (var c = 0u; c < p.cols; c++) {
            higher += select(0u, 1u, x[r * p.cols + c] > score);
        }
        v += select(0.0, 1.0, higher < p.k);
    }
    add_to_slot(li, v);
}

// acc[slot..slot+4] += (TP, FP, TN, FN) of x > threshold against target != 0.
// Bindings: acc, x, target.
@compute @workgroup_size(WG_1D)
fn confusion(@builtin(local_invocation_index) li: u32) {
    var tp = 0.0;
    var fp = 0.0;
    var tn = 0.0;
    var fn_ = 0.0;
    for (var i = li; i < p.rows * p.cols; i += WG_1D) {
        let predicted = x[i] > p.threshold;
        let actual = targets[i] != 0.0;
        tp += select(0.0, 1.0, predicted && actual);
        fp += select(0.0, 1.0, predicted && !actual);
        tn += select(0.0, 1.0, !predicted && !actual);
        fn_ += select(0.0, 1.0, !predicted && actual);
    }
    add_to(li, tp, p.slot);
    add_to(li, fp, p.slot + 1u);
    add_to(li, tn, p.slot + 2u);
    add_to(li, fn_, p.slot + 3u);
}

// Thresholds of the AUC histogram (AUC_THRESHOLDS in src/backend/ops.rs).
const AUC_THRESHOLDS: u32 = 200u;
const AUC_EDGE: f32 = 1e-7;

// The number of thresholds strictly below v: threshold 0 is -1e-7, threshold j in
// 1..N-2 is j / (N - 1) (compared as j < v·(N-1), exact in f32), threshold N-1 is 1 + 1e-7.
fn roc_bucket(v: f32) -> u32 {
    if (!(v > -AUC_EDGE)) {
        return 0u;
    }
    let q = v * f32(AUC_THRESHOLDS - 1u);
    var inner = 0u;
    if (q > 1.0) {
        inner = min(u32(ceil(q)) - 1u, AUC_THRESHOLDS - 2u);
    }
    return 1u + inner + select(0u, 1u, v > 1.0 + AUC_EDGE);
}

var<workgroup> histogram: array<atomic<u32>, 2u * (AUC_THRESHOLDS + 1u)>;

// acc[slot + 2b] += positives in bucket b, acc[slot + 2b + 1] += negatives.
// Bindings: acc, x, target.
@compute @workgroup_size(WG_1D)
fn roc_histogram(@builtin(local_invocation_index) li: u32) {
    let slots = 2u * (AUC_THRESHOLDS + 1u);
    for (var i = li; i < slots; i += WG_1D) {
        atomicStore(&histogram[i], 0u);
    }
    workgroupBarrier();
    for (var i = li; i < p.rows * p.cols; i += WG_1D) {
        let negative = select(1u, 0u, targets[i] != 0.0);
        atomicAdd(&histogram[2u * roc_bucket(x[i]) + negative], 1u);
    }
    workgroupBarrier();
    for (var i = li; i < slots; i += WG_1D) {
        acc[p.slot + i] += f32(atomicLoad(&histogram[i]));
    }
}

// Per-element errors for the regression metrics; codes are PointError::spec in ops.rs.
const ERR_SQUARED: u32 = 0u;
const ERR_ABSOLUTE: u32 = 1u;
const ERR_ABSOLUTE_PERCENTAGE: u32 = 2u;
const ERR_SQUARED_LOG: u32 = 3u;
const ERR_KL_DIVERGENCE: u32 = 4u;
const ERR_POISSON: u32 = 5u;
const ERR_BINARY_CROSSENTROPY: u32 = 6u;
const ERR_BINARY_CROSSENTROPY_FROM_LOGITS: u32 = 7u;
const METRIC_EPSILON: f32 = 1e-7;

override ERR: u32 = 0u;

fn point_error(v: f32, y: f32) -> f32 {
    switch ERR {
        case ERR_ABSOLUTE: { return abs(v - y); }
        case ERR_ABSOLUTE_PERCENTAGE: { return 100.0 * abs((y - v) / max(abs(y), METRIC_EPSILON)); }
        case ERR_SQUARED_LOG: {
            let d = log(max(v, METRIC_EPSILON) + 1.0) - log(max(y, METRIC_EPSILON) + 1.0);
            return d * d;
        }
        case ERR_KL_DIVERGENCE: {
            let yc = clamp(y, METRIC_EPSILON, 1.0);
            return yc * log(yc / clamp(v, METRIC_EPSILON, 1.0));
        }
        case ERR_POISSON: { return v - y * log(v + METRIC_EPSILON); }
        case ERR_BINARY_CROSSENTROPY: {
            let q = clamp(v, METRIC_EPSILON, 1.0 - METRIC_EPSILON);
            return -(y * log(q) + (1.0 - y) * log(1.0 - q));
        }
        case ERR_BINARY_CROSSENTROPY_FROM_LOGITS: {
            return max(v, 0.0) - v * y + log(1.0 + exp(-abs(v)));
        }
        default: {
            let d = v - y;
            return d * d;
        }
    }
}

// acc[slot] += Σ point_error(x, target). Bindings: acc, x, target.
@compute @workgroup_size(WG_1D)
fn error_sum(@builtin(local_invocation_index) li: u32) {
    var v = 0.0;
    for (var i = li; i < p.rows * p.cols; i += WG_1D) {
        v += point_error(x[i], targets[i]);
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

// acc[slot] += Σ over rows of the categorical cross-entropy of x[r] (logits when p.k == 1,
// else probabilities, divided by their row sum and clipped to [ε, 1 - ε]) against the label
// (target [N, 1]) or the target row ([N, C]). A label outside [0, C) gives NaN.
// Bindings: acc, x, target.
@compute @workgroup_size(WG_1D)
fn crossentropy_sum(@builtin(local_invocation_index) li: u32) {
    var v = 0.0;
    for (var r = li; r < p.rows; r += WG_1D) {
        let base = r * p.cols;
        // log p_c = x_c - shift, with the shift log-sum-exp (logits) or log of the row sum.
        var shift = 0.0;
        if (p.k == 1u) {
            var m = x[base];
            for (var c = 1u; c < p.cols; c++) {
                m = max(m, x[base + c]);
            }
            var s = 0.0;
            for (var c = 0u; c < p.cols; c++) {
                s += exp(x[base + c] - m);
            }
            shift = m + log(s);
        } else {
            var s = 0.0;
            for (var c = 0u; c < p.cols; c++) {
                s += x[base + c];
            }
            shift = s;
        }
        if (p.target_cols == 1u && p.cols > 1u) {
            let yf = targets[r];
            let label = u32(yf);
            if (!(yf >= 0.0) || f32(label) != yf || label >= p.cols) {
                v += bitcast<f32>(0x7fc00000u);
                continue;
            }
            v -= log_prob(x[base + label], shift);
        } else {
            for (var c = 0u; c < p.cols; c++) {
                v -= targets[base + c] * log_prob(x[base + c], shift);
            }
        }
    }
    add_to_slot(li, v);
}

fn log_prob(xc: f32, shift: f32) -> f32 {
    if (p.k == 1u) {
        return xc - shift;
    }
    return log(clamp(xc / shift, METRIC_EPSILON, 1.0 - METRIC_EPSILON));
}

// One workgroup per class c (the workgroup's index in a 2-D grid): acc[slot + 3c .. + 3] += (TP, FP, FN) of the
// decision "row r is class c" (x[r, c] > threshold when p.k == 1, else c is the row's
// argmax) against the truth (target[r, c] != 0 for [N, C] targets, one output included; the
// label == c for [N, 1] labels of C > 1 classes). Bindings: acc, x, target.
@compute @workgroup_size(WG_1D)
fn class_confusion(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let c = wg.x + wg.y * nwg.x;
    if (c >= p.cols) {
        return;
    }
    var tp = 0.0;
    var fp = 0.0;
    var fn_ = 0.0;
    for (var r = li; r < p.rows; r += WG_1D) {
        var predicted = false;
        if (p.k == 1u) {
            predicted = x[r * p.cols + c] > p.threshold;
        } else {
            predicted = argmax_x(r) == c;
        }
        var actual = false;
        if (p.target_cols == 1u && p.cols > 1u) {
            actual = targets[r] == f32(c);
        } else {
            actual = targets[r * p.cols + c] != 0.0;
        }
        tp += select(0.0, 1.0, predicted && actual);
        fp += select(0.0, 1.0, predicted && !actual);
        fn_ += select(0.0, 1.0, !predicted && actual);
    }
    add_to(li, tp, p.slot + 3u * c);
    add_to(li, fp, p.slot + 3u * c + 1u);
    add_to(li, fn_, p.slot + 3u * c + 2u);
}
