//! The `Backend` trait: every op the training loop needs, written against 2-D f32 tensors.
//!
//! The model code is written once against this trait and runs on [`reference::ReferenceBackend`] (the
//! reference, the specification) and [`gpu::GpuBackend`] (wgpu). Ops *record* work: on the GPU
//! they append a dispatch to the current batch and return at once. Only [`Backend::read`] waits
//! (and [`Backend::flush`] submits without waiting). Every op writes into a tensor the caller
//! allocated, so a training step can allocate once and reuse its buffers every step.
//!
//! Shapes are `[rows, cols]`, row-major; a bias or a per-column vector is `[1, cols]`.

mod auto;
pub mod check;
pub mod cpu;
pub mod gpu;
mod guard;
pub mod ops;
pub mod reference;
mod step;
mod tensor;
pub mod window;

pub use ops::{
    Activation, DropoutMask, Loss, Optimizer, PointError, RandomSlopes, AUC_THRESHOLDS,
    BCE_EPSILON, ROC_HISTOGRAM_SLOTS,
};

pub use auto::{choose_auto, on_default_backend, AutoChoice, BackendJob};
pub use guard::{Guard, GuardSlots};
pub use step::{DeviceTime, StepValues};
pub use tensor::{HostTensor, MemoryLimits, ReadTicket, Tensor};
pub use window::{Padding, Window};

use crate::error::Result;

/// The ops of one training step, on one device.
///
/// Outputs are `&mut`: a tensor can never be read and written by the same op, which is also
/// what the GPU requires of its bindings.
pub trait Backend {
    /// This backend's tensor.
    type Tensor: Tensor + std::fmt::Debug;
    /// A recorded step this backend can replay ([`Backend::begin_plan`]).
    type Plan: std::fmt::Debug;

    /// Where the work runs, for logs and benchmarks (e.g. `cpu reference` or the adapter).
    fn describe(&self) -> String;

    /// What this backend can hold: the largest tensor, and whether tensors take host memory.
    /// Used to refuse a model that cannot fit before anything is allocated.
    fn memory_limits(&self) -> MemoryLimits {
        MemoryLimits {
            in_host_memory: true,
            ..MemoryLimits::default()
        }
    }

    /// A new `[rows, cols]` tensor of zeros.
    fn zeros(&mut self, rows: usize, cols: usize) -> Result<Self::Tensor>;

    /// A new `[rows, cols]` tensor holding `data` (row-major, `rows * cols` values).
    fn upload(&mut self, rows: usize, cols: usize, data: &[f32]) -> Result<Self::Tensor>;

    /// Overwrites `t` with `data`, ordered after all work recorded so far.
    fn write(&mut self, t: &mut Self::Tensor, data: &[f32]) -> Result<()>;

    /// Reads `t` back. On the GPU this submits the recorded work and waits for it: the one
    /// point in the API that waits.
    fn read(&mut self, t: &Self::Tensor) -> Result<Vec<f32>>;

    /// Appends the values of every tensor of `ts` to `out`, in order: on the GPU one copy,
    /// one submit and one wait for all of them.
    fn read_all(&mut self, ts: &[&Self::Tensor], out: &mut Vec<f32>) -> Result<()> {
        for t in ts {
            out.extend(self.read(t)?);
        }
        Ok(())
    }

    /// Starts reading every tensor of `ts` back, as [`Backend::read_all`] would, and returns
    /// without waiting where the device works apart from the host: the values are appended
    /// to the `out` given [`Backend::read_finish`]. A host backend appends them to `out` now.
    /// Work recorded after the start does not change them; several reads may be under way.
    fn read_start(&mut self, ts: &[&Self::Tensor], out: &mut Vec<f32>) -> Result<ReadTicket> {
        self.read_all(ts, out)?;
        Ok(ReadTicket::done())
    }

