//! Data-parallel training of a [`Model`]: the same `fit` on every rank of a run, given a
//! [`Communicator`] (see [`crate::dist`]).
//!
//! At the start of each `fit` the ranks check that they agree on everything that decides the
//! run (a digest of the model, the optimizer, the seed, the batch size, the data and where the
//! run stands), and rank 0's weights and optimizer state are broadcast. Every rank then
//! shuffles with the same seed and takes its [`crate::dist::slice()`] of each global batch
//! (`batch_size` is the global batch, as in Keras' distribution strategies). After each
//! backward pass the gradients are averaged, weighted by the slices' sizes, in one allreduce
//! of the flat gradient buffer ([`crate::nn::Network::average_grads`]), so that every rank
//! applies the update one process given the whole batch would. The loss and metric sums are
//! reduced across the ranks where they are read: the epoch's logs are the whole batch's on
//! every rank, so callbacks decide the same on every rank.

use std::fmt;
use std::time::{Duration, Instant};

use super::metrics::LOSS_SLOT;
use super::model::Model;
use super::FitConfig;
use crate::backend::{Backend, ReadTicket};
use crate::data::Matrix;
use crate::dist::{agree, digest, Communicator};
use crate::error::{Error, Result};
use crate::nn::{Activations, GradBucket, Layer, LossSite, Mode, Network};

/// A model's part in a data-parallel run.
pub(crate) struct Dist {
    pub(crate) comm: Box<dyn Communicator>,
    /// This rank's weight in the mean of the step under way (its rows over the batch's).
    weight: f32,
    /// The flat gradient buffer, kept between steps.
    flat: Vec<f32>,
    /// With buckets ([`Model::set_gradient_buckets`]): their least size in bytes, the
    /// buckets of the network (made once, by the first step), a buffer per bucket, and the
    /// accumulator's values.
    bucket_bytes: Option<usize>,
    buckets: Vec<GradBucket>,
    bucket_values: Vec<Vec<f32>>,
    local: Vec<f32>,
    /// Exchanges made and the nanoseconds spent in them (read-back, allreduce, upload), and
    /// in their allreduces alone.
    exchanges: u64,
    exchange_ns: u64,
    allreduce_ns: u64,
}

impl Dist {
    pub(crate) fn reset_counts(&mut self) {
        self.exchanges = 0;
        self.exchange_ns = 0;
        self.allreduce_ns = 0;
    }
}

impl fmt::Debug for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dist")
            .field("rank", &self.comm.rank())
            .field("size", &self.comm.size())
            .field("exchanges", &self.exchanges)
            .finish()
    }
}

impl<B: Backend> Model<B> {
    /// Makes this model one rank of a data-parallel run: from now on `fit` trains together
    /// with the models given the other ranks of `comm` (an MPI world, or a
    /// [`crate::dist::ThreadGroup`]), each on its slice of every global batch, and every rank
    /// ends each step with the same weights. Every rank must call `fit` with the same
    /// arguments and data; a rank that differs fails on every rank at the start. `evaluate`
    /// and `predict` stay local (each rank holds the whole model).
    ///
    /// Layers whose training step depends on the whole batch or draws per row
    /// (BatchNormalization, Dropout, RReLU) are refused at `fit` for now: each rank would see
    /// only its slice, and the run would no longer be the one big batch's.
    pub fn set_communicator(&mut self, comm: impl Communicator + 'static) {
        self.dist = Some(Dist {
            comm: Box::new(comm),
            weight: 1.0,
            flat: Vec::new(),
            bucket_bytes: None,
            buckets: Vec::new(),
            bucket_values: Vec::new(),
            local: Vec::new(),
            exchanges: 0,
            exchange_ns: 0,
            allreduce_ns: 0,
        });
        // Recorded training steps end in an update with no exchange before it.
        self.set_step_plans(self.plans.enabled);
    }

