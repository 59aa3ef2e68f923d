//! The first lecture of the course: McCulloch–Pitts threshold units for AND, OR, NOR and NOT,
//! the search that finds no unit for XOR, and the perceptron rule `w ← w + η (y − ŷ) x`
//! converging on AND and OR and failing on XOR. It runs on the host, in milliseconds.
//!
//! `cargo run --release --example perceptron`

use wgtrain::nn::perceptron::{all_inputs, Perceptron, ThresholdUnit};

/// A boolean function of the inputs.
type BoolFn = dyn Fn(&[bool]) -> bool;

fn table(unit: &ThresholdUnit) -> String {
    all_inputs(unit.inputs())
        .map(|x| {
            let bits: String = x.iter().map(|&b| if b { '1' } else { '0' }).collect();
            format!("{bits}→{}", unit.fire(&x) as u8)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> wgtrain::Result<()> {
    println!(
        "McCulloch–Pitts units (inhibitory inputs veto; fire when ≥ θ excitatory inputs are on):"
    );
    for (name, unit) in [
        ("AND, θ = n = 2", ThresholdUnit::and(2)),
        ("OR,  θ = 1    ", ThresholdUnit::or(2)),
        ("NOR, inhibitory, θ = 0", ThresholdUnit::nor(2)),
        ("NOT, inhibitory, θ = 0", ThresholdUnit::not()),
    ] {
        println!("  {name}: {}", table(&unit));
    }
    let xor = |x: &[bool]| x[0] ^ x[1];
    let searched = (1 << 2) * (2 + 2); // inhibitory masks × thresholds 0..=3
    println!(
        "XOR: of the {searched} units of 2 inputs (each input excitatory or inhibitory, θ = 0..3), {} realise it",
        ThresholdUnit::search(2, xor).len()
    );

    println!("\nThe perceptron rule w ← w + η (y − ŷ) x, η = 0.1, from zero weights:");
    let data = |f: &BoolFn| -> (Vec<Vec<f64>>, Vec<f64>) {
        all_inputs(2)
            .map(|x| {
                (
                    x.iter().map(|&b| b as u8 as f64).collect(),
                    f(&x) as u8 as f64,
                )
            })
            .unzip()
    };
    let cases: [(&str, &BoolFn); 3] = [
        ("AND", &|x| x[0] && x[1]),
        ("OR", &|x| x[0] || x[1]),
        ("XOR", &xor),
    ];
    for (name, f) in cases {
        let (x, y) = data(f);
        let mut p = Perceptron::new(2);
        let fit = p.train(&x, &y, 0.1, 100)?;
        match fit.converged_after {
            Some(e) => println!(
                "  {name}: converged after {e} epochs (mistakes per epoch {:?}); w = {:.2?}, b = {:.2}",
                fit.errors, p.weights, p.bias
            ),
            None => println!(
                "  {name}: did not converge in {} epochs (still {} mistakes in the last): no line separates it",
                fit.epochs,
                fit.errors.last().unwrap_or(&0)
            ),
        }
    }
    println!("\nA hidden layer solves XOR: cargo run --release --example xor");
    Ok(())
}
