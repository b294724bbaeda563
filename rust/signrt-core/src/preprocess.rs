//! Batch preprocessing: DESIGN §3 steps 1–8, exactly as the NumPy reference
//! (`signrt.features.preprocess_reference`) does them.
//!
//! Statistics and intermediate values are f64 (like the reference); the output is f32.
//! A non-finite input value (NaN, +inf, -inf) is a missing value. The output is always
//! finite: a value that is missing (or that would overflow f32) becomes `nan_fill`.
//!
//! The hot path reads the input once: it selects the P·C used values of every frame into a
//! contiguous f64 buffer (dropping empty frames on the way and gathering the normalisation
//! inputs from the same, already loaded, cache lines), prefetching into L2, a few frames
//! ahead, only the cache lines of a frame that the selection reads (about half of a C
//! float32 frame's lines for islr118). The scale statistics and the output then work on that
//! buffer (which stays in cache): the output rows with the motion channels are written once,
//! normalised on the way (explicit SIMD for 2 coordinates on x86-64), the padding rows once.
//! Buffers live in a [`Scratch`] that is reused across calls (one per thread), so there is
//! no per-frame allocation and, in steady state, no allocation at all.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use ndarray::{ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::spec::{FeatureSpec, Fit, Normalize, FRAME_LEN, NUM_COORDS, NUM_LANDMARKS, SHOULDERS};

/// Fallback centre where a centre statistic has no value.
pub const CENTRE_FALLBACK: f64 = 0.5;
/// Fallback scale where a scale statistic has no value or is below [`SCALE_MIN`].
pub const SCALE_FALLBACK: f64 = 1.0;
/// Smallest scale used as is.
pub const SCALE_MIN: f64 = 1e-6;

/// An input element type: read as f64, non-finite meaning missing.
pub trait Sample: Copy + Send + Sync + 'static {
    /// The value as f64.
    fn to_f64(self) -> f64;

    /// Copy the selected values of one C-order frame (543 × 3 values) into `row` ((P, C),
    /// output order) as f64, as they are (±inf and NaN included).
    #[doc(hidden)]
    #[inline(always)]
    fn gather<const C: usize>(frame: &[Self], spec: &FeatureSpec, row: &mut [f64]) {
        gather_portable::<Self, C>(frame, spec, row);
    }
}

impl Sample for f32 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }

    // Elsewhere the portable default.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn gather<const C: usize>(frame: &[f32], spec: &FeatureSpec, row: &mut [f64]) {
        crate::simd::gather_f32_points(frame, spec.gather_order(), C, row);
    }
}

impl Sample for f64 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// A clip borrowed from the caller: a (T, 543, 3) view (frame, landmark, coordinate) with
/// any strides (C or Fortran order, sliced, reversed), in one of the element types the
/// core reads without conversion.
#[derive(Debug, Clone, Copy)]
pub enum ClipRef<'a> {
    /// float32 values.
    F32(ArrayView3<'a, f32>),
    /// float64 values.
    F64(ArrayView3<'a, f64>),
}

impl<'a> ClipRef<'a> {
    /// A C-order clip stored flat: `x.len()` must be a multiple of 543 × 3.
    ///
    /// # Errors
    /// [`Error::Shape`] if it is not.
    pub fn from_f32(x: &'a [f32]) -> Result<Self> {
        Ok(ClipRef::F32(clip_view(x)?))
    }

    /// [`ClipRef::from_f32`] for float64 values.
    ///
    /// # Errors
    /// [`Error::Shape`] if the length is not a multiple of 543 × 3.
    pub fn from_f64(x: &'a [f64]) -> Result<Self> {
        Ok(ClipRef::F64(clip_view(x)?))
    }

    /// The view's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            ClipRef::F32(x) => x.shape(),
            ClipRef::F64(x) => x.shape(),
        }
    }

    /// Whether the clip has no frame (T = 0).
    pub fn is_empty(&self) -> bool {
        self.shape()[0] == 0
    }

    /// T, the number of frames.
    ///
    /// # Errors
    /// [`Error::Shape`] if the view is not (T, 543, 3).
    pub fn num_frames(&self) -> Result<usize> {
        check_clip_shape(self.shape())
    }
}

impl<'a> From<ArrayView3<'a, f32>> for ClipRef<'a> {
    fn from(x: ArrayView3<'a, f32>) -> Self {
        ClipRef::F32(x)
    }
}

impl<'a> From<ArrayView3<'a, f64>> for ClipRef<'a> {
    fn from(x: ArrayView3<'a, f64>) -> Self {
        ClipRef::F64(x)
    }
}

/// A flat C-order clip as a (T, 543, 3) view.
fn clip_view<S>(x: &[S]) -> Result<ArrayView3<'_, S>> {
    let t = frames_of(x.len())?;
    ArrayView3::from_shape((t, NUM_LANDMARKS, NUM_COORDS), x)
        .map_err(|e| Error::Internal(format!("clip view: {e}")))
}

pub(crate) fn frames_of(len: usize) -> Result<usize> {
    if !len.is_multiple_of(FRAME_LEN) {
        return Err(Error::Shape(format!(
            "expected a clip of shape (T, 543, 3): {len} values is not a multiple of {FRAME_LEN}"
        )));
    }
    Ok(len / FRAME_LEN)
}

/// T if `shape` is (T, 543, 3).
pub(crate) fn check_clip_shape(shape: &[usize]) -> Result<usize> {
    match shape {
        [t, NUM_LANDMARKS, NUM_COORDS] => Ok(*t),
        _ => Err(Error::Shape(format!(
            "expected a clip of shape (T, {NUM_LANDMARKS}, {NUM_COORDS}), got {shape:?}"
        ))),
    }
}

