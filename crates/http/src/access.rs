//! Who may ask: the `Host` allow-list (against DNS rebinding from a browser on the LAN) and the
//! API key (re-read when its file changes, so a rotated or removed key takes effect at once).

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;
use std::sync::Mutex;

/// Names a request's `Host` may carry besides IP literals.
pub struct AllowedHosts {
    any: bool,
    names: Vec<String>,
}

impl AllowedHosts {
    pub fn new(configured: &[String]) -> Self {
        let mut names: Vec<String> = vec!["localhost".into()];
        if let Some(h) = hostname() {
            names.push(format!("{h}.local"));
            names.push(h);
        }
        names.extend(configured.iter().map(|h| h.to_ascii_lowercase()));
        Self {
            any: configured.iter().any(|h| h == "*"),
            names,
        }
    }

    /// An IP literal cannot be rebound to another address, so only names need to be known.
    pub fn allows(&self, host_header: &str) -> bool {
        if self.any {
            return true;
        }
        let host = strip_port(host_header).trim_end_matches('.');
        if host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok()
        {
            return true;
        }
        let host = host.to_ascii_lowercase();
        host.ends_with(".localhost") || self.names.contains(&host)
    }
}

fn strip_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        // [v6]:port
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.contains(':') => {
            name
        }
        _ => h,
    }
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = std::str::from_utf8(&buf[..end])
        .ok()?
        .trim()
        .to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

pub async fn check_host(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(h) = req.headers().get(header::HOST) {
        let h = String::from_utf8_lossy(h.as_bytes());
        if !s.hosts.allows(&h) {
            let shown: String = h.chars().take(64).collect();
            return ApiError::HostNotAllowed(shown).into_response();
        }
    }
    next.run(req).await
}

/// The bearer token in `server.api_key_file`, re-read whenever the file changes.
pub struct ApiKey {
    path: PathBuf,
    state: Mutex<KeyState>,
}

#[derive(Default)]
struct KeyState {
    /// (modification time, length, inode) of the file as last read.
    seen: Option<(std::time::SystemTime, u64, u64)>,
    key: Option<Vec<u8>>,
}

impl ApiKey {
    /// Reads the key now: a missing or empty file is a start-up error.
    pub fn open(path: PathBuf) -> anyhow::Result<Self> {
        let k = Self {
            path,
            state: Mutex::new(KeyState::default()),
        };
        if k.current().is_none() {
            anyhow::bail!(
                "server.api_key_file: cannot read a key from {}",
                k.path.display()
            );
        }
        Ok(k)
    }

    /// The key in force: `None` (every request refused) while the file is missing or empty.
    fn current(&self) -> Option<Vec<u8>> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&self.path).ok();
        let stamp = meta.as_ref().map(|m| {
            (
                m.modified().unwrap_or(std::time::UNIX_EPOCH),
                m.len(),
                m.ino(),
            )
        });
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if stamp != st.seen || stamp.is_none() {
            let read = std::fs::read_to_string(&self.path)
                .ok()
                .map(|k| k.trim().as_bytes().to_vec())
                .filter(|k| !k.is_empty());
            if read.is_none() && st.key.is_some() {
                tracing::error!(file = %self.path.display(), "API key file missing or empty: refusing every request until it is back");
            } else if read.is_some() && st.seen.is_some() && read != st.key {
                tracing::info!(file = %self.path.display(), "API key changed");
            }
            st.key = read;
            st.seen = stamp;
        }
        st.key.clone()
    }

    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(key) = self.current() else {
            return false;
        };
        let Some(given) = authorization.and_then(bearer_token) else {
            return false;
        };
        constant_time_eq(given, &key)
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 7235).
fn bearer_token(v: &[u8]) -> Option<&[u8]> {
    let v = v.trim_ascii();
    let (scheme, rest) = v.split_at(v.iter().position(|&b| b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Set on every request: whether it carried the key (or none is configured). `/health` tells
/// an unauthenticated caller only up or down.
#[derive(Clone, Copy)]
pub struct Authenticated(pub bool);

pub async fn require_key(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let ok = match &s.api_key {
        None => true,
        Some(key) => key.accepts(
            req.headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
        ),
    };
    if !ok && req.uri().path() != "/health" {
        return ApiError::Unauthorized.into_response();
    }
    req.extensions_mut().insert(Authenticated(ok));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let a = AllowedHosts::new(&["clip.example.org".into()]);
        for ok in [
            "127.0.0.1",
            "127.0.0.1:5000",
            "[::1]:5000",
            "192.168.1.20:5000",
            "localhost:5000",
            "LOCALHOST",
            "clip.example.org",
            "Clip.Example.Org:443",
            "app.localhost",
        ] {
            assert!(a.allows(ok), "{ok}");
        }
        for bad in ["evil.example.com", "evil.example.com:5000", "x", ""] {
            assert!(!a.allows(bad), "{bad}");
        }
        assert!(AllowedHosts::new(&["*".into()]).allows("anything.example"));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"BEARER abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
    }

    #[test]
    fn key_follows_its_file() {
        let dir = std::env::temp_dir().join(format!("hc-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("key");
        std::fs::write(&f, "one\n").unwrap();
        let k = ApiKey::open(f.clone()).unwrap();
        assert!(k.accepts(Some(b"Bearer one")));
        std::fs::write(&f, "two-longer\n").unwrap();
        assert!(!k.accepts(Some(b"Bearer one")));
        assert!(k.accepts(Some(b"Bearer two-longer")));
        std::fs::remove_file(&f).unwrap();
        assert!(!k.accepts(Some(b"Bearer two-longer")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