    /// Splits the gradient exchange of each data-parallel step into buckets of at least
    /// `bytes` of gradients each, from the top layer down ([`Network::grad_buckets`]): a
    /// bucket is read back as soon as the backward pass has finished its layers, and is
    /// allreduced while the device runs the backward of the layers below it. `None` (the
    /// default) exchanges the whole gradient at once, after the backward pass. The result is
    /// the same either way; which is faster depends on the machine (`wgtrain bench
    /// --bucket-mb` measures it): on a device that works apart from the host, buckets can
    /// hide the exchange of the upper layers behind the compute of the lower ones, at the
    /// cost of a read-back per bucket. Every rank must set the same; a run whose ranks differ
    /// fails at the start. Call it after [`Model::set_communicator`], which resets it.
    pub fn set_gradient_buckets(&mut self, bytes: Option<usize>) -> Result<()> {
        let d = self.dist.as_mut().ok_or_else(|| {
            Error::Config(
                "gradient buckets split a data-parallel exchange: set a communicator first (Model::set_communicator)"
                    .into(),
            )
        })?;
        d.bucket_bytes = bytes;
        // Made by the first step that exchanges in buckets (the layers do not change).
        d.buckets.clear();
        Ok(())
    }

    /// This model's rank in its data-parallel run (0 when it has none).
    pub fn rank(&self) -> usize {
        self.dist.as_ref().map_or(0, |d| d.comm.rank())
    }

    /// How many ranks its run has (1 when it has none).
    pub fn ranks(&self) -> usize {
        self.dist.as_ref().map_or(1, |d| d.comm.size())
    }

    /// The microseconds per training step spent exchanging gradients (their read-back, the
    /// allreduce, and their upload), over the steps since the communicator was set or
    /// [`Model::reset_host_time`]; `None` before any exchange.
    pub fn exchange_us_per_step(&self) -> Option<f64> {
        let d = self.dist.as_ref()?;
        (d.exchanges > 0).then(|| d.exchange_ns as f64 / d.exchanges as f64 / 1e3)
    }

    /// Of [`Model::exchange_us_per_step`], the microseconds in the allreduce itself: the
    /// transfer and sum, and the wait for the slowest rank to reach it.
    pub fn allreduce_us_per_step(&self) -> Option<f64> {
        let d = self.dist.as_ref()?;
        (d.exchanges > 0).then(|| d.allreduce_ns as f64 / d.exchanges as f64 / 1e3)
    }

    /// The buckets of the last data-parallel step's exchange: 1 for the whole gradient at
    /// once ([`Model::set_gradient_buckets`]), 0 before the first.
    pub fn gradient_buckets(&self) -> usize {
        match &self.dist {
            Some(d) if d.exchanges > 0 && d.bucket_bytes.is_some() => d.buckets.len(),
            Some(d) if d.exchanges > 0 => 1,
            _ => 0,
        }
    }

    /// Whether training steps exchange gradients (a communicator of more than one rank).
    pub(crate) fn is_distributed(&self) -> bool {
        self.dist.as_ref().is_some_and(|d| d.comm.size() > 1)
    }

    /// This rank's rows of a global batch of `len` rows (all of them without a run), and its
    /// weight for the step that trains on them.
    pub(crate) fn take_slice(&mut self, len: usize) -> std::ops::Range<usize> {
        match self.dist.as_mut().filter(|d| d.comm.size() > 1) {
            Some(d) => {
                let (rank, size) = (d.comm.rank(), d.comm.size());
                d.weight = crate::dist::weight(len, rank, size);
                crate::dist::slice(len, rank, size)
            }
            None => 0..len,
        }
    }