/// One frame (543 × 3 values) in the memory layout the gather reads it with; chosen per
/// frame by [`FrameView::of`], so that a view of any strides is read in place.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FrameView<'a, S> {
    /// C order: value (l, ch) at `3·l + ch` (C-contiguous clips, reversed or sliced frames).
    Packed(&'a [S]),
    /// Every coordinate contiguous over the landmarks: value (l, ch) at `cols[ch][l]`
    /// (Fortran order, pandas' and polars' `to_numpy()` of x, y, z columns).
    Columns([&'a [S]; NUM_COORDS]),
    /// Any other strides (read element by element).
    Strided(ArrayView2<'a, S>),
}

impl<'a, S: Sample> FrameView<'a, S> {
    /// The fastest way to read `frame` ((543, 3), any strides).
    #[inline(always)]
    pub(crate) fn of(frame: ArrayView2<'a, S>) -> Self {
        if let Some(s) = frame.to_slice() {
            return FrameView::Packed(s);
        }
        let col = |ch: usize| frame.index_axis_move(Axis(1), ch).to_slice();
        if let (Some(x), Some(y), Some(z)) = (col(0), col(1), col(2)) {
            return FrameView::Columns([x, y, z]);
        }
        FrameView::Strided(frame)
    }

    /// Value (landmark `l`, coordinate `ch`) as f64.
    #[inline(always)]
    pub(crate) fn get(&self, l: usize, ch: usize) -> f64 {
        match self {
            FrameView::Packed(s) => s[l * NUM_COORDS + ch].to_f64(),
            FrameView::Columns(cols) => cols[ch][l].to_f64(),
            FrameView::Strided(v) => v[[l, ch]].to_f64(),
        }
    }

    /// [`Sample::gather`] for any layout: the selected values of the frame into `row`
    /// ((P, C), output order), as they are.
    #[inline(always)]
    pub(crate) fn gather<const C: usize>(&self, spec: &FeatureSpec, row: &mut [f64]) {
        match self {
            FrameView::Packed(s) => S::gather::<C>(s, spec, row),
            FrameView::Columns(cols) => {
                let (row, _) = row.as_chunks_mut::<C>();
                for &(l, p) in spec.gather_order() {
                    for ch in 0..C {
                        row[p][ch] = cols[ch][l].to_f64();
                    }
                }
            }
            FrameView::Strided(v) => {
                let (row, _) = row.as_chunks_mut::<C>();
                for &(l, p) in spec.gather_order() {
                    for ch in 0..C {
                        row[p][ch] = v[[l, ch]].to_f64();
                    }
                }
            }
        }
    }
}

/// Reusable working memory of [`preprocess_with_scratch`].
#[derive(Debug, Default)]
pub struct Scratch {
    /// Selected values of the kept frames, (T_kept, P, C).
    sel: Vec<f64>,
    /// Normalised and fitted values, (T', P, C).
    fitted: Vec<f64>,
    /// Which cache lines of a frame the gather reads (for the layout of the last clip).
    prefetch: PrefetchPlan,
}

/// The byte offsets, from a frame's first element, of one address in every cache line that
/// the gather (and the normalisation inputs) read from a frame of a given layout; computed
/// once per layout and spec, reused while they stay the same.
#[derive(Debug, Default)]
struct PrefetchPlan {
    /// (landmark stride, coordinate stride, element size, C) in bytes / elements.
    key: (isize, isize, usize, usize),
    /// The landmarks the plan was made for (the gather's, then the normalisation's).
    landmarks: Vec<usize>,
    offsets: Vec<isize>,
    /// Whether `offsets` is valid for `key` and `landmarks`.
    ready: bool,
}

impl PrefetchPlan {
    /// Make the plan current for frames with landmark stride `s1` and coordinate stride
    /// `s2` (elements of `size` bytes). A plan that cannot be allocated is left empty (the
    /// prefetch is only a hint).
    fn update(&mut self, spec: &FeatureSpec, s1: isize, s2: isize, size: usize, c: usize) {
        let key = (s1, s2, size, c);
        let normalize = spec.normalize();
        let norm: &[usize] = match &normalize {
            Normalize::ReferenceRms { reference } => std::slice::from_ref(reference),
            Normalize::Shoulders => &SHOULDERS,
            Normalize::None => &[],
        };
        let order = spec.gather_order();
        let same = self.ready
            && self.key == key
            && self.landmarks.len() == order.len() + norm.len()
            && self
                .landmarks
                .iter()
                .zip(order.iter().map(|&(l, _)| l).chain(norm.iter().copied()))
                .all(|(a, b)| *a == b);
        if same {
            return;
        }
        self.ready = false;
        self.offsets.clear();
        self.landmarks.clear();
        let n = order.len() + norm.len();
        if self.landmarks.try_reserve(n).is_err() {
            return;
        }
        self.landmarks
            .extend(order.iter().map(|&(l, _)| l).chain(norm.iter().copied()));
        // Byte intervals read: one per landmark when its coordinates share a line, else one
        // per landmark and coordinate.
        let (isz, s1b, s2b) = (size as isize, s1 * size as isize, s2 * size as isize);
        let joined = s2b.unsigned_abs() < 64;
        let mut spans: Vec<(isize, isize)> = Vec::new();
        if spans.try_reserve(n * c).is_err() {
            return;
        }
        for &l in &self.landmarks {
            let at = l as isize * s1b;
            if joined {
                let (a, b) = (at, at + (c as isize - 1) * s2b);
                spans.push((a.min(b), a.max(b) + isz));
            } else {
                for ch in 0..c as isize {
                    let a = at + ch * s2b;
                    spans.push((a, a + isz));
                }
            }
        }
        spans.sort_unstable();
        // Runs of spans less than a line apart: one address per line of the run and its
        // last byte (every line from the run's first to its last byte, nothing else).
        let mut i = 0;
        while i < spans.len() {
            let (start, mut end) = spans[i];
            i += 1;
            while i < spans.len() && spans[i].0 - end < 64 {
                end = end.max(spans[i].1);
                i += 1;
            }
            let mut a = start;
            while a < end {
                if self.offsets.try_reserve(2).is_err() {
                    self.offsets.clear();
                    return;
                }
                self.offsets.push(a);
                a += 64;
            }
            if a - 64 < end - 1 {
                self.offsets.push(end - 1);
            }
        }
        self.key = key;
        self.ready = true;
    }
}

impl Scratch {
    /// Empty scratch memory (grows on first use).
    pub fn new() -> Self {
        Self::default()
    }
}

/// Per-channel centre and inverse scale of step 3.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Affine {
    pub centre: [f64; NUM_COORDS],
    pub inv_scale: [f64; NUM_COORDS],
}

impl Affine {
    pub const IDENTITY: Affine = Affine {
        centre: [0.0; NUM_COORDS],
        inv_scale: [1.0; NUM_COORDS],
    };
}

/// Sums of the normalisation inputs over kept frames (the "NaN-mean over t" of step 3).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CentreSums {
    /// reference_rms: the reference landmark; shoulders: the shoulder midpoint.
    pub sum: [f64; NUM_COORDS],
    pub count: [u64; NUM_COORDS],
    /// shoulders: the xy distance of the shoulders.
    pub dist_sum: f64,
    pub dist_count: u64,
}

/// The per-frame normalisation inputs: centre candidate per channel (NaN if missing) and
/// the shoulder distance (NaN if missing or not used). `frame(l, ch)` reads a value.
#[inline]
pub(crate) fn frame_norm_inputs(
    frame: impl Fn(usize, usize) -> f64,
    spec: &FeatureSpec,
) -> ([f64; NUM_COORDS], f64) {
    let c = spec.coords();
    let mut centre = [f64::NAN; NUM_COORDS];
    let mut dist = f64::NAN;
    match spec.normalize() {
        Normalize::ReferenceRms { reference } => {
            for (ch, slot) in centre.iter_mut().enumerate().take(c) {
                *slot = frame(reference, ch);
            }
        }
        Normalize::Shoulders => {
            let [a, b] = SHOULDERS;
            for (ch, slot) in centre.iter_mut().enumerate().take(c) {
                *slot = (frame(a, ch) + frame(b, ch)) / 2.0;
            }
            let dx = frame(a, 0) - frame(b, 0);
            let dy = frame(a, 1) - frame(b, 1);
            dist = (dx * dx + dy * dy).sqrt();
        }
        Normalize::None => {}
    }
    (centre, dist)
}

impl CentreSums {
    #[inline]
    pub fn add(&mut self, centre: &[f64; NUM_COORDS], dist: f64) {
        for ch in 0..NUM_COORDS {
            if !centre[ch].is_nan() {
                self.sum[ch] += centre[ch];
                self.count[ch] += 1;
            }
        }
        if !dist.is_nan() {
            self.dist_sum += dist;
            self.dist_count += 1;
        }
    }

    /// m_c with the 0.5 fallback.
    pub fn centre(&self) -> [f64; NUM_COORDS] {
        let mut m = [CENTRE_FALLBACK; NUM_COORDS];
        for ch in 0..NUM_COORDS {
            if self.count[ch] > 0 {
                m[ch] = self.sum[ch] / self.count[ch] as f64;
            }
        }
        m
    }

    /// shoulders: the scale (mean distance) with its fallbacks.
    pub fn shoulder_scale(&self) -> f64 {
        let s = if self.dist_count > 0 {
            self.dist_sum / self.dist_count as f64
        } else {
            f64::NAN
        };
        scale_or_fallback(s)
    }
}

/// sqrt'd scale → the scale actually used (fallback where NaN or below [`SCALE_MIN`]).
#[inline]
pub(crate) fn scale_or_fallback(s: f64) -> f64 {
    if s.is_nan() || s < SCALE_MIN {
        SCALE_FALLBACK
    } else {
        s
    }
}

/// Write `fill(v)` as f32: NaN, and anything that does not fit in a finite f32, becomes
/// `nan_fill`.
#[inline(always)]
fn out_value(v: f64, nan_fill: f32) -> f32 {
    let y = v as f32;
    if y.is_finite() {
        y
    } else {
        nan_fill
    }
}

/// Steps 5–8 (with the affine map of step 3 fused in): write `rows` output rows, row t
/// computed from the selected values `row(t)` ((P, C), non-finite = missing) as
/// x = (v − m)·inv_s and d_k = (v[t + k] − v[t])·inv_s; pad the rest with zeros and set the
/// mask. Already normalised rows (resampling) pass [`Affine::IDENTITY`].
#[inline(always)]
pub(crate) fn emit<'a>(
    row: impl Fn(usize) -> &'a [f64],
    rows: usize,
    affine: &Affine,
    spec: &FeatureSpec,
    feats: &mut [f32],
    mask: &mut [f32],
) {
    emit_on::<false>(row, rows, affine, spec, feats, mask);
}

/// [`emit`]; `AVX`: inlined into a function compiled with AVX2 (the explicit SIMD of the
/// 2-coordinate rows then uses 256-bit operations; the same bits either way).
#[inline(always)]
fn emit_on<'a, const AVX: bool>(
    row: impl Fn(usize) -> &'a [f64],
    rows: usize,
    affine: &Affine,
    spec: &FeatureSpec,
    feats: &mut [f32],
    mask: &mut [f32],
) {
    // Specialised on (C, number of lags, C_out) for the usual shapes, so that the per-point
    // block has a compile-time length and the loop vectorises; a generic loop otherwise.
    match (spec.coords(), spec.motion_lags().len()) {
        (2, 0) => emit_fixed::<2, 0, 2, AVX>(row, rows, affine, spec, feats, mask),
        (2, 1) => emit_fixed::<2, 1, 4, AVX>(row, rows, affine, spec, feats, mask),
        (2, 2) => emit_fixed::<2, 2, 6, AVX>(row, rows, affine, spec, feats, mask),
        (2, 3) => emit_fixed::<2, 3, 8, AVX>(row, rows, affine, spec, feats, mask),
        (3, 0) => emit_fixed::<3, 0, 3, AVX>(row, rows, affine, spec, feats, mask),
        (3, 1) => emit_fixed::<3, 1, 6, AVX>(row, rows, affine, spec, feats, mask),
        (3, 2) => emit_fixed::<3, 2, 9, AVX>(row, rows, affine, spec, feats, mask),
        (3, 3) => emit_fixed::<3, 3, 12, AVX>(row, rows, affine, spec, feats, mask),
        (2, _) => emit_c::<2>(row, rows, affine, spec, feats, mask),
        _ => emit_c::<3>(row, rows, affine, spec, feats, mask),
    }
}

