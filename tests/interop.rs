//! scripts/interop.py: wgtrain checkpoints opened in Python with `safetensors` and `numpy`,
//! and PyTorch-layout weights loaded into wgtrain, both checked to 1e-5.
//!
//! Needs python3 with the `safetensors` and `numpy` packages; CI installs them and sets
//! `WGTRAIN_REQUIRE_INTEROP=1`, which turns a missing Python into a failure. Where `torch` is
//! importable the script also moves models between wgtrain and `nn.Sequential` both ways (a
//! checkpoint into `nn.Linear` layers; a `safetensors.torch` state_dict read by `wgtrain
//! predict`); it says when it ran without torch, and `WGTRAIN_REQUIRE_TORCH=1` (CI) makes that
//! a failure.

use std::process::Command;

#[test]
fn python_reads_wgtrain_checkpoints_and_wgtrain_reads_pytorch_layout_weights() {
    let required = std::env::var("WGTRAIN_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    let probe = Command::new("python3")
        .args(["-c", "import safetensors, numpy"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let why = match probe {
            Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => e.to_string(),
        };
        assert!(
            !required,
            "WGTRAIN_REQUIRE_INTEROP=1 but python3 cannot import safetensors and numpy: {why}"
        );
        eprintln!("skipped: python3 with safetensors and numpy is not available ({why})");
        return;
    }
    let work = std::env::temp_dir().join(format!("wgtrain-interop-{}", std::process::id()));
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/interop.py"))
        .arg(env!("CARGO_BIN_EXE_wgtrain"))
        .arg(&work)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&work).ok();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("interop OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Whether PyTorch itself took part, said plainly; CI installs it and requires it.
    let torch_ran = text.contains("the PyTorch checks ran");
    for line in text.lines().filter(|l| l.starts_with("torch")) {
        eprintln!("{line}");
    }
    let torch_required = std::env::var("WGTRAIN_REQUIRE_TORCH").is_ok_and(|v| v == "1");
    assert!(
        torch_ran || !torch_required,
        "WGTRAIN_REQUIRE_TORCH=1 but the PyTorch checks did not run:\n{text}"
    );
}
