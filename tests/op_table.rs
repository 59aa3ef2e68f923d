//! The one table in src/backend/ops.rs and the constants in the shaders must agree: each
//! activation's and loss's code must be the WGSL constant of the same name.

use wgtrain::backend::{Activation, Loss, PointError, AUC_THRESHOLDS};

fn wgsl_const(source: &str, name: &str) -> Option<u32> {
    let prefix = format!("const {name}: u32 = ");
    source.lines().find_map(|l| {
        l.trim()
            .strip_prefix(&prefix)?
            .strip_suffix("u;")?
            .parse()
            .ok()
    })
}

#[test]
fn activation_codes_match_the_shader() {
    let src = include_str!("../shaders/act_math.wgsl");
    for act in Activation::ALL {
        let name = format!("ACT_{}", act.name().to_uppercase());
        assert_eq!(
            wgsl_const(src, &name),
            Some(act.code()),
            "{name} in act_math.wgsl"
        );
    }
}

#[test]
fn loss_codes_match_the_shader() {
    let src = include_str!("../shaders/loss.wgsl");
    for loss in Loss::ALL {
        let name = format!("LOSS_{}", loss.name().to_uppercase());
        assert_eq!(
            wgsl_const(src, &name),
            Some(loss.code()),
            "{name} in loss.wgsl"
        );
    }
}

#[test]
fn metric_codes_match_the_shader() {
    let src = include_str!("../shaders/reduce.wgsl");
    for kind in PointError::ALL {
        let name = format!("ERR_{}", kind.name().to_uppercase());
        assert_eq!(
            wgsl_const(src, &name),
            Some(kind.code()),
            "{name} in reduce.wgsl"
        );
    }
    assert_eq!(
        wgsl_const(src, "AUC_THRESHOLDS"),
        Some(AUC_THRESHOLDS as u32)
    );
}

#[test]
fn names_round_trip_and_unknown_names_list_the_valid_ones() {
    for act in Activation::ALL {
        assert_eq!(Activation::from_name(act.name()).unwrap(), act);
    }
    let err = Activation::from_name("relu6").unwrap_err().to_string();
    assert!(
        err.contains("relu6") && err.contains("leaky_relu") && err.contains("gelu_tanh"),
        "{err}"
    );
}
