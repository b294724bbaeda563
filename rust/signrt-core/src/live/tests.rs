//! Unit and property tests of the live decisions.

use super::*;
use crate::fixtures;
use crate::spec::Fit;
use proptest::prelude::*;

const NAN: f32 = f32::NAN;

/// A frame with the right hand centred at (x, 0.5) (or no right hand), the left hand at
/// `left` (or none), the shoulders `shoulder` apart (or not seen), the rest missing.
fn frame(right: Option<f32>, left: Option<f32>, shoulder: Option<f32>) -> Vec<f32> {
    let mut f = vec![NAN; FRAME_LEN];
    let mut hand = |start: usize, x: f32| {
        for k in 0..HAND_LEN {
            let l = start + k;
            f[l * 3] = x + (k as f32 - 10.0) * 0.002;
            f[l * 3 + 1] = 0.5 + (k % 5) as f32 * 0.003;
            f[l * 3 + 2] = 0.0;
        }
    };
    if let Some(x) = right {
        hand(RIGHT_HAND, x);
    }
    if let Some(x) = left {
        hand(LEFT_HAND, x);
    }
    if let Some(w) = shoulder {
        let [l, r] = SHOULDERS;
        f[l * 3] = 0.5 - w / 2.0;
        f[l * 3 + 1] = 0.6;
        f[r * 3] = 0.5 + w / 2.0;
        f[r * 3 + 1] = 0.6;
    }
    f
}

fn fr(f: &[f32]) -> FrameRef<'_> {
    FrameRef::from_f32(f).unwrap()
}

fn window(
    stride: i64,
    threshold: f64,
    confirm: i64,
    cooldown: f64,
    min_frames: i64,
) -> WindowDecider {
    let spec = fixtures::islr118(16, Fit::Truncate);
    let s =
        WindowSettings::new(stride, threshold, confirm, cooldown, min_frames, true, 16).unwrap();
    WindowDecider::new(spec, s, 30.0).unwrap()
}

/// Push `frames` at i / fps; every ready window answers the next scripted (label, score).
fn run_window(
    d: &mut WindowDecider,
    frames: &[Vec<f32>],
    script: &[(&str, f64)],
    fps: f64,
) -> Vec<(usize, String, Emit)> {
    let mut out = Vec::new();
    let mut k = 0;
    for (i, f) in frames.iter().enumerate() {
        if d.push(fr(f), Some(i as f64 / fps)).unwrap() {
            let (label, score) = script[k % script.len()];
            k += 1;
            if let Some(e) = d.decide(label, score).unwrap() {
                out.push((i, label.to_owned(), e));
            }
        }
    }
    out
}

// ------------------------------------------------------------------------ window mode
#[test]
fn window_jittery_confidence_confirms_once() {
    let mut d = window(2, 0.6, 2, 1.0, 1);
    let frames = vec![frame(Some(0.5), None, None); 10];
    let script = [("a", 0.9), ("a", 0.5), ("a", 0.9), ("a", 0.8), ("a", 0.9)];
    let got = run_window(&mut d, &frames, &script, 10.0);
    // classifications at frames 1, 3, 5, 7, 9: 0.9 | 0.5 resets | 0.9, 0.8 -> emit at 7
    assert_eq!(got.len(), 1);
    let (i, ref label, e) = got[0];
    assert_eq!(
        (i, label.as_str(), e.start, e.end, e.frames),
        (7, "a", 0.0, 0.7, 8)
    );
    assert!((e.score - 0.85).abs() < 1e-15);
    assert_eq!(d.engine_calls(), 5);
}

