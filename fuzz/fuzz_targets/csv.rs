//! Any bytes as a CSV dataset: an error or a well-formed table, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgtrain::data::csv::{parse, LabelColumn};

fuzz_target!(|data: &[u8]| {
    for label in [LabelColumn::Last, LabelColumn::Index(1), LabelColumn::Name("label".into()), LabelColumn::None] {
        if let Ok(d) = parse(data, "fuzz", &label) {
            assert_eq!(d.x.rows(), d.y.rows());
            assert!(d.x.data().iter().chain(d.y.data()).all(|v| v.is_finite()));
        }
    }
});