/// [`emit`] for C coordinates, NL lags and CO = C·(1 + NL) output channels per point.
#[inline(always)]
fn emit_fixed<'a, const C: usize, const NL: usize, const CO: usize, const AVX: bool>(
    row: impl Fn(usize) -> &'a [f64],
    rows: usize,
    affine: &Affine,
    spec: &FeatureSpec,
    feats: &mut [f32],
    mask: &mut [f32],
) {
    debug_assert_eq!(CO, C * (1 + NL));
    debug_assert_eq!(spec.motion_lags().len(), NL);
    let f = spec.num_features();
    let p_count = spec.num_points();
    let fill = spec.nan_fill() as f32;
    let lags: [usize; NL] = std::array::from_fn(|j| spec.motion_lags()[j]);
    let m: [f64; C] = std::array::from_fn(|ch| affine.centre[ch]);
    let inv: [f64; C] = std::array::from_fn(|ch| affine.inv_scale[ch]);
    for t in 0..rows {
        // Rows whose every lag is inside the clip take the straight-line path.
        let all_inside = lags.iter().all(|&k| t + k < rows);
        // x, y: explicit SIMD on x86-64 (the compiler's own vectorisation of the loop below
        // spends most of its time shuffling).
        #[cfg(target_arch = "x86_64")]
        if all_inside && C == 2 {
            let next: [&[f64]; NL] = std::array::from_fn(|j| row(t + lags[j]));
            let (m2, inv2) = ([m[0], m[1 % C]], [inv[0], inv[1 % C]]);
            let out = &mut feats[t * f..(t + 1) * f];
            crate::simd::emit_row_c2::<NL, AVX>(row(t), next, m2, inv2, fill, out, p_count);
            continue;
        }
        let (out, _) = feats[t * f..(t + 1) * f].as_chunks_mut::<CO>();
        let (cur, _) = row(t).as_chunks::<C>();
        let out = &mut out[..p_count];
        let cur = &cur[..p_count];
        if all_inside {
            let next: [&[[f64; C]]; NL] =
                std::array::from_fn(|j| &row(t + lags[j]).as_chunks::<C>().0[..p_count]);
            for p in 0..p_count {
                let x = cur[p];
                let o = &mut out[p];
                for ch in 0..C {
                    o[ch] = out_value((x[ch] - m[ch]) * inv[ch], fill);
                }
                for j in 0..NL {
                    let y = next[j][p];
                    for ch in 0..C {
                        o[C * (1 + j) + ch] = out_value((y[ch] - x[ch]) * inv[ch], fill);
                    }
                }
            }
        } else {
            for p in 0..p_count {
                let x = cur[p];
                let o = &mut out[p];
                for ch in 0..C {
                    o[ch] = out_value((x[ch] - m[ch]) * inv[ch], fill);
                }
                for j in 0..NL {
                    if t + lags[j] < rows {
                        let y = &row(t + lags[j])[p * C..p * C + C];
                        for ch in 0..C {
                            o[C * (1 + j) + ch] = out_value((y[ch] - x[ch]) * inv[ch], fill);
                        }
                    } else {
                        for ch in 0..C {
                            o[C * (1 + j) + ch] = 0.0;
                        }
                    }
                }
            }
        }
    }
    feats[rows * f..].fill(0.0);
    mask[..rows].fill(1.0);
    mask[rows..].fill(0.0);
}

/// [`emit`] for any number of lags (C fixed).
#[inline(always)]
fn emit_c<'a, const C: usize>(
    row: impl Fn(usize) -> &'a [f64],
    rows: usize,
    affine: &Affine,
    spec: &FeatureSpec,
    feats: &mut [f32],
    mask: &mut [f32],
) {
    debug_assert_eq!(spec.coords(), C);
    let c_out = spec.channels();
    let f = spec.num_features();
    let fill = spec.nan_fill() as f32;
    let lags = spec.motion_lags();
    let m: [f64; C] = std::array::from_fn(|ch| affine.centre[ch]);
    let inv: [f64; C] = std::array::from_fn(|ch| affine.inv_scale[ch]);
    debug_assert_eq!(feats.len(), spec.max_len() * f);
    for t in 0..rows {
        let out = &mut feats[t * f..(t + 1) * f];
        let cur = row(t);
        // x
        for (o, x) in out.chunks_exact_mut(c_out).zip(cur.chunks_exact(C)) {
            let o: &mut [f32; C] = (&mut o[..C]).try_into().expect("C values");
            for ch in 0..C {
                o[ch] = out_value((x[ch] - m[ch]) * inv[ch], fill);
            }
        }
        // d_k = x[t + k] - x[t], 0 past the end
        for (j, &k) in lags.iter().enumerate() {
            let off = (j + 1) * C;
            if t + k < rows {
                let next = row(t + k);
                for ((o, x), y) in out
                    .chunks_exact_mut(c_out)
                    .zip(cur.chunks_exact(C))
                    .zip(next.chunks_exact(C))
                {
                    let o: &mut [f32; C] = (&mut o[off..off + C]).try_into().expect("C values");
                    for ch in 0..C {
                        o[ch] = out_value((y[ch] - x[ch]) * inv[ch], fill);
                    }
                }
            } else {
                for o in out.chunks_exact_mut(c_out) {
                    o[off..off + C].fill(0.0);
                }
            }
        }
    }
    feats[rows * f..].fill(0.0);
    mask[..rows].fill(1.0);
    mask[rows..].fill(0.0);
}

/// Steps 1–2 and the inputs of step 3: select the used values of every frame into
/// `sel` (dropping empty frames if the spec says so) and sum the centre/scale inputs.
/// Returns the number of kept frames.
///
/// # Errors
/// [`Error::Alloc`] if `sel` cannot grow to T·P·C values.
#[inline(always)]
fn select<S: Sample>(
    clip: ArrayView3<'_, S>,
    spec: &FeatureSpec,
    sel: &mut Vec<f64>,
    prefetch: &mut PrefetchPlan,
    sums: &mut CentreSums,
) -> Result<usize> {
    match spec.coords() {
        2 => select_c::<S, 2>(clip, spec, sel, prefetch, sums),
        _ => select_c::<S, 3>(clip, spec, sel, prefetch, sums),
    }
}

#[inline(always)]
fn select_c<S: Sample, const C: usize>(
    clip: ArrayView3<'_, S>,
    spec: &FeatureSpec,
    sel: &mut Vec<f64>,
    prefetch: &mut PrefetchPlan,
    sums: &mut CentreSums,
) -> Result<usize> {
    let t_in = clip.shape()[0];
    let pc = spec.num_points() * C;
    // Grow only: every value that is read later is written first.
    let need = crate::alloc::checked_len(&[t_in, pc], 8, "the selected values of a clip")?;
    crate::alloc::grow(sel, need, f64::NAN, "the selected values of a clip")?;
    let drop = spec.drop_empty_frames();
    let needs_norm = spec.normalize() != Normalize::None;
    let mut kept = 0;
    let (base, strides) = (clip.as_ptr(), clip.strides());
    if t_in > PREFETCH_AHEAD {
        prefetch.update(spec, strides[1], strides[2], std::mem::size_of::<S>(), C);
    }
    let lines: &[isize] = if prefetch.ready {
        &prefetch.offsets
    } else {
        &[]
    };
    for (t, frame) in clip.axis_iter(Axis(0)).enumerate() {
        if t + PREFETCH_AHEAD < t_in {
            let ahead = base.wrapping_offset((t + PREFETCH_AHEAD) as isize * strides[0]);
            prefetch_frame(ahead.cast::<u8>(), lines);
        }
        let frame = FrameView::of(frame);
        let row = &mut sel[kept * pc..(kept + 1) * pc];
        // A plain gather (values as they are, ±inf included) with no per-value test: later
        // passes treat any non-finite value as missing, and count the present ones.
        frame.gather::<C>(spec, row);
        if drop && !row.iter().any(|v| is_present(*v)) {
            continue;
        }
        if needs_norm {
            let (centre, dist) = frame_norm_inputs(|l, ch| finite_or_nan(frame.get(l, ch)), spec);
            sums.add(&centre, dist);
        }
        kept += 1;
    }
    Ok(kept)
}

