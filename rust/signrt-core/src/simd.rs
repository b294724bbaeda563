//! Explicit x86-64 SIMD for what the compiler does not vectorise by itself: the gather of a
//! frame's selected values (scattered landmarks, 2 or 3 of every 3 floats), float32 in,
//! float64 out. SSE2 only (the x86-64 baseline), so it needs no run-time check.
//!
//! Only float32 frames in C order take this path; every other input uses the portable
//! loops, which give the same values. Also: the prefetch hint of the gather's look-ahead. (An AVX2 `vgatherdps` version was measured
//! and was slower than this one on AMD Zen 4.)

use std::arch::x86_64::{
    _mm_castpd_ps, _mm_cvtps_pd, _mm_load_sd, _mm_prefetch, _mm_storeu_pd, _MM_HINT_T0,
};

/// Ask for the cache line of `p` (a hint: never faults, whatever the address).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    // SAFETY: a prefetch does not access memory architecturally; any address is allowed.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) }
}

/// `row[c·p + ch] = frame[3·l + ch] as f64` for every (landmark l, point p) of `order`
/// (address order, so that consecutive loads share cache lines) and channel ch < c: x and
/// y with one 8-byte load, one conversion and one 16-byte store per point (SSE2, part of the
/// x86-64 baseline); z, if `c` is 3, apart.
///
/// # Panics
/// If `c` is not 2 or 3, a landmark lies outside `frame` or a point outside `row`.
#[inline(always)]
pub(crate) fn gather_f32_points(
    frame: &[f32],
    order: &[(usize, usize)],
    c: usize,
    row: &mut [f64],
) {
    assert!(c == 2 || c == 3, "2 or 3 coordinates");
    for &(l, p) in order {
        let src = &frame[l * 3..l * 3 + 3];
        let dst = &mut row[p * c..p * c + c];
        // SAFETY: `src` holds 3 floats, so its first 8 bytes are readable (an unaligned
        // 8-byte load is allowed); `dst` holds at least 2 doubles (c ≥ 2).
        unsafe {
            let xy = _mm_cvtps_pd(_mm_castpd_ps(_mm_load_sd(src.as_ptr().cast::<f64>())));
            _mm_storeu_pd(dst.as_mut_ptr(), xy);
        }
        if c == 3 {
            dst[2] = f64::from(src[2]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_every_point_in_output_order() {
        let frame: Vec<f32> = (0..1629).map(|i| i as f32 * 0.5 - 100.0).collect();
        let landmarks = [542usize, 0, 17, 468, 469, 61, 541];
        for c in [2usize, 3] {
            let mut row = vec![f64::NAN; landmarks.len() * c];
            let mut order: Vec<(usize, usize)> = landmarks.iter().copied().zip(0..).collect();
            order.sort_unstable();
            gather_f32_points(&frame, &order, c, &mut row);
            let frame = &frame;
            let want: Vec<f64> = landmarks
                .iter()
                .flat_map(|&l| (0..c).map(move |ch| f64::from(frame[l * 3 + ch])))
                .collect();
            assert_eq!(row, want, "c = {c}");
        }
    }

    #[test]
    fn keeps_nan_and_infinities_as_they_are() {
        let mut frame = vec![1.0f32; 1629];
        frame[3] = f32::NAN;
        frame[4] = f32::INFINITY;
        frame[5] = f32::NEG_INFINITY;
        let mut row = vec![0.0; 3];
        gather_f32_points(&frame, &[(1, 0)], 3, &mut row);
        assert!(row[0].is_nan());
        assert_eq!(row[1..], [f64::INFINITY, f64::NEG_INFINITY]);
    }

    #[test]
    #[should_panic]
    fn refuses_a_landmark_outside_the_frame() {
        let frame = vec![0.0f32; 1629];
        let mut row = vec![0.0; 2];
        gather_f32_points(&frame, &[(543, 0)], 2, &mut row);
    }
}