#[test]
fn window_without_a_hand_is_never_ready_and_breaks_the_run() {
    let mut d = window(1, 0.5, 2, 1.0, 1);
    // pose only: no hand, so no signer with require_hand
    let pose_only = frame(None, None, Some(0.3));
    for i in 0..40 {
        assert!(!d.push(fr(&pose_only), Some(i as f64)).unwrap());
    }
    assert_eq!(d.num_signer_frames(), 0);
    let hand = frame(Some(0.5), None, None);
    let got = run_window(
        &mut d,
        &[hand.clone(), pose_only, hand.clone(), hand],
        &[("a", 0.9)],
        10.0,
    );
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![3]);
    // the pose-only frame broke the run; the event starts at the oldest signer frame
    assert_eq!(got[0].2.start, 0.0);
}

#[test]
fn window_any_signer_counts_pose_only_frames() {
    let spec = fixtures::hands_pose(16, Fit::Truncate);
    let s = WindowSettings::new(1, 0.5, 1, 0.0, 1, false, 16).unwrap();
    let mut d = WindowDecider::new(spec, s, 30.0).unwrap();
    assert!(d.push(fr(&frame(None, None, Some(0.3))), None).unwrap());
    assert!(!d.push(fr(&vec![NAN; FRAME_LEN]), None).unwrap());
}

#[test]
fn window_cooldown_is_per_label() {
    let mut d = window(1, 0.5, 1, 1.0, 1);
    let frames = vec![frame(Some(0.5), None, None); 12];
    let script = [
        ("a", 0.9),
        ("c", 0.4),
        ("a", 0.9),
        ("b", 0.9),
        ("a", 0.9),
        ("c", 0.4),
        ("c", 0.4),
        ("c", 0.4),
        ("c", 0.4),
        ("a", 0.9),
        ("c", 0.4),
        ("a", 0.9),
    ];
    let got = run_window(&mut d, &frames, &script, 10.0);
    let seen: Vec<(usize, &str)> = got.iter().map(|g| (g.0, g.1.as_str())).collect();
    assert_eq!(seen, vec![(0, "a"), (3, "b"), (11, "a")]);
}

#[test]
fn window_stride_and_min_frames() {
    let mut d = window(4, 0.6, 2, 1.0, 6);
    let f = frame(Some(0.5), None, None);
    let ready: Vec<usize> = (0..12)
        .filter(|_| {
            let r = d.push(fr(&f), None).unwrap();
            if r {
                d.decide("a", 0.3).unwrap();
            }
            r
        })
        .collect();
    assert_eq!(ready, vec![7, 11]); // frame 3 had only 4 signer frames
}

#[test]
fn decide_without_a_pending_classification_is_an_internal_error() {
    let mut d = window(1, 0.5, 1, 0.0, 1);
    assert!(matches!(d.decide("a", 0.9), Err(Error::Internal(_))));
    let f = frame(Some(0.5), None, None);
    assert!(d.push(fr(&f), None).unwrap());
    assert!(d.decide("a", 0.9).unwrap().is_some());
    assert!(matches!(d.decide("a", 0.9), Err(Error::Internal(_))));
}

#[test]
fn a_frame_of_the_wrong_shape_changes_nothing() {
    let mut d = window(1, 0.5, 1, 0.0, 1);
    let values = vec![0.0f32; FRAME_LEN];
    let wrong = ArrayView2::from_shape((181, 9), &values[..]).unwrap();
    assert!(matches!(
        d.push(FrameRef::F32(wrong), None),
        Err(Error::Shape(_))
    ));
    assert_eq!(d.clock().frames(), 0);
    assert!(d.window().is_empty());
    let mut s = SegmentDecider::new(segment_settings(2, 1, None), 30.0).unwrap();
    assert!(matches!(
        s.push(FrameRef::F32(wrong), None),
        Err(Error::Shape(_))
    ));
    assert_eq!(s.clock().frames(), 0);
}

