//! The per-frame decisions of a live stream: when to classify, and what to emit.
//!
//! Two state machines, one per mode of `signrt.Stream` (DESIGN §6), run every frame without
//! an engine call; the caller runs the classifier only when a `push` returns `true`, then
//! hands the top-1 back with `decide`:
//!
//! * [`WindowDecider`] (window mode): the last W = max_len frames in a [`Stream`] window;
//!   every `stride` frames with a signer (a visible hand, with `require_hand`), once
//!   `min_frames` such frames are in the window, the window is ready to classify; a label
//!   whose score is ≥ `threshold` in `confirm` consecutive classifications is emitted once,
//!   unless the same label was emitted less than `cooldown` seconds before.
//! * [`SegmentDecider`] (segment mode): activity detection. A frame is active when a hand
//!   is visible and its centre moved more than `motion_threshold` since the previous frame,
//!   in shoulder widths (the distance of pose landmarks 11 and 12, or of the last frame that
//!   showed both; [`MotionUnit::Shoulder`]) or in image units. An active frame opens a
//!   segment; `rest_frames` inactive frames in a row close it; the segment without them is
//!   ready to classify if it has at least `min_frames` frames, and emitted if its score is
//!   ≥ `threshold`. A segment reaching `max_frames` closes at once.
//!
//! Both take frames as (543, 3) views of any strides and keep their own clock (a frame
//! pushed without a timestamp is 1/fps after the previous one; the first is 0.0).
//!
//! NaN handling: a value that is not finite (NaN, ±inf) is missing. A frame has a signer when
//! a selected landmark has a finite value in one of the spec's coordinates; a hand is visible
//! when its wrist, middle-finger base or middle-finger tip has a finite x (hand trackers
//! report a hand whole or not at all); a hand's centre is the mean x, y of its landmarks with
//! both finite; a shoulder width that is not > 1e-6 (NaN: a shoulder not seen) keeps the
//! previous one (0.25 image units until a frame shows both shoulders).

use std::collections::HashMap;

use ndarray::ArrayView2;

use crate::error::{Error, Result};
use crate::preprocess::{FrameView, Sample};
use crate::spec::{FeatureSpec, FRAME_LEN, NUM_COORDS, NUM_LANDMARKS, SHOULDERS};
use crate::stream::{checked_frame, FrameRef, Stream};

/// First landmark of the left hand (21 landmarks) in the holistic-543 layout.
pub const LEFT_HAND: usize = 468;
/// First landmark of the right hand (21 landmarks).
pub const RIGHT_HAND: usize = 522;
/// Landmarks per hand.
pub const HAND_LEN: usize = 21;
/// Wrist (0), middle-finger base (9) and tip (12) of each hand: the probes of
/// [`hand_visible`].
pub const HAND_PROBES: [usize; 6] = [
    LEFT_HAND,
    LEFT_HAND + 9,
    LEFT_HAND + 12,
    RIGHT_HAND,
    RIGHT_HAND + 9,
    RIGHT_HAND + 12,
];
/// Shoulder width (image units) assumed until a frame shows both shoulders.
pub const NOMINAL_SHOULDER: f64 = 0.25;
/// Default motion threshold in shoulder widths per frame (the threshold that best separated
/// signing from rest frames on INCLUDE validation streams).
pub const DEFAULT_MOTION_SHOULDER: f64 = 0.020;
/// Default motion threshold in image units per frame (the previous fixed threshold).
pub const DEFAULT_MOTION_IMAGE: f64 = 0.004;

// ------------------------------------------------------------------------------ clock
/// The stream's clock: the timestamps of frames pushed without one, and the frame count.
#[derive(Debug, Clone, PartialEq)]
pub struct Clock {
    fps: f64,
    last: Option<f64>,
    frames: u64,
}

impl Clock {
    /// A clock at `fps` frames per second for frames pushed without a timestamp.
    ///
    /// # Errors
    /// [`Error::Setting`] unless `fps` > 0.
    pub fn new(fps: f64) -> Result<Self> {
        if fps.is_nan() || fps <= 0.0 {
            return Err(Error::Setting(format!("fps must be > 0, got {fps}")));
        }
        Ok(Clock {
            fps,
            last: None,
            frames: 0,
        })
    }

