//! Lines for the person at the terminal (progress, warnings, errors), on stderr.
//!
//! `eprintln!` panics when stderr cannot be written: `wgtrain train 2>&1 >/dev/null | head -c1`
//! closes the pipe after one byte, and the next progress line would end the run before it
//! saved anything. Nothing here is worth losing a run over, so a line that cannot be written
//! is dropped and the work goes on, as stdout's results already do.

use std::io::Write;

/// Writes `args` and a newline to stderr, ignoring any error (a closed pipe, a full disk).
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// `eprintln!` that never panics: see [`line()`].
///
/// ```
/// wgtrain::stderr_line!("epoch {} of {}", 1, 3);
/// ```
#[macro_export]
macro_rules! stderr_line {
    ($($arg:tt)*) => {
        $crate::console::line(format_args!($($arg)*))
    };
}