    /// Ends a read started by [`Backend::read_start`] on this backend, appending its values to
    /// `out` unless they are there already.
    fn read_finish(&mut self, ticket: ReadTicket, _out: &mut Vec<f32>) -> Result<()> {
        match ticket.slot() {
            None => Ok(()),
            Some(slot) => Err(crate::error::Error::Config(format!(
                "read ticket {slot} is not a read under way on this backend ({})",
                self.describe()
            ))),
        }
    }

    /// Submits the recorded work without waiting for it.
    fn flush(&mut self) -> Result<()>;

    /// Submits the recorded work and waits until the device has finished it (for timing).
    fn finish(&mut self) -> Result<()>;

    /// `dst[i, :] = src[order[offset + i], :]` for each row of `dst`: a batch gathered on the
    /// device from a dataset kept there. `order` is `[1, n]`, each value a row index stored as
    /// the bits of a u32 ([`reference::order_values`] makes them); `src` and `dst` have the same
    /// columns. An index that is not a row of `src` is an error on the reference; a GPU
    /// clamps it to the last row (it cannot report it without a read-back).
    fn gather_rows(
        &mut self,
        src: &Self::Tensor,
        order: &Self::Tensor,
        offset: usize,
        dst: &mut Self::Tensor,
    ) -> Result<()>;

    /// The host's time in the device's hands so far, where ops run apart from the host (the
    /// GPU); `None` where every op runs when it is called (the reference).
    fn device_time(&self) -> Option<DeviceTime> {
        None
    }

    /// [`Backend::gather_rows`] of `x_src` into `x_dst` and of `y_src` into `y_dst`, by the
    /// same order from the same offset (a batch's features and targets): one pass where the
    /// backend can (the GPU, where the features' rows are whole vec4).
    fn gather_rows_pair(
        &mut self,
        x_src: &Self::Tensor,
        y_src: &Self::Tensor,
        order: &Self::Tensor,
        offset: usize,
        x_dst: &mut Self::Tensor,
        y_dst: &mut Self::Tensor,
    ) -> Result<()> {
        self.gather_rows(x_src, order, offset, x_dst)?;
        self.gather_rows(y_src, order, offset, y_dst)
    }

    /// Starts recording a step plan: the ops until [`Backend::end_plan`] run as usual, and
    /// are also kept as a plan that [`Backend::replay`] runs again with the pipelines, bind
    /// groups and parameters already resolved. `false` where this backend keeps no plans
    /// (the reference runs every op as it is called); then `end_plan` returns `None`.
    fn begin_plan(&mut self) -> Result<bool>;

    /// Ends the recording begun by [`Backend::begin_plan`]: the plan, or `None` where the
    /// steps' ops could not all be kept (then the step ran, unrecorded).
    fn end_plan(&mut self) -> Result<Option<Self::Plan>>;

    /// Runs a recorded plan again as the step `step` describes: its step count, learning
    /// rate and offset into the order replace the ones it was recorded with, in the ops that
    /// read them (the optimizer, the moving averages, dropout and RReLU's draws, the batch
    /// gather); everything else is as recorded, so the tensors it used must still be alive
    /// and hold what the step expects. `false` if the plan no longer applies (the backend
    /// dropped what it was built on): record it again.
    fn replay(&mut self, plan: &mut Self::Plan, step: StepValues) -> Result<bool>;

    /// `dst[:] = src[:]` (both the same shape), ordered with the other ops: a device-side copy.
    fn copy(&mut self, src: &Self::Tensor, dst: &mut Self::Tensor) -> Result<()>;

    /// [`Backend::copy`] of each `src[j]` into `dst[j]`; where both were each made by one
    /// [`Backend::zeros_group`] with the same shapes, a backend may copy them in one pass.
    fn copy_all(&mut self, src: &[Self::Tensor], dst: &mut [Self::Tensor]) -> Result<()> {
        check::copy_all(src.len(), dst.len())?;
        for (s, d) in src.iter().zip(dst) {
            self.copy(s, d)?;
        }
        Ok(())
    }

    /// `t[:] = value`.
    fn fill(&mut self, t: &mut Self::Tensor, value: f32) -> Result<()>;

