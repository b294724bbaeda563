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
//! over a long stream. Two measures keep the totals exact to a few ulps of the window:
//! * **Periodic exact recomputation**: every W pushes the totals are rebuilt from the
//!   per-slot partials (O(W·C), amortised O(C) per push), so the error never covers more
//!   than 2·W add/subtract steps. Counts are integers and never drift.
//! * **Pivoting**: the squared sums are taken about a per-channel pivot near the data
//!   (Σ(x − p)² rather than Σx²), so that turning them into Σ(x − m)² does not cancel
//!   catastrophically when the coordinates are far from 0 compared with their spread. At
//!   each recomputation, if the window mean has moved far from the pivot (more than 16
//!   standard deviations), the pivot is reset to the mean and the per-slot partials are
//!   recomputed from the stored values (O(W·P·C), rare).

use crate::error::{Error, Result};
use crate::preprocess::{
    emit, finite_or_nan, frame_norm_inputs, scale_or_fallback, Affine, CentreSums, Sample,
    SCALE_FALLBACK,
};
use crate::spec::{FeatureSpec, Normalize, FRAME_LEN, NUM_COORDS};

/// One frame borrowed from the caller: 543 × 3 values.
#[derive(Debug, Clone, Copy)]
pub enum FrameRef<'a> {
    /// float32 values.
    F32(&'a [f32]),
    /// float64 values.
    F64(&'a [f64]),
}

/// Per-channel partial sums of selected values about the pivot.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Moments {
    count: [u64; NUM_COORDS],
    s1: [f64; NUM_COORDS],
    s2: [f64; NUM_COORDS],
}