    /// The timestamp of the next frame: `t`, or the previous one + 1/fps (0.0 first).
    #[inline]
    pub fn stamp(&mut self, t: Option<f64>) -> f64 {
        let ts = match (t, self.last) {
            (Some(t), _) => t,
            (None, None) => 0.0,
            (None, Some(last)) => last + 1.0 / self.fps,
        };
        self.last = Some(ts);
        self.frames += 1;
        ts
    }

    /// Frames stamped so far (never reset).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frame rate assumed for frames without a timestamp.
    pub fn fps(&self) -> f64 {
        self.fps
    }

    /// Forget the previous timestamp (the next frame without one is 0.0 again).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

// ------------------------------------------------------------------------ frame probes
/// Whether a hand is in view: a probe of [`HAND_PROBES`] has a finite x.
#[inline]
pub(crate) fn hand_visible<S: Sample>(frame: &FrameView<'_, S>) -> bool {
    HAND_PROBES.iter().any(|&l| frame.get(l, 0).is_finite())
}

/// The mean (x, y) of the hand's landmarks with both finite (summed in landmark order, in
/// f64), or `None` when it has none.
#[inline]
fn hand_centre<S: Sample>(frame: &FrameView<'_, S>, start: usize) -> Option<[f64; 2]> {
    let (mut sx, mut sy, mut n) = (0.0f64, 0.0f64, 0usize);
    for l in start..start + HAND_LEN {
        let (x, y) = (frame.get(l, 0), frame.get(l, 1));
        if x.is_finite() && y.is_finite() {
            sx += x;
            sy += y;
            n += 1;
        }
    }
    (n > 0).then(|| [sx / n as f64, sy / n as f64])
}

/// The sum of `a` in numpy's pairwise order (blocks of 8 partial sums up to 128 values,
/// halves above), so that a mean equals `numpy.mean` of the same values bit for bit.
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

fn setting(ok: bool, message: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Setting(message()))
    }
}

/// What a decider's threshold is compared with: the score the caller passes to `decide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreKind {
    /// The top-1 (calibrated) probability: thresholds in [0, 1].
    #[default]
    Probability,
    /// The negative free energy `T * logsumexp(logits / T)`: any finite threshold (its
    /// scale is the model's).
    Energy,
}

impl ScoreKind {
    /// `"probability"` or `"energy"`.
    pub fn name(self) -> &'static str {
        match self {
            ScoreKind::Probability => "probability",
            ScoreKind::Energy => "energy",
        }
    }

    /// The kind of a name.
    ///
    /// # Errors
    /// [`Error::Setting`] for another name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "probability" => Ok(ScoreKind::Probability),
            "energy" => Ok(ScoreKind::Energy),
            _ => Err(Error::Setting(format!(
                "score must be 'probability' or 'energy', got '{name}'"
            ))),
        }
    }
}

fn check_threshold(threshold: f64, score: ScoreKind) -> Result<()> {
    match score {
        ScoreKind::Probability => setting((0.0..=1.0).contains(&threshold), || {
            format!("threshold must be in [0, 1] for score 'probability', got {threshold}")
        }),
        ScoreKind::Energy => setting(threshold.is_finite(), || {
            format!(
                "threshold must be a finite number for score 'energy' (the model's energy \
                 scale), got {threshold}"
            )
        }),
    }
}

/// Whether a decision score reaches the threshold (a NaN score never does).
#[inline]
fn reaches(score: f64, threshold: f64) -> bool {
    score >= threshold
}

/// What a decider emits: one sign event's score and extent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Emit {
    /// Window mode: the mean score of the confirming classifications; segment mode: the
    /// segment's score.
    pub score: f64,
    /// Timestamp of the first frame with a signer in the window when the run of
    /// confirmations began (window), or of the segment's first frame (segment).
    pub start: f64,
    /// Timestamp of the frame that confirmed (window) or of the segment's last frame.
    pub end: f64,
    /// Frames with a signer in the window (window), or frames of the segment (segment).
    pub frames: usize,
}