    /// `c = op(a) · op(b)` where `op(x)` is `xᵀ` when the flag is set.
    /// `op(a)`: `[M, K]`, `op(b)`: `[K, N]`, `c`: `[M, N]`.
    fn matmul(
        &mut self,
        a: &Self::Tensor,
        trans_a: bool,
        b: &Self::Tensor,
        trans_b: bool,
        c: &mut Self::Tensor,
    ) -> Result<()>;

    /// `z[r, :] += bias[0, :]`. `z`: `[N, C]`, `bias`: `[1, C]`.
    fn bias_add(&mut self, z: &mut Self::Tensor, bias: &Self::Tensor) -> Result<()>;

    /// A dense layer's forward: `z = x·w + bias; a = act(z)`, with `x` `[N, K]`, `w` `[K, C]`,
    /// `bias` `[1, C]`, `z` and `a` `[N, C]`. The same as [`Backend::matmul`],
    /// [`Backend::bias_add`] and [`Backend::activation`] in turn (the default); the GPU backend
    /// fuses the bias and any element-wise activation into the product's epilogue (softmax,
    /// which needs whole rows, runs after it).
    fn dense_forward(
        &mut self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        bias: &Self::Tensor,
        act: Activation,
        z: &mut Self::Tensor,
        a: &mut Self::Tensor,
    ) -> Result<()> {
        self.matmul(x, false, w, false, z)?;
        self.bias_add(z, bias)?;
        self.activation(act, z, a)
    }

    /// `db[0, c] = Σ_r dy[r, c]`. `dy`: `[N, C]`, `db`: `[1, C]`.
    fn bias_grad(&mut self, dy: &Self::Tensor, db: &mut Self::Tensor) -> Result<()>;

    /// `a = act(z)`. `z`, `a`: `[N, C]`.
    fn activation(&mut self, act: Activation, z: &Self::Tensor, a: &mut Self::Tensor)
        -> Result<()>;

    /// `dz = ∂L/∂z` from `da = ∂L/∂a`, using what forward saved (`z` and `a = act(z)`).
    /// All four `[N, C]`. For softmax this is the Jacobian-vector product per row.
    fn activation_backward(
        &mut self,
        act: Activation,
        z: &Self::Tensor,
        a: &Self::Tensor,
        da: &Self::Tensor,
        dz: &mut Self::Tensor,
    ) -> Result<()>;

    /// The loss of `pred` `[N, C]` against `target` (`[N, 1]` integer labels for the sparse
    /// loss, else `[N, C]`): writes each sample's loss to `row_loss` `[N, 1]` and the gradient
    /// of the batch-mean loss with respect to `pred` to `grad` `[N, C]`.
    ///
    /// A sparse label outside `[0, C)` or not an integer gives NaN for that row, on both
    /// backends; the data layer checks labels before they get here.
    fn loss(
        &mut self,
        loss: Loss,
        pred: &Self::Tensor,
        target: &Self::Tensor,
        grad: &mut Self::Tensor,
        row_loss: &mut Self::Tensor,
    ) -> Result<()>;

    /// `acc[slot] += Σ x` (acc is `[1, S]`).
    fn sum_into(&mut self, x: &Self::Tensor, acc: &mut Self::Tensor, slot: usize) -> Result<()>;

    /// `acc[slot] += #rows r with argmax(pred[r]) == label(r)`, where the label is `target[r, 0]`
    /// for a `[N, 1]` target and `argmax(target[r])` for `[N, C]`. Ties go to the first index.
    fn argmax_correct_into(
        &mut self,
        pred: &Self::Tensor,
        target: &Self::Tensor,
        acc: &mut Self::Tensor,
        slot: usize,
    ) -> Result<()>;

    /// `acc[slot] += #elements with (pred > threshold ? 1 : 0) == target` (`[N, C]` both),
    /// Keras' `binary_accuracy`.
    fn threshold_correct_into(
        &mut self,
        pred: &Self::Tensor,
        target: &Self::Tensor,
        threshold: f32,
        acc: &mut Self::Tensor,
        slot: usize,
    ) -> Result<()>;

