//! Property tests of the core: the optimised path against a literal step-by-step
//! implementation of DESIGN §3, stream against batch at every step, batch against per-clip,
//! finiteness and mask invariants.

// The literal oracle indexes (t, p, c) on purpose, like the design text.
#![allow(clippy::needless_range_loop)]

use proptest::prelude::*;
use signrt_core::{
    preprocess, preprocess_batch, ClipRef, FeatureSpec, Fit, FrameRef, Normalize, Stream, FRAME_LEN,
};

// ------------------------------------------------------------------------ literal oracle
/// DESIGN §3 written out step by step, with nested vectors (slow, obvious).
fn oracle(clip: &[f32], spec: &FeatureSpec) -> (Vec<f32>, Vec<f32>) {
    let t_in = clip.len() / FRAME_LEN;
    let c = spec.coords();
    let raw = |t: usize, l: usize, ch: usize| -> f64 {
        let v = f64::from(clip[t * FRAME_LEN + l * 3 + ch]);
        if v.is_finite() {
            v
        } else {
            f64::NAN
        }
    };
    // 1. select, 2. drop
    let mut frames: Vec<usize> = Vec::new();
    let mut x: Vec<Vec<Vec<f64>>> = Vec::new();
    for t in 0..t_in {
        let sel: Vec<Vec<f64>> = spec
            .landmarks()
            .iter()
            .map(|&l| (0..c).map(|ch| raw(t, l, ch)).collect())
            .collect();
        let empty = sel.iter().flatten().all(|v| v.is_nan());
        if spec.drop_empty_frames() && empty {
            continue;
        }
        frames.push(t);
        x.push(sel);
    }
    // 3. normalise
    let nanmean = |vals: Vec<f64>| -> f64 {
        let ok: Vec<f64> = vals.into_iter().filter(|v| !v.is_nan()).collect();
        if ok.is_empty() {
            f64::NAN
        } else {
            ok.iter().sum::<f64>() / ok.len() as f64
        }
    };
    let fallback = |s: f64| if s.is_nan() || s < 1e-6 { 1.0 } else { s };
    let (m, s): (Vec<f64>, Vec<f64>) = match spec.normalize() {
        Normalize::None => (vec![0.0; c], vec![1.0; c]),
        Normalize::ReferenceRms { reference } => {
            let m: Vec<f64> = (0..c)
                .map(|ch| {
                    let v = nanmean(frames.iter().map(|&t| raw(t, reference, ch)).collect());
                    if v.is_nan() {
                        0.5
                    } else {
                        v
                    }
                })
                .collect();
            let s = (0..c)
                .map(|ch| {
                    let sq = x
                        .iter()
                        .flatten()
                        .map(|p| (p[ch] - m[ch]).powi(2))
                        .collect();
                    fallback(nanmean(sq).sqrt())
                })
                .collect();
            (m, s)
        }
        Normalize::Shoulders => {
            let m: Vec<f64> = (0..c)
                .map(|ch| {
                    let mids = frames
                        .iter()
                        .map(|&t| (raw(t, 500, ch) + raw(t, 501, ch)) / 2.0)
                        .collect();
                    let v = nanmean(mids);
                    if v.is_nan() {
                        0.5
                    } else {
                        v
                    }
                })
                .collect();
            let d = nanmean(
                frames
                    .iter()
                    .map(|&t| {
                        ((raw(t, 500, 0) - raw(t, 501, 0)).powi(2)
                            + (raw(t, 500, 1) - raw(t, 501, 1)).powi(2))
                        .sqrt()
                    })
                    .collect(),
            );
            (m, vec![fallback(d); c])
        }
    };
    for f in x.iter_mut() {
        for p in f.iter_mut() {
            for ch in 0..c {
                p[ch] = (p[ch] - m[ch]) / s[ch];
            }
        }
    }
    // 4. fit
    let l = spec.max_len();
    let x: Vec<Vec<Vec<f64>>> = if x.len() <= l {
        x
    } else if spec.fit() == Fit::Truncate {
        x[..l].to_vec()
    } else {
        let t = x.len();
        (0..l)
            .map(|i| {
                let pos = i as f64 * (t - 1) as f64 / (l.max(2) - 1) as f64;
                let lo = pos.floor() as usize;
                let w = pos - lo as f64;
                let hi = (lo + 1).min(t - 1);
                if w > 0.0 {
                    x[lo]
                        .iter()
                        .zip(&x[hi])
                        .map(|(a, b)| {
                            a.iter()
                                .zip(b)
                                .map(|(a, b)| a * (1.0 - w) + b * w)
                                .collect()
                        })
                        .collect()
                } else {
                    x[lo].clone()
                }
            })
            .collect()
    };
    // 5.–8.
    let rows = x.len();
    let mut feats = vec![0.0f32; l * spec.num_features()];
    let fill = |v: f64| {
        let y = v as f32;
        if y.is_finite() {
            y
        } else {
            spec.nan_fill() as f32
        }
    };
    for t in 0..rows {
        let mut row = Vec::new();
        for p in 0..spec.num_points() {
            for ch in 0..c {
                row.push(fill(x[t][p][ch]));
            }
            for &k in spec.motion_lags() {
                for ch in 0..c {
                    row.push(if t + k < rows {
                        fill(x[t + k][p][ch] - x[t][p][ch])
                    } else {
                        0.0
                    });
                }
            }
        }
        feats[t * spec.num_features()..(t + 1) * spec.num_features()].copy_from_slice(&row);
    }
    let mask = (0..l).map(|t| if t < rows { 1.0 } else { 0.0 }).collect();
    (feats, mask)
}

