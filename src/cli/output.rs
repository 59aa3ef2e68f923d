//! Results on stdout, through one writer that treats a closed pipe as the end.

use wgtrain::{Error, Result};

/// Writes results to stdout. A reader that goes away early (`wgtrain predict ... | head`) is
/// not an error: whatever it wanted, it has; the rest is dropped rather than panicking.
pub(crate) fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            path: "standard output".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}