// ------------------------------------------------------------------------ window mode
/// The settings of a [`WindowDecider`].
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSettings {
    /// Classify every `stride` frames (≥ 1).
    pub stride: u64,
    /// Minimum decision score of an emitted label (in [0, 1] for probabilities).
    pub threshold: f64,
    /// What the threshold is compared with.
    pub score: ScoreKind,
    /// Consecutive confirming classifications needed (≥ 1).
    pub confirm: u64,
    /// Seconds before the same label may be emitted again (≥ 0).
    pub cooldown: f64,
    /// Frames with a signer needed in the window before classifying (1 ..= max_len).
    pub min_frames: usize,
    /// Count a frame as having a signer only when a hand is visible.
    pub require_hand: bool,
}

impl WindowSettings {
    /// Check the settings as given, thresholds on probabilities (see
    /// [`WindowSettings::scored`]).
    ///
    /// # Errors
    /// [`Error::Setting`] naming the first setting out of range.
    pub fn new(
        stride: i64,
        threshold: f64,
        confirm: i64,
        cooldown: f64,
        min_frames: i64,
        require_hand: bool,
        max_len: usize,
    ) -> Result<Self> {
        Self::scored(
            ScoreKind::Probability,
            stride,
            threshold,
            confirm,
            cooldown,
            min_frames,
            require_hand,
            max_len,
        )
    }

    /// Check the settings as given, the threshold on `score`'s scale (`min_frames` is
    /// clamped into 1 ..= `max_len`).
    ///
    /// # Errors
    /// [`Error::Setting`] naming the first setting out of range (stride, confirm,
    /// threshold, cooldown, in that order).
    #[allow(clippy::too_many_arguments)]
    pub fn scored(
        score: ScoreKind,
        stride: i64,
        threshold: f64,
        confirm: i64,
        cooldown: f64,
        min_frames: i64,
        require_hand: bool,
        max_len: usize,
    ) -> Result<Self> {
        setting(stride >= 1, || format!("stride must be >= 1, got {stride}"))?;
        setting(confirm >= 1, || {
            format!("confirm must be >= 1, got {confirm}")
        })?;
        check_threshold(threshold, score)?;
        setting(!cooldown.is_nan() && cooldown >= 0.0, || {
            format!("cooldown must be >= 0, got {cooldown}")
        })?;
        let max_len = max_len.max(1);
        let min_frames = usize::try_from(min_frames.max(1))
            .unwrap_or(usize::MAX)
            .min(max_len);
        Ok(WindowSettings {
            stride: stride as u64,
            threshold,
            score,
            confirm: confirm as u64,
            cooldown,
            min_frames,
            require_hand,
        })
    }
}

/// A classification the caller was asked for (window mode).
#[derive(Debug, Clone, Copy, PartialEq)]
struct WindowPending {
    ts: f64,
    frames: usize,
}

/// Window mode's decisions (see the module documentation).
#[derive(Debug, Clone)]
pub struct WindowDecider {
    settings: WindowSettings,
    clock: Clock,
    window: Stream,
    /// Ring of the window's timestamps and signer flags (same slots as the window).
    ts: Vec<f64>,
    valid: Vec<bool>,
    head: usize,
    len: usize,
    n_valid: usize,
    since_reset: u64,
    cand: Option<String>,
    streak: u64,
    streak_scores: Vec<f64>,
    streak_values: Vec<f64>,
    streak_start: f64,
    last_emit: HashMap<String, f64>,
    pending: Option<WindowPending>,
    engine_calls: u64,
}

impl WindowDecider {
    /// An empty window of `spec` (W = max_len) with `settings` and a clock at `fps`.
    ///
    /// # Errors
    /// [`Error::Setting`] on a bad `fps`; [`Error::Alloc`] if the window cannot be had.
    pub fn new(spec: FeatureSpec, settings: WindowSettings, fps: f64) -> Result<Self> {
        let clock = Clock::new(fps)?;
        let cap = spec.max_len();
        let window = Stream::new(spec)?;
        let what = "the timestamps of a stream window";
        let ts = crate::alloc::zeroed(&[cap], what)?;
        let valid = crate::alloc::zeroed(&[cap], what)?;
        let run = settings.confirm.min(1024) as usize;
        let mut streak_scores = Vec::new();
        let mut streak_values = Vec::new();
        streak_scores
            .try_reserve(run)
            .and_then(|()| streak_values.try_reserve(run))
            .map_err(|e| Error::Alloc(format!("cannot allocate the scores of a run: {e}")))?;
        Ok(WindowDecider {
            settings,
            clock,
            window,
            ts,
            valid,
            head: 0,
            len: 0,
            n_valid: 0,
            since_reset: 0,
            cand: None,
            streak: 0,
            streak_scores,
            streak_values,
            streak_start: 0.0,
            last_emit: HashMap::new(),
            pending: None,
            engine_calls: 0,
        })
    }

