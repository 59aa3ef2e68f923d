//! Shape checks, shared by every backend so that both reject the same calls the same way.

use super::{Guard, Loss, Optimizer, Tensor, Window};
use crate::error::{Error, Result};

fn shape_err(op: &'static str, detail: String) -> Error {
    Error::Shape { op, detail }
}

fn fmt(s: [usize; 2]) -> String {
    format!("[{}, {}]", s[0], s[1])
}

/// A new tensor's dimensions: both ≥ 1 and the data (if any) of the right length.
pub fn new_tensor(rows: usize, cols: usize, data: Option<&[f32]>) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Err(Error::Invalid {
            op: "tensor",
            detail: format!("a tensor needs at least one row and one column, got [{rows}, {cols}]"),
        });
    }
    if let Some(d) = data {
        if d.len() != rows * cols {
            return Err(shape_err(
                "tensor",
                format!(
                    "[{rows}, {cols}] needs {} values, got {}",
                    rows * cols,
                    d.len()
                ),
            ));
        }
    }
    Ok(())
}

/// `data` fits `t` exactly.
pub fn write<T: Tensor>(t: &T, data: &[f32]) -> Result<()> {
    if data.len() != t.len() {
        return Err(shape_err(
            "write",
            format!(
                "tensor {} holds {} values, got {}",
                fmt(t.shape()),
                t.len(),
                data.len()
            ),
        ));
    }
    Ok(())
}

/// Returns `(m, n, k)`.
pub fn matmul<T: Tensor>(a: &T, ta: bool, b: &T, tb: bool, c: &T) -> Result<(usize, usize, usize)> {
    let (m, k) = if ta {
        (a.cols(), a.rows())
    } else {
        (a.rows(), a.cols())
    };
    let (k2, n) = if tb {
        (b.cols(), b.rows())
    } else {
        (b.rows(), b.cols())
    };
    let name = |t: bool, x: &str| if t { format!("{x}ᵀ") } else { x.to_string() };
    if k != k2 {
        return Err(shape_err(
            "matmul",
            format!(
                "inner dimensions differ: {} is [{m}, {k}], {} is [{k2}, {n}]",
                name(ta, "a"),
                name(tb, "b")
            ),
        ));
    }
    if c.shape() != [m, n] {
        return Err(shape_err(
            "matmul",
            format!(
                "output is {} but {}·{} is [{m}, {n}]",
                fmt(c.shape()),
                name(ta, "a"),
                name(tb, "b")
            ),
        ));
    }
    Ok((m, n, k))
}

/// `x` is `[1, cols]` for a `[N, cols]` `z`.
pub fn row_vector<T: Tensor>(op: &'static str, z: &T, v: &T) -> Result<()> {
    if v.shape() != [1, z.cols()] {
        return Err(shape_err(
            op,
            format!(
                "bias must be [1, {}] for a {} tensor, got {}",
                z.cols(),
                fmt(z.shape()),
                fmt(v.shape())
            ),
        ));
    }
    Ok(())
}

/// All tensors have the shape of the first.
pub fn same<T: Tensor>(op: &'static str, ts: &[(&str, &T)]) -> Result<()> {
    let (n0, t0) = ts[0];
    for (n, t) in &ts[1..] {
        if t.shape() != t0.shape() {
            return Err(shape_err(
                op,
                format!(
                    "`{n}` is {} but `{n0}` is {}",
                    fmt(t.shape()),
                    fmt(t0.shape())
                ),
            ));
        }
    }
    Ok(())
}

/// The loss's target, grad and row-loss shapes fit `pred`.
pub fn loss<T: Tensor>(loss: Loss, pred: &T, target: &T, grad: &T, row_loss: &T) -> Result<()> {
    let [n, c] = pred.shape();
    let tc = loss.target_cols(c);
    if target.shape() != [n, tc] {
        return Err(shape_err(
            "loss",
            format!(
                "{} expects a [{n}, {tc}] target for a {} prediction, got {}",
                loss.name(),
                fmt(pred.shape()),
                fmt(target.shape())
            ),
        ));
    }
    same("loss", &[("pred", pred), ("grad", grad)])?;
    if row_loss.shape() != [n, 1] {
        return Err(shape_err(
            "loss",
            format!("row_loss must be [{n}, 1], got {}", fmt(row_loss.shape())),
        ));
    }
    Ok(())
}

