//! Trains a 64 → 64 (relu) → 10 MLP on the built-in digits set with softmax cross-entropy from
//! logits and Adam, on the best GPU adapter (or `--cpu` for the reference), and reports test
//! accuracy. The whole model is written once against the `Backend` trait: this is what the
//! training runtime will build on.
//!
//! `cargo run --release --example train_digits [-- --cpu] [-- --epochs N]`

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::time::Instant;
use wgtrain::backend::cpu::CpuBackend;
use wgtrain::backend::gpu::GpuBackend;
use wgtrain::backend::{Activation, Backend, Loss, Optimizer, Tensor};

const DIGITS: &str = include_str!("../data/digits.csv");

/// One dense layer's parameters, gradients, optimizer state and saved activations.
struct Dense<T> {
    act: Activation,
    w: T,
    b: T,
    dw: T,
    db: T,
    w_state: Vec<T>,
    b_state: Vec<T>,
}

/// Per-batch-size buffers: each layer's z, a, and the gradients flowing back.
struct Workspace<T> {
    z: Vec<T>,
    a: Vec<T>,
    dz: Vec<T>,
    da: Vec<T>,
    row_loss: T,
}

struct Mlp<T> {
    layers: Vec<Dense<T>>,
    opt: Optimizer,
    step: u64,
}

impl<T: Tensor> Mlp<T> {
    fn new<B: Backend<Tensor = T>>(
        b: &mut B,
        sizes: &[usize],
        opt: Optimizer,
        rng: &mut StdRng,
    ) -> wgtrain::Result<Self> {
        let mut layers = Vec::new();
        for (i, win) in sizes.windows(2).enumerate() {
            let (fan_in, fan_out) = (win[0], win[1]);
            // Glorot uniform: breaks the symmetry between units, keeps activations' variance.
            let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
            let w: Vec<f32> = (0..fan_in * fan_out)
                .map(|_| rng.random_range(-limit..limit))
                .collect();
            let last = i + 2 == sizes.len();
            let state = |b: &mut B, r, c| -> wgtrain::Result<Vec<T>> {
                (0..opt.state_tensors()).map(|_| b.zeros(r, c)).collect()
            };
            layers.push(Dense {
                act: if last {
                    Activation::Linear
                } else {
                    Activation::Relu
                },
                w: b.upload(fan_in, fan_out, &w)?,
                b: b.zeros(1, fan_out)?,
                dw: b.zeros(fan_in, fan_out)?,
                db: b.zeros(1, fan_out)?,
                w_state: state(b, fan_in, fan_out)?,
                b_state: state(b, 1, fan_out)?,
            });
        }
        Ok(Mlp {
            layers,
            opt,
            step: 0,
        })
    }

    fn workspace<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        rows: usize,
    ) -> wgtrain::Result<Workspace<T>> {
        let widths: Vec<usize> = self.layers.iter().map(|l| l.db.cols()).collect();
        let make = |b: &mut B| -> wgtrain::Result<Vec<T>> {
            widths.iter().map(|&w| b.zeros(rows, w)).collect()
        };
        Ok(Workspace {
            z: make(b)?,
            a: make(b)?,
            dz: make(b)?,
            da: make(b)?,
            row_loss: b.zeros(rows, 1)?,
        })
    }

    /// Forward: z = x·W + b, a = act(z), layer by layer. The logits end in `ws.a.last()`.
    fn forward<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        x: &T,
        ws: &mut Workspace<T>,
    ) -> wgtrain::Result<()> {
        for (i, l) in self.layers.iter().enumerate() {
            let (before, rest) = ws.a.split_at_mut(i);
            let input = if i == 0 { x } else { &before[i - 1] };
            b.matmul(input, false, &l.w, false, &mut ws.z[i])?;
            b.bias_add(&mut ws.z[i], &l.b)?;
            b.activation(l.act, &ws.z[i], &mut rest[0])?;
        }
        Ok(())
    }

    /// Forward, loss, backward (the chain rule, layer by layer from the top) and update.
    fn train_step<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        x: &T,
        y: &T,
        ws: &mut Workspace<T>,
        acc: &mut T,
    ) -> wgtrain::Result<()> {
        self.forward(b, x, ws)?;
        let top = self.layers.len() - 1;
        b.loss(
            Loss::SparseSoftmaxCrossEntropy,
            &ws.a[top],
            y,
            &mut ws.da[top],
            &mut ws.row_loss,
        )?;
        b.sum_into(&ws.row_loss, acc, 0)?;
        b.argmax_correct_into(&ws.a[top], y, acc, 1)?;
        self.step += 1;
        for i in (0..=top).rev() {
            let l = &mut self.layers[i];
            b.activation_backward(l.act, &ws.z[i], &ws.a[i], &ws.da[i], &mut ws.dz[i])?;
            let input = if i == 0 { x } else { &ws.a[i - 1] };
            b.matmul(input, true, &ws.dz[i], false, &mut l.dw)?;
            b.bias_grad(&ws.dz[i], &mut l.db)?;
            if i > 0 {
                b.matmul(&ws.dz[i], false, &l.w, true, &mut ws.da[i - 1])?;
            }
            b.optimizer_step(self.opt, self.step, &mut l.w, &l.dw, &mut l.w_state, None)?;
            b.optimizer_step(self.opt, self.step, &mut l.b, &l.db, &mut l.b_state, None)?;
        }
        Ok(())
    }
}