    /// The settings in use.
    pub fn settings(&self) -> &WindowSettings {
        &self.settings
    }
    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
    /// The window (its features are what the caller classifies).
    pub fn window(&self) -> &Stream {
        &self.window
    }
    /// Classifications decided so far ([`WindowDecider::decide`] calls).
    pub fn engine_calls(&self) -> u64 {
        self.engine_calls
    }
    /// Frames with a signer in the window.
    pub fn num_signer_frames(&self) -> usize {
        self.n_valid
    }

    /// Add one frame (a (543, 3) view of any strides) at `timestamp` (or the clock's next
    /// one); `true` when the window is to be classified now: then call
    /// [`WindowDecider::features_into`], classify, and pass the top-1 to
    /// [`WindowDecider::decide`].
    ///
    /// # Errors
    /// [`Error::Shape`] if the frame is not (543, 3) (nothing is changed then).
    pub fn push(&mut self, frame: FrameRef<'_>, timestamp: Option<f64>) -> Result<bool> {
        match frame {
            FrameRef::F32(x) => self.push_view(x, timestamp),
            FrameRef::F64(x) => self.push_view(x, timestamp),
        }
    }

    fn push_view<S: Sample>(
        &mut self,
        frame: ArrayView2<'_, S>,
        timestamp: Option<f64>,
    ) -> Result<bool> {
        let frame = checked_frame(frame)?;
        let ts = self.clock.stamp(timestamp);
        let mut has_signer = self.window.push_frame(&frame);
        if has_signer && self.settings.require_hand {
            has_signer = hand_visible(&frame);
        }
        let cap = self.ts.len();
        let slot = if self.len < cap {
            self.len += 1;
            (self.head + self.len - 1) % cap
        } else {
            let s = self.head;
            if self.valid[s] {
                self.n_valid -= 1;
            }
            self.head = (self.head + 1) % cap;
            s
        };
        self.ts[slot] = ts;
        self.valid[slot] = has_signer;
        if has_signer {
            self.n_valid += 1;
        }
        self.since_reset += 1;
        self.pending = None;
        if !has_signer {
            self.streak = 0;
            self.cand = None;
            return Ok(false);
        }
        if !self.since_reset.is_multiple_of(self.settings.stride)
            || self.n_valid < self.settings.min_frames
        {
            return Ok(false);
        }
        self.pending = Some(WindowPending {
            ts,
            frames: self.n_valid,
        });
        Ok(true)
    }

    /// The window's features into caller buffers (see [`Stream::features_into`]).
    ///
    /// # Errors
    /// [`Error::Shape`] if a buffer has the wrong length.
    pub fn features_into(&mut self, feats: &mut [f32], mask: &mut [f32]) -> Result<()> {
        self.window.features_into(feats, mask)
    }

    /// The top-1 (`label`, `score`) of the classification the last `push` asked for; the
    /// event it confirms, if any (its score: the mean of the confirming scores).
    ///
    /// # Errors
    /// [`Error::Internal`] if the last push asked for no classification.
    pub fn decide(&mut self, label: &str, score: f64) -> Result<Option<Emit>> {
        self.decide_scored(label, score, score)
    }

    /// [`WindowDecider::decide`] with a decision `score` (of the settings' [`ScoreKind`],
    /// compared with the threshold; NaN never reaches it) and a reported `value` (the
    /// event's score is the mean of the confirming values, e.g. the top-1 probabilities
    /// when the threshold acts on energies).
    ///
    /// # Errors
    /// [`Error::Internal`] if the last push asked for no classification.
    pub fn decide_scored(&mut self, label: &str, score: f64, value: f64) -> Result<Option<Emit>> {
        let p = self.pending.take().ok_or_else(|| {
            Error::Internal("a window decision without a pending classification".to_owned())
        })?;
        self.engine_calls += 1;
        if !reaches(score, self.settings.threshold) {
            self.streak = 0;
            self.cand = None;
            return Ok(None);
        }
        if self.cand.as_deref() != Some(label) {
            self.cand = Some(label.to_owned());
            self.streak = 0;
            self.streak_scores.clear();
            self.streak_values.clear();
            self.streak_start = self.first_signer_ts();
        }
        self.streak += 1;
        self.streak_scores.push(score);
        self.streak_values.push(value);
        if self.streak != self.settings.confirm {
            return Ok(None);
        }
        if let Some(&last) = self.last_emit.get(label) {
            if p.ts - last < self.settings.cooldown {
                return Ok(None);
            }
        }
        self.last_emit.insert(label.to_owned(), p.ts);
        let n = self.streak_values.len() as f64;
        Ok(Some(Emit {
            score: pairwise_sum(&self.streak_values) / n,
            start: self.streak_start,
            end: p.ts,
            frames: p.frames,
        }))
    }