/// `slot` is inside the `[1, S]` accumulator.
pub fn slot<T: Tensor>(op: &'static str, acc: &T, slot: usize) -> Result<()> {
    slots(op, acc, slot, 1)
}

/// `slot..slot + count` is inside the `[1, S]` accumulator.
pub fn slots<T: Tensor>(op: &'static str, acc: &T, slot: usize, count: usize) -> Result<()> {
    if acc.rows() != 1 || slot + count > acc.cols() {
        return Err(shape_err(
            op,
            format!(
                "accumulator is {}, slots {slot}..{} are not in a [1, S] row",
                fmt(acc.shape()),
                slot + count
            ),
        ));
    }
    Ok(())
}

/// Target of an argmax or top-k count: `[N, 1]` labels or `[N, C]`.
pub fn argmax<T: Tensor>(op: &'static str, pred: &T, target: &T) -> Result<()> {
    if target.rows() != pred.rows() || (target.cols() != 1 && target.cols() != pred.cols()) {
        return Err(shape_err(
            op,
            format!(
                "target must be [{0}, 1] or [{0}, {1}], got {2}",
                pred.rows(),
                pred.cols(),
                fmt(target.shape())
            ),
        ));
    }
    Ok(())
}

/// The lists of `optimizer_step_all` line up.
pub fn optimizer_all<T>(
    params: usize,
    grads: usize,
    states: usize,
    guard: Option<&Guard<'_, T>>,
) -> Result<()> {
    let outs = guard.map_or((params, states), |g| {
        (g.params_out.len(), g.state_out.len())
    });
    if params != grads || params != states || (params, states) != outs {
        return Err(Error::Invalid {
            op: "optimizer_step_all",
            detail: format!(
                "{params} parameters, {grads} gradients, {states} state lists and {} + {} outputs; one each per parameter",
                outs.0, outs.1
            ),
        });
    }
    Ok(())
}

/// Parameter, gradient and state agree, the guard's slots exist and its backup fits, and
/// the hyper-parameters are valid.
pub fn optimizer<T: Tensor>(
    opt: Optimizer,
    t: u64,
    param: &T,
    grad: &T,
    state: &[T],
    guard: Option<&Guard<'_, T>>,
) -> Result<()> {
    opt.validate(t)?;
    if let Some(g) = guard {
        let s = g.slots;
        for slot in [s.loss, s.flags, s.flags + 1, s.step] {
            self::slot("optimizer_step", &*g.acc, slot)?;
        }
        if t > u32::MAX as u64 {
            return Err(Error::Invalid {
                op: "optimizer_step",
                detail: format!("a guarded step counts to {}, got t = {t}", u32::MAX),
            });
        }
        let ([param_out], [state_out]) = (&g.params_out[..], &g.state_out[..]) else {
            return Err(Error::Invalid {
                op: "optimizer_step",
                detail: format!(
                    "one output per parameter, got {} parameters' and {} states'",
                    g.params_out.len(),
                    g.state_out.len()
                ),
            });
        };
        if state_out.len() != opt.state_tensors() {
            return Err(Error::Invalid {
                op: "optimizer_step",
                detail: format!(
                    "{} keeps {} state tensors, the output has {}",
                    opt.spec().1,
                    opt.state_tensors(),
                    state_out.len()
                ),
            });
        }
        same(
            "optimizer_step",
            &[("param", param), ("params_out", param_out)],
        )?;
        for s in state_out {
            same("optimizer_step", &[("param", param), ("state_out", s)])?;
        }
    }
    same("optimizer_step", &[("param", param), ("grad", grad)])?;
    if state.len() != opt.state_tensors() {
        return Err(Error::Invalid {
            op: "optimizer_step",
            detail: format!(
                "{} keeps {} state tensors, got {}",
                opt.spec().1,
                opt.state_tensors(),
                state.len()
            ),
        });
    }
    for s in state {
        same("optimizer_step", &[("param", param), ("state", s)])?;
    }
    Ok(())
}

/// A dropout's rate is in `[0, 1)` and its output shaped like its input.
pub fn dropout<T: Tensor>(x: &T, mask: super::DropoutMask, y: &T, keep: &T) -> Result<()> {
    same("dropout", &[("x", x), ("y", y), ("keep", keep)])?;
    if !(0.0..1.0).contains(&mask.rate) {
        return Err(Error::Invalid {
            op: "dropout",
            detail: format!("the rate must be in [0, 1), got {}", mask.rate),
        });
    }
    Ok(())
}

