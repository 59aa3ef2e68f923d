//! Layers and the network math: `Sequential` of `Dense` layers, their initializers, the
//! losses they are trained with, and [`Network`], the parameters on a backend with forward,
//! backward and update written once for every [`Backend`].
//!
//! Shapes, for a batch of N samples through layer l with `fan_in → units`:
//! `x [N, fan_in] · W [fan_in, units] + b [1, units] = z [N, units]`, `a = act(z)`.

pub mod init;
pub mod loss;

pub use init::Initializer;
pub mod perceptron;
pub use loss::{Head, LossFn, Task};

use rand::rngs::StdRng;

use crate::backend::{Activation, Backend, Guard, GuardSlots, Optimizer, Tensor};
use crate::error::{Error, Result};

/// A fully connected layer: `a = act(x·W + b)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// Output width.
    pub units: usize,
    /// The activation applied to `x·W + b`.
    pub activation: Activation,
    /// How `W` starts (Glorot uniform by default, as Keras).
    pub kernel_initializer: Initializer,
    /// How `b` starts (zeros by default).
    pub bias_initializer: Initializer,
}

impl Dense {
    /// A layer of `units` outputs with Keras' default initializers.
    pub fn new(units: usize, activation: Activation) -> Dense {
        Dense {
            units,
            activation,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
        }
    }

    /// The same layer with another weight initializer.
    pub fn kernel_initializer(mut self, init: Initializer) -> Dense {
        self.kernel_initializer = init;
        self
    }

    /// The same layer with another bias initializer.
    pub fn bias_initializer(mut self, init: Initializer) -> Dense {
        self.bias_initializer = init;
        self
    }
}

/// A stack of layers; the input width comes from the data. `compile` it with a backend, a
/// loss, an optimizer and metrics to get a trainable [`crate::train::Model`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sequential {
    pub(crate) layers: Vec<Dense>,
}

impl Sequential {
    /// An empty stack.
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// The stack with `layer` on top.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: Dense) -> Sequential {
        self.layers.push(layer);
        self
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }

    /// Checks the stack can be built: at least one layer, every width ≥ 1.
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::Config(
                "the model has no layers: add at least one Dense layer".into(),
            ));
        }
        if let Some(i) = self.layers.iter().position(|l| l.units == 0) {
            return Err(Error::Config(format!(
                "layer {i} has 0 units; every layer needs at least one"
            )));
        }
        if let Some(i) = self.layers[..self.layers.len() - 1]
            .iter()
            .position(|l| l.activation.is_row_wise())
        {
            return Err(Error::Config(format!(
                "layer {i} is a hidden softmax layer; softmax belongs on the output layer only"
            )));
        }
        Ok(())
    }
}

/// One layer's weights on the host: `weight` is `[fan_in, units]` row-major, `bias` `[units]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    /// Input width.
    pub fan_in: usize,
    /// Output width.
    pub units: usize,
    /// `W`, row-major `[fan_in, units]`.
    pub weight: Vec<f32>,
    /// `b`, `[units]`.
    pub bias: Vec<f32>,
}

/// One layer's optimizer state on the host: the state tensors of its weight (each
/// `[fan_in × units]` values) and of its bias (each `[units]`), in the optimizer's order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerState {
    /// State of the weight.
    pub weight: Vec<Vec<f32>>,
    /// State of the bias.
    pub bias: Vec<Vec<f32>>,
}

/// The per-batch-size buffers of a forward and backward pass: for each layer `z`, `a = act(z)`
/// and their gradients. Allocated once per batch size and reused every step.
#[derive(Debug)]
pub struct Activations<T> {
    rows: usize,
    /// Pre-activations, one per layer.
    pub z: Vec<T>,
    /// Outputs, one per layer; the last is the network's output.
    pub a: Vec<T>,
    /// `∂L/∂z`, one per layer.
    pub dz: Vec<T>,
    /// `∂L/∂a`, one per layer.
    pub da: Vec<T>,
}

