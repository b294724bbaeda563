//! Criterion benches of the core: one clip (T ∈ {16, 64, 384}) with an islr118-like spec,
//! a batch of clips, and the streaming window (push, features).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use signrt_core::fixtures::islr118;
use signrt_core::{
    preprocess, preprocess_batch, preprocess_with_scratch, ClipRef, Fit, FrameRef, Scratch, Stream,
    FRAME_LEN,
};

/// A (t, 543, 3) clip: values in [0, 1), ~20 % of landmarks missing, hands absent every
/// fifth frame.
fn clip(t: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut x = vec![0.0f32; t * FRAME_LEN];
    for f in 0..t {
        for l in 0..543 {
            let hand = (468..489).contains(&l) || (522..543).contains(&l);
            let missing = next() % 5 == 0 || (hand && f % 5 == 4);
            for c in 0..3 {
                x[f * FRAME_LEN + l * 3 + c] = if missing {
                    f32::NAN
                } else {
                    (next() % 10_000) as f32 / 10_000.0
                };
            }
        }
    }
    x
}

fn bench_clip(c: &mut Criterion) {
    let mut group = c.benchmark_group("preprocess");
    for fit in [Fit::Truncate, Fit::Resample] {
        let spec = islr118(64, fit);
        for t in [16usize, 64, 384] {
            let x = clip(t, t as u64);
            group.throughput(Throughput::Elements(t as u64));
            group.bench_with_input(BenchmarkId::new(format!("{fit:?}"), t), &x, |b, x| {
                b.iter(|| preprocess(ClipRef::from_f32(black_box(x)).unwrap(), &spec).unwrap());
            });
        }
    }
    // Without the output allocation: the work itself.
    let spec = islr118(64, Fit::Truncate);
    let x = clip(64, 1);
    let mut feats = vec![0.0f32; 64 * spec.num_features()];
    let mut mask = vec![0.0f32; 64];
    let mut scratch = Scratch::new();
    group.bench_function("into/64", |b| {
        b.iter(|| {
            preprocess_with_scratch(
                ClipRef::from_f32(black_box(&x)).unwrap(),
                &spec,
                &mut feats,
                &mut mask,
                &mut scratch,
            )
            .unwrap()
        });
    });
    group.finish();
}

fn bench_batch(c: &mut Criterion) {
    let spec = islr118(64, Fit::Truncate);
    let clips: Vec<Vec<f32>> = (0..256)
        .map(|i| clip(16 + (i * 37) % 200, i as u64))
        .collect();
    let refs: Vec<ClipRef<'_>> = clips
        .iter()
        .map(|x| ClipRef::from_f32(x).unwrap())
        .collect();
    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Elements(refs.len() as u64));
    group.sample_size(20);
    group.bench_function("256 clips", |b| {
        b.iter(|| preprocess_batch(black_box(&refs), &spec))
    });
    group.finish();
}

fn bench_stream(c: &mut Criterion) {
    let spec = islr118(64, Fit::Truncate);
    let frames = clip(256, 7);
    let mut group = c.benchmark_group("stream");
    let mut stream = Stream::new(spec.clone()).unwrap();
    let mut i = 0;
    group.bench_function("push", |b| {
        b.iter(|| {
            let f = &frames[i * FRAME_LEN..(i + 1) * FRAME_LEN];
            stream
                .push(FrameRef::from_f32(black_box(f)).unwrap())
                .unwrap();
            i = (i + 1) % 256;
        });
    });
    let mut feats = vec![0.0f32; 64 * spec.num_features()];
    let mut mask = vec![0.0f32; 64];
    group.bench_function("features/W=64", |b| {
        b.iter(|| {
            stream
                .features_into(black_box(&mut feats), &mut mask)
                .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, bench_clip, bench_batch, bench_stream);
criterion_main!(benches);