    /// The start of a distributed `fit`, after the network is built: refuses what cannot run
    /// data-parallel yet, checks that every rank agrees on the run, and gives every rank rank
    /// 0's weights and optimizer state.
    pub(crate) fn start_distributed(
        &mut self,
        x: &Matrix,
        y: &Matrix,
        config: &FitConfig,
    ) -> Result<()> {
        if !self.is_distributed() {
            return Ok(());
        }
        if let Some(layer) = self.spec.layers().iter().find(|l| {
            matches!(
                l,
                Layer::BatchNormalization(_) | Layer::Dropout(_) | Layer::RRelu(_)
            )
        }) {
            return Err(Error::Config(format!(
                "a {} layer cannot train data-parallel yet: each rank would normalize or draw over its own slice of the batch, \
                 not the whole batch. Train it in one process, or without that layer",
                layer.kind()
            )));
        }
        let digest = self.run_digest(x, y, config)?;
        let comm = &self.dist.as_ref().expect("distributed").comm;
        agree(
            comm.as_ref(),
            "the model, its data and the fit's settings",
            digest,
        )?;
        let net = self.net.as_mut().expect("check_data built the network");
        broadcast_network(&mut self.backend, net, comm.as_ref())?;
        self.mark_good();
        Ok(())
    }

    /// A digest of what decides a run: the model and optimizer, the seed, the fit's settings,
    /// the data (its shape and checksum, not where it came from), and where the run stands.
    fn run_digest(&self, x: &Matrix, y: &Matrix, config: &FitConfig) -> Result<u64> {
        let data = crate::checkpoint::DataRecord::of(x, y, "");
        let validation = config
            .validation_data
            .as_ref()
            .map(|(vx, vy)| crate::checkpoint::DataRecord::of(vx, vy, "").crc32);
        let parts = [
            json(&self.spec.layers().to_vec())?,
            json(&self.loss)?,
            json(&self.optimizer)?,
            json(&self.metrics)?,
            format!(
                "threshold {} seed {} input {:?} data {}x{} crc {:08x} validation {:?} split {} \
                 batch {} epochs {} from {} shuffle {} nan {} done {} step {} buckets {:?}",
                self.threshold,
                self.seed,
                self.input_dim(),
                data.rows,
                data.features,
                data.crc32,
                validation,
                config.validation_split,
                config.batch_size,
                config.epochs,
                config.initial_epoch,
                config.shuffle,
                config.terminate_on_nan,
                self.epochs_done,
                self.step,
                self.dist.as_ref().and_then(|d| d.bucket_bytes),
            ),
            json(&self.standardizer.as_ref().map(|s| (&s.mean, &s.std)))?,
        ];
        Ok(digest(parts.join("\n").as_bytes()))
    }

    /// The sums of an accumulator read back, summed over the ranks: the loss and metric
    /// slots (the guard's flags are the same on every rank, see [`exchange`]).
    pub(crate) fn reduce_sums(&self, sums: &mut [f32]) -> Result<()> {
        let Some(d) = self.dist.as_ref().filter(|d| d.comm.size() > 1) else {
            return Ok(());
        };
        let n = self.plan.slots();
        let mut wide: Vec<f64> = sums[..n].iter().map(|&v| f64::from(v)).collect();
        d.comm.all_reduce_sum_f64(&mut wide)?;
        for (s, w) in sums.iter_mut().zip(wide) {
            *s = w as f32;
        }
        Ok(())
    }

    /// A training step of a rank whose slice of the global batch is empty: it still joins
    /// the exchange (adding nothing) and applies the same update as the others.
    pub(crate) fn empty_step(&mut self, acc: &mut B::Tensor, guard: bool) -> Result<()> {
        let slots = self.guard_slots();
        // The update reads the batch statistics of layers that keep moving averages, which a
        // distributed fit refuses: any batch's buffers do.
        let i = self.batch_index(1, 1)?;
        let Model {
            backend: b,
            net,
            batches,
            optimizer,
            step,
            dist,
            ..
        } = self;
        let net = net.as_mut().expect("check_data builds the network");
        let d = dist
            .as_mut()
            .expect("only a distributed fit has empty slices");
        backward_exchange(b, net, d, acc, guard, None)?;
        *step += 1;
        let acts = &batches[i].acts;
        let guarded = guard.then_some((&mut *acc, slots));
        net.update(b, *optimizer, *step, acts, guarded)?;
        if !guard {
            self.mark_good();
        }
        Ok(())
    }
}