/// Every `[1, C]` vector of a per-column op fits `x` `[N, C]`, and the rest are shaped like `x`.
pub fn per_column<T: Tensor>(op: &'static str, x: &T, vectors: &[&T], like_x: &[&T]) -> Result<()> {
    for v in vectors {
        row_vector(op, x, *v)?;
    }
    for t in like_x {
        same(op, &[("x", x), ("output", *t)])?;
    }
    Ok(())
}

/// ε of a batch normalization is positive (it keeps `1 / √(var + ε)` finite).
pub fn epsilon(op: &'static str, eps: f32) -> Result<()> {
    if !(eps > 0.0 && eps.is_finite()) {
        return Err(Error::Invalid {
            op,
            detail: format!("epsilon must be finite and > 0, got {eps}"),
        });
    }
    Ok(())
}

/// A maxout of `pieces` ≥ 1 maps `z` `[N, units · pieces]` to `y` `[N, units]`.
pub fn maxout<T: Tensor>(op: &'static str, z: &T, pieces: usize, y: &T) -> Result<()> {
    if pieces == 0 || y.rows() != z.rows() || y.cols() * pieces != z.cols() {
        return Err(shape_err(
            op,
            format!(
                "{pieces} pieces of {} need a [{}, {}] input, got {}",
                fmt(y.shape()),
                y.rows(),
                y.cols() * pieces,
                fmt(z.shape())
            ),
        ));
    }
    Ok(())
}

/// A window that fits its images (see [`Window::validate`]).
fn window(op: &'static str, w: &Window) -> Result<()> {
    w.validate().map_err(|detail| Error::Invalid { op, detail })
}

/// `images` `[N, H·W·C]` of `w`'s input and `out` `[N, positions · width]` of its output, the
/// same `N`.
fn images<T: Tensor>(
    op: &'static str,
    w: &Window,
    images: &T,
    out: &T,
    width: usize,
) -> Result<()> {
    window(op, w)?;
    let [h, wd, c] = w.input;
    let [oh, ow] = w.output();
    if images.cols() != w.input_len() {
        return Err(shape_err(
            op,
            format!(
                "images of {h}×{wd}×{c} are [N, {}], got {}",
                w.input_len(),
                fmt(images.shape())
            ),
        ));
    }
    if out.rows() != images.rows() || out.cols() != w.positions() * width {
        return Err(shape_err(
            op,
            format!(
                "{} images of {h}×{wd}×{c} give a [{}, {}] output ({oh}×{ow}×{width}), got {}",
                images.rows(),
                images.rows(),
                w.positions() * width,
                fmt(out.shape())
            ),
        ));
    }
    Ok(())
}

/// A convolution's operands fit `w`: `x` `[N, H·W·C]`, `kernel` `[kh·kw·C, F]`, `bias`
/// `[1, F]`, `out` `[N, Ho·Wo·F]`.
pub fn conv2d<T: Tensor>(
    op: &'static str,
    x: &T,
    kernel: &T,
    bias: Option<&T>,
    w: &Window,
    out: &T,
) -> Result<()> {
    window(op, w)?;
    let [kh, kw] = w.kernel;
    let taps = kh * kw * w.input[2];
    if kernel.rows() != taps {
        return Err(shape_err(
            op,
            format!(
                "a {kh}×{kw} kernel over {} channels is [{taps}, filters], got {}",
                w.input[2],
                fmt(kernel.shape())
            ),
        ));
    }
    if let Some(b) = bias {
        if b.shape() != [1, kernel.cols()] {
            return Err(shape_err(
                op,
                format!(
                    "the bias of {} filters is [1, {}], got {}",
                    kernel.cols(),
                    kernel.cols(),
                    fmt(b.shape())
                ),
            ));
        }
    }
    images(op, w, x, out, kernel.cols())
}

/// An activation that applies to a feature map element by element: not softmax, whose rows
/// would be whole feature maps.
pub fn feature_map_activation(op: &'static str, act: super::Activation) -> Result<()> {
    if act == super::Activation::Softmax {
        return Err(Error::Invalid {
            op,
            detail: "softmax over a convolution's feature map would normalise across positions and filters together; use it on a Dense layer after Flatten".into(),
        });
    }
    Ok(())
}