    /// Timestamp of the oldest frame with a signer in the window (the pending frame has one).
    fn first_signer_ts(&self) -> f64 {
        let cap = self.ts.len();
        (0..self.len)
            .map(|i| (self.head + i) % cap)
            .find(|&s| self.valid[s])
            .map_or(0.0, |s| self.ts[s])
    }

    /// End of input: nothing is pending in window mode; the run of confirmations ends.
    pub fn flush(&mut self) -> bool {
        self.streak = 0;
        self.cand = None;
        self.pending = None;
        false
    }

    /// Forget the window, the run of confirmations and the cooldowns (the clock too with
    /// `clock`).
    pub fn reset(&mut self, clock: bool) {
        self.window.reset();
        self.head = 0;
        self.len = 0;
        self.n_valid = 0;
        self.since_reset = 0;
        self.cand = None;
        self.streak = 0;
        self.streak_scores.clear();
        self.streak_values.clear();
        self.streak_start = 0.0;
        self.last_emit.clear();
        self.pending = None;
        if clock {
            self.clock.reset();
        }
    }
}

// ----------------------------------------------------------------------- segment mode
/// The unit of segment mode's motion threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MotionUnit {
    /// Shoulder widths per frame.
    Shoulder,
    /// Image units per frame.
    Image,
}

impl MotionUnit {
    /// `"shoulder"` or `"image"`.
    pub fn name(self) -> &'static str {
        match self {
            MotionUnit::Shoulder => "shoulder",
            MotionUnit::Image => "image",
        }
    }

    /// The unit of a name.
    ///
    /// # Errors
    /// [`Error::Setting`] for another name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "shoulder" => Ok(MotionUnit::Shoulder),
            "image" => Ok(MotionUnit::Image),
            _ => Err(Error::Setting(format!(
                "motion_unit must be 'shoulder' or 'image', got '{name}'"
            ))),
        }
    }
}

/// The settings of a [`SegmentDecider`].
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSettings {
    /// Minimum decision score of an emitted segment (in [0, 1] for probabilities).
    pub threshold: f64,
    /// What the threshold is compared with.
    pub score: ScoreKind,
    /// Inactive frames that end a segment (≥ 1).
    pub rest_frames: u64,
    /// Hand-centre displacement per frame that counts as moving, in `motion_unit` (≥ 0).
    pub motion_threshold: f64,
    /// The unit of `motion_threshold`.
    pub motion_unit: MotionUnit,
    /// Shortest segment classified (≥ 1).
    pub min_frames: usize,
    /// Longest segment (≥ 1): one reaching it closes at once.
    pub max_frames: usize,
}

impl SegmentSettings {
    /// Check the settings as given, thresholds on probabilities (see
    /// [`SegmentSettings::scored`]).
    ///
    /// # Errors
    /// [`Error::Setting`] naming the first setting out of range.
    pub fn new(
        threshold: f64,
        rest_frames: i64,
        motion_threshold: Option<f64>,
        motion_unit: MotionUnit,
        min_frames: i64,
        max_frames: Option<i64>,
        max_len: usize,
    ) -> Result<Self> {
        Self::scored(
            ScoreKind::Probability,
            threshold,
            rest_frames,
            motion_threshold,
            motion_unit,
            min_frames,
            max_frames,
            max_len,
        )
    }