impl<T> Activations<T> {
    /// The batch size these buffers hold.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// The parameters of a stack of dense layers on a backend, with their gradients and optimizer
/// state.
///
/// Parameter `2i` is layer `i`'s weight `[fan_in, units]`, `2i + 1` its bias `[1, units]`. The
/// parameters, the gradients and each kind of optimizer state are each allocated as one group
/// ([`Backend::zeros_group`]), so the whole update is one [`Backend::optimizer_step_all`]: one
/// dispatch on the GPU.
#[derive(Debug)]
pub struct Network<T> {
    input_dim: usize,
    activations: Vec<Activation>,
    params: Vec<T>,
    grads: Vec<T>,
    /// `state[j]`: the optimizer's state tensors of parameter `j`.
    state: Vec<Vec<T>>,
    /// The second set of parameters and state, laid out as the first (each kind one group),
    /// made by the first guarded update: a guarded update reads one set and writes the other,
    /// and the two swap, so the spare holds the values before the last update.
    spare_params: Vec<T>,
    spare_state: Vec<Vec<T>>,
    /// How many times the two sets have swapped: its parity says which is in use.
    swaps: u64,
    shapes: Vec<[usize; 2]>,
}

impl<T: Tensor> Network<T> {
    /// Builds the layers of `spec` for inputs of width `input_dim`, drawing initial values
    /// from `rng` layer by layer (weights, then bias).
    pub fn build<B: Backend<Tensor = T>>(
        b: &mut B,
        spec: &Sequential,
        input_dim: usize,
        optimizer: Optimizer,
        rng: &mut StdRng,
    ) -> Result<Network<T>> {
        spec.validate()?;
        let mut shapes = Vec::with_capacity(2 * spec.layers.len());
        let mut initial = Vec::with_capacity(2 * spec.layers.len());
        let mut fan_in = input_dim;
        for (i, l) in spec.layers.iter().enumerate() {
            let init_err = |e: String| Error::Config(format!("layer {i}: {e}"));
            initial.push(
                l.kernel_initializer
                    .sample(fan_in, l.units, rng)
                    .map_err(init_err)?,
            );
            initial.push(
                l.bias_initializer
                    .sample(1, l.units, rng)
                    .map_err(init_err)?,
            );
            shapes.push([fan_in, l.units]);
            shapes.push([1, l.units]);
            fan_in = l.units;
        }
        let mut params = b.zeros_group(&shapes)?;
        for (t, values) in params.iter_mut().zip(&initial) {
            b.write(t, values)?;
        }
        let grads = b.zeros_group(&shapes)?;
        let mut state: Vec<Vec<T>> = (0..shapes.len()).map(|_| Vec::new()).collect();
        for _ in 0..optimizer.state_tensors() {
            for (s, t) in state.iter_mut().zip(b.zeros_group(&shapes)?) {
                s.push(t);
            }
        }
        Ok(Network {
            input_dim,
            activations: spec.layers.iter().map(|l| l.activation).collect(),
            params,
            grads,
            state,
            spare_params: Vec::new(),
            spare_state: Vec::new(),
            swaps: 0,
            shapes,
        })
    }

    /// The input width.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// The top layer's activation.
    pub fn top_activation(&self) -> Activation {
        *self
            .activations
            .last()
            .expect("a network has at least one layer")
    }

    /// The output width.
    pub fn output_dim(&self) -> usize {
        self.params.last().map_or(0, |b| b.cols())
    }

    /// Number of trainable values.
    pub fn parameter_count(&self) -> usize {
        self.params.iter().map(|t| t.len()).sum()
    }

    fn weight(&self, layer: usize) -> &T {
        &self.params[2 * layer]
    }

    fn bias(&self, layer: usize) -> &T {
        &self.params[2 * layer + 1]
    }

    /// Buffers for batches of `rows` samples.
    pub fn activations<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        rows: usize,
    ) -> Result<Activations<T>> {
        let mut make = || -> Result<Vec<T>> {
            (0..self.activations.len())
                .map(|i| b.zeros(rows, self.bias(i).cols()))
                .collect()
        };
        Ok(Activations {
            rows,
            z: make()?,
            a: make()?,
            dz: make()?,
            da: make()?,
        })
    }

