//! Streaming window: the last W = max_len frames, with running normalisation statistics.
//!
//! [`Stream::push`] costs O(P·C): it stores the frame's selected values (f64) in a ring
//! buffer slot, together with the frame's own normalisation inputs (reference landmark or
//! shoulder midpoint/distance) and its per-channel partial sums (count, Σ(x − pivot),
//! Σ(x − pivot)²), and updates the window totals by adding the new frame's partials and
//! subtracting the evicted frame's. [`Stream::features`] then needs one pass over the window
//! (it has to write W·F output values anyway) and gives the same result as
//! [`crate::preprocess`] of the same frames (within f32 rounding).
//!
//! # Drift of the running sums
//! Adding and subtracting floating-point partials accumulates rounding error without bound
//! over a long stream, and one frame of huge values (an outlier ×1e8) entering and leaving
//! the window would take the others' precision with it. Three measures keep the totals
//! exact to a few ulps of the window:
//! * **Compensated totals**: every window total is a TwoSum pair (sum + running error), so
//!   a term many orders of magnitude above the rest cancels exactly when it is evicted.
//! * **Periodic exact recomputation**: every W pushes the totals are rebuilt from the
//!   per-slot partials (O(W·C), amortised O(C) per push), so the error never covers more
//!   than 2·W add/subtract steps. Counts are integers and never drift.
//! * **Pivoting**: the squared sums are taken about a per-channel pivot near the data
//!   (Σ(x − p)² rather than Σx²), so that turning them into Σ(x − m)² does not cancel
//!   catastrophically when the coordinates are far from 0 compared with their spread. At
//!   each recomputation, if the window mean has moved far from the pivot (more than 16
//!   standard deviations), the pivot is reset to the mean and the per-slot partials are
//!   recomputed from the stored values (O(W·P·C), rare).

use ndarray::ArrayView2;

use crate::error::{Error, Result};
use crate::preprocess::{
    emit_isa, finite_or_nan, frame_norm_inputs, scale_or_fallback, Affine, CentreSums, FrameView,
    Isa, Sample, SCALE_FALLBACK,
};
use crate::spec::{FeatureSpec, Normalize, NUM_COORDS, NUM_LANDMARKS};

/// One frame borrowed from the caller: a (543, 3) view (landmark, coordinate) with any
/// strides.
#[derive(Debug, Clone, Copy)]
pub enum FrameRef<'a> {
    /// float32 values.
    F32(ArrayView2<'a, f32>),
    /// float64 values.
    F64(ArrayView2<'a, f64>),
}

impl<'a> FrameRef<'a> {
    /// A C-order frame stored flat (543 × 3 values).
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` does not hold 543 × 3 values.
    pub fn from_f32(x: &'a [f32]) -> Result<Self> {
        Ok(FrameRef::F32(frame_view(x)?))
    }

    /// [`FrameRef::from_f32`] for float64 values.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` does not hold 543 × 3 values.
    pub fn from_f64(x: &'a [f64]) -> Result<Self> {
        Ok(FrameRef::F64(frame_view(x)?))
    }
}

fn frame_view<S>(x: &[S]) -> Result<ArrayView2<'_, S>> {
    ArrayView2::from_shape((NUM_LANDMARKS, NUM_COORDS), x).map_err(|_| {
        Error::Shape(format!(
            "expected a frame of shape ({NUM_LANDMARKS}, {NUM_COORDS}) ({} values), got {} \
             values",
            NUM_LANDMARKS * NUM_COORDS,
            x.len()
        ))
    })
}

/// The (543, 3) check of a frame view, and the fastest way to read it.
///
/// # Errors
/// [`Error::Shape`] if the frame is not (543, 3).
pub(crate) fn checked_frame<S: Sample>(frame: ArrayView2<'_, S>) -> Result<FrameView<'_, S>> {
    if frame.shape() != [NUM_LANDMARKS, NUM_COORDS] {
        return Err(Error::Shape(format!(
            "expected a frame of shape ({NUM_LANDMARKS}, {NUM_COORDS}), got {:?}",
            frame.shape()
        )));
    }
    Ok(FrameView::of(frame))
}

/// Per-channel partial sums of selected values about the pivot.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Moments {
    count: [u64; NUM_COORDS],
    s1: [f64; NUM_COORDS],
    s2: [f64; NUM_COORDS],
}

