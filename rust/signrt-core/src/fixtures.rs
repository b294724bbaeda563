//! Ready-made specs for the core's own tests and benches (cargo feature `fixtures`; not
//! part of the public API): the presets with a chosen max_len and fit.

use crate::spec::{FeatureSpec, Fit};

fn preset_with(name: &str, max_len: usize, fit: Fit) -> FeatureSpec {
    let p = FeatureSpec::preset(name).expect("a preset");
    FeatureSpec::new(
        p.landmarks().to_vec(),
        p.coords(),
        p.normalize(),
        max_len,
        fit,
        p.motion_lags()
            .iter()
            .copied()
            .filter(|&k| k < max_len)
            .collect(),
        p.drop_empty_frames(),
        p.nan_fill(),
    )
    .expect("a valid spec")
}

/// The `islr118` preset (xy, reference_rms on 17, lags [1, 2]) with the given max_len and fit.
pub fn islr118(max_len: usize, fit: Fit) -> FeatureSpec {
    preset_with("islr118", max_len, fit)
}

/// The `hands_pose` preset (pose 489–513 and both hands, shoulders normalisation).
pub fn hands_pose(max_len: usize, fit: Fit) -> FeatureSpec {
    preset_with("hands_pose", max_len, fit)
}
