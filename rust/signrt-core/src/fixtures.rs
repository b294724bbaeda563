//! Ready-made specs for tests and benches. The presets themselves live in Python
//! (`FeatureSpec.preset`); these mirror `islr118` and `hands_pose` with a chosen max_len.

use crate::spec::{FeatureSpec, Fit, Normalize};

/// Landmarks of the `islr118` preset: 40 lips, left hand, right hand, 4 nose, 16 + 16 eyes.
pub const ISLR118_LANDMARKS: [usize; 118] = [
    61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321, 375, 78,
    191, 80, 81, 82, 13, 312, 311, 310, 415, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 468,
    469, 470, 471, 472, 473, 474, 475, 476, 477, 478, 479, 480, 481, 482, 483, 484, 485, 486, 487,
    488, 522, 523, 524, 525, 526, 527, 528, 529, 530, 531, 532, 533, 534, 535, 536, 537, 538, 539,
    540, 541, 542, 1, 2, 98, 327, 33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159,
    158, 157, 173, 263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
];

/// The `islr118` preset (xy, reference_rms on 17, lags [1, 2]) with the given max_len and fit.
pub fn islr118(max_len: usize, fit: Fit) -> FeatureSpec {
    FeatureSpec::new(
        ISLR118_LANDMARKS.to_vec(),
        2,
        Normalize::ReferenceRms { reference: 17 },
        max_len,
        fit,
        vec![1, 2],
        true,
        0.0,
    )
    .expect("a valid spec")
}

/// The `hands_pose` preset (pose 489–513 and both hands, shoulders normalisation).
pub fn hands_pose(max_len: usize, fit: Fit) -> FeatureSpec {
    let landmarks: Vec<usize> = (489..514).chain(468..489).chain(522..543).collect();
    FeatureSpec::new(
        landmarks,
        2,
        Normalize::Shoulders,
        max_len,
        fit,
        vec![1, 2],
        true,
        0.0,
    )
    .expect("a valid spec")
}