/// How many frames ahead of the gather [`prefetch_frame`] asks for the input's cache lines
/// (measured on AMD Zen 4 with clips rotating through the cache: 4 to 8 frames are about
/// equally good, 12 and more fall behind as the lines start to leave L2 before use).
const PREFETCH_AHEAD: usize = 6;

/// Ask for the cache lines of the frame at `frame` that the gather will read (`lines`: byte
/// offsets from [`PrefetchPlan`]): the gather is scattered within a frame, which the
/// hardware prefetchers do not follow, so without this hint a clip that is not in cache
/// costs one memory latency after another. Into L2, not L1: a burst of L1 prefetches fills
/// the L1 miss buffers and stalls the gather (on Zen 4, a clip rotating through the cache
/// took 1.5× a full copy of it with L1 prefetches and 1.15× with L2 ones). Only computes
/// addresses (no access), so any strides are fine.
#[inline(always)]
fn prefetch_frame(frame: *const u8, lines: &[isize]) {
    #[cfg(target_arch = "x86_64")]
    for &o in lines {
        crate::simd::prefetch_l2(frame.wrapping_offset(o));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (frame, lines);
}

/// Whether a selected value is present (finite). Written as a float compare (NaN compares
/// false) so that it vectorises.
#[inline(always)]
fn is_present(v: f64) -> bool {
    v.abs() < f64::INFINITY
}

/// The portable gather of [`Sample::gather`]: landmark by landmark in address order (no
/// loop-carried state, so the loads of a frame overlap).
#[inline(always)]
fn gather_portable<S: Sample, const C: usize>(frame: &[S], spec: &FeatureSpec, row: &mut [f64]) {
    let (points, _) = frame.as_chunks::<NUM_COORDS>();
    let (row, _) = row.as_chunks_mut::<C>();
    for &(l, p) in spec.gather_order() {
        let src = &points[l];
        let dst = &mut row[p];
        for ch in 0..C {
            dst[ch] = src[ch].to_f64();
        }
    }
}

#[inline(always)]
pub(crate) fn finite_or_nan(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        f64::NAN
    }
}

/// reference_rms scale: s_c = sqrt(NaN-mean over t, p of (x − m_c)²), with fallbacks.
/// `rows` is (T, P, C) flattened, non-finite = missing.
#[inline(always)]
fn rms_scale(rows: &[f64], c: usize, centre: &[f64; NUM_COORDS]) -> [f64; NUM_COORDS] {
    let (sq, count) = match c {
        2 => {
            let (sq, n) = sum_sq_dev::<2, 16>(rows, centre);
            (pad3(sq), pad3(n))
        }
        _ => sum_sq_dev::<3, 24>(rows, centre),
    };
    let mut s = [SCALE_FALLBACK; NUM_COORDS];
    for ch in 0..c {
        if count[ch] > 0.0 {
            s[ch] = scale_or_fallback((sq[ch] / count[ch]).sqrt());
        }
    }
    s
}

fn pad3<const C: usize>(x: [f64; C]) -> [f64; NUM_COORDS] {
    std::array::from_fn(|i| if i < C { x[i] } else { 0.0 })
}

/// Σ over present values of (x − m_c)² and the number of present values, per channel.
///
/// Summed over blocks of W = k·C values in W independent accumulators (lane i holds
/// channel i mod C), combined at the end: the additions do not wait on each other and the
/// block is as wide as the vector registers allow.
#[inline(always)]
fn sum_sq_dev<const C: usize, const W: usize>(
    rows: &[f64],
    centre: &[f64; NUM_COORDS],
) -> ([f64; C], [f64; C]) {
    debug_assert_eq!(W % C, 0);
    let m: [f64; W] = std::array::from_fn(|i| centre[i % C]);
    let mut sq = [0.0f64; W];
    let mut n = [0u64; W];
    let (blocks, rest) = rows.as_chunks::<W>();
    for x in blocks {
        for i in 0..W {
            let d = x[i] - m[i];
            let present = is_present(d);
            sq[i] += if present { d * d } else { 0.0 };
            n[i] += u64::from(present);
        }
    }
    for (i, &x) in rest.iter().enumerate() {
        let d = x - m[i];
        if is_present(d) {
            sq[i] += d * d;
            n[i] += 1;
        }
    }
    let mut sq_c = [0.0f64; C];
    let mut n_c = [0.0f64; C];
    for i in 0..W {
        sq_c[i % C] += sq[i];
        n_c[i % C] += n[i] as f64;
    }
    (sq_c, n_c)
}

pub(crate) fn affine_of(spec: &FeatureSpec, sums: &CentreSums, scale: [f64; NUM_COORDS]) -> Affine {
    if spec.normalize() == Normalize::None {
        return Affine::IDENTITY;
    }
    let mut inv = [1.0; NUM_COORDS];
    for ch in 0..NUM_COORDS {
        inv[ch] = 1.0 / scale[ch];
    }
    Affine {
        centre: sums.centre(),
        inv_scale: inv,
    }
}

/// Normalise `src` rows ((n, P, C)) into `dst`.
#[inline(always)]
fn normalize_rows_c<const C: usize>(src: &[f64], dst: &mut [f64], a: &Affine) {
    for (d, s) in dst.chunks_exact_mut(C).zip(src.chunks_exact(C)) {
        for ch in 0..C {
            d[ch] = (s[ch] - a.centre[ch]) * a.inv_scale[ch];
        }
    }
}

/// Preprocess one clip into caller-provided output (`feats`: max_len × F, `mask`: max_len)
/// with caller-provided working memory (for a caller that keeps one [`Scratch`] per
/// thread itself; [`preprocess_into`] uses a thread-local one). Every output value is
/// written (the buffers may hold anything before).
///
/// # Errors
/// [`Error::Shape`] if the clip is not (T, 543, 3) or an output buffer has the wrong
/// length; [`Error::Alloc`] if the scratch memory cannot grow.
pub fn preprocess_with_scratch(
    clip: ClipRef<'_>,
    spec: &FeatureSpec,
    feats: &mut [f32],
    mask: &mut [f32],
    scratch: &mut Scratch,
) -> Result<()> {
    match clip {
        ClipRef::F32(x) => preprocess_isa(Isa::active(), x, spec, feats, mask, scratch),
        ClipRef::F64(x) => preprocess_isa(Isa::active(), x, spec, feats, mask, scratch),
    }
}

/// The vector instruction set the hot path of [`preprocess_into`] (and of
/// [`crate::Stream::features_into`]) runs with: the package is
/// built for the baseline of its target, so that one wheel runs everywhere, and the wider
/// paths are the same code compiled with more features, chosen at run time
/// ([`Isa::active`]). Every path gives bit-identical results (no fused multiply-add, the
/// same summation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// The target's baseline (SSE2 on x86-64, NEON on aarch64).
    Baseline,
    /// x86-64 with AVX2.
    Avx2,
    /// x86-64 with AVX-512 (F, BW, DQ, VL).
    Avx512,
}

impl Isa {
    /// The instruction set in use, chosen once per process from the environment:
    /// * `SIGNRT_DISABLE_SIMD` set to anything but `0` or nothing: [`Isa::Baseline`] (for
    ///   ruling the wide paths out when chasing a problem);
    /// * else `SIGNRT_SIMD` = `baseline`, `avx2` or `avx512`: that set, or the widest the CPU
    ///   has if it has not that one (e.g. `SIGNRT_SIMD=avx2` on an AVX-512 machine measures
    ///   what an AVX2-only machine runs); an unknown name is ignored;
    /// * else [`Isa::detect`].
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| {
            let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            if var("SIGNRT_DISABLE_SIMD").is_some_and(|v| v != "0") {
                return Isa::Baseline;
            }
            let cpu = Isa::detect();
            match var("SIGNRT_SIMD").and_then(|v| Isa::from_name(&v)) {
                Some(wanted) => wanted.min(cpu),
                None => cpu,
            }
        })
    }

    /// The set of a lower-case name (`baseline`, `avx2`, `avx512`).
    pub fn from_name(name: &str) -> Option<Isa> {
        [Isa::Baseline, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .find(|isa| isa.name() == name.trim().to_ascii_lowercase())
    }

    /// The widest instruction set this CPU supports (detected once per process).
    pub fn detect() -> Isa {
        static CPU: OnceLock<Isa> = OnceLock::new();
        *CPU.get_or_init(Isa::probe)
    }

    fn probe() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }

    /// Lower-case name (`baseline`, `avx2`, `avx512`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Baseline => "baseline",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