fn run<B: Backend>(b: &mut B, epochs: usize) -> wgtrain::Result<()> {
    // The data: features scaled from 0..16 to [0, 1], a fixed-seed 80/20 split.
    let rows: Vec<Vec<f32>> = DIGITS
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .map(|v| v.parse().expect("the built-in digits file is numeric"))
                .collect()
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(42);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.shuffle(&mut rng);
    let n_test = rows.len() / 5;
    let (test_idx, train_idx) = order.split_at(n_test);
    let gather = |idx: &[usize]| -> (Vec<f32>, Vec<f32>) {
        let x = idx
            .iter()
            .flat_map(|&i| rows[i][..64].iter().map(|v| v / 16.0))
            .collect();
        let y = idx.iter().map(|&i| rows[i][64]).collect();
        (x, y)
    };

    let batch = 32;
    let mut model = Mlp::new(b, &[64, 64, 10], Optimizer::adam(1e-3), &mut rng)?;
    let mut ws = model.workspace(b, batch)?;
    let mut xb = b.zeros(batch, 64)?;
    let mut yb = b.zeros(batch, 1)?;
    let mut acc = b.zeros(1, 2)?;
    let mut train_order = train_idx.to_vec();
    let steps = train_order.len() / batch;
    let start = Instant::now();
    for epoch in 1..=epochs {
        train_order.shuffle(&mut rng);
        b.fill(&mut acc, 0.0)?;
        for s in 0..steps {
            let (x, y) = gather(&train_order[s * batch..(s + 1) * batch]);
            b.write(&mut xb, &x)?;
            b.write(&mut yb, &y)?;
            model.train_step(b, &xb, &yb, &mut ws, &mut acc)?;
        }
        // The one read of the epoch: loss sum and correct count accumulated on the device.
        let sums = b.read(&acc)?;
        let seen = (steps * batch) as f32;
        println!(
            "epoch {epoch:>2}: loss {:.4}  accuracy {:.4}",
            sums[0] / seen,
            sums[1] / seen
        );
    }
    let secs = start.elapsed().as_secs_f64();

    let (xt, yt) = gather(test_idx);
    let mut test_ws = model.workspace(b, n_test)?;
    let xt = b.upload(n_test, 64, &xt)?;
    let yt = b.upload(n_test, 1, &yt)?;
    model.forward(b, &xt, &mut test_ws)?;
    b.fill(&mut acc, 0.0)?;
    b.argmax_correct_into(
        test_ws.a.last().expect("the model has layers"),
        &yt,
        &mut acc,
        1,
    )?;
    let correct = b.read(&acc)?[1];
    println!(
        "test accuracy {:.4} on {n_test} held-out digits; {:.0} samples/s over {epochs} epochs on {}",
        correct / n_test as f32,
        (steps * batch * epochs) as f64 / secs,
        b.describe()
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let epochs = args
        .iter()
        .position(|a| a == "--epochs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(20);
    let result = if args.iter().any(|a| a == "--cpu") {
        run(&mut CpuBackend::new(), epochs)
    } else {
        GpuBackend::new().and_then(|mut g| run(&mut g, epochs))
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