/// A training step's backward pass, for the exchange to run (whole, or bucket by bucket).
pub(crate) struct Pass<'a, T> {
    pub(crate) x: &'a T,
    pub(crate) acts: &'a mut Activations<T>,
    pub(crate) site: LossSite,
    pub(crate) mode: Mode,
}

/// The backward pass of a distributed step (`pass`; `None` for a rank whose slice is empty),
/// and the exchange that averages its gradients over the ranks: after the whole pass
/// ([`exchange`]), or bucket by bucket while it runs ([`exchange_buckets`]).
pub(crate) fn backward_exchange<B: Backend>(
    b: &mut B,
    net: &mut Network<B::Tensor>,
    d: &mut Dist,
    acc: &mut B::Tensor,
    guard: bool,
    pass: Option<Pass<'_, B::Tensor>>,
) -> Result<()> {
    if let Some(bytes) = d.bucket_bytes {
        return exchange_buckets(b, net, d, acc, guard, pass, bytes);
    }
    let has_rows = pass.is_some();
    if let Some(p) = pass {
        net.backward(b, p.x, p.acts, p.site, p.mode)?;
    }
    exchange(b, net, d, acc, guard, has_rows)
}

/// Runs `pass` bucket by bucket from the top ([`Network::grad_buckets`]), starting each
/// bucket's read-back as its layers are done; while the device runs the next bucket's
/// backward, the host finishes the last read, scales it by this rank's weight, allreduces it
/// and uploads it. The first (top) bucket's allreduce carries the guard's flag, as
/// [`exchange`]'s one does. The time counted as the exchange's is the host's in these calls,
/// waits for the device in the read-backs included.
fn exchange_buckets<B: Backend>(
    b: &mut B,
    net: &mut Network<B::Tensor>,
    d: &mut Dist,
    acc: &mut B::Tensor,
    guard: bool,
    mut pass: Option<Pass<'_, B::Tensor>>,
    bytes: usize,
) -> Result<()> {
    let mut buckets = std::mem::take(&mut d.buckets);
    if buckets.is_empty() {
        net.grad_buckets(bytes, &mut buckets);
    }
    d.bucket_values.resize_with(buckets.len(), Vec::new);
    let has_rows = pass.is_some();
    let mut spent = Duration::ZERO;
    let mut last: Option<(usize, ReadTicket)> = None;
    for (k, bucket) in buckets.iter().enumerate() {
        let ticket = match pass.as_mut() {
            Some(p) => {
                net.backward_layers(b, p.x, p.acts, p.site, p.mode, bucket.layers.clone())?;
                let started = Instant::now();
                let values = &mut d.bucket_values[k];
                values.clear();
                // The accumulator rides with the top bucket: the guard's flag needs its loss.
                let extra = (k == 0 && guard).then_some(&*acc);
                let ticket = net.read_bucket_start(b, bucket, extra, values)?;
                spent += started.elapsed();
                ticket
            }
            None => ReadTicket::done(),
        };
        if let Some((j, ticket)) = last.replace((k, ticket)) {
            spent += reduce_bucket(b, net, d, &buckets[j], j, ticket, acc, guard, has_rows)?;
        }
    }
    if let Some((j, ticket)) = last {
        spent += reduce_bucket(b, net, d, &buckets[j], j, ticket, acc, guard, has_rows)?;
    }
    d.buckets = buckets;
    d.exchanges += 1;
    d.exchange_ns += spent.as_nanos() as u64;
    Ok(())
}