    /// `acc[slot] += #rows whose true class is among the k largest predictions`: the number of
    /// classes scoring strictly higher than the true one is below `k` (ties count as in, as
    /// `in_top_k` does). Targets as for [`Backend::argmax_correct_into`].
    fn topk_correct_into(
        &mut self,
        pred: &Self::Tensor,
        target: &Self::Tensor,
        k: usize,
        acc: &mut Self::Tensor,
        slot: usize,
    ) -> Result<()>;

    /// Adds the confusion counts of `pred > threshold` against `target != 0` (`[N, C]` both,
    /// every element a yes/no decision) to `acc[slot..slot + 4]`: true positives, false
    /// positives, true negatives, false negatives.
    fn confusion_into(
        &mut self,
        pred: &Self::Tensor,
        target: &Self::Tensor,
        threshold: f32,
        acc: &mut Self::Tensor,
        slot: usize,
    ) -> Result<()>;

    /// Adds the ROC histogram of `pred` against `target != 0` to
    /// `acc[slot..slot + ROC_HISTOGRAM_SLOTS]`: bucket `b` (the number of the
    /// [`AUC_THRESHOLDS`] thresholds below the prediction) counts positives at `2b` and
    /// negatives at `2b + 1`. The AUC is computed from it on the host.
    fn roc_histogram_into(
        &mut self,
        pred: &Self::Tensor,
        target: &Self::Tensor,
        acc: &mut Self::Tensor,
        slot: usize,
    ) -> Result<()>;

    /// `acc[slot] += Σ error(pred, target)` over all elements (`[N, C]` both).
    fn error_sum_into(
        &mut self,
        kind: PointError,
        pred: &Self::Tensor,
        target: &Self::Tensor,
        acc: &mut Self::Tensor,
        slot: usize,
    ) -> Result<()>;

    /// `acc[slot] += Σ_r crossentropy(pred[r], target[r])`, Keras' categorical cross-entropy
    /// per row (see [`reference::crossentropy_row_f64`]): from logits with `from_logits`, else from
    /// probabilities (normalised per row and clipped). Targets as for
    /// [`Backend::argmax_correct_into`]: `[N, 1]` integer labels (the sparse form) or `[N, C]`.
    fn crossentropy_sum_into(
        &mut self,
        from_logits: bool,
        pred: &Self::Tensor,
        target: &Self::Tensor,
        acc: &mut Self::Tensor,
        slot: usize,
    ) -> Result<()>;

    /// Adds, for each class `c` of `pred` `[N, C]`, its true positives, false positives and
    /// false negatives to `acc[slot + 3c .. slot + 3c + 3]` (see [`reference::class_confusion`]): a
    /// class is predicted where its score is above `threshold`, or, with none, where it is the
    /// row's argmax. Targets as for [`Backend::argmax_correct_into`], except that with one
    /// output a `[N, 1]` target is a yes/no (`!= 0`), not a label.
    fn class_confusion_into(
        &mut self,
        pred: &Self::Tensor,
        target: &Self::Tensor,
        threshold: Option<f32>,
        acc: &mut Self::Tensor,
        slot: usize,
    ) -> Result<()>;

    /// Inverted dropout: `keep = mask.scale()` where `mask` keeps the element, else 0, and
    /// `y = x ⊙ keep` (see [`DropoutMask`], [`reference::dropout_forward`]). The backward pass is
    /// `dx = dy ⊙ keep` ([`Backend::multiply`]). `x`, `y`, `keep`: `[N, C]`.
    fn dropout(
        &mut self,
        x: &Self::Tensor,
        mask: DropoutMask,
        y: &mut Self::Tensor,
        keep: &mut Self::Tensor,
    ) -> Result<()>;

    /// `c = a ⊙ b`, element by element; all three the same shape.
    fn multiply(&mut self, a: &Self::Tensor, b: &Self::Tensor, c: &mut Self::Tensor) -> Result<()>;