/// [`preprocess_into`] on a given instruction set; one the CPU does not support runs the
/// baseline path.
pub(crate) fn preprocess_isa<S: Sample>(
    isa: Isa,
    clip: ArrayView3<'_, S>,
    spec: &FeatureSpec,
    feats: &mut [f32],
    mask: &mut [f32],
    scratch: &mut Scratch,
) -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    {
        let detected = Isa::detect();
        if isa == Isa::Avx512 && detected == Isa::Avx512 {
            // SAFETY: the CPU supports every feature the function is compiled with.
            return unsafe { preprocess_avx512(clip, spec, feats, mask, scratch) };
        }
        if isa == Isa::Avx2 && detected != Isa::Baseline {
            // SAFETY: as above (AVX-512 CPUs have AVX2).
            return unsafe { preprocess_avx2(clip, spec, feats, mask, scratch) };
        }
    }
    let _ = isa;
    preprocess_body::<S, false>(clip, spec, feats, mask, scratch)
}

/// `unsafe fn $name`: [`preprocess_body`] compiled with the target features `$features`
/// (safe to call only on a CPU that has them).
macro_rules! isa_variant {
    ($name:ident, $features:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<S: Sample>(
            clip: ArrayView3<'_, S>,
            spec: &FeatureSpec,
            feats: &mut [f32],
            mask: &mut [f32],
            scratch: &mut Scratch,
        ) -> Result<()> {
            preprocess_body::<S, true>(clip, spec, feats, mask, scratch)
        }
    };
}

isa_variant!(preprocess_avx2, "avx2");
isa_variant!(preprocess_avx512, "avx512f,avx512bw,avx512dq,avx512vl");

/// [`emit`] on a given instruction set (the output pass of [`crate::Stream::features_into`]);
/// one the CPU does not support runs the baseline path.
pub(crate) fn emit_isa<'a>(
    isa: Isa,
    row: impl Fn(usize) -> &'a [f64],
    rows: usize,
    affine: &Affine,
    spec: &FeatureSpec,
    feats: &mut [f32],
    mask: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        let detected = Isa::detect();
        if isa == Isa::Avx512 && detected == Isa::Avx512 {
            // SAFETY: the CPU supports every feature the function is compiled with.
            return unsafe { emit_avx512(row, rows, affine, spec, feats, mask) };
        }
        if isa == Isa::Avx2 && detected != Isa::Baseline {
            // SAFETY: as above (AVX-512 CPUs have AVX2).
            return unsafe { emit_avx2(row, rows, affine, spec, feats, mask) };
        }
    }
    let _ = isa;
    emit(row, rows, affine, spec, feats, mask)
}

/// `unsafe fn $name`: [`emit`] compiled with the target features `$features`.
macro_rules! emit_variant {
    ($name:ident, $features:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<'a>(
            row: impl Fn(usize) -> &'a [f64],
            rows: usize,
            affine: &Affine,
            spec: &FeatureSpec,
            feats: &mut [f32],
            mask: &mut [f32],
        ) {
            emit_on::<true>(row, rows, affine, spec, feats, mask)
        }
    };
}

emit_variant!(emit_avx2, "avx2");
emit_variant!(emit_avx512, "avx512f,avx512bw,avx512dq,avx512vl");

/// The whole of [`preprocess_into`], inlined into each instruction-set variant.
#[inline(always)]
fn preprocess_body<S: Sample, const AVX: bool>(
    clip: ArrayView3<'_, S>,
    spec: &FeatureSpec,
    feats: &mut [f32],
    mask: &mut [f32],
    scratch: &mut Scratch,
) -> Result<()> {
    check_clip_shape(clip.shape())?;
    let l = spec.max_len();
    let f = spec.num_features();
    if feats.len() != l * f || mask.len() != l {
        return Err(Error::Shape(format!(
            "output buffers must hold ({l}, {f}) features and ({l},) mask values, got {} and {}",
            feats.len(),
            mask.len()
        )));
    }
    let c = spec.coords();
    let pc = spec.num_points() * c;
    let mut sums = CentreSums::default();
    let Scratch {
        sel,
        fitted,
        prefetch,
    } = scratch;
    let kept = select(clip, spec, sel, prefetch, &mut sums)?;
    let sel = &sel[..kept * pc];

    // 3. statistics over the kept frames
    let scale = match spec.normalize() {
        Normalize::None => [1.0; NUM_COORDS],
        Normalize::ReferenceRms { .. } => rms_scale(sel, c, &sums.centre()),
        Normalize::Shoulders => [sums.shoulder_scale(); NUM_COORDS],
    };
    let affine = affine_of(spec, &sums, scale);

    // 4. fit (resampling normalises the rows it interpolates; otherwise emit does)
    if kept > l && spec.fit() == Fit::Resample {
        crate::alloc::grow(fitted, l * pc, 0.0, "the resampled values of a clip")?;
        resample_normalized(sel, kept, l, pc, c, &affine, fitted);
        let fitted = &fitted[..];
        emit_on::<AVX>(
            |t| &fitted[t * pc..(t + 1) * pc],
            l,
            &Affine::IDENTITY,
            spec,
            feats,
            mask,
        );
    } else {
        // 5–8
        emit_on::<AVX>(
            |t| &sel[t * pc..(t + 1) * pc],
            kept.min(l),
            &affine,
            spec,
            feats,
            mask,
        );
    }
    Ok(())
}

/// Linear interpolation of `t` normalised rows onto `l` positions `i·(t−1)/(l−1)`; an exact
/// position takes its own frame (no interpolation with the next one).
#[inline(always)]
fn resample_normalized(
    sel: &[f64],
    t: usize,
    l: usize,
    pc: usize,
    c: usize,
    a: &Affine,
    out: &mut [f64],
) {
    // The channel of a value as a compile-time pattern (no division per value).
    match c {
        2 => resample_normalized_c::<2>(sel, t, l, pc, a, out),
        _ => resample_normalized_c::<3>(sel, t, l, pc, a, out),
    }
}

#[inline(always)]
fn resample_normalized_c<const C: usize>(
    sel: &[f64],
    t: usize,
    l: usize,
    pc: usize,
    a: &Affine,
    out: &mut [f64],
) {
    let m: [f64; C] = std::array::from_fn(|ch| a.centre[ch]);
    let inv: [f64; C] = std::array::from_fn(|ch| a.inv_scale[ch]);
    let denom = (l.max(2) - 1) as f64;
    let span = (t - 1) as f64;
    for i in 0..l {
        let pos = i as f64 * span / denom;
        let lo_f = pos.floor();
        let lo = lo_f as usize;
        let w = pos - lo_f;
        let hi = (lo + 1).min(t - 1);
        let dst = &mut out[i * pc..(i + 1) * pc];
        let xa = &sel[lo * pc..(lo + 1) * pc];
        if w > 0.0 {
            let xb = &sel[hi * pc..(hi + 1) * pc];
            let w0 = 1.0 - w;
            for ((d, xa), xb) in dst
                .chunks_exact_mut(C)
                .zip(xa.chunks_exact(C))
                .zip(xb.chunks_exact(C))
            {
                for ch in 0..C {
                    let na = (xa[ch] - m[ch]) * inv[ch];
                    let nb = (xb[ch] - m[ch]) * inv[ch];
                    d[ch] = na * w0 + nb * w;
                }
            }
        } else {
            normalize_rows_c::<C>(xa, dst, a);
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

/// Run `f` with this thread's scratch memory (fresh memory if it is already in use).
fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> T) -> T {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut Scratch::new()),
    })
}

/// Preprocess one clip into caller-provided output (`feats`: max_len × F, `mask`:
/// max_len), with this thread's reusable scratch memory ([`preprocess_with_scratch`]
/// takes the scratch memory from the caller instead). Every output value is written (the
/// buffers may hold anything before).
///
/// # Errors
/// [`Error::Shape`] if the clip is not (T, 543, 3) or an output buffer has the wrong
/// length; [`Error::Alloc`] if the scratch memory cannot grow.
pub fn preprocess_into(
    clip: ClipRef<'_>,
    spec: &FeatureSpec,
    feats: &mut [f32],
    mask: &mut [f32],
) -> Result<()> {
    with_scratch(|scratch| preprocess_with_scratch(clip, spec, feats, mask, scratch))
}

/// Preprocess one clip: `(features (max_len × F), mask (max_len))`.
///
/// # Errors
/// [`Error::Shape`] if the clip is not (T, 543, 3); [`Error::Alloc`] if the output or the
/// working memory cannot be allocated.
pub fn preprocess(clip: ClipRef<'_>, spec: &FeatureSpec) -> Result<(Vec<f32>, Vec<f32>)> {
    let (mut feats, mut mask) = output_buffers(1, spec)?;
    preprocess_into(clip, spec, &mut feats, &mut mask)?;
    Ok((feats, mask))
}

