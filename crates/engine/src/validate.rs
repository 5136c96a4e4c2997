//! Every request limit, in one file: what a request may ask of the engine before any work is
//! done for it. Each message names the setting that sets the limit.

use crate::{ClassifyRequest, EngineError};
use config::LimitSettings;

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::Invalid(msg.into())
}

pub fn image_count(n: usize, l: &LimitSettings) -> Result<(), EngineError> {
    if n == 0 {
        return Err(invalid("no image given"));
    }
    if n > l.max_batch_images {
        return Err(invalid(format!(
            "{n} images given; the limit is {} (limits.max_batch_images)",
            l.max_batch_images
        )));
    }
    Ok(())
}

pub fn texts(texts: &[String], l: &LimitSettings) -> Result<(), EngineError> {
    let n = texts.len();
    if n == 0 {
        return Err(invalid("no text given"));
    }
    if n > l.max_batch_texts {
        return Err(invalid(format!(
            "{n} texts given; the limit is {} (limits.max_batch_texts)",
            l.max_batch_texts
        )));
    }
    for t in texts {
        // Past the model's context a text is truncated, not refused: this bound is against abuse.
        text("text", t, l.max_text_chars, "limits.max_text_chars")?;
    }
    Ok(())
}

fn text(what: &str, t: &str, max: usize, key: &str) -> Result<(), EngineError> {
    if t.trim().is_empty() {
        return Err(invalid(format!("{what} must not be empty")));
    }
    if t.chars().count() > max {
        return Err(invalid(format!(
            "{what} is longer than {max} characters ({key})"
        )));
    }
    Ok(())
}

/// Checks a classify request that names a label set: the set fixes labels, negatives and
/// templates, so the request gives none of them.
pub fn classify_with_set(req: &ClassifyRequest) -> Result<(), EngineError> {
    if !req.labels.is_empty()
        || !req.negative_labels.is_empty()
        || req.templates.is_some()
        || req.prompt_template.is_some()
    {
        return Err(invalid(
            "label_set fixes labels, negative_labels and templates: give either label_set or those",
        ));
    }
    scores(req)
}

fn scores(req: &ClassifyRequest) -> Result<(), EngineError> {
    if req.top_k == Some(0) {
        return Err(invalid("top_k must be at least 1"));
    }
    if let Some(t) = req.threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(invalid("threshold must be between 0 and 1"));
        }
    }
    Ok(())
}

/// Checks a classify request and returns the templates it uses (`default_template` when it
/// names none).
pub fn classify(
    req: &ClassifyRequest,
    l: &LimitSettings,
    default_template: &str,
) -> Result<Vec<String>, EngineError> {
    if req.labels.is_empty() {
        return Err(invalid("labels must not be empty"));
    }
    let n = req.labels.len() + req.negative_labels.len();
    if n > l.max_labels {
        return Err(invalid(format!(
            "{n} labels given (including negatives); the limit is {} (limits.max_labels)",
            l.max_labels
        )));
    }
    for label in req.labels.iter().chain(&req.negative_labels) {
        text("label", label, l.max_label_chars, "limits.max_label_chars")?;
    }
    let mut seen = std::collections::HashSet::new();
    for label in &req.labels {
        if !seen.insert(label.as_str()) {
            return Err(invalid(format!("label {label:?} is given twice")));
        }
    }
    scores(req)?;
    let templates = match (&req.templates, &req.prompt_template) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "give either prompt_template or templates, not both",
            ))
        }
        (Some(ts), None) => {
            if ts.is_empty() {
                return Err(invalid("templates must not be empty"));
            }
            if ts.len() > l.max_templates {
                return Err(invalid(format!(
                    "{} templates given; the limit is {} (limits.max_templates)",
                    ts.len(),
                    l.max_templates
                )));
            }
            ts.clone()
        }
        (None, Some(t)) => vec![t.clone()],
        (None, None) => vec![default_template.to_string()],
    };
    self::templates(&templates, l)?;
    let prompts = n.saturating_mul(templates.len());
    if prompts > l.max_prompts {
        return Err(invalid(format!(
            "{n} labels x {} templates = {prompts} prompts; the limit is {} (limits.max_prompts)",
            templates.len(),
            l.max_prompts
        )));
    }
    Ok(templates)
}

/// Each template's cost is bounded before any prompt is built from it: its length and how many
/// times the label goes in.
pub fn templates(templates: &[String], l: &LimitSettings) -> Result<(), EngineError> {
    for t in templates {
        let chars = t.chars().count();
        if chars > l.max_template_chars {
            return Err(invalid(format!(
                "a template is {chars} characters long; the limit is {} (limits.max_template_chars)",
                l.max_template_chars
            )));
        }
        let slots = t.matches("{}").count();
        if slots == 0 {
            return Err(invalid(format!(
                "template {t:?} must contain {{}} where the label goes"
            )));
        }
        if slots > l.max_template_slots {
            return Err(invalid(format!(
                "a template has {slots} {{}} slots; the limit is {} (limits.max_template_slots)",
                l.max_template_slots
            )));
        }
    }
    Ok(())
}
