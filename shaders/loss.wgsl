// Losses and their gradient with respect to the network output, for pred [N, C].
// The LOSS_* codes are the table in src/backend/ops.rs (`Loss::spec`).
//
// Every loss is the mean over the batch of a per-sample loss; element-wise losses take the
// mean over the C outputs first, as Keras does. So grad = d(per-sample loss)/d pred / N.
// One thread per row writes the row's loss to row_loss[r] and its gradient to grad[r, :].

const LOSS_SPARSE_SOFTMAX_CROSS_ENTROPY: u32 = 0u;
const LOSS_SOFTMAX_CROSS_ENTROPY: u32 = 1u;
const LOSS_BINARY_CROSS_ENTROPY_FROM_LOGITS: u32 = 2u;
const LOSS_BINARY_CROSS_ENTROPY: u32 = 3u;
const LOSS_MEAN_SQUARED_ERROR: u32 = 4u;
const LOSS_MEAN_ABSOLUTE_ERROR: u32 = 5u;
const LOSS_HUBER: u32 = 6u;

// Keras' epsilon(), the clip for probabilities.
const BCE_EPSILON: f32 = 1e-7;

struct Params {
    rows: u32,
    cols: u32,
    delta: f32,
    inv_rows: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(3) var<storage, read> pred: array<f32>;
@group(0) @binding(4) var<storage, read> targets: array<f32>;

override LOSS: u32 = 0u;

// (loss, d loss / d pred) of one element-wise term, e = pred - target.
fn elementwise(x: f32, y: f32) -> vec2<f32> {
    switch LOSS {
        case LOSS_BINARY_CROSS_ENTROPY_FROM_LOGITS: {
            // max(x, 0) - x y + ln(1 + e^-|x|) = softplus(x) - x y
            return vec2<f32>(softplus(x) - x * y, sigmoid(x) - y);
        }
        case LOSS_BINARY_CROSS_ENTROPY: {
            let q = clamp(x, BCE_EPSILON, 1.0 - BCE_EPSILON);
            let l = -(y * log(q) + (1.0 - y) * log(1.0 - q));
            let inside = x > BCE_EPSILON && x < 1.0 - BCE_EPSILON;
            return vec2<f32>(l, select(0.0, (q - y) / (q * (1.0 - q)), inside));
        }
        case LOSS_MEAN_ABSOLUTE_ERROR: {
            let e = x - y;
            return vec2<f32>(abs(e), sign(e));
        }
        case LOSS_HUBER: {
            let e = x - y;
            let ae = abs(e);
            if (ae <= p.delta) {
                return vec2<f32>(0.5 * e * e, e);
            }
            return vec2<f32>(p.delta * (ae - 0.5 * p.delta), p.delta * sign(e));
        }
        default: {
            // LOSS_MEAN_SQUARED_ERROR
            let e = x - y;
            return vec2<f32>(e * e, 2.0 * e);
        }
    }
}

@compute @workgroup_size(WG_ROWS)
fn loss_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_index(gid, nwg);
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;

    if (LOSS == LOSS_SPARSE_SOFTMAX_CROSS_ENTROPY || LOSS == LOSS_SOFTMAX_CROSS_ENTROPY) {
        // log-sum-exp with the row max taken out: finite for logits of any magnitude.
        var m = pred[base];
        for (var c = 1u; c < p.cols; c++) {
            m = max(m, pred[base + c]);
        }
        var s = 0.0;
        for (var c = 0u; c < p.cols; c++) {
            s += exp(pred[base + c] - m);
        }
        let lse = m + log(s);
        let inv_s = 1.0 / s;

        if (LOSS == LOSS_SPARSE_SOFTMAX_CROSS_ENTROPY) {
            // A label outside [0, C) has no meaning: report NaN rather than read out of range.
            let yf = targets[r];
            let label = u32(yf);
            if (!(yf >= 0.0) || f32(label) != yf || label >= p.cols) {
                row_loss[r] = bitcast<f32>(0x7fc00000u);
                for (var c = 0u; c < p.cols; c++) {
                    grad[base + c] = bitcast<f32>(0x7fc00000u);
                }
                return;
            }
            for (var c = 0u; c < p.cols; c++) {
                let sm = exp(pred[base + c] - m) * inv_s;
                grad[base + c] = (sm - select(0.0, 1.0, c == label)) * p.inv_rows;
            }
            row_loss[r] = lse - pred[base + label];
        } else {
            // Σ_c y_c (lse - z_c); d/dz_c = softmax_c Σy - y_c (Σy = 1 for proper targets).
            var sum_y = 0.0;
            var loss = 0.0;
            for (var c = 0u; c < p.cols; c++) {
                let y = targets[base + c];
                sum_y += y;
                loss += y * (lse - pred[base + c]);
            }
            for (var c = 0u; c < p.cols; c++) {
                let sm = exp(pred[base + c] - m) * inv_s;
                grad[base + c] = (sm * sum_y - targets[base + c]) * p.inv_rows;
            }
            row_loss[r] = loss;
        }
        return;
    }