    /// Forward pass: `z = x·W + b; a = act(z)` layer by layer. `x` is `[rows, input_dim]`.
    pub fn forward<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        x: &T,
        acts: &mut Activations<T>,
    ) -> Result<()> {
        for (i, &act) in self.activations.iter().enumerate() {
            let (below, rest) = acts.a.split_at_mut(i);
            let input = if i == 0 { x } else { &below[i - 1] };
            b.dense_forward(
                input,
                self.weight(i),
                self.bias(i),
                act,
                &mut acts.z[i],
                &mut rest[0],
            )?;
        }
        Ok(())
    }

    /// Backward pass by the chain rule, from the top layer down: `dz = act'(z) ⊙ da`,
    /// `dW = xᵀ·dz`, `db = Σ_rows dz`, `da_below = dz·Wᵀ`. The caller has filled the top
    /// layer's `da`, or its `dz` when `top_dz_given` (a loss computed from the logits).
    pub fn backward<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        x: &T,
        acts: &mut Activations<T>,
        top_dz_given: bool,
    ) -> Result<()> {
        let top = self.activations.len() - 1;
        for i in (0..=top).rev() {
            if !(i == top && top_dz_given) {
                b.activation_backward(
                    self.activations[i],
                    &acts.z[i],
                    &acts.a[i],
                    &acts.da[i],
                    &mut acts.dz[i],
                )?;
            }
            let input = if i == 0 { x } else { &acts.a[i - 1] };
            let (dw, db) = self.grads[2 * i..2 * i + 2].split_at_mut(1);
            b.matmul(input, true, &acts.dz[i], false, &mut dw[0])?;
            b.bias_grad(&acts.dz[i], &mut db[0])?;
            if i > 0 {
                b.matmul(
                    &acts.dz[i],
                    false,
                    &self.params[2 * i],
                    true,
                    &mut acts.da[i - 1],
                )?;
            }
        }
        Ok(())
    }

    /// Applies the gradients of the last backward pass: step `t` of `optimizer`. With a guard
    /// (the accumulator and its slots), the update reads this set of parameters and state and
    /// writes the spare one, all or nothing, decided on the device (see
    /// [`Backend::optimizer_step`]); then the sets swap, so that the spare holds the values
    /// before the update and [`Network::swap_sets`] undoes it. The spare set is made by the
    /// first guarded update. Without a guard the update is in place.
    pub fn update<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        optimizer: Optimizer,
        t: u64,
        guard: Option<(&mut T, GuardSlots)>,
    ) -> Result<()> {
        let Some((acc, slots)) = guard else {
            return b.optimizer_step_all(
                optimizer,
                t,
                &mut self.params,
                &self.grads,
                &mut self.state,
                None,
            );
        };
        if self.spare_params.is_empty() {
            self.make_spare(b, optimizer)?;
        }
        let guard = Guard {
            acc,
            slots,
            params_out: &mut self.spare_params,
            state_out: &mut self.spare_state,
        };
        b.optimizer_step_all(
            optimizer,
            t,
            &mut self.params,
            &self.grads,
            &mut self.state,
            Some(guard),
        )?;
        self.swap_sets();
        Ok(())
    }

    /// The spare set: one group per kind of value (the parameters, then each kind of state),
    /// like the set in use, holding the same values.
    fn make_spare<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        optimizer: Optimizer,
    ) -> Result<()> {
        let mut params = b.zeros_group(&self.shapes)?;
        for (spare, p) in params.iter_mut().zip(&self.params) {
            let values = b.read(p)?;
            b.write(spare, &values)?;
        }
        let mut state: Vec<Vec<T>> = self.shapes.iter().map(|_| Vec::new()).collect();
        for k in 0..optimizer.state_tensors() {
            for ((slot, mut t), s) in state
                .iter_mut()
                .zip(b.zeros_group(&self.shapes)?)
                .zip(&self.state)
            {
                let values = b.read(&s[k])?;
                b.write(&mut t, &values)?;
                slot.push(t);
            }
        }
        self.spare_params = params;
        self.spare_state = state;
        Ok(())
    }

    /// Swaps the set of parameters and state in use with the spare one: after a guarded
    /// update, undoes it. Nothing is copied.
    pub fn swap_sets(&mut self) {
        if self.spare_params.is_empty() {
            return;
        }
        std::mem::swap(&mut self.params, &mut self.spare_params);
        std::mem::swap(&mut self.state, &mut self.spare_state);
        self.swaps += 1;
    }

    /// How many times the sets have swapped (each guarded update swaps once).
    pub fn swaps(&self) -> u64 {
        self.swaps
    }

    /// Reads every layer's weights back.
    pub fn weights<B: Backend<Tensor = T>>(&self, b: &mut B) -> Result<Vec<LayerWeights>> {
        (0..self.activations.len())
            .map(|i| {
                let w = self.weight(i);
                Ok(LayerWeights {
                    fan_in: w.rows(),
                    units: w.cols(),
                    weight: b.read(w)?,
                    bias: b.read(self.bias(i))?,
                })
            })
            .collect()
    }

    /// Replaces every layer's weights; shapes must match layer by layer.
    pub fn set_weights<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        weights: &[LayerWeights],
    ) -> Result<()> {
        if weights.len() != self.activations.len() {
            return Err(Error::Config(format!(
                "{} layers of weights given for a model of {} layers",
                weights.len(),
                self.activations.len()
            )));
        }
        for (i, w) in weights.iter().enumerate() {
            let (wt, bt) = (self.weight(i), self.bias(i));
            if [w.fan_in, w.units] != wt.shape()
                || w.weight.len() != wt.len()
                || w.bias.len() != bt.len()
            {
                return Err(Error::Config(format!(
                    "layer {i}: weights of [{}, {}] (+ {} biases) given for a [{}, {}] layer",
                    w.fan_in,
                    w.units,
                    w.bias.len(),
                    wt.rows(),
                    wt.cols()
                )));
            }
        }
        for (i, w) in weights.iter().enumerate() {
            b.write(&mut self.params[2 * i], &w.weight)?;
            b.write(&mut self.params[2 * i + 1], &w.bias)?;
        }
        Ok(())
    }

    /// Reads the optimizer state back: per layer, the state tensors of the weight, then those
    /// of the bias (Adam: m, v; momentum: the velocity; SGD: none).
    pub fn optimizer_state<B: Backend<Tensor = T>>(&self, b: &mut B) -> Result<Vec<LayerState>> {
        let read = |b: &mut B, s: &[T]| s.iter().map(|t| b.read(t)).collect::<Result<Vec<_>>>();
        (0..self.activations.len())
            .map(|i| {
                Ok(LayerState {
                    weight: read(b, &self.state[2 * i])?,
                    bias: read(b, &self.state[2 * i + 1])?,
                })
            })
            .collect()
    }

    /// Replaces the optimizer state; counts and lengths must match layer by layer.
    pub fn set_optimizer_state<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        state: &[LayerState],
    ) -> Result<()> {
        if state.len() != self.activations.len() {
            return Err(Error::Config(format!(
                "optimizer state for {} layers given to a model of {} layers",
                state.len(),
                self.activations.len()
            )));
        }
        for (i, s) in state.iter().enumerate() {
            let (ws, bs) = (&self.state[2 * i], &self.state[2 * i + 1]);
            if s.weight.len() != ws.len() || s.bias.len() != bs.len() {
                return Err(Error::Config(format!(
                    "layer {i}: {} optimizer state tensors given, the optimizer keeps {}",
                    s.weight.len() + s.bias.len(),
                    ws.len() + bs.len()
                )));
            }
        }
        for (i, s) in state.iter().enumerate() {
            let (ws, bs) = self.state[2 * i..2 * i + 2].split_at_mut(1);
            for (t, values) in ws[0]
                .iter_mut()
                .zip(&s.weight)
                .chain(bs[0].iter_mut().zip(&s.bias))
            {
                b.write(t, values)?;
            }
        }
        Ok(())
    }
}