// ------------------------------------------------------------------------ generators
/// splitmix64: a tiny deterministic generator for clip contents.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// T frames: values around 0.5 (plus an offset), each landmark missing with probability
/// `p_missing`, some frames empty, hands missing, a few ±inf.
fn make_clip(t: usize, seed: u64, p_missing: f64, offset: f64) -> Vec<f32> {
    let mut rng = Rng(seed);
    let mut clip = vec![f32::NAN; t * FRAME_LEN];
    for f in 0..t {
        let mode = rng.next() % 8;
        if mode == 0 {
            continue; // empty frame
        }
        for l in 0..543 {
            let hand = (468..489).contains(&l) || (522..543).contains(&l);
            if (mode == 1 && hand) || rng.unit() < p_missing {
                continue;
            }
            for ch in 0..3 {
                let u = rng.unit();
                let v = if u < 0.002 {
                    f32::INFINITY
                } else if u < 0.004 {
                    f32::NEG_INFINITY
                } else {
                    (offset + 0.5 + (rng.unit() - 0.5) * 0.6) as f32
                };
                clip[f * FRAME_LEN + l * 3 + ch] = v;
            }
        }
    }
    clip
}

prop_compose! {
    fn arb_spec()(
        landmarks in proptest::sample::subsequence((0..543usize).collect::<Vec<_>>(), 1..24)
            .prop_shuffle(),
        hands in any::<bool>(),
        coords in 2usize..=3,
        norm in 0u8..3,
        reference in 0usize..543,
        max_len in 1usize..20,
        truncate in any::<bool>(),
        lag_bits in 0u32..16,
        drop in any::<bool>(),
        nan_fill in -2.0f64..2.0,
    ) -> FeatureSpec {
        let mut landmarks = landmarks;
        if hands {
            landmarks.retain(|l| !(468..489).contains(l));
            landmarks.extend(468..489);
        }
        let normalize = match norm {
            0 => Normalize::ReferenceRms { reference },
            1 => Normalize::Shoulders,
            _ => Normalize::None,
        };
        let lags: Vec<usize> = (1..5).filter(|k| lag_bits & (1 << (k - 1)) != 0 && *k < max_len).collect();
        let fit = if truncate { Fit::Truncate } else { Fit::Resample };
        FeatureSpec::new(landmarks, coords, normalize, max_len, fit, lags, drop, nan_fill).unwrap()
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=N runs more cases (default 96, quick enough for CI).
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn matches_literal_oracle(
        spec in arb_spec(),
        t_frac in 0.0f64..3.0,
        seed in any::<u64>(),
        p_missing in prop_oneof![Just(0.0), 0.0f64..1.0, Just(1.0)],
        offset in prop_oneof![Just(0.0), -3.0f64..3.0],
    ) {
        let t = (t_frac * spec.max_len() as f64) as usize;
        let clip = make_clip(t, seed, p_missing, offset);
        let (f, m) = preprocess(ClipRef::from_f32(&clip).unwrap(), &spec).unwrap();
        let (fo, mo) = oracle(&clip, &spec);
        prop_assert_eq!(&m, &mo);
        prop_assert!(max_diff(&f, &fo) <= 1e-5, "max diff {}", max_diff(&f, &fo));
        // always finite; the mask is a prefix of ones; its count is the kept frames, fitted
        prop_assert!(f.iter().all(|v| v.is_finite()));
        let ones = m.iter().take_while(|v| **v == 1.0).count();
        prop_assert!(m[ones..].iter().all(|v| *v == 0.0));
        let kept = (0..t)
            .filter(|&i| {
                !spec.drop_empty_frames()
                    || spec.landmarks().iter().any(|&l| {
                        (0..spec.coords()).any(|ch| clip[i * FRAME_LEN + l * 3 + ch].is_finite())
                    })
            })
            .count();
        prop_assert_eq!(ones, kept.min(spec.max_len()));
        // padding rows are zero
        prop_assert!(f[ones * spec.num_features()..].iter().all(|v| *v == 0.0));
    }

    #[test]
    fn stream_equals_batch_at_every_step(
        spec in arb_spec(),
        n in 1usize..50,
        seed in any::<u64>(),
        p_missing in prop_oneof![Just(0.0), 0.0f64..1.0],
    ) {
        let w = spec.max_len();
        let clip = make_clip(n, seed, p_missing, 0.0);
        let mut stream = Stream::new(spec.clone()).unwrap();
        for i in 0..n {
            stream.push(FrameRef::from_f32(&clip[i * FRAME_LEN..(i + 1) * FRAME_LEN]).unwrap()).unwrap();
            let lo = (i + 1).saturating_sub(w);
            let window = &clip[lo * FRAME_LEN..(i + 1) * FRAME_LEN];
            let (fb, mb) = preprocess(ClipRef::from_f32(window).unwrap(), &spec).unwrap();
            let (fs, ms) = stream.features().unwrap();
            prop_assert_eq!(&ms, &mb, "step {}", i);
            prop_assert!(max_diff(&fs, &fb) <= 1e-5, "step {}: {}", i, max_diff(&fs, &fb));
            prop_assert_eq!(stream.len(), i + 1 - lo);
        }
    }

    #[test]
    fn batch_equals_per_clip(
        spec in arb_spec(),
        lens in proptest::collection::vec(0usize..40, 0..6),
        seed in any::<u64>(),
    ) {
        let clips: Vec<Vec<f32>> = lens
            .iter()
            .enumerate()
            .map(|(i, &t)| make_clip(t, seed.wrapping_add(i as u64), 0.3, 0.0))
            .collect();
        let refs: Vec<ClipRef<'_>> = clips.iter().map(|c| ClipRef::from_f32(c).unwrap()).collect();
        let (f, m) = preprocess_batch(&refs, &spec).unwrap();
        let lf = spec.max_len() * spec.num_features();
        for (i, c) in refs.iter().enumerate() {
            let (fi, mi) = preprocess(*c, &spec).unwrap();
            prop_assert_eq!(&f[i * lf..(i + 1) * lf], fi.as_slice());
            prop_assert_eq!(&m[i * spec.max_len()..(i + 1) * spec.max_len()], mi.as_slice());
        }
    }

    #[test]
    fn spec_json_round_trips(spec in arb_spec()) {
        let again = FeatureSpec::from_json(&spec.to_json()).unwrap();
        prop_assert_eq!(again, spec);
    }
}