/// Zeroed (B, max_len, F) features and (B, max_len) mask, allocated fallibly.
fn output_buffers(b: usize, spec: &FeatureSpec) -> Result<(Vec<f32>, Vec<f32>)> {
    let (l, f) = (spec.max_len(), spec.num_features());
    let feats = crate::alloc::zeroed(&[b, l, f], "the features")?;
    let mask = crate::alloc::zeroed(&[b, l], "the mask")?;
    Ok((feats, mask))
}

/// Preprocess many clips (of different lengths) in parallel into one preallocated
/// output: `feats` is (B, max_len, F) and `mask` (B, max_len), both flattened. Every output
/// value is written.
///
/// # Errors
/// [`Error::Shape`] naming the first bad clip, or if the output lengths are wrong.
pub fn preprocess_batch_into(
    clips: &[ClipRef<'_>],
    spec: &FeatureSpec,
    feats: &mut [f32],
    mask: &mut [f32],
) -> Result<()> {
    let l = spec.max_len();
    let lf = crate::alloc::checked_len(&[l, spec.num_features()], 4, "the features of a clip")?;
    for (i, clip) in clips.iter().enumerate() {
        clip.num_frames()
            .map_err(|e| Error::Shape(format!("clip {i}: {e}")))?;
    }
    if feats.len() != clips.len().saturating_mul(lf) || mask.len() != clips.len().saturating_mul(l)
    {
        return Err(Error::Shape(format!(
            "batch output buffers have {} and {} values, expected {} and {}",
            feats.len(),
            mask.len(),
            clips.len() * lf,
            clips.len() * l
        )));
    }
    if clips.is_empty() {
        return Ok(());
    }
    if clips.len() == 1 || lf == 0 {
        let mut scratch = Scratch::new();
        for (i, clip) in clips.iter().enumerate() {
            preprocess_with_scratch(
                *clip,
                spec,
                &mut feats[i * lf..(i + 1) * lf],
                &mut mask[i * l..(i + 1) * l],
                &mut scratch,
            )?;
        }
        return Ok(());
    }
    let run = || {
        // Each worker thread reuses its own scratch memory (thread-local, kept across calls).
        feats
            .par_chunks_mut(lf)
            .zip(mask.par_chunks_mut(l))
            .zip(clips.par_iter())
            .try_for_each(|((f, m), clip)| {
                with_scratch(|scratch| preprocess_with_scratch(*clip, spec, f, m, scratch))
            })
    };
    match pool() {
        Some(pool) => pool.install(run),
        None => {
            // No thread could be started: one thread, same results.
            let mut scratch = Scratch::new();
            for (i, clip) in clips.iter().enumerate() {
                preprocess_with_scratch(
                    *clip,
                    spec,
                    &mut feats[i * lf..(i + 1) * lf],
                    &mut mask[i * l..(i + 1) * l],
                    &mut scratch,
                )?;
            }
            Ok(())
        }
    }
}

/// The thread pool of batch preprocessing, one per process.
///
/// A pool's worker threads do not survive `fork()`: in a child process (a PyTorch
/// DataLoader worker, a `multiprocessing` fork) work sent to the parent's pool would wait
/// forever. The pool is therefore keyed by process id: a child builds its own on first use
/// and leaks the parent's (whose threads are gone) without touching it. Its size follows
/// `RAYON_NUM_THREADS`, else the number of CPUs. `None` if no thread could be started.
fn pool() -> Option<Arc<rayon::ThreadPool>> {
    static POOL: Mutex<Option<(u32, Arc<rayon::ThreadPool>)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut guard = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((owner, pool)) = guard.as_ref() {
        if *owner == pid {
            return Some(Arc::clone(pool));
        }
    }
    if let Some(inherited) = guard.take() {
        std::mem::forget(inherited);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("signrt-pre-{i}"))
        .build()
        .ok()
        .map(Arc::new)?;
    *guard = Some((pid, Arc::clone(&pool)));
    Some(pool)
}

/// Preprocess many clips in parallel: `(features (B × max_len × F), mask (B × max_len))`.
///
/// # Errors
/// [`Error::Shape`] naming the first bad clip; [`Error::Alloc`] if the output cannot be
/// allocated.
pub fn preprocess_batch(clips: &[ClipRef<'_>], spec: &FeatureSpec) -> Result<(Vec<f32>, Vec<f32>)> {
    let (mut feats, mut mask) = output_buffers(clips.len(), spec)?;
    preprocess_batch_into(clips, spec, &mut feats, &mut mask)?;
    Ok((feats, mask))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    /// A (T, 543, 3) clip of NaN.
    fn empty_clip(t: usize) -> Vec<f32> {
        vec![f32::NAN; t * FRAME_LEN]
    }

    fn set(clip: &mut [f32], t: usize, lm: usize, xyz: [f32; 3]) {
        clip[t * FRAME_LEN + lm * 3..t * FRAME_LEN + lm * 3 + 3].copy_from_slice(&xyz);
    }

    fn spec(
        landmarks: Vec<usize>,
        normalize: Normalize,
        max_len: usize,
        lags: Vec<usize>,
    ) -> FeatureSpec {
        spec_fit(landmarks, normalize, max_len, Fit::Truncate, lags)
    }

    /// A 2-coordinate spec that drops empty frames and fills with 0.
    fn spec_fit(
        landmarks: Vec<usize>,
        normalize: Normalize,
        max_len: usize,
        fit: Fit,
        lags: Vec<usize>,
    ) -> FeatureSpec {
        FeatureSpec::new(landmarks, 2, normalize, max_len, fit, lags, true, 0.0).unwrap()
    }

    fn run(clip: &[f32], spec: &FeatureSpec) -> (Vec<f32>, Vec<f32>) {
        preprocess(ClipRef::from_f32(clip).unwrap(), spec).unwrap()
    }

    /// A clip of values in [-1, 2) with ~15 % NaN, some ±inf and every 7th frame empty.
    fn noisy_clip(t: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut clip = vec![0.0f32; t * FRAME_LEN];
        for (i, v) in clip.iter_mut().enumerate() {
            let u = next();
            *v = if (i / FRAME_LEN) % 7 == 3 || u < 0.15 {
                f32::NAN
            } else if u < 0.16 {
                f32::INFINITY
            } else if u < 0.17 {
                f32::NEG_INFINITY
            } else {
                (next() * 3.0 - 1.0) as f32
            };
        }
        clip
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let specs = [
            fixtures::islr118(64, Fit::Truncate),
            fixtures::islr118(32, Fit::Resample),
            fixtures::hands_pose(16, Fit::Resample),
            FeatureSpec::new(
                vec![0, 17, 468, 522, 500],
                3,
                Normalize::ReferenceRms { reference: 17 },
                8,
                Fit::Truncate,
                vec![1, 2, 5],
                false,
                -1.0,
            )
            .unwrap(),
        ];
        for (i, spec) in specs.iter().enumerate() {
            let (l, f) = (spec.max_len(), spec.num_features());
            for t in [0usize, 1, 2, 7, 40, 130] {
                let clip32 = noisy_clip(t, (i * 1000 + t) as u64);
                let clip64: Vec<f64> = clip32.iter().map(|&v| f64::from(v)).collect();
                let mut scratch = Scratch::new();
                let mut run = |isa: Isa, clip: ClipRef<'_>| {
                    let (mut feats, mut mask) = (vec![7.0f32; l * f], vec![7.0f32; l]);
                    let (fs, ms, sc) = (&mut feats[..], &mut mask[..], &mut scratch);
                    match clip {
                        ClipRef::F32(x) => preprocess_isa(isa, x, spec, fs, ms, sc),
                        ClipRef::F64(x) => preprocess_isa(isa, x, spec, fs, ms, sc),
                    }
                    .unwrap();
                    (feats, mask)
                };
                for clip in [
                    ClipRef::from_f32(&clip32).unwrap(),
                    ClipRef::from_f64(&clip64).unwrap(),
                ] {
                    let want = run(Isa::Baseline, clip);
                    assert!(want.0.iter().all(|v| v.is_finite()));
                    for isa in [Isa::Avx2, Isa::Avx512] {
                        let got = run(isa, clip);
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got.0), bits(&want.0), "spec {i}, T {t}, {isa:?}");
                        assert_eq!(got.1, want.1, "spec {i}, T {t}, {isa:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_layout_gives_the_same_bits() {
        use ndarray::{s, Array3, ShapeBuilder};
        let specs = [
            fixtures::islr118(16, Fit::Resample),
            fixtures::hands_pose(8, Fit::Truncate),
        ];
        for (i, spec) in specs.iter().enumerate() {
            for t in [0usize, 1, 5, 40] {
                let flat = noisy_clip(t, (i * 77 + t) as u64);
                let c = ClipRef::from_f32(&flat).unwrap();
                let want = preprocess(c, spec).unwrap();
                let a =
                    Array3::from_shape_vec((t, NUM_LANDMARKS, NUM_COORDS), flat.clone()).unwrap();
                // Fortran order, the same values.
                let mut f = Array3::<f32>::zeros((t, NUM_LANDMARKS, NUM_COORDS).f());
                f.assign(&a);
                // pandas' layout: each coordinate a column of T·543 values.
                let mut cols = Array3::<f64>::zeros((t, NUM_LANDMARKS, NUM_COORDS).f());
                cols.assign(&a.mapv(f64::from));
                // reversed twice: frames in order again, read through negative strides.
                let rev = a.slice(s![..;-1, ..;-1, ..]).to_owned();
                let rev_view = rev.slice(s![..;-1, ..;-1, ..]);
                // every second frame of a clip twice as long, each value in its own slot.
                let mut wide = Array3::<f32>::zeros((2 * t, NUM_LANDMARKS, 2 * NUM_COORDS));
                wide.slice_mut(s![..;2, .., ..;2]).assign(&a);
                let views = [
                    ClipRef::F32(f.view()),
                    ClipRef::F64(cols.view()),
                    ClipRef::F32(rev_view),
                    ClipRef::F32(wide.slice(s![..;2, .., ..;2])),
                ];
                for (k, v) in views.into_iter().enumerate() {
                    let got = preprocess(v, spec).unwrap();
                    assert_eq!(got.1, want.1, "spec {i}, T {t}, layout {k}");
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got.0), bits(&want.0), "spec {i}, T {t}, layout {k}");
                }
            }
        }
    }

    #[test]
    fn the_prefetch_plan_covers_exactly_the_lines_the_gather_reads() {
        use std::collections::BTreeSet;
        let specs = [
            fixtures::islr118(16, Fit::Truncate),
            fixtures::hands_pose(8, Fit::Truncate),
            FeatureSpec::new(
                vec![542, 0, 17, 100, 101, 468],
                3,
                Normalize::ReferenceRms { reference: 300 },
                8,
                Fit::Truncate,
                vec![1],
                true,
                0.0,
            )
            .unwrap(),
        ];
        // (landmark stride, coordinate stride, element size): C f32 / f64, Fortran order
        // of a 7-frame clip, pandas' columns, reversed landmarks.
        let layouts = [
            (3isize, 1isize, 4usize),
            (3, 1, 8),
            (7, 7 * 543, 4),
            (1, 900, 8),
            (-3, 1, 4),
        ];
        let mut plan = PrefetchPlan::default();
        for spec in &specs {
            let c = spec.coords();
            let mut read: Vec<usize> = spec.gather_order().iter().map(|&(l, _)| l).collect();
            read.extend(match spec.normalize() {
                Normalize::ReferenceRms { reference } => vec![reference],
                Normalize::Shoulders => SHOULDERS.to_vec(),
                Normalize::None => vec![],
            });
            for &(s1, s2, size) in &layouts {
                plan.update(spec, s1, s2, size, c);
                assert!(plan.ready);
                for align in (0..64).step_by(size) {
                    // A frame whose first element sits `align` bytes into a line, far
                    // enough from 0 that negative strides stay positive.
                    let base = 1isize << 20 | align as isize;
                    let want: BTreeSet<isize> = read
                        .iter()
                        .flat_map(|&l| (0..c as isize).map(move |ch| (l as isize, ch)))
                        .flat_map(|(l, ch)| {
                            let a = base + (l * s1 + ch * s2) * size as isize;
                            [a >> 6, (a + size as isize - 1) >> 6]
                        })
                        .collect();
                    let got: BTreeSet<isize> =
                        plan.offsets.iter().map(|o| (base + o) >> 6).collect();
                    assert_eq!(got, want, "{s1} {s2} {size} at {align}");
                }
            }
        }
    }

    #[test]
    fn a_clip_of_the_wrong_shape_is_a_shape_error() {
        let values = vec![0.0f32; 2 * FRAME_LEN];
        let v = ndarray::ArrayView3::from_shape((2, 181, 9), &values[..]).unwrap();
        let s = fixtures::islr118(4, Fit::Truncate);
        assert!(matches!(
            preprocess(ClipRef::F32(v), &s),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            ClipRef::from_f32(&values[..10]),
            Err(Error::Shape(_))
        ));
    }

    #[test]
    fn an_oversized_request_is_an_alloc_error() {
        // The largest spec validation accepts (543 landmarks, 3 coordinates, 16 lags,
        // max_len 1211: 134 MB of features a clip) against a 64 MiB allocation limit.
        let lags: Vec<usize> = (1..=crate::MAX_LAGS).collect();
        let all: Vec<usize> = (0..NUM_LANDMARKS).collect();
        let s = FeatureSpec::new(
            all,
            3,
            Normalize::None,
            1211,
            Fit::Truncate,
            lags,
            true,
            0.0,
        )
        .unwrap();
        let clip = vec![0.5f32; FRAME_LEN];
        let c = ClipRef::from_f32(&clip).unwrap();
        let prev = crate::alloc::set_limit(1 << 26);
        let got = preprocess(c, &s);
        let batch = preprocess_batch(
            &vec![ClipRef::from_f32(&[]).unwrap(); 40_000],
            &fixtures::islr118(64, Fit::Truncate),
        );
        crate::alloc::set_limit(prev);
        assert!(matches!(got, Err(Error::Alloc(_))), "{got:?}");
        assert!(matches!(batch, Err(Error::Alloc(_))));
    }

    #[test]
    fn the_active_instruction_set_is_one_this_cpu_has() {
        let (active, cpu) = (Isa::active(), Isa::detect());
        assert!(active == cpu || active == Isa::Baseline);
        assert!(["baseline", "avx2", "avx512"].contains(&active.name()));
    }

    #[test]
    fn zero_frames_give_padding_only() {
        let s = fixtures::islr118(16, Fit::Truncate);
        let (f, m) = run(&[], &s);
        assert_eq!(f.len(), 16 * 708);
        assert!(f.iter().all(|v| *v == 0.0));
        assert!(m.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn all_missing_clip_has_no_real_frame() {
        let s = fixtures::islr118(8, Fit::Resample);
        let (f, m) = run(&empty_clip(20), &s);
        assert!(f.iter().all(|v| *v == 0.0));
        assert!(m.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn one_frame_without_normalisation() {
        let s = spec(vec![5, 7], Normalize::None, 4, vec![1]);
        let mut c = empty_clip(1);
        set(&mut c, 0, 5, [0.25, 0.5, 9.0]);
        set(&mut c, 0, 7, [1.0, f32::NAN, 9.0]);
        let (f, m) = run(&c, &s);
        // point-major: x, y, dx, dy per point
        assert_eq!(&f[..8], &[0.25, 0.5, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        assert!(f[8..].iter().all(|v| *v == 0.0));
        assert_eq!(m, vec![1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn reference_rms_by_hand() {
        // Reference 0 at (0.5, 0.5) and (0.7, 0.3): centre (0.6, 0.4).
        let s = spec(
            vec![0, 1],
            Normalize::ReferenceRms { reference: 0 },
            4,
            vec![],
        );
        let mut c = empty_clip(2);
        set(&mut c, 0, 0, [0.5, 0.5, 0.0]);
        set(&mut c, 1, 0, [0.7, 0.3, 0.0]);
        set(&mut c, 0, 1, [0.6, 0.8, 0.0]);
        set(&mut c, 1, 1, [f32::NAN, f32::NAN, f32::NAN]);
        let (f, _) = run(&c, &s);
        let cx = (0.5f64 + 0.7) / 2.0;
        let cy = (0.5f64 + 0.3) / 2.0;
        let xs = [0.5f32, 0.6, 0.7].map(f64::from);
        let ys = [0.5f32, 0.8, 0.3].map(f64::from);
        let sx = (xs.iter().map(|v| (v - cx).powi(2)).sum::<f64>() / 3.0).sqrt();
        let sy = (ys.iter().map(|v| (v - cy).powi(2)).sum::<f64>() / 3.0).sqrt();
        let want = [
            (f64::from(0.5f32) - cx) / sx,
            (f64::from(0.5f32) - cy) / sy,
            (f64::from(0.6f32) - cx) / sx,
            (f64::from(0.8f32) - cy) / sy,
        ];
        for (g, w) in f[..4].iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-6, "{g} vs {w}");
        }
        // Point 1 is missing in frame 1 -> nan_fill (0).
        assert_eq!(f[2 * 2 + 2], 0.0);
        assert_eq!(f[2 * 2 + 3], 0.0);
    }

    #[test]
    fn reference_missing_falls_back_to_half_and_tiny_scale_to_one() {
        let s = spec(
            vec![3],
            Normalize::ReferenceRms { reference: 17 },
            2,
            vec![],
        );
        let mut c = empty_clip(2);
        set(&mut c, 0, 3, [0.5, 0.5, 0.0]);
        set(&mut c, 1, 3, [0.5, 0.5, 0.0]);
        let (f, _) = run(&c, &s);
        assert!(f.iter().all(|v| *v == 0.0), "{f:?}");
    }

    #[test]
    fn shoulders_by_hand() {
        let s = spec(vec![500, 501, 468], Normalize::Shoulders, 2, vec![]);
        let mut c = empty_clip(1);
        set(&mut c, 0, 500, [0.4, 0.5, 0.0]);
        set(&mut c, 0, 501, [0.6, 0.5, 0.0]);
        set(&mut c, 0, 468, [0.7, 0.9, 0.0]);
        let (f, _) = run(&c, &s);
        let d = f64::from(0.6f32) - f64::from(0.4f32);
        let cx = (f64::from(0.4f32) + f64::from(0.6f32)) / 2.0;
        let want = [
            (f64::from(0.4f32) - cx) / d,
            0.0,
            (f64::from(0.6f32) - cx) / d,
            0.0,
            (f64::from(0.7f32) - cx) / d,
            (f64::from(0.9f32) - 0.5) / d,
        ];
        for (g, w) in f[..6].iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-6, "{g} vs {w}");
        }
    }

    #[test]
    fn infinity_is_missing() {
        let s = fixtures::islr118(8, Fit::Truncate);
        let mut a = vec![0.3f32; 5 * FRAME_LEN];
        for (i, v) in a.iter_mut().enumerate() {
            *v = (i % 97) as f32 / 97.0;
        }
        let mut b = a.clone();
        for i in (0..a.len()).step_by(11) {
            a[i] = if i % 2 == 0 {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            };
            b[i] = f32::NAN;
        }
        assert_eq!(run(&a, &s), run(&b, &s));
        assert!(run(&a, &s).0.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn resample_takes_exact_positions_and_interpolates_between() {
        let mk = |t: usize| {
            let mut c = empty_clip(t);
            for i in 0..t {
                set(&mut c, i, 0, [i as f32, 10.0 * i as f32, 0.0]);
            }
            c
        };
        let s = spec_fit(vec![0], Normalize::None, 3, Fit::Resample, vec![]);
        // T = 5 onto 3: positions 0, 2, 4 (exact)
        let (f, m) = run(&mk(5), &s);
        assert_eq!(f, vec![0.0, 0.0, 2.0, 20.0, 4.0, 40.0]);
        assert_eq!(m, vec![1.0; 3]);
        // T = 4 onto 3: positions 0, 1.5, 3
        let (f, _) = run(&mk(4), &s);
        assert_eq!(f, vec![0.0, 0.0, 1.5, 15.0, 3.0, 30.0]);
        // max_len 1: the first frame
        let s1 = spec_fit(vec![0], Normalize::None, 1, Fit::Resample, vec![]);
        assert_eq!(run(&mk(4), &s1).0, vec![0.0, 0.0]);
        // truncate keeps the first frames
        let st = spec_fit(vec![0], Normalize::None, 3, Fit::Truncate, vec![]);
        assert_eq!(run(&mk(5), &st).0, vec![0.0, 0.0, 1.0, 10.0, 2.0, 20.0]);
    }

    #[test]
    fn resample_with_missing_neighbour_is_missing() {
        let mut c = empty_clip(4);
        for i in 0..4 {
            set(&mut c, i, 0, [i as f32, 1.0, 0.0]);
        }
        set(&mut c, 2, 0, [f32::NAN, 1.0, 0.0]);
        let s = FeatureSpec::new(
            vec![0],
            2,
            Normalize::None,
            3,
            Fit::Resample,
            vec![],
            true,
            -7.0,
        )
        .unwrap();
        let (f, _) = run(&c, &s);
        assert_eq!(f, vec![0.0, 1.0, -7.0, 1.0, 3.0, 1.0]);
    }

    #[test]
    fn motion_is_zero_past_the_end() {
        let mut c = empty_clip(3);
        for i in 0..3 {
            set(&mut c, i, 0, [(i * i) as f32, 0.0, 0.0]);
        }
        let s = spec(vec![0], Normalize::None, 5, vec![1, 2]);
        let (f, m) = run(&c, &s);
        // row: x, y, d1x, d1y, d2x, d2y
        assert_eq!(&f[0..6], &[0.0, 0.0, 1.0, 0.0, 4.0, 0.0]);
        assert_eq!(&f[6..12], &[1.0, 0.0, 3.0, 0.0, 0.0, 0.0]);
        assert_eq!(&f[12..18], &[4.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(f[18..].iter().all(|v| *v == 0.0));
        assert_eq!(m, vec![1.0, 1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn empty_frames_dropped_or_kept() {
        let mut c = empty_clip(3);
        set(&mut c, 0, 0, [1.0, 2.0, 0.0]);
        set(&mut c, 2, 0, [3.0, 4.0, 0.0]);
        let drop = spec(vec![0], Normalize::None, 4, vec![1]);
        let (f, m) = run(&c, &drop);
        assert_eq!(&f[..8], &[1.0, 2.0, 2.0, 2.0, 3.0, 4.0, 0.0, 0.0]);
        assert_eq!(m, vec![1.0, 1.0, 0.0, 0.0]);
        let keep = FeatureSpec::new(
            vec![0],
            2,
            Normalize::None,
            4,
            Fit::Truncate,
            vec![1],
            false,
            9.0,
        )
        .unwrap();
        let (f, m) = run(&c, &keep);
        assert_eq!(
            &f[..12],
            &[1.0, 2.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 3.0, 4.0, 0.0, 0.0]
        );
        assert_eq!(m, vec![1.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn output_stays_finite_for_huge_values() {
        let s = FeatureSpec::new(
            vec![0, 1],
            3,
            Normalize::None,
            4,
            Fit::Truncate,
            vec![1],
            true,
            0.0,
        )
        .unwrap();
        let mut c = empty_clip(2);
        set(&mut c, 0, 0, [f32::MAX, -f32::MAX, 1.0]);
        set(&mut c, 1, 0, [-f32::MAX, f32::MAX, 1.0]);
        let (f, _) = run(&c, &s);
        assert!(f.iter().all(|v| v.is_finite()));
        let s = fixtures::hands_pose(4, Fit::Truncate);
        let mut c = empty_clip(2);
        set(&mut c, 0, 500, [0.5, 0.5, 0.0]);
        set(&mut c, 0, 501, [0.5, 0.5, 0.0]);
        set(&mut c, 0, 468, [f32::MAX, 0.5, 0.0]);
        assert!(run(&c, &s).0.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn f32_and_f64_inputs_agree() {
        let s = fixtures::islr118(16, Fit::Resample);
        let a: Vec<f32> = (0..40 * FRAME_LEN)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        let b: Vec<f64> = a.iter().map(|v| f64::from(*v)).collect();
        assert_eq!(
            preprocess(ClipRef::from_f32(&a).unwrap(), &s).unwrap(),
            preprocess(ClipRef::from_f64(&b).unwrap(), &s).unwrap()
        );
    }

    #[test]
    fn batch_equals_per_clip_and_names_bad_clips() {
        let s = fixtures::islr118(16, Fit::Truncate);
        let clips: Vec<Vec<f32>> = (0..7)
            .map(|k| {
                (0..(k * 5) * FRAME_LEN)
                    .map(|i| ((i * 31 + k) % 113) as f32 / 113.0)
                    .collect()
            })
            .collect();
        let refs: Vec<ClipRef<'_>> = clips
            .iter()
            .map(|c| ClipRef::from_f32(c).unwrap())
            .collect();
        let (f, m) = preprocess_batch(&refs, &s).unwrap();
        let lf = 16 * s.num_features();
        for (i, c) in refs.iter().enumerate() {
            let (fi, mi) = preprocess(*c, &s).unwrap();
            assert_eq!(&f[i * lf..(i + 1) * lf], fi.as_slice());
            assert_eq!(&m[i * 16..(i + 1) * 16], mi.as_slice());
        }
        let bad = [
            ClipRef::from_f32(&clips[1]).unwrap(),
            ClipRef::F32(
                ndarray::ArrayView3::from_shape((1, 181, 9), &clips[1][..FRAME_LEN]).unwrap(),
            ),
        ];
        match preprocess_batch(&bad, &s) {
            Err(Error::Shape(msg)) => assert!(msg.starts_with("clip 1:"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(preprocess_batch(&[], &s).unwrap(), (vec![], vec![]));
    }
}