    /// Check the settings as given, the threshold on `score`'s scale: `motion_threshold`
    /// `None` is the unit's default, `max_frames` `None` is 4 × `max_len`; `min_frames` and
    /// `max_frames` are clamped to ≥ 1.
    ///
    /// # Errors
    /// [`Error::Setting`] naming the first setting out of range (rest_frames, threshold,
    /// motion_threshold, in that order).
    #[allow(clippy::too_many_arguments)]
    pub fn scored(
        score: ScoreKind,
        threshold: f64,
        rest_frames: i64,
        motion_threshold: Option<f64>,
        motion_unit: MotionUnit,
        min_frames: i64,
        max_frames: Option<i64>,
        max_len: usize,
    ) -> Result<Self> {
        let motion_threshold = motion_threshold.unwrap_or(match motion_unit {
            MotionUnit::Shoulder => DEFAULT_MOTION_SHOULDER,
            MotionUnit::Image => DEFAULT_MOTION_IMAGE,
        });
        setting(rest_frames >= 1, || {
            format!("rest_frames must be >= 1, got {rest_frames}")
        })?;
        check_threshold(threshold, score)?;
        setting(
            !motion_threshold.is_nan() && motion_threshold >= 0.0,
            || format!("motion_threshold must be >= 0, got {motion_threshold}"),
        )?;
        let clamp = |v: i64| usize::try_from(v.max(1)).unwrap_or(usize::MAX);
        Ok(SegmentSettings {
            threshold,
            score,
            rest_frames: rest_frames as u64,
            motion_threshold,
            motion_unit,
            min_frames: clamp(min_frames),
            max_frames: clamp(max_frames.unwrap_or(4 * max_len as i64)),
        })
    }
}

/// The frames of a segment, (n, 543, 3) in C order, in the type they came in: float32
/// while every frame of the segment is float32, float64 from the first one that is not (the
/// float32 values converted exactly), as `numpy.stack` of the frames would give.
#[derive(Debug, Clone, Default)]
struct SegmentFrames {
    narrow: Vec<f32>,
    wide: Vec<f64>,
    is_wide: bool,
}

/// The frames of a closed segment, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SegmentView<'a> {
    /// Every frame came as float32.
    F32(&'a [f32]),
    /// At least one frame came as float64 (or was converted into it).
    F64(&'a [f64]),
}

impl SegmentView<'_> {
    /// Number of values (n × 543 × 3).
    pub fn len(&self) -> usize {
        match self {
            SegmentView::F32(v) => v.len(),
            SegmentView::F64(v) => v.len(),
        }
    }

    /// Whether it holds no frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f64 (for tests and callers that need one type).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            SegmentView::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            SegmentView::F64(v) => v.to_vec(),
        }
    }
}

fn grow<T>(v: &mut Vec<T>, extra: usize, frames: usize) -> Result<()> {
    v.try_reserve(extra).map_err(|e| {
        Error::Alloc(format!(
            "cannot grow the open segment past {frames} frames: {e}"
        ))
    })
}

impl SegmentFrames {
    /// Room for one more frame of `wide` values (a float32 segment turning float64 needs
    /// room for all its values), so that storing it cannot fail.
    fn reserve(&mut self, wide: bool, frames: usize) -> Result<()> {
        match (self.is_wide, wide) {
            (false, false) => grow(&mut self.narrow, FRAME_LEN, frames),
            (false, true) => grow(&mut self.wide, self.narrow.len() + FRAME_LEN, frames),
            (true, _) => grow(&mut self.wide, FRAME_LEN, frames),
        }
    }

    fn push_f32(&mut self, frame: &FrameView<'_, f32>) {
        if self.is_wide {
            push_values(&mut self.wide, frame);
            return;
        }
        match frame {
            FrameView::Packed(s) => self.narrow.extend_from_slice(s),
            _ => {
                for l in 0..NUM_LANDMARKS {
                    for ch in 0..NUM_COORDS {
                        self.narrow.push(frame.get(l, ch) as f32); // exact: an f32 value
                    }
                }
            }
        }
    }

    fn push_f64(&mut self, frame: &FrameView<'_, f64>) {
        if !self.is_wide {
            self.wide.clear();
            self.wide.extend(self.narrow.iter().map(|&v| f64::from(v)));
            self.narrow.clear();
            self.is_wide = true;
        }
        push_values(&mut self.wide, frame);
    }

    fn truncate_frames(&mut self, n: usize) {
        self.narrow.truncate(n * FRAME_LEN);
        self.wide.truncate(n * FRAME_LEN);
    }