/// Finishes bucket `j`'s read (zeros on a rank with no rows, `d.weight` being for the rows it
/// has), allreduces it and writes it back; gives the time it took.
#[allow(clippy::too_many_arguments)]
fn reduce_bucket<B: Backend>(
    b: &mut B,
    net: &mut Network<B::Tensor>,
    d: &mut Dist,
    bucket: &GradBucket,
    j: usize,
    ticket: ReadTicket,
    acc: &mut B::Tensor,
    guard: bool,
    has_rows: bool,
) -> Result<Duration> {
    let started = Instant::now();
    let n = net.bucket_len(bucket);
    let values = &mut d.bucket_values[j];
    if has_rows {
        b.read_finish(ticket, values)?;
        if j == 0 && guard {
            d.local.clear();
            d.local.extend_from_slice(&values[n..]);
            values.truncate(n);
        }
        let weight = d.weight;
        values.iter_mut().for_each(|v| *v *= weight);
    } else {
        values.clear();
        values.resize(n, 0.0);
        if j == 0 && guard {
            d.local = b.read(acc)?;
        }
    }
    let local_finite = !guard || d.local[LOSS_SLOT].is_finite();
    if j == 0 {
        values.push(if local_finite { 0.0 } else { 1.0 });
    }
    let reducing = Instant::now();
    d.comm.all_reduce_sum(values)?;
    d.allreduce_ns += reducing.elapsed().as_nanos() as u64;
    if j == 0 {
        let flag = values.pop().expect("the flag pushed above");
        if guard && flag > 0.0 && local_finite {
            d.local[LOSS_SLOT] = f32::NAN;
            b.write(acc, &d.local)?;
        }
    }
    net.write_bucket(b, bucket, values)?;
    Ok(started.elapsed())
}

/// Averages the gradients of the step under way over the ranks (see
/// [`Network::average_grads`]); `has_rows` is false for a rank whose slice is empty. With
/// `guard`, the ranks also learn whether any rank's running loss is not finite, and then
/// every rank's is made NaN: every guard then skips the same updates, and the weights stay
/// the same on every rank.
pub(crate) fn exchange<B: Backend>(
    b: &mut B,
    net: &mut Network<B::Tensor>,
    d: &mut Dist,
    acc: &mut B::Tensor,
    guard: bool,
    has_rows: bool,
) -> Result<()> {
    // The step's work is done before the clock starts: on a GPU the read-back would
    // otherwise wait for the backward pass, and its time would count as the exchange's.
    b.finish()?;
    let started = Instant::now();
    let mut local = if guard { b.read(acc)? } else { Vec::new() };
    let mut tail = [0.0f32];
    if guard && !local[LOSS_SLOT].is_finite() {
        tail[0] = 1.0;
    }
    let weight = has_rows.then_some(d.weight);
    let reduced = net.average_grads(b, d.comm.as_ref(), weight, &mut tail, &mut d.flat)?;
    d.allreduce_ns += reduced.as_nanos() as u64;
    if guard && tail[0] > 0.0 && local[LOSS_SLOT].is_finite() {
        local[LOSS_SLOT] = f32::NAN;
        b.write(acc, &local)?;
    }
    d.exchanges += 1;
    d.exchange_ns += started.elapsed().as_nanos() as u64;
    Ok(())
}

/// Replaces every rank's weights, layer state and optimizer state by rank 0's.
fn broadcast_network<B: Backend>(
    b: &mut B,
    net: &mut Network<B::Tensor>,
    comm: &dyn Communicator,
) -> Result<()> {
    let mut weights = net.weights(b)?;
    let mut state = net.optimizer_state(b)?;
    let mut values: Vec<&mut Vec<f32>> = Vec::new();
    for w in &mut weights {
        values.extend(w.params.iter_mut().map(|t| &mut t.values));
        values.extend(w.state.iter_mut().map(|t| &mut t.values));
    }
    for s in &mut state {
        values.extend(s.params.iter_mut().flatten());
    }
    let mut bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| v.iter().flat_map(|x| x.to_le_bytes()))
        .collect();
    comm.broadcast(&mut bytes)?;
    let mut words = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    for v in values {
        for x in v.iter_mut() {
            *x = words.next().expect("as many values as were sent");
        }
    }
    net.set_weights(b, &weights)?;
    net.set_optimizer_state(b, &state)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Config(e.to_string()))
}