#[test]
fn settings_out_of_range_are_setting_errors() {
    let w = |stride, threshold, confirm, cooldown| {
        WindowSettings::new(stride, threshold, confirm, cooldown, 1, true, 16)
    };
    for (bad, name) in [
        (w(0, 0.5, 1, 0.0), "stride"),
        (w(1, 1.5, 1, 0.0), "threshold"),
        (w(1, f64::NAN, 1, 0.0), "threshold"),
        (w(1, 0.5, 0, 0.0), "confirm"),
        (w(1, 0.5, 1, -1.0), "cooldown"),
    ] {
        assert!(
            matches!(bad, Err(Error::Setting(ref m)) if m.starts_with(name)),
            "{bad:?}"
        );
    }
    let s = |rest, threshold, motion| {
        SegmentSettings::new(threshold, rest, motion, MotionUnit::Shoulder, 1, None, 16)
    };
    for (bad, name) in [
        (s(0, 0.5, None), "rest_frames"),
        (s(1, -0.1, None), "threshold"),
        (s(1, 0.5, Some(-1.0)), "motion_threshold"),
    ] {
        assert!(
            matches!(bad, Err(Error::Setting(ref m)) if m.starts_with(name)),
            "{bad:?}"
        );
    }
    assert!(matches!(
        MotionUnit::from_name("px"),
        Err(Error::Setting(_))
    ));
    assert!(matches!(Clock::new(0.0), Err(Error::Setting(_))));
    assert_eq!(w(1, 0.5, 1, 0.0).unwrap().min_frames, 1);
    let clamped = WindowSettings::new(1, 0.5, 1, 0.0, 1000, true, 16).unwrap();
    assert_eq!(clamped.min_frames, 16);
    let seg = s(1, 0.5, None).unwrap();
    assert_eq!(
        (seg.motion_threshold, seg.max_frames),
        (DEFAULT_MOTION_SHOULDER, 64)
    );
}

#[test]
fn the_clock_fills_missing_timestamps() {
    let mut c = Clock::new(20.0).unwrap();
    assert_eq!(c.stamp(None), 0.0);
    assert_eq!(c.stamp(None), 0.05);
    assert_eq!(c.stamp(Some(3.0)), 3.0);
    assert_eq!(c.stamp(None), 3.05);
    c.reset();
    assert_eq!(c.stamp(None), 0.0);
    assert_eq!(c.frames(), 5);
}

// ----------------------------------------------------------------------- segment mode
fn segment_settings(rest: i64, min_frames: i64, max_frames: Option<i64>) -> SegmentSettings {
    SegmentSettings::new(
        0.5,
        rest,
        Some(0.004),
        MotionUnit::Image,
        min_frames,
        max_frames,
        16,
    )
    .unwrap()
}

/// Push `frames` at i / fps; every closed segment scores `score`.
fn run_segment(d: &mut SegmentDecider, frames: &[Vec<f32>], score: f64) -> Vec<(usize, Emit)> {
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        if d.push(fr(f), Some(i as f64 / 10.0)).unwrap() {
            if let Some(e) = d.decide(score).unwrap() {
                out.push((i, e));
            }
        }
    }
    out
}

#[test]
fn segment_sign_rest_sign() {
    let mut d = SegmentDecider::new(segment_settings(4, 3, None), 30.0).unwrap();
    let still = |x| frame(Some(x), None, None);
    let none = vec![NAN; FRAME_LEN];
    let mut frames = vec![none.clone(); 3];
    frames.extend(std::iter::repeat_n(still(0.3), 3)); // 0-5 idle
    frames.extend((1..9).map(|k| still(0.3 + 0.02 * k as f32))); // 6-13 moving
    frames.extend(std::iter::repeat_n(still(0.46), 6)); // 14-19 rest
    frames.extend((1..7).map(|k| still(0.46 - 0.03 * k as f32))); // 20-25 moving
    frames.extend(std::iter::repeat_n(none.clone(), 4)); // 26-29 hands gone
    frames.extend([still(0.5), still(0.55), still(0.6)]); // 30-32 too short
    frames.extend(std::iter::repeat_n(none, 6));
    let got = run_segment(&mut d, &frames, 0.9);
    let seen: Vec<(usize, usize)> = got.iter().map(|(i, e)| (*i, e.frames)).collect();
    assert_eq!(seen, vec![(17, 8), (29, 6)]);
    assert!((got[0].1.start - 0.6).abs() < 1e-12 && (got[0].1.end - 1.3).abs() < 1e-12);
    assert_eq!(d.engine_calls(), 2); // the 2-frame segment is below min_frames
    assert!(!d.flush());
}

