//! signrt-core: the preprocessing core of signrt (pure Rust, no Python).
//!
//! * [`FeatureSpec`]: the JSON preprocessing contract (DESIGN §3): its one implementation
//!   (validation, JSON forms, fingerprint, presets), of which `signrt.FeatureSpec` is a view.
//! * [`preprocess`] / [`preprocess_batch`]: a clip (a (T, 543, 3) view of any strides) →
//!   features (max_len × F) and mask (max_len), many clips in parallel with rayon.
//! * [`Stream`]: a sliding window of the last max_len frames with O(P·C) `push`.
//! * [`live`]: the per-frame decisions of a live stream ([`WindowDecider`],
//!   [`SegmentDecider`]): when to classify, and which sign events to emit.
//!
//! Non-finite input values (NaN, ±inf) are missing landmarks; the output is always finite.

#![warn(missing_docs)]
// Numeric loops index several parallel arrays by channel; iterator chains read worse.
#![allow(clippy::needless_range_loop)]

pub mod alloc;
pub mod doc;
pub mod error;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod live;
pub mod preprocess;
pub mod scores;
#[cfg(target_arch = "x86_64")]
mod simd;
pub mod spec;
pub mod stream;

pub use doc::Doc;
pub use error::{Error, Result};
pub use live::{
    Clock, Emit, MotionUnit, ScoreKind, SegmentDecider, SegmentSettings, SegmentView,
    WindowDecider, WindowSettings,
};
pub use ndarray;
pub use preprocess::{
    preprocess, preprocess_batch, preprocess_batch_into, preprocess_into, preprocess_with_scratch,
    ClipRef, Isa, Sample, Scratch,
};
pub use scores::softmax_topk;
pub use spec::{
    FeatureSpec, Fit, Normalize, FRAME_LEN, MAX_LAGS, MAX_LEN_LIMIT, MAX_VALUES_PER_CLIP,
    NUM_COORDS, NUM_LANDMARKS, PRESETS,
};
pub use stream::{FrameRef, Stream};

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
