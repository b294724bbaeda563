//! Explicit x86-64 SIMD kernels for what the compiler does not vectorise by itself: the
//! gather of a frame's selected values (scattered landmarks, 2 or 3 of every 3 floats).
//!
//! Only float32 clips take these kernels (the zero-copy case); every other input uses the
//! portable loop, which gives the same values.

use std::arch::x86_64::{
    __m256i, _mm256_castps256_ps128, _mm256_cvtps_pd, _mm256_extractf128_ps,
    _mm256_i32gather_ps, _mm256_loadu_si256, _mm256_storeu_pd, _mm_castpd_ps, _mm_cvtps_pd,
    _mm_load_sd, _mm_storeu_pd,
};

/// `row[2p..2p + 2] = frame[o..o + 2] as f64` for the first two values of every point
/// (o = `3 · landmarks[p]`): one 8-byte load, one conversion and one 16-byte store per
/// point (SSE2, part of the x86-64 baseline). The third value, if `c` is 3, is copied apart.
///
/// # Panics
/// If a landmark lies outside `frame` or `row` is not P·c long.
#[inline(always)]
pub(crate) fn gather_f32_points(frame: &[f32], landmarks: &[usize], c: usize, row: &mut [f64]) {
    assert_eq!(row.len(), landmarks.len() * c, "P·C output values");
    for (dst, &l) in row.chunks_exact_mut(c).zip(landmarks) {
        let src = &frame[l * 3..l * 3 + 3];
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

/// Values per gather instruction.
const LANES: usize = 8;

/// `row[j] = frame[offsets[j]] as f64` for every j, eight values per AVX2 gather.
///
/// # Panics
/// If `offsets` and `row` differ in length or an offset is outside `frame` (never for the
/// offsets of a valid [`FeatureSpec`](crate::FeatureSpec) and a whole frame).
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn gather_f32_avx2(frame: &[f32], offsets: &[i32], row: &mut [f64]) {
    assert_eq!(offsets.len(), row.len(), "one offset per selected value");
    // The gather instruction does no bounds check: check the largest offset once.
    let max = offsets.iter().copied().max().unwrap_or(0);
    assert!(
        max >= 0 && (max as usize) < frame.len(),
        "gather offset {max} outside a frame of {} values",
        frame.len()
    );
    let n = row.len();
    let full = n - n % LANES;
    let base = frame.as_ptr();
    let out = row.as_mut_ptr();
    let mut j = 0;
    while j < full {
        // SAFETY: AVX2 is enabled for this function (the caller's obligation); j + 8 ≤ n, so
        // the 8 offsets and the 8 output slots at j are inside `offsets` and `row`; every
        // offset is in 0..frame.len() (checked above), so the gathered floats are in `frame`.
        unsafe {
            let idx = _mm256_loadu_si256(offsets.as_ptr().add(j).cast::<__m256i>());
            let v = _mm256_i32gather_ps::<4>(base, idx);
            _mm256_storeu_pd(out.add(j), _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
            _mm256_storeu_pd(out.add(j + 4), _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)));
        }
        j += LANES;
    }
    for (dst, &o) in row[full..].iter_mut().zip(&offsets[full..]) {
        *dst = f64::from(frame[o as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_every_offset_including_the_tail() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let frame: Vec<f32> = (0..1629).map(|i| i as f32 * 0.5).collect();
        for n in [0usize, 1, 7, 8, 9, 236, 354] {
            let offsets: Vec<i32> = (0..n).map(|j| ((j * 37) % 1629) as i32).collect();
            let mut row = vec![f64::NAN; n];
            // SAFETY: AVX2 is present (checked above).
            unsafe { gather_f32_avx2(&frame, &offsets, &mut row) };
            let want: Vec<f64> = offsets.iter().map(|&o| f64::from(frame[o as usize])).collect();
            assert_eq!(row, want, "n = {n}");
        }
    }

    #[test]
    #[should_panic(expected = "outside a frame")]
    fn refuses_an_offset_outside_the_frame() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            panic!("outside a frame (no AVX2 here)");
        }
        let frame = vec![0.0f32; 16];
        let mut row = vec![0.0; 1];
        // SAFETY: AVX2 is present (checked above).
        unsafe { gather_f32_avx2(&frame, &[16], &mut row) };
    }
}