/// A compensated running sum (Knuth's TwoSum on every step): `hi + lo` is the exact sum of
/// the terms up to rounding of the error term itself, so that adding then subtracting a
/// term many orders of magnitude above the others (an outlier frame entering and leaving
/// the window) leaves the others' sum intact.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sum2 {
    hi: f64,
    lo: f64,
}

impl Sum2 {
    #[inline]
    fn add(&mut self, x: f64) {
        let s = self.hi + x;
        let bp = s - self.hi;
        let err = (self.hi - (s - bp)) + (x - bp);
        self.hi = s;
        self.lo += err;
    }

    #[inline]
    fn value(&self) -> f64 {
        self.hi + self.lo
    }
}

/// Window totals of [`Moments`], compensated.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct MomentTotals {
    count: [u64; NUM_COORDS],
    s1: [Sum2; NUM_COORDS],
    s2: [Sum2; NUM_COORDS],
}

impl MomentTotals {
    #[inline]
    fn add(&mut self, o: &Moments, sign: f64) {
        for ch in 0..NUM_COORDS {
            if sign > 0.0 {
                self.count[ch] += o.count[ch];
            } else {
                self.count[ch] -= o.count[ch];
            }
            self.s1[ch].add(sign * o.s1[ch]);
            self.s2[ch].add(sign * o.s2[ch]);
        }
    }
}

/// Window totals of the normalisation inputs ([`CentreSums`]), compensated.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct CentreTotals {
    sum: [Sum2; NUM_COORDS],
    count: [u64; NUM_COORDS],
    dist_sum: Sum2,
    dist_count: u64,
}

impl CentreTotals {
    #[inline]
    fn add(&mut self, centre: &[f64; NUM_COORDS], dist: f64, sign: f64) {
        for ch in 0..NUM_COORDS {
            if !centre[ch].is_nan() {
                self.sum[ch].add(sign * centre[ch]);
                if sign > 0.0 {
                    self.count[ch] += 1;
                } else {
                    self.count[ch] -= 1;
                }
            }
        }
        if !dist.is_nan() {
            self.dist_sum.add(sign * dist);
            if sign > 0.0 {
                self.dist_count += 1;
            } else {
                self.dist_count -= 1;
            }
        }
    }

    /// The totals as plain sums (for the fallbacks of [`CentreSums`]).
    fn sums(&self) -> CentreSums {
        CentreSums {
            sum: std::array::from_fn(|ch| self.sum[ch].value()),
            count: self.count,
            dist_sum: self.dist_sum.value(),
            dist_count: self.dist_count,
        }
    }
}

/// A sliding window of the last `max_len` frames of a spec.
#[derive(Debug, Clone)]
pub struct Stream {
    spec: FeatureSpec,
    cap: usize,
    pc: usize,
    /// Selected values per slot, (W, P, C); NaN = missing.
    vals: Vec<f64>,
    /// Whether the slot's frame has at least one selected value.
    nonempty: Vec<bool>,
    /// Per-slot normalisation inputs.
    centre_in: Vec<[f64; NUM_COORDS]>,
    dist_in: Vec<f64>,
    moments: Vec<Moments>,
    /// Window totals over the counted slots (see `counts`).
    centre_tot: CentreTotals,
    moment_tot: MomentTotals,
    pivot: [f64; NUM_COORDS],
    head: usize,
    len: usize,
    num_valid: usize,
    since_refresh: usize,
    /// Scratch of `features_into`: the slots of the kept frames, oldest first.
    kept: Vec<usize>,
    /// The instruction set of `features_into`'s output pass.
    isa: Isa,
}

impl Stream {
    /// An empty window for `spec` (capacity W = `spec.max_len()`).
    ///
    /// # Errors
    /// [`Error::Alloc`] if the window's memory (W × P × C values) cannot be had.
    pub fn new(spec: FeatureSpec) -> Result<Self> {
        use crate::alloc::{checked_len, zeroed};
        let cap = spec.max_len();
        let pc = spec.num_points() * spec.coords();
        let mut vals: Vec<f64> = zeroed(&[cap, pc], "the values of a stream window")?;
        vals.fill(f64::NAN);
        let what = "the per-frame statistics of a stream window";
        checked_len(&[cap, std::mem::size_of::<Moments>()], 1, what)?;
        let mut centre_in: Vec<[f64; NUM_COORDS]> = zeroed(&[cap], what)?;
        centre_in.fill([f64::NAN; NUM_COORDS]);
        let mut dist_in: Vec<f64> = zeroed(&[cap], what)?;
        dist_in.fill(f64::NAN);
        let mut kept = Vec::new();
        kept.try_reserve_exact(cap)
            .map_err(|e| Error::Alloc(format!("cannot allocate {what}: {e}")))?;
        Ok(Stream {
            cap,
            pc,
            vals,
            nonempty: zeroed(&[cap], what)?,
            centre_in,
            dist_in,
            moments: zeroed(&[cap], what)?,
            centre_tot: CentreTotals::default(),
            moment_tot: MomentTotals::default(),
            pivot: [0.5; NUM_COORDS],
            head: 0,
            len: 0,
            num_valid: 0,
            since_refresh: 0,
            kept,
            isa: Isa::active(),
            spec,
        })
    }