    fn clear(&mut self) {
        self.narrow.clear();
        self.wide.clear();
        self.is_wide = false;
    }

    fn view(&self, n: usize) -> SegmentView<'_> {
        if self.is_wide {
            SegmentView::F64(&self.wide[..n * FRAME_LEN])
        } else {
            SegmentView::F32(&self.narrow[..n * FRAME_LEN])
        }
    }
}

/// Append a frame's values as f64, C order.
fn push_values<S: Sample>(out: &mut Vec<f64>, frame: &FrameView<'_, S>) {
    match frame {
        FrameView::Packed(s) => out.extend(s.iter().map(|v| v.to_f64())),
        _ => {
            for l in 0..NUM_LANDMARKS {
                for ch in 0..NUM_COORDS {
                    out.push(frame.get(l, ch));
                }
            }
        }
    }
}

/// A closed segment the caller was asked to classify.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SegmentPending {
    start: f64,
    end: f64,
    frames: usize,
}

/// Segment mode's decisions (see the module documentation).
#[derive(Debug, Clone)]
pub struct SegmentDecider {
    settings: SegmentSettings,
    clock: Clock,
    prev_hands: [Option<[f64; 2]>; 2],
    shoulder: f64,
    /// The open segment's frames.
    seg: SegmentFrames,
    seg_ts: Vec<f64>,
    quiet: u64,
    /// The last closed segment's frames (what the caller classifies).
    closed: SegmentFrames,
    pending: Option<SegmentPending>,
    engine_calls: u64,
}

impl SegmentDecider {
    /// No open segment, `settings`, a clock at `fps`.
    ///
    /// # Errors
    /// [`Error::Setting`] on a bad `fps`.
    pub fn new(settings: SegmentSettings, fps: f64) -> Result<Self> {
        Ok(SegmentDecider {
            settings,
            clock: Clock::new(fps)?,
            prev_hands: [None, None],
            shoulder: NOMINAL_SHOULDER,
            seg: SegmentFrames::default(),
            seg_ts: Vec::new(),
            quiet: 0,
            closed: SegmentFrames::default(),
            pending: None,
            engine_calls: 0,
        })
    }

    /// The settings in use.
    pub fn settings(&self) -> &SegmentSettings {
        &self.settings
    }
    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
    /// Classifications decided so far ([`SegmentDecider::decide`] calls).
    pub fn engine_calls(&self) -> u64 {
        self.engine_calls
    }
    /// Frames in the open segment (0: none open).
    pub fn open_frames(&self) -> usize {
        self.seg_ts.len()
    }

    /// Add one frame (a (543, 3) view of any strides) at `timestamp` (or the clock's next
    /// one); `true` when it closed a segment to classify: then take its frames with
    /// [`SegmentDecider::segment`], classify, and pass the top-1 to
    /// [`SegmentDecider::decide`].
    ///
    /// # Errors
    /// [`Error::Shape`] if the frame is not (543, 3) (nothing is changed then);
    /// [`Error::Alloc`] if the open segment cannot grow.
    pub fn push(&mut self, frame: FrameRef<'_>, timestamp: Option<f64>) -> Result<bool> {
        match frame {
            FrameRef::F32(x) => {
                let v = checked_frame(x)?;
                self.seg.reserve(false, self.seg_ts.len())?;
                Ok(self.push_frame(&v, timestamp, |seg| seg.push_f32(&v)))
            }
            FrameRef::F64(x) => {
                let v = checked_frame(x)?;
                self.seg.reserve(true, self.seg_ts.len())?;
                Ok(self.push_frame(&v, timestamp, |seg| seg.push_f64(&v)))
            }
        }
    }

    /// The displacement (image units) above which this frame's hands move.
    fn limit<S: Sample>(&mut self, frame: &FrameView<'_, S>) -> f64 {
        if self.settings.motion_unit == MotionUnit::Image {
            return self.settings.motion_threshold;
        }
        let [l, r] = SHOULDERS;
        let dx = frame.get(l, 0) - frame.get(r, 0);
        let dy = frame.get(l, 1) - frame.get(r, 1);
        let w = dx.hypot(dy);
        if w > 1e-6 {
            // false for NaN (a shoulder not seen): keep the last width
            self.shoulder = w;
        }
        self.settings.motion_threshold * self.shoulder
    }

