//! Explicit x86-64 SIMD for what the compiler does not vectorise well by itself:
//!
//! * the gather of a frame's selected values (scattered landmarks, 2 or 3 of every 3
//!   floats), float32 in, float64 out; SSE2 only (the x86-64 baseline), so it needs no
//!   run-time check. Only float32 frames in C order take it; every other input uses the
//!   portable loops, which give the same values. (An AVX2 `vgatherdps` version was measured
//!   and was slower than this one on AMD Zen 4.)
//! * the output rows of 2-coordinate specs (x, y and the motion channels, point-major), SSE2
//!   or, inlined into the AVX2 / AVX-512 variants, 256-bit AVX; bit-identical to the scalar
//!   formula (tested here against it, NaN, infinities and f32 overflow included).
//! * the L2 prefetch hint of the gather's look-ahead.

use std::arch::x86_64::{
    __m128, _mm256_cvtpd_ps, _mm256_loadu_pd, _mm256_mul_pd, _mm256_setr_pd, _mm256_sub_pd,
    _mm_and_ps, _mm_andnot_ps, _mm_castpd_ps, _mm_castps_pd, _mm_castsi128_ps, _mm_cmplt_ps,
    _mm_cvtpd_ps, _mm_cvtps_pd, _mm_load_sd, _mm_loadu_pd, _mm_movelh_ps, _mm_mul_pd, _mm_or_ps,
    _mm_prefetch, _mm_set1_epi32, _mm_set1_ps, _mm_setr_pd, _mm_shuffle_pd, _mm_storeu_pd,
    _mm_storeu_ps, _mm_sub_pd, _MM_HINT_T1,
};

/// Ask for the cache line of `p` into L2 (a hint: never faults, whatever the address).
#[inline(always)]
pub(crate) fn prefetch_l2<T>(p: *const T) {
    // SAFETY: a prefetch does not access memory architecturally; any address is allowed.
    unsafe { _mm_prefetch::<_MM_HINT_T1>(p.cast::<i8>()) }
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

/// The output of [`crate::preprocess`]'s emit step for the rows whose every lag is inside
/// the clip, for C = 2 coordinates and `NL` motion lags: for every point p,
/// `out[CO·p ..][..CO]` = x, y, dx_1, dy_1, …, dx_NL, dy_NL with CO = 2·(1 + NL), where
/// `(x, y) = ((v − m)·inv)` of `cur[2p..2p + 2]` and `d_j = (next_j − v)·inv`, each rounded to
/// f32 and replaced by `fill` when not finite (the scalar `out_value`, bit for bit: the same
/// IEEE subtractions, multiplications and conversions, no fused multiply-add).
///
/// Two points at a time: their 4 values → one 4-float vector per output channel pair,
/// then 64-bit shuffles into the point-major output. `AVX` computes the 4 values with
/// 256-bit operations (only in a function compiled with AVX2), else with two SSE2 halves;
/// the results are the same bits. An odd last point goes through the scalar code.
///
/// # Panics
/// If a slice is shorter than `points` needs.
#[inline(always)]
pub(crate) fn emit_row_c2<const NL: usize, const AVX: bool>(
    cur: &[f64],
    next: [&[f64]; NL],
    m: [f64; 2],
    inv: [f64; 2],
    fill: f32,
    out: &mut [f32],
    points: usize,
) {
    let co = 2 * (1 + NL);
    assert!(NL < 8, "at most 7 lags");
    assert!(cur.len() >= 2 * points && out.len() >= co * points);
    for n in &next {
        assert!(n.len() >= 2 * points);
    }
    let pairs = points / 2;
    // SAFETY: every pointer below stays inside the slices checked above (pair q reads
    // values 4q..4q + 4 of `cur` and of each `next`, writes floats co·2q..co·2q + 2·co of
    // `out`); the loads and stores are unaligned ones; the intrinsics are SSE2 (the x86-64
    // baseline) and, with `AVX`, AVX, which the caller's target features guarantee.
    unsafe {
        let fillv = _mm_set1_ps(fill);
        let abs = _mm_castsi128_ps(_mm_set1_epi32(0x7fff_ffff));
        let inf = _mm_set1_ps(f32::INFINITY);
        // x as f32, NaN or ±inf → fill
        let finite = |y: __m128| {
            let ok = _mm_cmplt_ps(_mm_and_ps(y, abs), inf);
            _mm_or_ps(_mm_and_ps(ok, y), _mm_andnot_ps(ok, fillv))
        };
        let m2 = _mm_setr_pd(m[0], m[1]);
        let i2 = _mm_setr_pd(inv[0], inv[1]);
        let m4 = if AVX {
            Some(_mm256_setr_pd(m[0], m[1], m[0], m[1]))
        } else {
            None
        };
        let i4 = if AVX {
            Some(_mm256_setr_pd(inv[0], inv[1], inv[0], inv[1]))
        } else {
            None
        };
        // ((a − b)·inv) of the 4 values at a and b, as 4 floats
        let scaled = |a: *const f64, b: Option<*const f64>| -> __m128 {
            if let (Some(m4), Some(i4)) = (m4, i4) {
                let va = _mm256_loadu_pd(a);
                let vb = match b {
                    Some(b) => _mm256_loadu_pd(b),
                    None => m4,
                };
                _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(va, vb), i4))
            } else {
                let (lo, hi) = match b {
                    Some(b) => (
                        _mm_sub_pd(_mm_loadu_pd(a), _mm_loadu_pd(b)),
                        _mm_sub_pd(_mm_loadu_pd(a.add(2)), _mm_loadu_pd(b.add(2))),
                    ),
                    None => (
                        _mm_sub_pd(_mm_loadu_pd(a), m2),
                        _mm_sub_pd(_mm_loadu_pd(a.add(2)), m2),
                    ),
                };
                _mm_movelh_ps(
                    _mm_cvtpd_ps(_mm_mul_pd(lo, i2)),
                    _mm_cvtpd_ps(_mm_mul_pd(hi, i2)),
                )
            }
        };
        let (cp, op) = (cur.as_ptr(), out.as_mut_ptr());
        for q in 0..pairs {
            let a = cp.add(4 * q);
            // v[0] = x, y of both points; v[1 + j] = d_j of both points (64-bit halves: the
            // first point's pair, then the second's).
            let mut v = [_mm_castps_pd(finite(scaled(a, None))); 8];
            for j in 0..NL {
                v[1 + j] = _mm_castps_pd(finite(scaled(next[j].as_ptr().add(4 * q), Some(a))));
            }
            // point-major: half h of v[c] goes to 64-bit slot h·(1 + NL) + c of the pair's
            // output; slots 2s and 2s + 1 make one 16-byte store.
            let k = 1 + NL;
            let o = op.add(2 * co * q);
            for s in 0..k {
                let (i0, i1) = (2 * s, 2 * s + 1);
                let (a0, h0, a1, h1) = (v[i0 % k], i0 / k, v[i1 % k], i1 / k);
                let w = match (h0, h1) {
                    (0, 0) => _mm_shuffle_pd::<0b00>(a0, a1),
                    (1, 0) => _mm_shuffle_pd::<0b01>(a0, a1),
                    (0, _) => _mm_shuffle_pd::<0b10>(a0, a1),
                    _ => _mm_shuffle_pd::<0b11>(a0, a1),
                };
                _mm_storeu_ps(o.add(4 * s), _mm_castpd_ps(w));
            }
        }
    }
    if points % 2 == 1 {
        let p = points - 1;
        let x = [cur[2 * p], cur[2 * p + 1]];
        let o = &mut out[co * p..co * p + co];
        for ch in 0..2 {
            o[ch] = out_f32((x[ch] - m[ch]) * inv[ch], fill);
        }
        for j in 0..NL {
            for ch in 0..2 {
                o[2 * (1 + j) + ch] = out_f32((next[j][2 * p + ch] - x[ch]) * inv[ch], fill);
            }
        }
    }
}

