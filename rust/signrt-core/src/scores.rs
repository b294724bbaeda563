//! Scores of a classifier output: the softmax of each row of logits and its best classes,
//! in one pass per row (the per-prediction tail of the runtime, kept out of numpy so that
//! it costs a few microseconds even when the caches are cold after an engine call).

use crate::error::{Error, Result};

/// The softmax of `logits` (one row, computed in f64) and its `k` most probable classes,
/// best first, as `(class index, probability)`; equal probabilities keep the lower index
/// first. `k` larger than the row gives the whole row; `k = 0` gives an empty list (the
/// logits are still checked).
///
/// # Errors
/// [`Error::Model`] if the row is empty or a logit is not finite (a broken model or
/// engine: there is no meaningful answer to give).
pub fn softmax_topk(logits: &[f32], k: usize) -> Result<Vec<(usize, f64)>> {
    if logits.is_empty() {
        return Err(Error::Model(
            "the model returned no logits (K = 0)".to_owned(),
        ));
    }
    let mut max = f64::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if !v.is_finite() {
            return Err(Error::Model(format!(
                "the model returned a non-finite logit ({v} for class {i}); check the model \
                 (e.g. `signrt info`) and its input features"
            )));
        }
        max = max.max(f64::from(v));
    }
    let sum: f64 = logits.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    let k = k.min(logits.len());
    if k == 0 {
        return Ok(Vec::new());
    }
    // Insertion into a short sorted list: O(K·k) with k small (a top-5 of a few hundred).
    let mut best: Vec<(usize, f64)> = Vec::with_capacity(k + 1);
    for (i, &v) in logits.iter().enumerate() {
        let z = f64::from(v) - max;
        if best.len() == k && z <= best[k - 1].1 {
            continue;
        }
        let pos = best.partition_point(|&(_, b)| b >= z);
        best.insert(pos, (i, z));
        best.truncate(k);
    }
    Ok(best.into_iter().map(|(i, z)| (i, z.exp() / sum)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_sum_to_one_and_come_best_first() {
        let logits = [1.0f32, 3.0, -2.0, 3.0, 0.5];
        let all = softmax_topk(&logits, 10).unwrap();
        assert_eq!(all.len(), 5);
        let order: Vec<usize> = all.iter().map(|p| p.0).collect();
        assert_eq!(
            order,
            vec![1, 3, 0, 4, 2],
            "ties keep the lower index first"
        );
        let total: f64 = all.iter().map(|p| p.1).sum();
        assert!((total - 1.0).abs() < 1e-12);
        let e: Vec<f64> = logits.iter().map(|&v| f64::from(v).exp()).collect();
        let s: f64 = e.iter().sum();
        for (i, p) in all {
            assert!((p - e[i] / s).abs() < 1e-15);
        }
    }

    #[test]
    fn top_k_is_a_prefix_of_the_full_order() {
        let logits: Vec<f32> = (0..250).map(|i| ((i * 37) % 101) as f32 * 0.1).collect();
        let all = softmax_topk(&logits, 250).unwrap();
        for k in [1usize, 2, 5, 17] {
            assert_eq!(softmax_topk(&logits, k).unwrap(), all[..k].to_vec());
        }
    }

    #[test]
    fn k_zero_is_an_empty_answer() {
        assert_eq!(softmax_topk(&[1.0, 2.0], 0).unwrap(), Vec::new());
        assert!(matches!(softmax_topk(&[f32::NAN], 0), Err(Error::Model(_))));
    }

    #[test]
    fn large_logits_do_not_overflow() {
        let got = softmax_topk(&[1000.0, 999.0, -1000.0], 1).unwrap();
        assert_eq!(got[0].0, 0);
        assert!((got[0].1 - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-12);
    }

    #[test]
    fn non_finite_or_empty_logits_are_a_model_error() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let err = softmax_topk(&[0.0, bad], 1).unwrap_err();
            assert!(
                matches!(err, Error::Model(ref m) if m.contains("class 1")),
                "{err}"
            );
        }
        assert!(matches!(softmax_topk(&[], 1), Err(Error::Model(_))));
    }
}
