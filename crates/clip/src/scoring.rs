//! Zero-shot scores as OpenAI CLIP and Hailo's CLIP app compute them:
//! softmax(100 * cosine) over labels and negatives, negatives never reported.

use serde::Serialize;

pub const LOGIT_SCALE: f32 = 100.0;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelScore {
    pub label: String,
    pub score: f32,
    pub similarity: f32,
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
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
pub fn classify(
    image: &[f32],
    labels: &[(String, Vec<f32>)],
    negatives: &[Vec<f32>],
    top_k: Option<usize>,
    threshold: Option<f32>,
) -> Vec<LabelScore> {
    let sims: Vec<f32> = labels
        .iter()
        .map(|(_, t)| dot(image, t))
        .chain(negatives.iter().map(|t| dot(image, t)))
        .collect();
    let logits: Vec<f32> = sims.iter().map(|s| s * LOGIT_SCALE).collect();
    let probs = softmax(&logits);
    let mut out: Vec<LabelScore> = labels
        .iter()
        .enumerate()
        .map(|(i, (name, _))| LabelScore {
            label: name.clone(),
            score: probs[i],
            similarity: sims[i],
        })
        .filter(|s| threshold.is_none_or(|t| s.score >= t))
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.label.cmp(&b.label))
    });
    if let Some(k) = top_k {
        out.truncate(k);
    }
    out
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
        let r = classify(&img, &labels, &[], None, None);
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
        let without = classify(&img, &labels, &[], None, None);
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
        assert_eq!(classify(&img, &labels, &[], Some(2), None).len(), 2);
        let t = classify(&img, &labels, &[], None, Some(0.5));
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].label, "x");
    }

    #[test]
    fn ensemble_is_unit() {
        let a = [1.0, 0.0];
        let b = [0.0, 1.0];
        let e = ensemble(&[&a, &b]);
        assert!((dot(&e, &e) - 1.0).abs() < 1e-6);
    }
}