    /// A randomized leaky ReLU in training: `y = x` where `x ≥ 0`, else `slope_i · x` with the
    /// slopes of `slopes` (see [`RandomSlopes`], [`reference::rrelu_forward`]). `x`, `y`: `[N, C]`.
    fn rrelu_forward(
        &mut self,
        x: &Self::Tensor,
        slopes: RandomSlopes,
        y: &mut Self::Tensor,
    ) -> Result<()>;

    /// The backward of [`Backend::rrelu_forward`]: `dx = dy` where `x ≥ 0`, else
    /// `slope_i · dy`, with the same slopes drawn again.
    fn rrelu_backward(
        &mut self,
        x: &Self::Tensor,
        slopes: RandomSlopes,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
    ) -> Result<()>;

    /// The batch statistics of `x` `[N, C]` per column: the mean and the biased variance, each
    /// `[1, C]` (see [`reference::batchnorm_stats`]).
    fn batchnorm_stats(
        &mut self,
        x: &Self::Tensor,
        mean: &mut Self::Tensor,
        var: &mut Self::Tensor,
    ) -> Result<()>;

    /// `y = gamma · (x - mean) / √(var + eps) + beta` per column (see
    /// [`reference::batchnorm_forward`]); `stats` is `[mean, var]`, `affine` `[gamma, beta]`, each
    /// `[1, C]`.
    fn batchnorm_forward(
        &mut self,
        x: &Self::Tensor,
        stats: [&Self::Tensor; 2],
        affine: [&Self::Tensor; 2],
        eps: f32,
        y: &mut Self::Tensor,
    ) -> Result<()>;

    /// The training backward of [`Backend::batchnorm_forward`] with the batch's own `stats`
    /// (see [`reference::batchnorm_backward`]): `dx` `[N, C]`, and `grads` `[dgamma, dbeta]`.
    #[allow(clippy::too_many_arguments)]
    fn batchnorm_backward(
        &mut self,
        x: &Self::Tensor,
        stats: [&Self::Tensor; 2],
        gamma: &Self::Tensor,
        dy: &Self::Tensor,
        eps: f32,
        dx: &mut Self::Tensor,
        grads: [&mut Self::Tensor; 2],
    ) -> Result<()>;

    /// `moving[j] = momentum · moving[j] + (1 - momentum) · batch[j]` for every `j` (see
    /// [`reference::moving_average`]), the update of a batch normalization's moving statistics after
    /// a training step `t`. With a guard it reads `moving` and writes the guard's
    /// `params_out`, deciding on the device as [`Backend::optimizer_step`] does (its
    /// `state_out` is unused), so that the moving statistics swap with the parameters and a
    /// rolled-back step takes them back too. Where `moving`, `batch` (and the outputs) were
    /// each made by one [`Backend::zeros_group`], a backend may update them in one pass.
    fn moving_average_all(
        &mut self,
        momentum: f32,
        t: u64,
        moving: &mut [Self::Tensor],
        batch: &[Self::Tensor],
        guard: Option<Guard<'_, Self::Tensor>>,
    ) -> Result<()>;

    /// PReLU: `y = x` where `x > 0`, else `alpha[c] · x`; `x`, `y` `[N, C]`, `alpha` `[1, C]`.
    fn prelu_forward(
        &mut self,
        x: &Self::Tensor,
        alpha: &Self::Tensor,
        y: &mut Self::Tensor,
    ) -> Result<()>;

    /// The backward of [`Backend::prelu_forward`] (see [`reference::prelu_backward`]): `dx`
    /// `[N, C]` and `dalpha` `[1, C]`.
    fn prelu_backward(
        &mut self,
        x: &Self::Tensor,
        alpha: &Self::Tensor,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
        dalpha: &mut Self::Tensor,
    ) -> Result<()>;

    /// A 2-D convolution of channels-last images (see [`Window`] and
    /// [`reference::conv2d_forward`]): `z = conv(x, kernel) + bias`, with `x` `[N, H·W·C]`,
    /// `kernel` `[kh·kw·C, F]` (Keras' `[kh, kw, C, F]`), `bias` `[1, F]` or none, `z`
    /// `[N, Ho·Wo·F]`.
    fn conv2d(
        &mut self,
        x: &Self::Tensor,
        kernel: &Self::Tensor,
        bias: Option<&Self::Tensor>,
        window: &Window,
        z: &mut Self::Tensor,
    ) -> Result<()>;

