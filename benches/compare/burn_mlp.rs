//! MLP-A / MLP-B / CNN-A of BENCHMARKS.md on Burn 0.22.1's wgpu backend, for side-by-side
//! runs with `wgtrain bench`. Not part of wgtrain's build: copy it into a scratch project
//! outside the repository, as `src/main.rs` of a binary crate whose Cargo.toml depends on
//!
//!     burn = { version = "=0.22.1", features = ["wgpu", "autodiff"] }
//!
//! then `cargo build --release` (about 25 minutes on 2 cores) and run
//! `target/release/<name> MLP-A` (or `MLP-B`, `CNN-A`). Same data (checked against
//! BENCHMARKS.md's values), network, loss, Adam settings and batch size; 10 warm-up steps,
//! three timed epochs (a second argument sets how many: CNN-A takes a quarter of an hour an
//! epoch on lavapipe), the median printed as JSON with the time from process start. Burn's
//! layers start from their own init and the loss it prints is the last batch's, not the
//! epoch mean. CNN-A reads each row as a 28×28 one-channel image (channels first, as Burn
//! has it: the same bytes, since one channel), convolutions 3×3 valid with bias, max
//! pooling 2×2.
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::time::Instant;

/// Convolutions (each followed by ReLU and 2×2 max pooling; none for the MLPs), then the dense
/// layers with ReLU between them.
#[derive(Module, Debug)]
struct Mlp {
    convs: Vec<Conv2d>,
    pool: MaxPool2d,
    layers: Vec<Linear>,
}

impl Mlp {
    fn new(channels: &[usize], dims: &[usize], device: &Device) -> Self {
        let convs = channels
            .windows(2)
            .map(|c| Conv2dConfig::new([c[0], c[1]], [3, 3]).init(device))
            .collect();
        let layers = dims
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        let pool = MaxPool2dConfig::new([2, 2]).init();
        Self { convs, pool, layers }
    }
    fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        if !self.convs.is_empty() {
            let batch = x.dims()[0];
            let mut image: Tensor<4> = x.reshape([batch, 1, 28, 28]);
            for c in &self.convs {
                image = self.pool.forward(relu(c.forward(image)));
            }
            x = image.flatten(1, 3);
        }
        let n = self.layers.len();
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(x);
            if i + 1 < n {
                x = relu(x);
            }
        }
        x
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

fn data() -> (Vec<f32>, Vec<i64>) {
    let (rows, cols) = (16384usize, 784usize);
    let mut x = vec![0f32; rows * cols];
    let mut y = vec![0i64; rows];
    for r in 0..rows {
        let mut sums = [0u64; 10];
        for c in 0..cols {
            let k = (r * cols + c) as u64;
            let m = mix(42u64.wrapping_add((k + 1).wrapping_mul(0x9E3779B97F4A7C15))) >> 40;
            x[r * cols + c] = m as f32 / (1u64 << 24) as f32;
            if c < 780 {
                sums[c / 78] += m;
            }
        }
        let mut best = 0;
        for g in 1..10 {
            if sums[g] > sums[best] {
                best = g;
            }
        }
        y[r] = best as i64;
    }
    (x, y)
}

fn main() {
    let start = Instant::now();
    let which = std::env::args().nth(1).unwrap_or_else(|| "MLP-A".into());
    let epochs: usize = std::env::args()
        .nth(2)
        .map(|e| e.parse().expect("the timed epochs, a number"))
        .unwrap_or(3);
    let (channels, dims, batch): (Vec<usize>, Vec<usize>, usize) = match which.as_str() {
        "MLP-A" => (vec![], vec![784, 512, 512, 10], 128),
        "MLP-B" => (vec![], vec![784, 128, 10], 64),
        "CNN-A" => (vec![1, 32, 64], vec![1600, 128, 10], 128),
        w => panic!("unknown workload {w}"),
    };
    let (x, y) = data();
    assert!((x[0] - 0.74156487).abs() < 1e-7 && y[..10] == [3, 3, 3, 7, 7, 1, 2, 9, 7, 7]);
    let device = Device::wgpu(Default::default()).autodiff();
    let steps = 16384 / batch;
    let batches: Vec<(Tensor<2>, Tensor<1, Int>)> = (0..steps)
        .map(|s| {
            let xs = x[s * batch * 784..(s + 1) * batch * 784].to_vec();
            let ys = y[s * batch..(s + 1) * batch].to_vec();
            (
                Tensor::from_data(TensorData::new(xs, [batch, 784]), &device),
                Tensor::from_data(TensorData::new(ys, [batch]), &device),
            )
        })
        .collect();
    let mut model: Mlp = Mlp::new(&channels, &dims, &device);
    let mut optim = AdamConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut step = |model: Mlp, s: usize| -> (Mlp, Tensor<1>) {
        let (xb, yb) = &batches[s % steps];
        let logits = model.forward(xb.clone());
        let loss = loss_fn.forward(logits, yb.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optim.step(1e-3, model, grads);
        (model, loss)
    };
    let mut first = true;
    for s in 0..10 {
        let (m, loss) = step(model, s);
        model = m;
        if first {
            let _: f32 = loss.clone().into_scalar();
            eprintln!("first step done {:.2} s after start", start.elapsed().as_secs_f64());
            first = false;
        }
        if s == 9 {
            let _: f32 = loss.into_scalar();
        }
    }
    eprintln!("warm-up done {:.2} s after start", start.elapsed().as_secs_f64());
    let mut rates = vec![];
    let mut last = 0.0f32;
    for rep in 0..epochs {
        let t = Instant::now();
        let mut loss_t = None;
        for s in 0..steps {
            let (m, loss) = step(model, s);
            model = m;
            loss_t = Some(loss);
        }
        last = loss_t.unwrap().into_scalar::<f32>();
        let secs = t.elapsed().as_secs_f64();
        rates.push(16384.0 / secs);
        eprintln!("{which} epoch {rep}: {:.1} samples/s, loss {last:.4}", 16384.0 / secs);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{{\"peer\":\"burn 0.22.1 wgpu\",\"workload\":\"{which}\",\"samples_per_sec\":{:.1},\"final_loss\":{last:.4},\"total_s\":{:.1}}}",
        rates[rates.len() / 2],
        start.elapsed().as_secs_f64()
    );
}