#[test]
fn segment_frames_are_the_pushed_frames() {
    let mut d = SegmentDecider::new(segment_settings(2, 1, None), 30.0).unwrap();
    let moving: Vec<Vec<f32>> = (0..6)
        .map(|k| frame(Some(0.3 + 0.05 * k as f32), Some(0.7), Some(0.3)))
        .collect();
    let mut ready = false;
    for f in moving.iter().chain([&moving[5], &moving[5]]) {
        ready = d.push(fr(f), None).unwrap();
    }
    assert!(ready);
    let (values, n) = d.segment();
    assert_eq!(n, 5);
    let want: Vec<f32> = moving[1..].iter().flatten().copied().collect();
    let SegmentView::F32(got) = values else {
        panic!("float32 frames give a float32 segment")
    };
    assert_eq!(got.len(), want.len());
    assert!(got
        .iter()
        .zip(&want)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn a_float64_frame_widens_the_segment_exactly() {
    let mut d = SegmentDecider::new(segment_settings(2, 1, None), 30.0).unwrap();
    let moving: Vec<Vec<f32>> = (0..4)
        .map(|k| frame(Some(0.3 + 0.05 * k as f32), None, None))
        .collect();
    let wide: Vec<f64> = moving[3].iter().map(|&v| f64::from(v) + 1e-12).collect();
    for f in &moving[..3] {
        assert!(!d.push(fr(f), None).unwrap());
    }
    assert!(!d.push(FrameRef::from_f64(&wide).unwrap(), None).unwrap());
    assert!(!d.push(fr(&moving[3]), None).unwrap());
    assert!(d.push(fr(&moving[3]), None).unwrap());
    let (values, n) = d.segment();
    assert_eq!(
        n, 3,
        "frames 1, 2 and the float64 one; the still ones are trimmed"
    );
    let SegmentView::F64(got) = values else {
        panic!("a float64 frame makes the segment float64")
    };
    let mut want: Vec<f64> = moving[1..3]
        .iter()
        .flatten()
        .map(|&v| f64::from(v))
        .collect();
    want.extend(&wide);
    assert_eq!(got.len(), want.len());
    assert!(got
        .iter()
        .zip(&want)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn segment_max_frames_and_flush() {
    let mut d = SegmentDecider::new(segment_settings(3, 2, Some(5)), 30.0).unwrap();
    let frames: Vec<Vec<f32>> = (0..13)
        .map(|k| frame(Some(0.2 + 0.01 * k as f32), None, None))
        .collect();
    let got = run_segment(&mut d, &frames, 0.9);
    let seen: Vec<(usize, usize)> = got.iter().map(|(i, e)| (*i, e.frames)).collect();
    assert_eq!(seen, vec![(5, 5), (10, 5)]);
    assert!(d.flush());
    assert_eq!(d.segment().1, 2);
    let e = d.decide(0.4).unwrap();
    assert!(e.is_none(), "below the threshold");
    assert!(!d.flush());
}

#[test]
fn motion_is_measured_in_shoulder_widths() {
    for shoulder in [0.1f32, 0.4] {
        let s = SegmentSettings::new(0.5, 4, None, MotionUnit::Shoulder, 3, None, 16).unwrap();
        let mut d = SegmentDecider::new(s, 30.0).unwrap();
        let run = |d: &mut SegmentDecider, step: f32| {
            let frames: Vec<Vec<f32>> = (0..12)
                .map(|k| frame(Some(0.3 + step * shoulder * k as f32), None, Some(shoulder)))
                .chain(std::iter::repeat_n(
                    frame(Some(0.3 + step * shoulder * 11.0), None, Some(shoulder)),
                    6,
                ))
                .collect();
            run_segment(d, &frames, 0.9).len()
        };
        assert_eq!(
            run(&mut d, 0.01),
            0,
            "0.01 shoulder widths per frame is still"
        );
        assert_eq!(run(&mut d, 0.03), 1, "0.03 shoulder widths per frame moves");
    }
}

#[test]
fn strided_frames_decide_like_packed_ones() {
    use ndarray::{Array2, ShapeBuilder};
    let frames: Vec<Vec<f32>> = (0..30)
        .map(|k| {
            frame(
                Some(0.3 + 0.02 * (k % 9) as f32),
                (k % 4 == 0).then_some(0.6),
                Some(0.3),
            )
        })
        .collect();
    let spec = fixtures::islr118(8, Fit::Truncate);
    let ws = WindowSettings::new(2, 0.5, 1, 0.0, 1, true, 8).unwrap();
    let (mut wa, mut wb) = (
        WindowDecider::new(spec.clone(), ws.clone(), 30.0).unwrap(),
        WindowDecider::new(spec, ws, 30.0).unwrap(),
    );
    let mut sa = SegmentDecider::new(segment_settings(2, 1, None), 30.0).unwrap();
    let mut sb = sa.clone();
    for f in &frames {
        let packed = Array2::from_shape_vec((NUM_LANDMARKS, NUM_COORDS), f.clone()).unwrap();
        let mut fortran = Array2::<f64>::zeros((NUM_LANDMARKS, NUM_COORDS).f());
        fortran.assign(&packed.mapv(f64::from));
        assert_eq!(
            wa.push(fr(f), None).unwrap(),
            wb.push(FrameRef::F64(fortran.view()), None).unwrap()
        );
        let (ra, rb) = (
            sa.push(fr(f), None).unwrap(),
            sb.push(FrameRef::F64(fortran.view()), None).unwrap(),
        );
        assert_eq!(ra, rb);
        if ra {
            assert_eq!(sa.segment(), sb.segment());
        }
    }
}

#[test]
fn pairwise_sum_follows_numpy_order() {
    let a: Vec<f64> = (0..300).map(|i| 0.1 + (i as f64 * 0.37).sin()).collect();
    for n in [0usize, 1, 7, 8, 9, 16, 17, 128, 129, 300] {
        let exact: f64 = a[..n].iter().sum();
        assert!((pairwise_sum(&a[..n]) - exact).abs() < 1e-12, "n = {n}");
    }
    // below 8 values the order is plain left to right
    let small = [0.9, 0.8, 0.85];
    assert_eq!(
        pairwise_sum(&small).to_bits(),
        ((0.9 + 0.8) + 0.85f64).to_bits()
    );
    // 8 to 128: eight partial sums, combined as a tree
    let eight = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
    let want: f64 = ((0.1 + 0.2) + (0.3 + 0.4)) + ((0.5 + 0.6) + (0.7 + 0.8)) + 0.9;
    assert_eq!(pairwise_sum(&eight).to_bits(), want.to_bits());
}

// ------------------------------------------------------------------------- properties
/// One of a few frame kinds, so that generated streams mix signer, pose-only and empty
/// frames and moving and still hands.
fn frame_kind(k: u8, x: f32) -> Vec<f32> {
    match k % 6 {
        0 => vec![NAN; FRAME_LEN],
        1 => frame(None, None, Some(0.3)),
        2 => frame(Some(x), None, Some(0.3)),
        3 => frame(None, Some(x), None),
        4 => frame(Some(x), Some(1.0 - x), Some(0.2 + x / 4.0)),
        _ => frame(Some(0.4), None, Some(0.3)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Ready windows are the frames with a hand at a multiple of the stride since the last
    /// reset once min_frames hand frames are in the window; events end at the confirming
    /// frame, start at a hand frame no later, and respect the per-label cooldown.
    #[test]
    fn window_readiness_and_events(
        kinds in proptest::collection::vec((0u8..6, 0.2f32..0.8), 1..120),
        stride in 1i64..5, confirm in 1i64..4, min_frames in 1i64..12,
        cooldown in 0.0f64..1.0, scores in proptest::collection::vec((0usize..3, 0.0f64..1.0), 1..20),
    ) {
        let spec = fixtures::hands_pose(8, Fit::Truncate);
        let s = WindowSettings::new(stride, 0.5, confirm, cooldown, min_frames, true, 8).unwrap();
        let mut d = WindowDecider::new(spec, s.clone(), 25.0).unwrap();
        let labels = ["a", "b", "c"];
        let mut hand_flags: Vec<bool> = Vec::new();
        let mut last: HashMap<&str, f64> = HashMap::new();
        let mut k = 0usize;
        for (i, &(kind, x)) in kinds.iter().enumerate() {
            let f = frame_kind(kind, x);
            let hand = HAND_PROBES.iter().any(|&l| f[l * 3].is_finite());
            hand_flags.push(hand);
            let lo = hand_flags.len().saturating_sub(8);
            let in_window = hand_flags[lo..].iter().filter(|&&h| h).count();
            let want = hand && (i as i64 + 1) % stride == 0 && in_window >= s.min_frames;
            let ts = i as f64 / 25.0;
            prop_assert_eq!(d.push(fr(&f), Some(ts)).unwrap(), want, "frame {}", i);
            if want {
                let (c, score) = scores[k % scores.len()];
                k += 1;
                if let Some(e) = d.decide(labels[c], score).unwrap() {
                    prop_assert!(score >= 0.5 && e.score >= 0.5);
                    prop_assert_eq!(e.end, ts);
                    prop_assert!(e.start <= e.end);
                    prop_assert_eq!(e.frames, in_window);
                    if let Some(&t) = last.get(labels[c]) {
                        prop_assert!(ts - t >= cooldown);
                    }
                    last.insert(labels[c], ts);
                }
            }
        }
        prop_assert_eq!(d.engine_calls() as usize, k);
    }

    /// Segments hold between min_frames and max_frames frames (2 for max_frames = 1), come in time order without
    /// overlap, and carry exactly the frames pushed between their start and end.
    #[test]
    fn segments_are_ordered_bounded_and_hold_their_frames(
        kinds in proptest::collection::vec((0u8..6, 0.2f32..0.8), 1..150),
        rest in 1i64..6, min_frames in 1i64..5, max_frames in 1i64..30,
    ) {
        let s = SegmentSettings::new(0.0, rest, None, MotionUnit::Shoulder, min_frames,
                                     Some(max_frames), 16).unwrap();
        let mut d = SegmentDecider::new(s, 25.0).unwrap();
        let frames: Vec<Vec<f32>> = kinds.iter().map(|&(k, x)| frame_kind(k, x)).collect();
        let mut prev_end = -1.0;
        let mut check = |d: &mut SegmentDecider| -> std::result::Result<(), TestCaseError> {
            let (values, n) = d.segment();
            let values = values.to_f64();
            let e = d.decide(1.0).unwrap().unwrap();
            prop_assert_eq!(e.frames, n);
            // the opening frame is never checked against max_frames: a segment of max_frames = 1
            // closes at its second frame
            prop_assert!(n as i64 >= min_frames && n as i64 <= max_frames.max(2));
            prop_assert!(e.start > prev_end && e.end >= e.start);
            let first = (e.start * 25.0).round() as usize;
            prop_assert_eq!(((e.end * 25.0).round() as usize) - first + 1, n);
            let want: Vec<f64> = frames[first..first + n].iter().flatten().map(|&v| f64::from(v)).collect();
            prop_assert!(values.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
            prev_end = e.end;
            Ok(())
        };
        for (i, f) in frames.iter().enumerate() {
            if d.push(fr(f), Some(i as f64 / 25.0)).unwrap() {
                check(&mut d)?;
            }
        }
        if d.flush() {
            check(&mut d)?;
        }
    }

    /// A stream without hands never opens a segment nor asks for a classification.
    #[test]
    fn no_hands_no_segment(kinds in proptest::collection::vec(0u8..2, 1..80)) {
        let s = SegmentSettings::new(0.5, 2, Some(0.0), MotionUnit::Image, 1, None, 16).unwrap();
        let mut d = SegmentDecider::new(s, 25.0).unwrap();
        for k in kinds {
            prop_assert!(!d.push(fr(&frame_kind(k, 0.5)), None).unwrap());
            prop_assert_eq!(d.open_frames(), 0);
        }
        prop_assert!(!d.flush());
    }

    /// The pairwise sum is the sum (to rounding), whatever the length.
    #[test]
    fn pairwise_sum_is_a_sum(a in proptest::collection::vec(0.0f64..1.0, 0..400)) {
        let exact: f64 = a.iter().sum();
        prop_assert!((pairwise_sum(&a) - exact).abs() <= 1e-12 * (1.0 + exact));
    }
}

// ------------------------------------------------------------------------ score kinds
#[test]
fn score_kinds_check_their_thresholds() {
    let w = |score, t| WindowSettings::scored(score, 1, t, 1, 0.0, 1, true, 16);
    assert!(w(ScoreKind::Probability, 1.5).is_err());
    let e = w(ScoreKind::Energy, 7.25).unwrap();
    assert_eq!((e.score, e.threshold), (ScoreKind::Energy, 7.25));
    assert!(w(ScoreKind::Energy, -3.0).is_ok());
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let msg = w(ScoreKind::Energy, bad).unwrap_err().to_string();
        assert!(msg.contains("finite") && msg.contains("energy"), "{msg}");
        let seg = SegmentSettings::scored(
            ScoreKind::Energy,
            bad,
            4,
            None,
            MotionUnit::Shoulder,
            1,
            None,
            16,
        );
        assert!(seg.is_err());
    }
    assert_eq!(
        WindowSettings::new(1, 0.5, 1, 0.0, 1, true, 16)
            .unwrap()
            .score,
        ScoreKind::Probability
    );
    assert_eq!(ScoreKind::from_name("energy").unwrap(), ScoreKind::Energy);
    assert_eq!(
        ScoreKind::from_name("probability").unwrap().name(),
        "probability"
    );
    assert!(ScoreKind::from_name("logit")
        .unwrap_err()
        .to_string()
        .contains("'logit'"));
}

#[test]
fn window_energy_threshold_decides_and_the_event_reports_the_values() {
    let spec = fixtures::islr118(16, Fit::Truncate);
    let s = WindowSettings::scored(ScoreKind::Energy, 1, 2.0, 2, 0.0, 1, true, 16).unwrap();
    let mut d = WindowDecider::new(spec, s, 10.0).unwrap();
    let f = frame(Some(0.5), None, None);
    // (energy, probability): energies 2.5, 1.0 (resets), 3.0, 2.0 -> emit on the 4th
    let script = [
        (2.5, 0.9),
        (1.0, 0.95),
        (3.0, 0.4),
        (2.0, 0.7),
        (f64::NAN, 0.9),
    ];
    let mut got = Vec::new();
    for (i, &(energy, p)) in script.iter().enumerate() {
        assert!(d.push(fr(&f), Some(i as f64 / 10.0)).unwrap());
        if let Some(e) = d.decide_scored("a", energy, p).unwrap() {
            got.push((i, e));
        }
    }
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 3);
    // the mean of the confirming probabilities (0.4, 0.7), not of the energies
    assert!((got[0].1.score - 0.55).abs() < 1e-15);
}

#[test]
fn segment_energy_threshold_decides_and_reports_the_value() {
    let s = SegmentSettings::scored(
        ScoreKind::Energy,
        -1.0,
        2,
        Some(0.004),
        MotionUnit::Image,
        1,
        None,
        16,
    )
    .unwrap();
    let still = |x| frame(Some(x), None, None);
    let mut frames: Vec<Vec<f32>> = (0..5).map(|k| still(0.3 + 0.02 * k as f32)).collect();
    frames.extend(std::iter::repeat_n(still(0.38), 3));
    for (energy, fires) in [(-0.5, true), (-1.0, true), (-1.5, false), (f64::NAN, false)] {
        let mut d = SegmentDecider::new(s.clone(), 30.0).unwrap();
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            if d.push(fr(f), Some(i as f64 / 10.0)).unwrap() {
                out.extend(d.decide_scored(energy, 0.625).unwrap());
            }
        }
        assert_eq!(out.len(), usize::from(fires), "energy {energy}");
        if fires {
            assert_eq!(out[0].score, 0.625);
        }
    }
}

proptest! {
    /// Only the order of the decision scores matters: an energy decider fed energies `e`
    /// with threshold `t` emits exactly what a probability decider fed `sigmoid(e)` with
    /// threshold `sigmoid(t)` emits (same frames, times and reported values), in both modes.
    #[test]
    fn energy_decisions_equal_probability_decisions_under_a_monotone_map(
        kinds in proptest::collection::vec((0u8..6, 0.2f32..0.8), 1..100),
        energies in proptest::collection::vec((0usize..3, -6.0f64..6.0, 0.0f64..1.0), 1..16),
        t in -4.0f64..4.0, confirm in 1i64..4,
    ) {
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let labels = ["a", "b", "c"];
        let spec = fixtures::hands_pose(8, Fit::Truncate);
        let we = WindowSettings::scored(ScoreKind::Energy, 1, t, confirm, 0.0, 1, true, 8).unwrap();
        let wp = WindowSettings::new(1, sig(t), confirm, 0.0, 1, true, 8).unwrap();
        let mut de = WindowDecider::new(spec.clone(), we, 25.0).unwrap();
        let mut dp = WindowDecider::new(spec, wp, 25.0).unwrap();
        let se = SegmentSettings::scored(ScoreKind::Energy, t, 2, None, MotionUnit::Shoulder, 1,
                                         None, 8).unwrap();
        let sp = SegmentSettings::new(sig(t), 2, None, MotionUnit::Shoulder, 1, None, 8).unwrap();
        let (mut ge, mut gp) = (SegmentDecider::new(se, 25.0).unwrap(),
                                SegmentDecider::new(sp, 25.0).unwrap());
        let (mut k, mut j) = (0usize, 0usize);
        for (i, &(kind, x)) in kinds.iter().enumerate() {
            let f = frame_kind(kind, x);
            let ts = Some(i as f64 / 25.0);
            let ready = de.push(fr(&f), ts).unwrap();
            prop_assert_eq!(ready, dp.push(fr(&f), ts).unwrap());
            if ready {
                let (c, e, p) = energies[k % energies.len()];
                k += 1;
                let a = de.decide_scored(labels[c], e, p).unwrap();
                let b = dp.decide_scored(labels[c], sig(e), p).unwrap();
                prop_assert_eq!(a, b, "window, frame {}", i);
            }
            let closed = ge.push(fr(&f), ts).unwrap();
            prop_assert_eq!(closed, gp.push(fr(&f), ts).unwrap());
            if closed {
                let (_, e, p) = energies[j % energies.len()];
                j += 1;
                prop_assert_eq!(ge.decide_scored(e, p).unwrap(), gp.decide_scored(sig(e), p).unwrap());
            }
        }
    }
}