    /// A Conv2D layer's forward: [`Backend::conv2d`] then `a = act(z)` (the default; a backend
    /// may fuse the activation). Softmax, which would run over a whole feature map, is refused.
    #[allow(clippy::too_many_arguments)]
    fn conv2d_forward(
        &mut self,
        x: &Self::Tensor,
        kernel: &Self::Tensor,
        bias: Option<&Self::Tensor>,
        window: &Window,
        act: Activation,
        z: &mut Self::Tensor,
        a: &mut Self::Tensor,
    ) -> Result<()> {
        check::feature_map_activation("conv2d_forward", act)?;
        self.conv2d(x, kernel, bias, window, z)?;
        self.activation(act, z, a)
    }

    /// The gradient of [`Backend::conv2d`] with respect to its input: `dx` `[N, H·W·C]` from
    /// `dz` `[N, Ho·Wo·F]` (see [`reference::conv2d_backward_input`]).
    fn conv2d_backward_input(
        &mut self,
        dz: &Self::Tensor,
        kernel: &Self::Tensor,
        window: &Window,
        dx: &mut Self::Tensor,
    ) -> Result<()>;

    /// The gradients of [`Backend::conv2d`] with respect to the kernel (`[kh·kw·C, F]`) and
    /// the bias (`[1, F]`, when there is one), summed over the batch (see
    /// [`reference::conv2d_backward_kernel`]).
    fn conv2d_backward_kernel(
        &mut self,
        x: &Self::Tensor,
        dz: &Self::Tensor,
        window: &Window,
        dkernel: &mut Self::Tensor,
        dbias: Option<&mut Self::Tensor>,
    ) -> Result<()>;

    /// Max pooling: `y` `[N, Ho·Wo·C]` the largest of each window in each channel, `winners`
    /// (shaped like `y`) the position within the image each came from, as an exact f32 (see
    /// [`reference::max_pool_forward`]).
    fn max_pool_forward(
        &mut self,
        x: &Self::Tensor,
        window: &Window,
        y: &mut Self::Tensor,
        winners: &mut Self::Tensor,
    ) -> Result<()>;

    /// The backward of [`Backend::max_pool_forward`]: each output's gradient to the input its
    /// window chose (summed where several chose one), 0 elsewhere; `dx` `[N, H·W·C]`.
    fn max_pool_backward(
        &mut self,
        dy: &Self::Tensor,
        winners: &Self::Tensor,
        window: &Window,
        dx: &mut Self::Tensor,
    ) -> Result<()>;

    /// Average pooling: `y` `[N, Ho·Wo·C]` the mean of each window's inputs inside the image
    /// (padding is not counted; see [`reference::avg_pool_forward`]).
    fn avg_pool_forward(
        &mut self,
        x: &Self::Tensor,
        window: &Window,
        y: &mut Self::Tensor,
    ) -> Result<()>;

    /// The backward of [`Backend::avg_pool_forward`]: `dx` `[N, H·W·C]`.
    fn avg_pool_backward(
        &mut self,
        dy: &Self::Tensor,
        window: &Window,
        dx: &mut Self::Tensor,
    ) -> Result<()>;

    /// Maxout: `y[r, u] = max_k z[r, u · pieces + k]`; `z` `[N, units · pieces]`, `y`
    /// `[N, units]` (see [`reference::maxout_forward`]).
    fn maxout_forward(
        &mut self,
        z: &Self::Tensor,
        pieces: usize,
        y: &mut Self::Tensor,
    ) -> Result<()>;

    /// The backward of [`Backend::maxout_forward`]: `dz` is `dy` at each unit's first winning
    /// piece, 0 elsewhere.
    fn maxout_backward(
        &mut self,
        z: &Self::Tensor,
        pieces: usize,
        dy: &Self::Tensor,
        dz: &mut Self::Tensor,
    ) -> Result<()>;