    /// [`SegmentDecider::push`] of a checked frame with room reserved; `store` appends it
    /// to the open segment.
    fn push_frame<S: Sample>(
        &mut self,
        frame: &FrameView<'_, S>,
        timestamp: Option<f64>,
        store: impl FnOnce(&mut SegmentFrames),
    ) -> bool {
        let frame = *frame;
        let open = !self.seg_ts.is_empty();
        let ts = self.clock.stamp(timestamp);
        self.pending = None;
        let hands = [
            hand_centre(&frame, LEFT_HAND),
            hand_centre(&frame, RIGHT_HAND),
        ];
        let mut moving = false;
        if hands[0].is_some() || hands[1].is_some() {
            let limit = self.limit(&frame);
            moving = self
                .prev_hands
                .iter()
                .zip(&hands)
                .any(|(p, c)| match (p, c) {
                    (Some(p), Some(c)) => (c[0] - p[0]).hypot(c[1] - p[1]) > limit,
                    _ => false,
                });
        }
        self.prev_hands = hands;
        if !open {
            if moving {
                store(&mut self.seg);
                self.seg_ts.push(ts);
                self.quiet = 0;
            }
            return false;
        }
        store(&mut self.seg);
        self.seg_ts.push(ts);
        self.quiet = if moving { 0 } else { self.quiet + 1 };
        if self.quiet >= self.settings.rest_frames {
            return self.close(self.quiet as usize);
        }
        if self.seg_ts.len() >= self.settings.max_frames {
            return self.close(0);
        }
        false
    }

    /// Close the open segment without its last `trim` frames; whether it is to be
    /// classified (at least `min_frames` frames).
    fn close(&mut self, trim: usize) -> bool {
        let n = self.seg_ts.len() - trim;
        let (start, end) = (self.seg_ts[0], self.seg_ts[n - 1]);
        std::mem::swap(&mut self.seg, &mut self.closed);
        self.closed.truncate_frames(n);
        self.seg.clear();
        self.seg_ts.clear();
        self.quiet = 0;
        if n < self.settings.min_frames {
            return false;
        }
        self.pending = Some(SegmentPending {
            start,
            end,
            frames: n,
        });
        true
    }

    /// The frames of the segment to classify: (n, 543, 3) values in C order, and n (empty
    /// when none is pending).
    pub fn segment(&self) -> (SegmentView<'_>, usize) {
        let n = self.pending.map_or(0, |p| p.frames);
        (self.closed.view(n), n)
    }

    /// The top-1 `score` of the pending segment; its event if the score is ≥ threshold.
    ///
    /// # Errors
    /// [`Error::Internal`] if no segment is pending.
    pub fn decide(&mut self, score: f64) -> Result<Option<Emit>> {
        self.decide_scored(score, score)
    }

    /// [`SegmentDecider::decide`] with a decision `score` (of the settings' [`ScoreKind`];
    /// NaN never reaches the threshold) and the reported `value` (the event's score).
    ///
    /// # Errors
    /// [`Error::Internal`] if no segment is pending.
    pub fn decide_scored(&mut self, score: f64, value: f64) -> Result<Option<Emit>> {
        let p = self.pending.take().ok_or_else(|| {
            Error::Internal("a segment decision without a pending segment".to_owned())
        })?;
        self.engine_calls += 1;
        if !reaches(score, self.settings.threshold) {
            return Ok(None);
        }
        Ok(Some(Emit {
            score: value,
            start: p.start,
            end: p.end,
            frames: p.frames,
        }))
    }

    /// End of input: close the open segment (without its trailing quiet frames); whether it
    /// is to be classified.
    pub fn flush(&mut self) -> bool {
        self.pending = None;
        !self.seg_ts.is_empty() && self.close(self.quiet as usize)
    }

    /// Drop the open segment and the remembered shoulder width (the clock too with `clock`).
    pub fn reset(&mut self, clock: bool) {
        self.seg.clear();
        self.seg_ts.clear();
        self.closed.clear();
        self.quiet = 0;
        self.prev_hands = [None, None];
        self.shoulder = NOMINAL_SHOULDER;
        self.pending = None;
        if clock {
            self.clock.reset();
        }
    }
}

#[cfg(test)]
mod tests;
