//! Errors: what went wrong, where, and what to do about it.

use thiserror::Error;

/// Everything in wgtrain that can fail returns this.
#[derive(Debug, Error)]
pub enum Error {
    /// No GPU adapter could be found or none matched `WGTRAIN_ADAPTER`.
    #[error(
        "no usable GPU adapter{wanted}; adapters found: {found}.\n\
         To get one on a machine without a GPU, install Mesa's software Vulkan driver \
         (Debian/Ubuntu: `apt-get install -y mesa-vulkan-drivers libvulkan1`), \
         or unset WGTRAIN_ADAPTER / WGPU_BACKEND if they exclude the adapter you have."
    )]
    NoAdapter {
        /// " matching WGTRAIN_ADAPTER=..." when a filter was set, else empty.
        wanted: String,
        /// The adapters that were found, described, or "none".
        found: String,
    },

    /// The process-wide GPU context failed to build earlier; the same reason holds now.
    #[error("no GPU context in this process: {0}")]
    GpuUnavailable(String),

    /// The adapter refused to create a device.
    #[error("the adapter {adapter} refused to create a device: {reason}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's message.
        reason: String,
    },

    /// The device was lost (driver reset, GPU removed, out of memory).
    #[error(
        "the GPU device was lost: {0}. Recreate the backend to continue; the data on it is gone"
    )]
    DeviceLost(String),

    /// wgpu reported a validation or out-of-memory error for recorded work.
    #[error("the GPU rejected the work recorded for `{op}`: {message}")]
    Gpu {
        /// The last op recorded before the error surfaced.
        op: String,
        /// wgpu's message.
        message: String,
    },

    /// A tensor does not fit in one storage binding on this adapter.
    #[error(
        "tensor `{tensor}` needs {bytes} bytes, more than this adapter's {limit_name} ({limit} bytes). \
         Use a smaller batch or layer, or an adapter with a larger limit"
    )]
    TensorTooLarge {
        /// Which tensor, with its shape.
        tensor: String,
        /// Bytes it needs.
        bytes: u64,
        /// The wgpu limit's name.
        limit_name: &'static str,
        /// The limit's value on this adapter.
        limit: u64,
    },

    /// An op was called with tensors whose shapes do not fit together.
    #[error("shape mismatch in {op}: {detail}")]
    Shape {
        /// The op.
        op: &'static str,
        /// What did not fit, with the shapes.
        detail: String,
    },

    /// A data file or in-memory dataset is not usable: what, where, and how to fix it.
    #[error("{source_name}: {detail}")]
    Data {
        /// The file, or a description of the in-memory data.
        source_name: String,
        /// What is wrong, with the row and column where there is one.
        detail: String,
    },

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// A model or training configuration that cannot work, with what to do instead.
    #[error("{0}")]
    Config(String),

    /// An op was given an argument it cannot use (a zero dimension, a bad hyper-parameter).
    #[error("invalid argument to {op}: {detail}")]
    Invalid {
        /// The op.
        op: &'static str,
        /// What was wrong and what is allowed.
        detail: String,
    },
}

/// `Result` with wgtrain's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The most characters of a value a message quotes.
pub const QUOTE_MAX: usize = 80;

/// `text` as a message quotes it: control characters escaped, and cut to about
/// [`QUOTE_MAX`] characters (with the full length said) so that a 300 MB cell never makes a
/// 300 MB message.
///
/// ```
/// use wgtrain::error::quote;
/// assert_eq!(quote("four"), "four");
/// assert_eq!(quote("a\tb"), "a\\tb");
/// let long = quote(&"x".repeat(1000));
/// assert!(long.len() < 100 && long.ends_with("(1000 characters)"), "{long}");
/// ```
pub fn quote(text: &str) -> String {
    let escape = |s: &str| -> String {
        s.chars()
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                escaped
            })
            .collect()
    };
    let count = text.chars().count();
    if count <= QUOTE_MAX {
        return escape(text);
    }
    let head: String = text.chars().take(QUOTE_MAX - 20).collect();
    format!("{}… ({count} characters)", escape(&head))
}