    /// `acc[slot] += scale · (l1 · Σ |w| + l2 · Σ w²)`, Keras' `L1L2` penalty of `w` (see
    /// [`reference::penalty`]); the training loop passes the batch's rows as `scale`, so that the
    /// penalty is part of the mean loss.
    fn penalty_into(
        &mut self,
        w: &Self::Tensor,
        l1: f32,
        l2: f32,
        scale: f32,
        acc: &mut Self::Tensor,
        slot: usize,
    ) -> Result<()>;

    /// `grad += l1 · sign(w) + 2 · l2 · w`, the penalty's gradient (see
    /// [`reference::penalty_backward`]).
    fn penalty_backward(
        &mut self,
        w: &Self::Tensor,
        l1: f32,
        l2: f32,
        grad: &mut Self::Tensor,
    ) -> Result<()>;

    /// One update of `param` from `grad` with step count `t` (1 for the first step), keeping
    /// `opt.state_tensors()` state tensors shaped like `param` (zeros at the start).
    ///
    /// With a [`Guard`], `param` and `state` are only read: the update writes the new values
    /// to the guard's `params_out` and `state_out`, so that the values before it survive (a
    /// training loop swaps the two sets after each step, and swaps back to undo the last one).
    /// Whether it writes is decided on the device, without a read-back (the slots are
    /// [`GuardSlots`]'):
    /// 1. when `acc[loss]` (the running loss sum) is NaN or infinite, or the previous step's
    ///    flag `acc[flags + (t + 1) % 2]` is raised, nothing is written but this step's flag
    ///    `acc[flags + t % 2]`, which is raised (so a raised flag stays raised);
    /// 2. otherwise the new values are written; if any is not finite, this step's flag is
    ///    raised; and `acc[step] = t`.
    ///
    /// Flags and the step are stored as the bits of a u32 ([`GuardSlots::tripped`],
    /// [`GuardSlots::last_step`] read them). A loop that accumulates its loss in `acc` learns
    /// at its next read whether a step diverged, and which step last wrote.
    fn optimizer_step(
        &mut self,
        opt: Optimizer,
        t: u64,
        param: &mut Self::Tensor,
        grad: &Self::Tensor,
        state: &mut [Self::Tensor],
        guard: Option<Guard<'_, Self::Tensor>>,
    ) -> Result<()>;

    /// New zeroed tensors of these shapes, allocated together. A backend may place them in
    /// one block of memory so that [`Backend::optimizer_step_all`] over exactly this group
    /// runs as one pass (the GPU backend does: one buffer, one dispatch). Each tensor is
    /// still an independent tensor for every other op.
    fn zeros_group(&mut self, shapes: &[[usize; 2]]) -> Result<Vec<Self::Tensor>> {
        shapes.iter().map(|&[r, c]| self.zeros(r, c)).collect()
    }

    /// [`Backend::optimizer_step`] for every `params[j]` with `grads[j]` and `state[j]` (and
    /// the guard's `params_out[j]` and `state_out[j]`), with one optimizer, step and guard.
    /// The result is the same as stepping each in turn; where params, grads and each kind of
    /// state (and of their outputs) were each made by one [`Backend::zeros_group`], in order,
    /// a backend may update them all in one pass.
    fn optimizer_step_all(
        &mut self,
        opt: Optimizer,
        t: u64,
        params: &mut [Self::Tensor],
        grads: &[Self::Tensor],
        state: &mut [Vec<Self::Tensor>],
        mut guard: Option<Guard<'_, Self::Tensor>>,
    ) -> Result<()> {
        check::optimizer_all(params.len(), grads.len(), state.len(), guard.as_ref())?;
        for (j, ((p, g), s)) in params.iter_mut().zip(grads).zip(state).enumerate() {
            let part = guard.as_mut().map(|g| g.part(j));
            self.optimizer_step(opt, t, p, g, s, part)?;
        }
        Ok(())
    }
}
