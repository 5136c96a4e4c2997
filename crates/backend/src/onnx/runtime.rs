//! Opening libonnxruntime.so at run time and the one ONNX Runtime environment per process.
//!
//! ort's own lazy loader panics when the library is missing; everything here goes through
//! `ort::init_from`, which returns an error instead, and is wrapped in `catch_unwind` so that any
//! other panic on this path (a null API table from a broken library) is still a setup error.

use crate::BackendError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The onnxruntime version scripts/install-onnxruntime.sh installs and the tests were run with.
pub const PINNED_VERSION: &str = "1.32.0";
/// Oldest library ort can drive with the API level we build against (api-17).
pub const MIN_VERSION: &str = "1.17";

pub fn install_hint() -> String {
    format!(
        "install ONNX Runtime >= {MIN_VERSION}: run scripts/install-onnxruntime.sh from the source tree \
         (it prints the ORT_DYLIB_PATH to export), or `pip install onnxruntime=={PINNED_VERSION}` and set \
         ORT_DYLIB_PATH (or backend.onnx.library_path) to \
         <site-packages>/onnxruntime/capi/libonnxruntime.so.{PINNED_VERSION}, or install the distribution's \
         libonnxruntime package"
    )
}

/// Where the library comes from, in the documented order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibrarySource {
    Config(PathBuf),
    Env(PathBuf),
    /// Left to the dynamic loader's search path (ld.so.cache, LD_LIBRARY_PATH).
    LoaderDefault,
}

impl LibrarySource {
    pub fn resolve(configured: Option<&Path>) -> Self {
        if let Some(p) = configured {
            return LibrarySource::Config(p.to_path_buf());
        }
        match std::env::var_os("ORT_DYLIB_PATH") {
            Some(v) if !v.is_empty() => LibrarySource::Env(PathBuf::from(v)),
            _ => LibrarySource::LoaderDefault,
        }
    }

    fn path(&self) -> PathBuf {
        match self {
            LibrarySource::Config(p) | LibrarySource::Env(p) => p.clone(),
            LibrarySource::LoaderDefault => PathBuf::from(format!(
                "{}onnxruntime{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            )),
        }
    }

    fn describe(&self) -> String {
        match self {
            LibrarySource::Config(p) => format!("{} (backend.onnx.library_path)", p.display()),
            LibrarySource::Env(p) => format!("{} (ORT_DYLIB_PATH)", p.display()),
            LibrarySource::LoaderDefault => format!(
                "{} on the loader's search path (neither backend.onnx.library_path nor ORT_DYLIB_PATH is set)",
                self.path().display()
            ),
        }
    }
}

/// ort allows one environment per process, and a dropped one cannot be rebuilt, so it lives here.
static ENVIRONMENT: Mutex<Option<(Env, String)>> = Mutex::new(None);

/// ort's process-wide environment; sessions find it themselves, holding it keeps it alive.
pub type Env = std::sync::Arc<ort::environment::Environment>;

/// Loads the library (first call only) and returns the process environment and the library's version.
/// A failed attempt leaves nothing behind, so a later `load()` can succeed once the operator fixes it.
pub fn environment(source: &LibrarySource) -> Result<(Env, String), BackendError> {
    let path = source.path();
    // Checked even when a library is already loaded, so a wrong setting never goes unnoticed.
    if !matches!(source, LibrarySource::LoaderDefault) && !path.exists() {
        return Err(BackendError::Setup(format!(
            "ONNX Runtime library {} does not exist; {}",
            source.describe(),
            install_hint()
        )));
    }
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((env, version)) = slot.as_ref() {
        return Ok((env.clone(), version.clone()));
    }
    let built = catch_unwind(AssertUnwindSafe(|| -> Result<_, String> {
        let builder = ort::init_from(&path).map_err(|e| e.to_string())?;
        builder
            .with_name("hailo-clip")
            .with_telemetry(false)
            .commit();
        let env = ort::environment::Environment::current().map_err(|e| e.to_string())?;
        // ort registers its tracing logger at VERBOSE, which makes ONNX Runtime format every
        // verbose message; warnings and up is what Python onnxruntime logs by default.
        env.set_log_level(ort::logging::LogLevel::Warning);
        let version = loaded_version(&path).unwrap_or_else(|| library_version(ort::info()));
        Ok((env, version))
    }));
    let (env, version) = match built {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            return Err(BackendError::Setup(format!(
                "cannot load ONNX Runtime from {}: {e}; {}",
                source.describe(),
                install_hint()
            )))
        }
        Err(panic) => {
            return Err(BackendError::Setup(format!(
                "loading ONNX Runtime from {} failed: {}; {}",
                source.describe(),
                panic_message(&panic),
                install_hint()
            )))
        }
    };
    *slot = Some((env.clone(), version.clone()));
    Ok((env, version))
}

pub fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

/// The loaded library's own version string. ort keeps its handle private, so ask the dynamic loader
/// for the already-open library (RTLD_NOLOAD never loads anything new).
fn loaded_version(path: &Path) -> Option<String> {
    use std::ffi::{CStr, CString};
    use std::os::unix::ffi::OsStrExt;
    let name = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: dlopen/dlsym with a valid C string; the handle is released below. OrtGetApiBase takes
    // no arguments and returns a pointer to a static table whose GetVersionString returns a static
    // NUL-terminated string.
    unsafe {
        let handle = libc::dlopen(name.as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY);
        if handle.is_null() {
            return None;
        }
        let sym = libc::dlsym(handle, c"OrtGetApiBase".as_ptr());
        let version = if sym.is_null() {
            None
        } else {
            let get_base: unsafe extern "C" fn() -> *const ort::sys::OrtApiBase =
                std::mem::transmute(sym);
            let base = get_base();
            if base.is_null() {
                None
            } else {
                let v = ((*base).GetVersionString)();
                (!v.is_null()).then(|| CStr::from_ptr(v).to_string_lossy().into_owned())
            }
        };
        libc::dlclose(handle);
        version
    }
}

/// "ORT Build Info: git-branch=rel-1.32.0, git-commit-id=..." -> "1.32.0"; the whole string otherwise.
fn library_version(info: &str) -> String {
    info.split([',', ' '])
        .find_map(|part| part.strip_prefix("git-branch=rel-"))
        .map(str::to_string)
        .unwrap_or_else(|| info.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_build_info() {
        assert_eq!(
            library_version(
                "ORT Build Info: git-branch=rel-1.32.0, git-commit-id=abc, build type=Release"
            ),
            "1.32.0"
        );
        assert_eq!(library_version("custom build"), "custom build");
    }

    #[test]
    fn config_wins_over_env() {
        let s = LibrarySource::resolve(Some(Path::new("/x/libonnxruntime.so")));
        assert_eq!(
            s,
            LibrarySource::Config(PathBuf::from("/x/libonnxruntime.so"))
        );
    }
}
