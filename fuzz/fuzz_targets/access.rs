//! The request heads the service reads itself: `Host` against the allow-list, `Authorization`
//! against the API key. Any bytes are allowed or refused, never a panic; a host's case never
//! changes the answer, and the key is accepted after `Bearer` in any case and a space (RFC 7235's
//! SP) and nothing else.
#![no_main]

use hailo_clip_http::access::{AllowedHosts, ApiKey};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

const KEY: &str = "s3cret-Key";

static HOSTS: LazyLock<AllowedHosts> =
    LazyLock::new(|| AllowedHosts::new(&["clip.example.org".into(), "Pi5".into()]));
static API_KEY: LazyLock<ApiKey> = LazyLock::new(|| {
    let path = std::env::temp_dir().join(format!("hailo-clip-fuzz-key-{}", std::process::id()));
    std::fs::write(&path, format!("{KEY}\n")).expect("a key file in the temp dir");
    ApiKey::open(path).expect("the key file reads")
});

fuzz_target!(|data: &[u8]| {
    let host = String::from_utf8_lossy(data);
    let allowed = HOSTS.allows(&host);
    assert_eq!(
        allowed,
        HOSTS.allows(&host.to_ascii_uppercase()),
        "{host:?}"
    );
    assert_eq!(
        allowed,
        HOSTS.allows(&host.to_ascii_lowercase()),
        "{host:?}"
    );

    let accepted = API_KEY.accepts(Some(data));
    let expected = std::str::from_utf8(data).ok().is_some_and(|v| {
        let v = v.trim_matches(|c: char| c.is_ascii_whitespace());
        v.len() > 6
            && v.is_char_boundary(6)
            && v[..6].eq_ignore_ascii_case("bearer")
            && v[6..].starts_with(' ')
            && v[6..].trim_matches(|c: char| c.is_ascii_whitespace()) == KEY
    });
    assert_eq!(accepted, expected, "{data:?}");
});