    /// The spec this window executes.
    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }
    /// W, the window size (= max_len).
    pub fn capacity(&self) -> usize {
        self.cap
    }
    /// Frames in the window (at most W), empty frames included.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether no frame has been pushed since creation / reset.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Frames in the window with at least one selected value present.
    pub fn num_valid(&self) -> usize {
        self.num_valid
    }

    /// Forget every frame.
    pub fn reset(&mut self) {
        self.head = 0;
        self.len = 0;
        self.num_valid = 0;
        self.since_refresh = 0;
        self.centre_tot = CentreTotals::default();
        self.moment_tot = MomentTotals::default();
        self.pivot = [0.5; NUM_COORDS];
    }

    /// Whether a slot takes part in the statistics (every frame, or only non-empty ones).
    #[inline]
    fn counts(&self, slot: usize) -> bool {
        self.nonempty[slot] || !self.spec.drop_empty_frames()
    }

    /// Append one frame (a (543, 3) view of any strides), evicting the oldest when the
    /// window is full. Returns whether the frame has a selected value (a finite value of a
    /// selected landmark in one of the spec's coordinates).
    ///
    /// # Errors
    /// [`Error::Shape`] if the frame is not (543, 3).
    pub fn push(&mut self, frame: FrameRef<'_>) -> Result<bool> {
        match frame {
            FrameRef::F32(x) => Ok(self.push_frame(&checked_frame(x)?)),
            FrameRef::F64(x) => Ok(self.push_frame(&checked_frame(x)?)),
        }
    }

    /// [`Stream::push`] of a frame already checked and viewed.
    pub(crate) fn push_frame<S: Sample>(&mut self, frame: &FrameView<'_, S>) -> bool {
        let slot = if self.len < self.cap {
            let s = (self.head + self.len) % self.cap;
            self.len += 1;
            s
        } else {
            let s = self.head;
            self.evict(s);
            self.head = (self.head + 1) % self.cap;
            s
        };
        // Select into the slot (the same gather as preprocess), then the slot's partial
        // sums about the pivot; missing values are stored as NaN.
        let c = self.spec.coords();
        let pc = self.pc;
        let pivot = self.pivot;
        let row = &mut self.vals[slot * pc..(slot + 1) * pc];
        match c {
            2 => frame.gather::<2>(&self.spec, row),
            _ => frame.gather::<3>(&self.spec, row),
        }
        let mut m = Moments::default();
        let mut any = false;
        for point in row.chunks_exact_mut(c) {
            for ch in 0..c {
                let v = point[ch];
                if v.is_finite() {
                    any = true;
                    let d = v - pivot[ch];
                    m.count[ch] += 1;
                    m.s1[ch] += d;
                    m.s2[ch] += d * d;
                } else {
                    point[ch] = f64::NAN;
                }
            }
        }
        self.nonempty[slot] = any;
        self.moments[slot] = m;
        if self.spec.normalize() != Normalize::None {
            let (centre, dist) =
                frame_norm_inputs(|l, ch| finite_or_nan(frame.get(l, ch)), &self.spec);
            self.centre_in[slot] = centre;
            self.dist_in[slot] = dist;
        }
        if any {
            self.num_valid += 1;
        }
        if self.counts(slot) {
            self.centre_tot
                .add(&self.centre_in[slot], self.dist_in[slot], 1.0);
            self.moment_tot.add(&m, 1.0);
        }
        self.since_refresh += 1;
        if self.since_refresh >= self.cap {
            self.refresh();
        }
        any
    }

    fn evict(&mut self, slot: usize) {
        if self.counts(slot) {
            self.centre_tot
                .add(&self.centre_in[slot], self.dist_in[slot], -1.0);
            let m = self.moments[slot];
            self.moment_tot.add(&m, -1.0);
        }
        if self.nonempty[slot] {
            self.num_valid -= 1;
        }
    }

    #[inline]
    fn slot_at(&self, i: usize) -> usize {
        (self.head + i) % self.cap
    }

    /// Rebuild the totals exactly from the per-slot partials (and re-pivot if needed).
    fn refresh(&mut self) {
        self.since_refresh = 0;
        let c = self.spec.coords();
        // Re-pivot when the data has moved far from the pivot.
        let tot = self.moment_tot;
        let mut repivot = false;
        let mut new_pivot = self.pivot;
        for ch in 0..c {
            if tot.count[ch] > 0 {
                let n = tot.count[ch] as f64;
                let mean_off = tot.s1[ch].value() / n;
                let var = (tot.s2[ch].value() / n - mean_off * mean_off).max(0.0);
                if mean_off.abs() > 16.0 * var.sqrt() + 1e-9 {
                    repivot = true;
                    new_pivot[ch] = self.pivot[ch] + mean_off;
                }
            }
        }
        if repivot {
            self.pivot = new_pivot;
            for i in 0..self.len {
                let slot = self.slot_at(i);
                let row = &self.vals[slot * self.pc..(slot + 1) * self.pc];
                let mut m = Moments::default();
                for chunk in row.chunks_exact(c) {
                    for ch in 0..c {
                        let v = chunk[ch];
                        if !v.is_nan() {
                            let d = v - self.pivot[ch];
                            m.count[ch] += 1;
                            m.s1[ch] += d;
                            m.s2[ch] += d * d;
                        }
                    }
                }
                self.moments[slot] = m;
            }
        }
        let mut centre = CentreTotals::default();
        let mut moments = MomentTotals::default();
        for i in 0..self.len {
            let slot = self.slot_at(i);
            if self.counts(slot) {
                centre.add(&self.centre_in[slot], self.dist_in[slot], 1.0);
                moments.add(&self.moments[slot], 1.0);
            }
        }
        self.centre_tot = centre;
        self.moment_tot = moments;
    }

    /// The centre and inverse scale of the current window.
    fn affine(&self) -> Affine {
        let norm = self.spec.normalize();
        if norm == Normalize::None {
            return Affine::IDENTITY;
        }
        let sums = self.centre_tot.sums();
        let centre = sums.centre();
        let mut scale = [SCALE_FALLBACK; NUM_COORDS];
        match norm {
            Normalize::ReferenceRms { .. } => {
                let t = &self.moment_tot;
                for ch in 0..self.spec.coords() {
                    if t.count[ch] > 0 {
                        // Σ(x − m)² = Σ(x − p)² − 2(m − p)Σ(x − p) + n(m − p)²
                        let n = t.count[ch] as f64;
                        let e = centre[ch] - self.pivot[ch];
                        let (s1, s2) = (t.s1[ch].value(), t.s2[ch].value());
                        let ss = (s2 - 2.0 * e * s1 + n * e * e).max(0.0);
                        scale[ch] = scale_or_fallback((ss / n).sqrt());
                    }
                }
            }
            Normalize::Shoulders => scale = [sums.shoulder_scale(); NUM_COORDS],
            Normalize::None => {}
        }
        let mut inv = [1.0; NUM_COORDS];
        for ch in 0..NUM_COORDS {
            inv[ch] = 1.0 / scale[ch];
        }
        Affine {
            centre,
            inv_scale: inv,
        }
    }

    /// Features of the window into caller-provided buffers (`feats`: max_len × F, `mask`:
    /// max_len); equal to `preprocess()` of the window's frames, oldest first.
    ///
    /// # Errors
    /// [`Error::Shape`] if a buffer has the wrong length.
    pub fn features_into(&mut self, feats: &mut [f32], mask: &mut [f32]) -> Result<()> {
        let l = self.spec.max_len();
        let f = self.spec.num_features();
        if feats.len() != l * f || mask.len() != l {
            return Err(Error::Shape(format!(
                "output buffers must hold ({l}, {f}) features and ({l},) mask values, got {} \
                 and {}",
                feats.len(),
                mask.len()
            )));
        }
        let affine = self.affine();
        let drop = self.spec.drop_empty_frames();
        self.kept.clear();
        for i in 0..self.len {
            let slot = self.slot_at(i);
            if !drop || self.nonempty[slot] {
                self.kept.push(slot);
            }
        }
        let (pc, vals, kept) = (self.pc, &self.vals[..], &self.kept[..]);
        let row = |t: usize| &vals[kept[t] * pc..(kept[t] + 1) * pc];
        emit_isa(self.isa, row, kept.len(), &affine, &self.spec, feats, mask);
        Ok(())
    }

    /// Features of the window: `(features (max_len × F), mask (max_len))`.
    ///
    /// # Errors
    /// [`Error::Alloc`] if the output cannot be allocated.
    pub fn features(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        let (l, f) = (self.spec.max_len(), self.spec.num_features());
        let mut feats = crate::alloc::zeroed(&[l, f], "the features of a stream window")?;
        let mut mask = crate::alloc::zeroed(&[l], "the mask of a stream window")?;
        self.features_into(&mut feats, &mut mask)?;
        Ok((feats, mask))
    }

    /// [`Stream::features_into`] with the output pass on a given instruction set (for the
    /// bit-identity tests).
    #[doc(hidden)]
    pub fn features_into_isa(
        &mut self,
        isa: Isa,
        feats: &mut [f32],
        mask: &mut [f32],
    ) -> Result<()> {
        let saved = std::mem::replace(&mut self.isa, isa);
        let out = self.features_into(feats, mask);
        self.isa = saved;
        out
    }

    /// The window's frames' selected values are all this type keeps; for tests: the values
    /// of the i-th oldest frame (P × C, NaN = missing).
    pub fn frame_values(&self, i: usize) -> Option<&[f64]> {
        (i < self.len).then(|| {
            let slot = self.slot_at(i);
            &self.vals[slot * self.pc..(slot + 1) * self.pc]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::preprocess::{preprocess, ClipRef};
    use crate::spec::{Fit, FRAME_LEN};

    fn frame(k: usize, offset: f32) -> Vec<f32> {
        (0..FRAME_LEN)
            .map(|i| {
                if (i / 3 + k).is_multiple_of(5) {
                    f32::NAN
                } else {
                    offset + ((i * 37 + k * 101) % 997) as f32 / 997.0
                }
            })
            .collect()
    }

    fn window_features(frames: &[Vec<f32>], spec: &FeatureSpec) -> (Vec<f32>, Vec<f32>) {
        let flat: Vec<f32> = frames.iter().flatten().copied().collect();
        preprocess(ClipRef::from_f32(&flat).unwrap(), spec).unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn parity_across_wrap_around() {
        for spec in [
            fixtures::islr118(8, Fit::Truncate),
            fixtures::hands_pose(8, Fit::Resample),
        ] {
            let mut s = Stream::new(spec.clone()).unwrap();
            let mut frames: Vec<Vec<f32>> = Vec::new();
            for k in 0..30 {
                let mut f = frame(k, 0.0);
                if k % 4 == 3 {
                    f.fill(f32::NAN);
                }
                s.push(FrameRef::from_f32(&f).unwrap()).unwrap();
                frames.push(f);
                let lo = frames.len().saturating_sub(8);
                let (a, ma) = s.features().unwrap();
                let (b, mb) = window_features(&frames[lo..], &spec);
                assert_eq!(ma, mb, "step {k}");
                assert!(max_diff(&a, &b) <= 1e-5, "step {k}: {}", max_diff(&a, &b));
                assert_eq!(s.len(), frames.len() - lo);
                let valid = frames[lo..]
                    .iter()
                    .filter(|f| f.iter().any(|v| v.is_finite()))
                    .count();
                assert_eq!(s.num_valid(), valid);
            }
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        for spec in [
            fixtures::islr118(8, Fit::Truncate),
            fixtures::hands_pose(8, Fit::Resample),
        ] {
            let mut s = Stream::new(spec.clone()).unwrap();
            let (l, f) = (spec.max_len(), spec.num_features());
            for k in 0..13 {
                s.push(FrameRef::from_f32(&frame(k, 0.0)).unwrap()).unwrap();
                let mut run = |isa| {
                    let (mut a, mut m) = (vec![7.0f32; l * f], vec![7.0f32; l]);
                    s.features_into_isa(isa, &mut a, &mut m).unwrap();
                    (a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), m)
                };
                let want = run(Isa::Baseline);
                assert_eq!(run(Isa::Avx2), want, "step {k}");
                assert_eq!(run(Isa::Avx512), want, "step {k}");
            }
        }
    }

    #[test]
    fn an_outlier_frame_leaves_no_trace() {
        // One frame ×1e8: the running sums must not lose the others' precision when it
        // leaves the window.
        for spec in [
            fixtures::islr118(64, Fit::Truncate),
            fixtures::hands_pose(16, Fit::Truncate),
        ] {
            let w = spec.max_len();
            let mut s = Stream::new(spec.clone()).unwrap();
            let mut frames: Vec<Vec<f32>> = Vec::new();
            for k in 0..3 * w {
                let mut f = frame(k % 11, 0.0);
                if k == w / 2 {
                    f.iter_mut().for_each(|v| *v *= 1e8);
                }
                s.push(FrameRef::from_f32(&f).unwrap()).unwrap();
                frames.push(f);
                let lo = frames.len().saturating_sub(w);
                let (a, _) = s.features().unwrap();
                let (b, _) = window_features(&frames[lo..], &spec);
                assert!(max_diff(&a, &b) <= 1e-4, "step {k}: {}", max_diff(&a, &b));
            }
        }
    }

    #[test]
    fn strided_frames_equal_packed_ones() {
        use ndarray::{s, Array2, ShapeBuilder};
        let spec = fixtures::islr118(8, Fit::Truncate);
        let mut a = Stream::new(spec.clone()).unwrap();
        let mut b = Stream::new(spec.clone()).unwrap();
        for k in 0..12 {
            let f = frame(k, 0.0);
            a.push(FrameRef::from_f32(&f).unwrap()).unwrap();
            let packed = Array2::from_shape_vec((NUM_LANDMARKS, NUM_COORDS), f).unwrap();
            let mut fortran = Array2::<f64>::zeros((NUM_LANDMARKS, NUM_COORDS).f());
            fortran.assign(&packed.mapv(f64::from));
            if k % 2 == 0 {
                b.push(FrameRef::F64(fortran.view())).unwrap();
            } else {
                let rev = packed.slice(s![..;-1, ..]).to_owned();
                b.push(FrameRef::F32(rev.slice(s![..;-1, ..]))).unwrap();
            }
            assert_eq!(a.features().unwrap(), b.features().unwrap(), "step {k}");
        }
    }

    #[test]
    fn reset_empties_the_window() {
        let spec = fixtures::islr118(4, Fit::Truncate);
        let mut s = Stream::new(spec.clone()).unwrap();
        for k in 0..6 {
            s.push(FrameRef::from_f32(&frame(k, 0.0)).unwrap()).unwrap();
        }
        s.reset();
        assert!(s.is_empty());
        assert_eq!(s.num_valid(), 0);
        let (f, m) = s.features().unwrap();
        assert!(f.iter().chain(&m).all(|v| *v == 0.0));
        let f1 = frame(9, 0.0);
        s.push(FrameRef::from_f32(&f1).unwrap()).unwrap();
        assert_eq!(s.features().unwrap(), window_features(&[f1], &spec));
    }

    #[test]
    fn rejects_wrong_frame_length() {
        let mut s = Stream::new(fixtures::islr118(4, Fit::Truncate)).unwrap();
        assert!(matches!(
            FrameRef::from_f32(&[0.0; 10]),
            Err(Error::Shape(_))
        ));
        let values = vec![0.0f32; FRAME_LEN];
        let wrong = ArrayView2::from_shape((181, 9), &values[..]).unwrap();
        assert!(matches!(s.push(FrameRef::F32(wrong)), Err(Error::Shape(_))));
        assert!(s.is_empty());
    }

    #[test]
    fn long_stream_with_moving_offset_does_not_drift() {
        // Coordinates far from 0 compared with their spread, moving over time: the pivot and
        // the periodic recomputation keep the running sums exact.
        let spec = fixtures::islr118(16, Fit::Truncate);
        let mut s = Stream::new(spec.clone()).unwrap();
        let mut frames: Vec<Vec<f32>> = Vec::new();
        for k in 0..5000 {
            let f = frame(k % 13, 1000.0 + (k / 500) as f32 * 250.0);
            s.push(FrameRef::from_f32(&f).unwrap()).unwrap();
            frames.push(f);
            if frames.len() > 16 {
                frames.remove(0);
            }
            if k % 97 == 0 || k > 4980 {
                let (a, _) = s.features().unwrap();
                let (b, _) = window_features(&frames, &spec);
                assert!(max_diff(&a, &b) <= 1e-4, "step {k}: {}", max_diff(&a, &b));
            }
        }
    }
}
