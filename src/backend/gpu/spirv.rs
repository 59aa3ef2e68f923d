//! The matmul kernels' SPIR-V, counted: each variant's entry point compiled by naga as wgpu
//! compiles it, with the bounds checks wgpu adds by default (`Restrict` on every index and
//! buffer access, and loops bounded against non-termination) and without them (what a
//! trusted module gets). `cargo test --lib spirv -- --nocapture` prints the table
//! (docs/PERFORMANCE.md).

use std::collections::HashMap;

use naga::back::spv;
use naga::proc::{BoundsCheckPolicies, BoundsCheckPolicy};

use super::kernels::Kernel;
use super::tiles::MatmulTiles;

/// Instructions in the SPIR-V of `kernel` with `constants`, with or without bounds checks.
fn instructions(kernel: Kernel, constants: &[(&str, f64)], checked: bool) -> usize {
    let module = naga::front::wgsl::parse_str(kernel.module.source()).expect("the WGSL parses");
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    );
    let info = validator.validate(&module).expect("the module validates");
    let constants: naga::back::PipelineConstants =
        constants.iter().map(|&(k, v)| (k.to_string(), v)).collect();
    let (module, info) = naga::back::pipeline_constants::process_overrides(
        &module,
        &info,
        Some((naga::ShaderStage::Compute, kernel.entry)),
        &constants,
    )
    .expect("the overrides resolve");
    let policy = if checked {
        BoundsCheckPolicy::Restrict
    } else {
        BoundsCheckPolicy::Unchecked
    };
    let options = spv::Options {
        bounds_check_policies: BoundsCheckPolicies {
            index: policy,
            buffer: policy,
            image_load: policy,
            binding_array: BoundsCheckPolicy::Unchecked,
        },
        force_loop_bounding: checked,
        ..spv::Options::default()
    };
    let pipeline = spv::PipelineOptions {
        shader_stage: naga::ShaderStage::Compute,
        entry_point: kernel.entry.to_string(),
    };
    let words = spv::write_vec(&module, &info, &options, Some(&pipeline)).expect("SPIR-V");
    // After the 5-word header, each instruction's first word holds its length in words.
    let mut at = 5;
    let mut count = 0;
    while at < words.len() {
        at += (words[at] >> 16).max(1) as usize;
        count += 1;
    }
    count
}

/// A kernel under a name, with its pipeline constants.
type Variant = (String, Kernel, Vec<(&'static str, f64)>);

/// The variants as the autotune builds them for the forward product (no transposes), and
/// v6 also as it runs whole blocks.
fn variants() -> Vec<Variant> {
    let mut v = Vec::new();
    for tiles in [
        MatmulTiles::TILED,
        MatmulTiles::DIRECT,
        MatmulTiles::VEC4,
        MatmulTiles::SUBGROUP,
        MatmulTiles::SUBGROUP16,
        MatmulTiles::TILED8,
    ] {
        let partial = [1, 1, 1];
        let c = tiles.constants(false, false, partial).to_wgpu();
        v.push((format!("{:?}", tiles.variant), tiles.variant.kernel(), c));
    }
    let whole = MatmulTiles::TILED8.constants(false, false, [128, 128, 8]);
    v.push((
        "Tiled8, whole blocks (FULL)".into(),
        MatmulTiles::TILED8.variant.kernel(),
        whole.to_wgpu(),
    ));
    v
}

#[test]
fn spirv_instruction_counts() {
    println!("| variant | with bounds checks | without |\n|---|---:|---:|");
    let mut counts = HashMap::new();
    for (name, kernel, constants) in variants() {
        let (with, without) = (
            instructions(kernel, &constants, true),
            instructions(kernel, &constants, false),
        );
        println!("| {name} (`{}`) | {with} | {without} |", kernel.entry);
        assert!(without < with, "{name}: the checks add instructions");
        counts.insert(name, (with, without));
    }
    // naga substitutes FULL but folds no branch on it (the driver's compiler does, at
    // pipeline creation): the SPIR-V is the same size either way.
    assert_eq!(counts["Tiled8, whole blocks (FULL)"], counts["Tiled8"]);
}
