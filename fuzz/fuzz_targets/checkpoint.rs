//! Any bytes as a checkpoint: an error, or a checkpoint that serializes and parses back to
//! itself; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgtrain::checkpoint::Checkpoint;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Checkpoint::from_bytes(data, "fuzz") {
        let bytes = c.to_bytes().expect("a parsed checkpoint serializes");
        assert_eq!(Checkpoint::from_bytes(&bytes, "again").expect("and parses back"), c);
    }
});