    let inv_cols = 1.0 / f32(p.cols);
    var loss = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        let lg = elementwise(pred[base + c], targets[base + c]);
        loss += lg.x;
        grad[base + c] = lg.y * inv_cols * p.inv_rows;
    }
    row_loss[r] = loss * inv_cols;
}

// loss_rows for wide rows: a workgroup of WG_ROWS threads per row, each taking every
// WG_ROWS-th column; the row's max and sums reduced by row_reduce (rows.wgsl). The dispatch
// picks it from ROW_WIDE columns (src/backend/gpu/mod.rs).
@compute @workgroup_size(WG_ROWS)
fn loss_rows_wide(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: the whole workgroup leaves or none does (barriers follow).
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;

    if (LOSS == LOSS_SPARSE_SOFTMAX_CROSS_ENTROPY || LOSS == LOSS_SOFTMAX_CROSS_ENTROPY) {
        var m = -3.4028235e38;
        for (var c = li; c < p.cols; c += WG_ROWS) {
            m = max(m, pred[base + c]);
        }
        m = row_reduce(li, m, true);
        var s = 0.0;
        for (var c = li; c < p.cols; c += WG_ROWS) {
            s += exp(pred[base + c] - m);
        }
        s = row_reduce(li, s, false);
        let lse = m + log(s);
        let inv_s = 1.0 / s;

        if (LOSS == LOSS_SPARSE_SOFTMAX_CROSS_ENTROPY) {
            let yf = targets[r];
            let label = u32(yf);
            let bad = !(yf >= 0.0) || f32(label) != yf || label >= p.cols;
            for (var c = li; c < p.cols; c += WG_ROWS) {
                let sm = exp(pred[base + c] - m) * inv_s;
                let g = (sm - select(0.0, 1.0, c == label)) * p.inv_rows;
                grad[base + c] = select(g, bitcast<f32>(0x7fc00000u), bad);
            }
            if (li == 0u) {
                row_loss[r] = select(lse - pred[base + min(label, p.cols - 1u)], bitcast<f32>(0x7fc00000u), bad);
            }
        } else {
            var sum_y = 0.0;
            var loss = 0.0;
            for (var c = li; c < p.cols; c += WG_ROWS) {
                let y = targets[base + c];
                sum_y += y;
                loss += y * (lse - pred[base + c]);
            }
            sum_y = row_reduce(li, sum_y, false);
            loss = row_reduce(li, loss, false);
            for (var c = li; c < p.cols; c += WG_ROWS) {
                let sm = exp(pred[base + c] - m) * inv_s;
                grad[base + c] = (sm * sum_y - targets[base + c]) * p.inv_rows;
            }
            if (li == 0u) {
                row_loss[r] = loss;
            }
        }
        return;
    }

    let inv_cols = 1.0 / f32(p.cols);
    var loss = 0.0;
    for (var c = li; c < p.cols; c += WG_ROWS) {
        let lg = elementwise(pred[base + c], targets[base + c]);
        loss += lg.x;
        grad[base + c] = lg.y * inv_cols * p.inv_rows;
    }
    loss = row_reduce(li, loss, false);
    if (li == 0u) {
        row_loss[r] = loss * inv_cols;
    }
}
