//! # wgtrain
//!
//! Neural-network training on any GPU that wgpu reaches (Vulkan, Metal, DX12), with every
//! kernel written in WGSL and held to a plain CPU reference.
//!
//! The layers, from the bottom up:
//! - [`backend::ops`]: one definition per op (activations, losses, optimizers);
//! - [`backend::reference`]: the reference implementation, the specification;
//! - [`backend::gpu`]: the wgpu backend, which records a step's work and submits it at once;
//! - [`backend::Backend`]: the trait the training code is written against, once;
//! - [`nn`]: layers, initializers, losses, and the network math over any backend;
//! - [`metrics`]: the Keras metrics and how each is summed on the device;
//! - [`train`]: compiled models with `fit`, `evaluate`, `predict`, metrics and callbacks;
//! - [`data`]: datasets in host memory;
//! - [`dist`]: data-parallel runs: the ranks, their slices of each batch, what they exchange.
//!
//! ```
//! use wgtrain::backend::{reference::ReferenceBackend, Backend, Activation};
//!
//! # fn main() -> wgtrain::Result<()> {
//! let mut b = ReferenceBackend::new();
//! let x = b.upload(1, 3, &[-1.0, 0.0, 2.0])?;
//! let mut y = b.zeros(1, 3)?;
//! b.activation(Activation::Relu, &x, &mut y)?;
//! assert_eq!(b.read(&y)?, vec![0.0, 0.0, 2.0]);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod console;
pub mod data;
pub mod dist;
pub mod error;
pub mod fs;
pub mod host;
pub mod metrics;
pub mod nn;
pub mod tolerance;
pub mod torch;
pub mod train;

pub use error::{Error, Result};

/// The README's Rust example runs as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
