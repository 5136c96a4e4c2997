//! Config text (YAML and JSON) -> settings with defaults -> validation -> the rendered JSON,
//! which must parse back to the same settings.
#![no_main]

use config::Settings;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for name in ["fuzz.yaml", "fuzz.json"] {
        if let Ok(s) = Settings::from_str_at(text, Path::new(name)) {
            let json = s.to_json();
            let back = Settings::from_str_at(&json, Path::new("rendered.json"))
                .expect("a rendered config parses");
            assert_eq!(back, s);
            let _ = s.per_model();
        }
    }
});