/// The scalar `out_value` of the preprocess module: v as f32, `fill` if not finite.
#[inline(always)]
fn out_f32(v: f64, fill: f32) -> f32 {
    let y = v as f32;
    if y.is_finite() {
        y
    } else {
        fill
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

    #[target_feature(enable = "avx2")]
    fn emit_row_avx2<const NL: usize>(
        cur: &[f64],
        next: [&[f64]; NL],
        m: [f64; 2],
        inv: [f64; 2],
        out: &mut [f32],
        points: usize,
    ) {
        emit_row_c2::<NL, true>(cur, next, m, inv, -3.5, out, points);
    }

    /// The rows of both kernels against the scalar formula, bit for bit, on values with
    /// NaN, ±inf, f32 overflow and signed zeros, for even and odd point counts.
    fn check_emit_row<const NL: usize>() {
        let specials = [
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY,
            1e300,
            -0.0,
            0.0,
            3.4e38,
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for points in [0usize, 1, 2, 5, 118] {
            let mut val = || {
                let r = next();
                if r % 9 == 0 {
                    specials[(r / 9 % specials.len() as u64) as usize]
                } else {
                    (r % 100_000) as f64 / 7919.0 - 4.0
                }
            };
            let cur: Vec<f64> = (0..2 * points).map(|_| val()).collect();
            let nexts: Vec<Vec<f64>> = (0..NL)
                .map(|_| (0..2 * points).map(|_| val()).collect())
                .collect();
            let next_refs: [&[f64]; NL] = std::array::from_fn(|j| &nexts[j][..]);
            let (m, inv) = ([0.37, -1.25], [3.0, 1.0 / 0.07]);
            let co = 2 * (1 + NL);
            let mut want = vec![0.0f32; co * points];
            for p in 0..points {
                for ch in 0..2 {
                    let x = cur[2 * p + ch];
                    want[co * p + ch] = out_f32((x - m[ch]) * inv[ch], -3.5);
                    for j in 0..NL {
                        let d = (nexts[j][2 * p + ch] - x) * inv[ch];
                        want[co * p + 2 * (1 + j) + ch] = out_f32(d, -3.5);
                    }
                }
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let mut got = vec![9.0f32; co * points];
            emit_row_c2::<NL, false>(&cur, next_refs, m, inv, -3.5, &mut got, points);
            assert_eq!(bits(&got), bits(&want), "sse2, NL {NL}, {points} points");
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut got = vec![9.0f32; co * points];
                // SAFETY: the CPU has AVX2 (checked above).
                unsafe { emit_row_avx2::<NL>(&cur, next_refs, m, inv, &mut got, points) };
                assert_eq!(bits(&got), bits(&want), "avx2, NL {NL}, {points} points");
            }
        }
    }

    #[test]
    fn emit_rows_match_the_scalar_formula_bit_for_bit() {
        check_emit_row::<0>();
        check_emit_row::<1>();
        check_emit_row::<2>();
        check_emit_row::<3>();
    }

    #[test]
    #[should_panic]
    fn refuses_a_landmark_outside_the_frame() {
        let frame = vec![0.0f32; 1629];
        let mut row = vec![0.0; 2];
        gather_f32_points(&frame, &[(543, 0)], 2, &mut row);
    }
}
