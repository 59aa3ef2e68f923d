//! `wgtrain summary`: a saved model's layers, output shapes and parameter counts, as Keras'
//! `model.summary()` prints them (or as JSON). Reads the checkpoint only; no backend.

use std::path::PathBuf;

use wgtrain::checkpoint::Checkpoint;
use wgtrain::nn::Summary;
use wgtrain::Result;

use super::args::about;

/// `wgtrain summary` flags.
#[derive(clap::Args)]
pub(crate) struct SummaryArgs {
    /// A checkpoint written by `wgtrain train --save`.
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// Print JSON (`total_params`, `trainable_params`, `non_trainable_params`, `layers`).
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn summary(args: &SummaryArgs) -> Result<()> {
    let ckpt = Checkpoint::load(&args.model).map_err(|e| about("--model", &args.model, e))?;
    let s = Summary::of(&ckpt.config.sequential(), ckpt.config.input_dim);
    if args.json {
        let json = serde_json::to_string(&s).map_err(|e| wgtrain::Error::Config(e.to_string()))?;
        outln!("{json}");
    } else {
        outln!(
            "Model: {}, inputs of {} features",
            args.model.display(),
            s.input_width
        );
        outln!("{s}");
    }
    Ok(())
}
