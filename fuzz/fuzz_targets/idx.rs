//! Any bytes as an IDX file (raw or gzip): an error or an array whose size matches its
//! dimensions, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgtrain::data::idx::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = parse(data, "fuzz") {
        assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
    }
});
