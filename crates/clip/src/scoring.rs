//! Zero-shot scores. CLIP (OpenAI, and Hailo's CLIP app): softmax(100 * cosine) over labels and
//! negatives, negatives never reported. SigLIP: each label on its own,
//! sigmoid(logit_scale * cosine + logit_bias) with the model's trained scale and bias.

use serde::Serialize;

pub const LOGIT_SCALE: f32 = 100.0;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scoring {
    /// Scores sum to one over labels and negatives.
    Softmax { logit_scale: f32 },
    /// Independent per label: negatives take no share (they are still refused as labels).
    Sigmoid { logit_scale: f32, logit_bias: f32 },
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring::Softmax {
            logit_scale: LOGIT_SCALE,
        }
    }
}

impl Scoring {
    /// Scores for the labels' (and negatives') similarities, in the same order.
    pub fn scores(&self, sims: &[f32]) -> Vec<f32> {
        match *self {
            Scoring::Softmax { logit_scale } => {
                let logits: Vec<f32> = sims.iter().map(|s| s * logit_scale).collect();
                softmax(&logits)
            }
            Scoring::Sigmoid {
                logit_scale,
                logit_bias,
            } => sims
                .iter()
                .map(|s| 1.0 / (1.0 + (-(s * logit_scale + logit_bias)).exp()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelScore {
    pub label: String,
    pub score: f32,
    pub similarity: f32,
}

/// Eight partial sums, so the compiler can keep them in one SIMD register: a single running
/// f32 sum is a chain of dependent adds that cannot be vectorised (1,000 labels x 640 dims is
/// most of a large classify otherwise).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Mean of several normalised embeddings, renormalised so cosine stays a dot product.
pub fn ensemble(vectors: &[&[f32]]) -> Vec<f32> {
    let dim = vectors.first().map_or(0, |v| v.len());
    let mut out = vec![0.0f32; dim];
    for v in vectors {
        for (o, x) in out.iter_mut().zip(v.iter()) {
            *o += x;
        }
    }
    crate::l2_normalize(&mut out);
    out
}

pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// `labels` and `negatives` are (name, normalised text embedding); the image is normalised too.
/// Only the reported labels' names are copied, so a request against 1,000 labels with `top_k`
/// builds `top_k` results.
pub fn classify<L: AsRef<[f32]>, N: AsRef<[f32]>>(
    image: &[f32],
    labels: &[(String, L)],
    negatives: &[N],
    top_k: Option<usize>,
    threshold: Option<f32>,
) -> Vec<LabelScore> {
    classify_with(
        &Scoring::default(),
        image,
        labels,
        negatives,
        top_k,
        threshold,
    )
}

/// [`classify`] under the model's own scoring.
pub fn classify_with<L: AsRef<[f32]>, N: AsRef<[f32]>>(
    scoring: &Scoring,
    image: &[f32],
    labels: &[(String, L)],
    negatives: &[N],
    top_k: Option<usize>,
    threshold: Option<f32>,
) -> Vec<LabelScore> {
    let sims: Vec<f32> = labels
        .iter()
        .map(|(_, t)| dot(image, t.as_ref()))
        .chain(negatives.iter().map(|t| dot(image, t.as_ref())))
        .collect();
    let probs = scoring.scores(&sims);
    let mut order: Vec<usize> = (0..labels.len())
        .filter(|&i| threshold.is_none_or(|t| probs[i] >= t))
        .collect();
    let by_rank = |a: &usize, b: &usize| {
        probs[*b]
            .total_cmp(&probs[*a])
            .then_with(|| labels[*a].0.cmp(&labels[*b].0))
    };
    match top_k {
        Some(k) if k < order.len() => {
            order.select_nth_unstable_by(k, by_rank);
            order.truncate(k);
        }
        _ => {}
    }
    order.sort_by(by_rank);
    order
        .into_iter()
        .map(|i| LabelScore {
            label: labels[i].0.clone(),
            score: probs[i],
            similarity: sims[i],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_of_scaled_cosine() {
        let img = [1.0, 0.0];
        let labels = vec![
            ("a".to_string(), vec![1.0, 0.0]),
            ("b".to_string(), vec![0.0, 1.0]),
        ];
        let r = classify(&img, &labels, &[] as &[Vec<f32>], None, None);
        assert_eq!(r[0].label, "a");
        let expected = 1.0 / (1.0 + (-100.0f32).exp());
        assert!((r[0].score - expected).abs() < 1e-6);
        assert_eq!(r[1].similarity, 0.0);
    }

    #[test]
    fn negatives_take_mass_but_are_hidden() {
        let img = [0.6, 0.8];
        let labels = vec![("cat".to_string(), vec![1.0, 0.0])];
        let with = classify(&img, &labels, &[vec![0.0, 1.0]], None, None);
        assert_eq!(with.len(), 1);
        assert!(with[0].score < 0.01);
        let without = classify(&img, &labels, &[] as &[Vec<f32>], None, None);
        assert!((without[0].score - 1.0).abs() < 1e-6);
    }

    #[test]
    fn top_k_and_threshold() {
        let img = [1.0, 0.0, 0.0];
        let labels: Vec<_> = [
            ("x", [0.99, 0.14, 0.0]),
            ("y", [0.98, 0.0, 0.2]),
            ("z", [0.0, 0.0, 1.0]),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect();
        assert_eq!(
            classify(&img, &labels, &[] as &[Vec<f32>], Some(2), None).len(),
            2
        );
        let t = classify(&img, &labels, &[] as &[Vec<f32>], None, Some(0.5));
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].label, "x");
    }

    #[test]
    fn sigmoid_scores_each_label_alone() {
        let sig = Scoring::Sigmoid {
            logit_scale: 10.0,
            logit_bias: -5.0,
        };
        let img = [1.0, 0.0];
        let labels = vec![
            ("a".to_string(), vec![0.8, 0.6]),
            ("b".to_string(), vec![0.0, 1.0]),
        ];
        let r = classify_with(&sig, &img, &labels, &[] as &[Vec<f32>], None, None);
        let want_a = 1.0 / (1.0 + (-(0.8f32 * 10.0 - 5.0)).exp());
        assert_eq!(r[0].label, "a");
        assert!((r[0].score - want_a).abs() < 1e-6);
        assert!((r[1].score - 1.0 / (1.0 + 5f32.exp())).abs() < 1e-6);
        // A negative changes nothing under sigmoid.
        let with = classify_with(&sig, &img, &labels, &[vec![1.0, 0.0]], None, None);
        assert_eq!(with, r);
    }

    #[test]
    fn dot_of_odd_lengths() {
        let a: Vec<f32> = (0..21).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..21).map(|i| (i % 3) as f32).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), naive);
        assert_eq!(dot(&a[..5], &b[..5]), 0.0 + 1.0 + 4.0 + 0.0 + 4.0);
    }

    #[test]
    fn ensemble_is_unit() {
        let a = [1.0, 0.0];
        let b = [0.0, 1.0];
        let e = ensemble(&[&a, &b]);
        assert!((dot(&e, &e) - 1.0).abs() < 1e-6);
    }
}
