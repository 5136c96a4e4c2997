//! Request bodies -> the typed bodies -> the engine's request checks, and base64 images:
//! any input is accepted or refused with an error, never a panic.
#![no_main]

use hailo_clip_http::body::{ClassifyBody, EmbedImageBody, EmbedTextBody, LabelSetBody};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = config::LimitSettings::default();
    // Bodies as the server parses them: lists capped while parsing.
    if let Ok(b) = hailo_clip_http::extract::parse_capped::<ClassifyBody>(data, 64) {
        let _ = clip::preprocess::decode_base64(&b.image);
        let req = engine::ClassifyRequest {
            image: String::new(),
            labels: b.labels.map(|l| l.into_vec()).unwrap_or_default(),
            top_k: b.top_k,
            prompt_template: b.prompt_template,
            templates: b.templates.map(|t| t.into_vec()),
            negative_labels: b.negative_labels.into_vec(),
            threshold: b.threshold,
            label_set: b.label_set,
        };
        let _ = engine::validate::classify(&req, &limits, "a photo of a {}.");
        let _ = engine::validate::classify_with_set(&req);
    }
    if let Ok(b) = serde_json::from_slice::<EmbedTextBody>(data) {
        if let Some(t) = b.texts {
            let _ = engine::validate::texts(&t.into_vec(), &limits);
        }
    }
    let _ = serde_json::from_slice::<EmbedImageBody>(data);
    let _ = serde_json::from_slice::<LabelSetBody>(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = clip::preprocess::decode_base64(s);
    }
});
