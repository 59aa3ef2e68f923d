//! The learning curves: every logged value per epoch, for training and validation.

use serde::Serialize;

/// One epoch's logs, in order: `loss`, the metrics, then `val_loss` and `val_` metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Logs {
    entries: Vec<(String, f64)>,
}

impl Logs {
    /// Appends a value.
    pub fn push(&mut self, name: impl Into<String>, value: f64) {
        self.entries.push((name.into(), value));
    }

    /// A value by name (`"loss"`, `"val_accuracy"`, ...).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
    }

    /// Every (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), *v))
    }

    /// The names, comma separated (for error messages).
    pub fn names(&self) -> String {
        self.entries
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What `fit` returns: per epoch, every logged value and the learning rate in force.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct History {
    /// The epochs run, numbered from 1.
    pub epochs: Vec<usize>,
    /// Each series by name (`loss`, `accuracy`, `val_loss`, ...), one value per epoch, in the
    /// order they were first logged.
    pub series: Vec<(String, Vec<f64>)>,
    /// The learning rate used in each epoch.
    pub learning_rate: Vec<f64>,
    /// Why training stopped before its last epoch, if it did.
    pub stopped_early: Option<String>,
    /// Whether it stopped because it diverged, and what it kept.
    pub diverged: Option<Divergence>,
}

/// A run that stopped because its loss or its weights stopped being finite (TerminateOnNaN),
/// and the weights it went back to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Divergence {
    /// The epoch (from 1) it happened in.
    pub epoch: usize,
    /// What was not finite: the loss, an update's result, or the validation loss.
    pub cause: String,
    /// The optimizer step whose weights the model holds now (0: the weights it started from):
    /// the last whose loss was finite.
    pub step: u64,
}

impl History {
    /// Records one epoch.
    pub fn push(&mut self, epoch: usize, logs: &Logs, learning_rate: f32) {
        self.epochs.push(epoch);
        self.learning_rate.push(learning_rate as f64);
        for (name, value) in logs.iter() {
            match self.series.iter_mut().find(|(n, _)| n == name) {
                Some((_, values)) => values.push(value),
                None => self.series.push((name.to_string(), vec![value])),
            }
        }
    }

    /// A series by name.
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.series
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The last value of a series.
    pub fn last(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(|v| v.last().copied())
    }
}

impl History {
    /// One row per epoch: `epoch`, every series, `learning_rate`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("epoch");
        for (name, _) in &self.series {
            out += &format!(",{name}");
        }
        out += ",learning_rate\n";
        for (i, epoch) in self.epochs.iter().enumerate() {
            out += &epoch.to_string();
            for (_, values) in &self.series {
                out += &values.get(i).map_or(String::new(), |v| format!(",{v}"));
            }
            out += &format!(",{}\n", self.learning_rate[i]);
        }
        out
    }

    /// The whole history as a JSON object: `{"epochs": [...], "series": {"loss": [...], ...},
    /// "learning_rate": [...], "stopped_early": ...}`.
    pub fn to_json(&self) -> String {
        let series: serde_json::Map<String, serde_json::Value> = self
            .series
            .iter()
            .map(|(n, v)| (n.clone(), serde_json::json!(v)))
            .collect();
        serde_json::json!({
            "epochs": self.epochs,
            "series": series,
            "learning_rate": self.learning_rate,
            "stopped_early": self.stopped_early,
            "diverged": self.diverged,
        })
        .to_string()
    }
}