impl Moments {
    #[inline]
    fn add(&mut self, o: &Moments) {
        for ch in 0..NUM_COORDS {
            self.count[ch] += o.count[ch];
            self.s1[ch] += o.s1[ch];
            self.s2[ch] += o.s2[ch];
        }
    }
    #[inline]
    fn sub(&mut self, o: &Moments) {
        for ch in 0..NUM_COORDS {
            self.count[ch] -= o.count[ch];
            self.s1[ch] -= o.s1[ch];
            self.s2[ch] -= o.s2[ch];
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
    centre_tot: CentreSums,
    moment_tot: Moments,
    pivot: [f64; NUM_COORDS],
    head: usize,
    len: usize,
    num_valid: usize,
    since_refresh: usize,
    /// Scratch of `features_into`: the slots of the kept frames, oldest first.
    kept: Vec<usize>,
}

impl Stream {
    /// An empty window for `spec` (capacity W = `spec.max_len()`).
    pub fn new(spec: FeatureSpec) -> Self {
        let cap = spec.max_len();
        let pc = spec.num_points() * spec.coords();
        Stream {
            cap,
            pc,
            vals: vec![f64::NAN; cap * pc],
            nonempty: vec![false; cap],
            centre_in: vec![[f64::NAN; NUM_COORDS]; cap],
            dist_in: vec![f64::NAN; cap],
            moments: vec![Moments::default(); cap],
            centre_tot: CentreSums::default(),
            moment_tot: Moments::default(),
            pivot: [0.5; NUM_COORDS],
            head: 0,
            len: 0,
            num_valid: 0,
            since_refresh: 0,
            kept: Vec::with_capacity(cap),
            spec,
        }
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
        self.centre_tot = CentreSums::default();
        self.moment_tot = Moments::default();
        self.pivot = [0.5; NUM_COORDS];
    }

    /// Whether a slot takes part in the statistics (every frame, or only non-empty ones).
    #[inline]
    fn counts(&self, slot: usize) -> bool {
        self.nonempty[slot] || !self.spec.drop_empty_frames()
    }

    /// Append one frame (543 × 3 values), evicting the oldest when the window is full.
    ///
    /// # Errors
    /// [`Error::Shape`] if the frame does not have 543 × 3 values.
    pub fn push(&mut self, frame: FrameRef<'_>) -> Result<()> {
        match frame {
            FrameRef::F32(x) => self.push_generic(x),
            FrameRef::F64(x) => self.push_generic(x),
        }
    }

    fn push_generic<S: Sample>(&mut self, frame: &[S]) -> Result<()> {
        if frame.len() != FRAME_LEN {
            return Err(Error::Shape(format!(
                "expected a frame of shape (543, 3) ({FRAME_LEN} values), got {} values",
                frame.len()
            )));
        }
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
        // Select into the slot, with the slot's partial sums about the pivot.
        let c = self.spec.coords();
        let pc = self.pc;
        let mut m = Moments::default();
        let mut any = false;
        {
            let row = &mut self.vals[slot * pc..(slot + 1) * pc];
            for (p, &l) in self.spec.landmarks().iter().enumerate() {
                for ch in 0..c {
                    let v = frame[l * NUM_COORDS + ch].to_f64();
                    if v.is_finite() {
                        any = true;
                        let d = v - self.pivot[ch];
                        m.count[ch] += 1;
                        m.s1[ch] += d;
                        m.s2[ch] += d * d;
                        row[p * c + ch] = v;
                    } else {
                        row[p * c + ch] = f64::NAN;
                    }
                }
            }
        }
        self.nonempty[slot] = any;
        self.moments[slot] = m;
        if self.spec.normalize() != Normalize::None {
            let (centre, dist) =
                frame_norm_inputs(|i| finite_or_nan(frame[i].to_f64()), &self.spec);
            self.centre_in[slot] = centre;
            self.dist_in[slot] = dist;
        }
        if any {
            self.num_valid += 1;
        }
        if self.counts(slot) {
            self.centre_tot
                .add(&self.centre_in[slot], self.dist_in[slot]);
            self.moment_tot.add(&m);
        }
        self.since_refresh += 1;
        if self.since_refresh >= self.cap {
            self.refresh();
        }
        Ok(())
    }

    fn evict(&mut self, slot: usize) {
        if self.counts(slot) {
            self.centre_tot
                .sub(&self.centre_in[slot], self.dist_in[slot]);
            let m = self.moments[slot];
            self.moment_tot.sub(&m);
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
                let mean_off = tot.s1[ch] / n;
                let var = (tot.s2[ch] / n - mean_off * mean_off).max(0.0);
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
        let mut centre = CentreSums::default();
        let mut moments = Moments::default();
        for i in 0..self.len {
            let slot = self.slot_at(i);
            if self.counts(slot) {
                centre.add(&self.centre_in[slot], self.dist_in[slot]);
                moments.add(&self.moments[slot]);
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
        let centre = self.centre_tot.centre();
        let mut scale = [SCALE_FALLBACK; NUM_COORDS];
        match norm {
            Normalize::ReferenceRms { .. } => {
                let t = &self.moment_tot;
                for ch in 0..self.spec.coords() {
                    if t.count[ch] > 0 {
                        // Σ(x − m)² = Σ(x − p)² − 2(m − p)Σ(x − p) + n(m − p)²
                        let n = t.count[ch] as f64;
                        let e = centre[ch] - self.pivot[ch];
                        let ss = (t.s2[ch] - 2.0 * e * t.s1[ch] + n * e * e).max(0.0);
                        scale[ch] = scale_or_fallback((ss / n).sqrt());
                    }
                }
            }
            Normalize::Shoulders => scale = [self.centre_tot.shoulder_scale(); NUM_COORDS],
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
        emit(row, kept.len(), &affine, &self.spec, feats, mask);
        Ok(())
    }

    /// Features of the window: `(features (max_len × F), mask (max_len))`.
    pub fn features(&mut self) -> (Vec<f32>, Vec<f32>) {
        let mut feats = vec![0.0f32; self.spec.max_len() * self.spec.num_features()];
        let mut mask = vec![0.0f32; self.spec.max_len()];
        // Lengths are right by construction.
        let _ = self.features_into(&mut feats, &mut mask);
        (feats, mask)
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
    use crate::spec::Fit;

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
        preprocess(ClipRef::F32(&flat), spec).unwrap()
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
            let mut s = Stream::new(spec.clone());
            let mut frames: Vec<Vec<f32>> = Vec::new();
            for k in 0..30 {
                let mut f = frame(k, 0.0);
                if k % 4 == 3 {
                    f.fill(f32::NAN);
                }
                s.push(FrameRef::F32(&f)).unwrap();
                frames.push(f);
                let lo = frames.len().saturating_sub(8);
                let (a, ma) = s.features();
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
    fn reset_empties_the_window() {
        let spec = fixtures::islr118(4, Fit::Truncate);
        let mut s = Stream::new(spec.clone());
        for k in 0..6 {
            s.push(FrameRef::F32(&frame(k, 0.0))).unwrap();
        }
        s.reset();
        assert!(s.is_empty());
        assert_eq!(s.num_valid(), 0);
        let (f, m) = s.features();
        assert!(f.iter().chain(&m).all(|v| *v == 0.0));
        let f1 = frame(9, 0.0);
        s.push(FrameRef::F32(&f1)).unwrap();
        assert_eq!(s.features(), window_features(&[f1], &spec));
    }

    #[test]
    fn rejects_wrong_frame_length() {
        let mut s = Stream::new(fixtures::islr118(4, Fit::Truncate));
        assert!(matches!(
            s.push(FrameRef::F32(&[0.0; 10])),
            Err(Error::Shape(_))
        ));
        assert!(s.is_empty());
    }

    #[test]
    fn long_stream_with_moving_offset_does_not_drift() {
        // Coordinates far from 0 compared with their spread, moving over time: the pivot and
        // the periodic recomputation keep the running sums exact.
        let spec = fixtures::islr118(16, Fit::Truncate);
        let mut s = Stream::new(spec.clone());
        let mut frames: Vec<Vec<f32>> = Vec::new();
        for k in 0..5000 {
            let f = frame(k % 13, 1000.0 + (k / 500) as f32 * 250.0);
            s.push(FrameRef::F32(&f)).unwrap();
            frames.push(f);
            if frames.len() > 16 {
                frames.remove(0);
            }
            if k % 97 == 0 || k > 4980 {
                let (a, _) = s.features();
                let (b, _) = window_features(&frames, &spec);
                assert!(max_diff(&a, &b) <= 1e-4, "step {k}: {}", max_diff(&a, &b));
            }
        }
    }
}