/// Max pooling's winners on the host are positions inside one image (whole numbers below
/// `H·W·C`): anything else did not come from [`crate::backend::Backend::max_pool_forward`].
pub fn winners(op: &'static str, winners: &[f32], w: &Window) -> Result<()> {
    let len = w.input_len() as f32;
    if let Some((i, v)) = winners
        .iter()
        .enumerate()
        .find(|(_, &v)| !(v >= 0.0 && v < len && (v as u32) as f32 == v))
    {
        return Err(Error::Invalid {
            op,
            detail: format!(
                "winners[{i}] = {v} is not a position in an image of {} values: pass the winners max_pool_forward wrote",
                w.input_len()
            ),
        });
    }
    Ok(())
}

/// A pooling op's operands fit `w`: `x` `[N, H·W·C]` and `y` `[N, Ho·Wo·C]`.
pub fn pool<T: Tensor>(op: &'static str, x: &T, w: &Window, y: &T) -> Result<()> {
    images(op, w, x, y, w.input[2])
}

/// Penalty factors are finite and ≥ 0.
pub fn penalty(l1: f32, l2: f32) -> Result<()> {
    if !(l1 >= 0.0 && l1.is_finite() && l2 >= 0.0 && l2.is_finite()) {
        return Err(Error::Invalid {
            op: "penalty",
            detail: format!("the factors must be finite and ≥ 0, got l1 = {l1}, l2 = {l2}"),
        });
    }
    Ok(())
}

/// A moving-average update: as many batch statistics as moving ones, shaped alike (and the
/// guard's outputs), and a momentum in `[0, 1]`.
pub fn moving_average<T: Tensor>(
    momentum: f32,
    moving: &[T],
    batch: &[T],
    guard: Option<&Guard<'_, T>>,
) -> Result<()> {
    if !(0.0..=1.0).contains(&momentum) {
        return Err(Error::Invalid {
            op: "moving_average",
            detail: format!("the momentum must be in [0, 1], got {momentum}"),
        });
    }
    let outs = guard.map_or(moving.len(), |g| g.params_out.len());
    if moving.len() != batch.len() || outs != moving.len() {
        return Err(shape_err(
            "moving_average",
            format!(
                "{} moving statistics, {} batch statistics, {outs} outputs",
                moving.len(),
                batch.len()
            ),
        ));
    }
    for (j, (m, b)) in moving.iter().zip(batch).enumerate() {
        same("moving_average", &[("moving", m), ("batch", b)])?;
        if let Some(g) = guard {
            same(
                "moving_average",
                &[("moving", m), ("output", &g.params_out[j])],
            )?;
        }
    }
    Ok(())
}

/// A randomized leaky ReLU's slopes are finite with `lower ≤ upper`, its tensors alike.
pub fn rrelu<T: Tensor>(
    op: &'static str,
    slopes: super::RandomSlopes,
    ts: &[(&str, &T)],
) -> Result<()> {
    same(op, ts)?;
    let (l, u) = (slopes.lower, slopes.upper);
    if !(l.is_finite() && u.is_finite() && l <= u) {
        return Err(Error::Invalid {
            op,
            detail: format!("the slopes must be finite with lower ≤ upper, got [{l}, {u}]"),
        });
    }
    Ok(())
}

/// A copy between as many tensors on each side.
pub fn copy_all(src: usize, dst: usize) -> Result<()> {
    if src != dst {
        return Err(shape_err(
            "copy_all",
            format!("{src} sources for {dst} destinations"),
        ));
    }
    Ok(())
}

/// A gather of `dst.rows()` rows of `src` by `order[offset..]` (a `[1, n]` tensor of row
/// indices): the same columns, and the indices there.
pub fn gather_rows<T: Tensor>(src: &T, order: &T, offset: usize, dst: &T) -> Result<()> {
    if src.cols() != dst.cols() {
        return Err(shape_err(
            "gather_rows",
            format!(
                "rows of {} columns cannot go into {} ({} columns)",
                src.cols(),
                fmt(dst.shape()),
                dst.cols()
            ),
        ));
    }
    if order.rows() != 1
        || offset
            .checked_add(dst.rows())
            .is_none_or(|end| end > order.cols())
    {
        return Err(shape_err(
            "gather_rows",
            format!(
                "the order must be [1, n] with n ≥ offset + rows = {offset} + {}, got {}",
                dst.rows(),
                fmt(order.shape())
            ),
        ));
    }
    if src.len() > u32::MAX as usize {
        return Err(Error::Invalid {
            op: "gather_rows",
            detail: format!(
                "a source of {} values is more than 2³² can index",
                src.len()
            ),
        });
    }
    Ok(())
}
