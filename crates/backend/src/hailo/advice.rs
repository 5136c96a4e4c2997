//! What an operator should do about a HailoRT status: the one place that turns a `hailo_status`
//! into a message a user can act on (the names themselves are `hailort_sys::status::name`).

use hailort_sys::status::{self as st, name};
use hailort_sys::HrtError;
use std::path::Path;

/// What is known when a call fails; each field is optional because it may not be known yet.
#[derive(Debug, Default, Clone)]
pub struct Context<'a> {
    pub hef: Option<&'a Path>,
    pub library_version: Option<String>,
    pub driver_version: Option<String>,
    /// Runtime major.minor the HEF must have been compiled for (e.g. "5.1").
    pub expected_arch: &'a str,
    /// Processes holding the device node open ("pid N (comm)"), when known.
    pub holders: Vec<String>,
}

fn or_unknown(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("unknown")
}

/// One line for the operator: what failed, HailoRT's own words, and what to do.
pub fn explain(err: &HrtError, ctx: &Context) -> String {
    let code = format!("{} ({})", name(err.status), err.status);
    let hef = ctx
        .hef
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the HEF".into());
    let lib = or_unknown(&ctx.library_version);
    let arch = if ctx.expected_arch.is_empty() {
        "hailo10h"
    } else {
        ctx.expected_arch
    };
    let fix = match err.status {
        st::DRIVER_NOT_INSTALLED => "the Hailo PCIe driver is not loaded: load it with `modprobe hailo1x_pci` \
             (install the hailo1x_pci driver of the same version as libhailort first; on NixOS enable hardware.hailo)"
            .to_string(),
        st::OUT_OF_PHYSICAL_DEVICES | st::DEVICE_IN_USE => format!(
            "another process owns the Hailo device{}: stop it \
             (e.g. hailo-ollama, a GStreamer/Frigate pipeline or another hailo-clip) or wait for it to exit; \
             processes share a Hailo-10H only when each opens it in HailoRT's shared group: set \
             backend.hailo.share_device: true here, and the other must do the same (hailo-apps' \
             pipelines do; hailo-ollama 5.1 opens the chip alone)",
            if ctx.holders.is_empty() {
                String::new()
            } else {
                format!(" ({})", ctx.holders.join(", "))
            }
        ),
        st::INVALID_DRIVER_VERSION | st::DRIVER_INVALID_RESPONSE | st::DRIVER_INVALID_IOCTL => format!(
            "driver and library versions differ (library {lib}, driver {}): install the hailo1x_pci driver, \
             firmware and libhailort of one release, then reboot after upgrading the driver (the chip keeps \
             running the old firmware until a reboot)",
            or_unknown(&ctx.driver_version)
        ),
        st::INVALID_HEF | st::HEF_NOT_SUPPORTED | st::HEF_FILE_CORRUPTED => format!(
            "{hef} is not a HEF this HailoRT {lib} can load: it must be compiled for {arch} by a Dataflow Compiler \
             of the same major.minor as the runtime (model zoo v{lib}); download it again with `hailo-clip models fetch`"
        ),
        st::HEF_NOT_COMPATIBLE_WITH_DEVICE | st::INVALID_DEVICE_ARCHITECTURE => format!(
            "{hef} was compiled for another device: use the {arch} build of the model \
             (model zoo .../Compiled/v{lib}/{arch}/...)"
        ),
        st::OPEN_FILE_FAILURE => format!("cannot read {hef}: check the path and its permissions"),
        st::NOT_IMPLEMENTED => "this HailoRT call is not available on this device (the Hailo-10H runs models \
             only through the InferModel API)"
            .to_string(),
        st::TIMEOUT | st::DRIVER_TIMEOUT => "the device did not answer in time: raise backend.hailo.timeout_ms \
             or reset the device (reboot) if it keeps happening"
            .to_string(),
        st::RPC_FAILED | st::COMMUNICATION_CLOSED | st::CONNECTION_REFUSED | st::DEVICE_NOT_CONNECTED => {
            "lost contact with the Hailo-10H's on-chip runtime: the service will reopen the device; if that \
             fails, check `dmesg | grep -i hailo` and reboot"
                .to_string()
        }
        st::DEVICE_TEMPORARILY_UNAVAILABLE => "the device is temporarily unavailable; the service retries".to_string(),
        _ => "see `dmesg | grep -i hailo` and run `hailo-clip doctor`".to_string(),
    };
    format!("{}: {code}: {fix}", err.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(status: i32) -> HrtError {
        HrtError::new(status, "VDevice::create failed")
    }

    #[test]
    fn device_busy_names_the_holding_process() {
        let ctx = Context {
            holders: vec!["pid 4242 (hailo-ollama)".into()],
            ..Default::default()
        };
        let m = explain(&e(74), &ctx);
        assert!(m.contains("(pid 4242 (hailo-ollama))"), "{m}");
    }

    #[test]
    fn device_busy_names_the_culprit() {
        for s in [73, 74] {
            let m = explain(&e(s), &Context::default());
            assert!(m.contains("another process owns the Hailo device"), "{m}");
            assert!(m.contains("hailo-ollama"), "{m}");
        }
    }

    #[test]
    fn version_mismatch_says_both_versions_and_reboot() {
        let ctx = Context {
            library_version: Some("5.1.1".into()),
            driver_version: Some("5.2.0".into()),
            ..Default::default()
        };
        let m = explain(&e(76), &ctx);
        assert!(m.contains("library 5.1.1"), "{m}");
        assert!(m.contains("driver 5.2.0"), "{m}");
        assert!(m.contains("reboot after upgrading the driver"), "{m}");
        let m = explain(&e(76), &Context::default());
        assert!(m.contains("library unknown, driver unknown"), "{m}");
    }

    #[test]
    fn hef_errors_name_the_file_and_what_is_needed() {
        let hef = Path::new("/models/image_encoder.hef");
        let ctx = Context {
            hef: Some(hef),
            library_version: Some("5.1.1".into()),
            expected_arch: "hailo10h",
            ..Default::default()
        };
        let m = explain(&e(26), &ctx);
        assert!(m.contains("/models/image_encoder.hef"), "{m}");
        assert!(m.contains("hailo10h"), "{m}");
        assert!(m.contains("5.1.1"), "{m}");
        let m = explain(&e(93), &ctx);
        assert!(
            m.contains("/models/image_encoder.hef was compiled for another device"),
            "{m}"
        );
        assert!(m.contains("Compiled/v5.1.1/hailo10h"), "{m}");
    }

    #[test]
    fn driver_missing_says_load_module() {
        let m = explain(&e(64), &Context::default());
        assert!(m.contains("HAILO_DRIVER_NOT_INSTALLED (64)"), "{m}");
        assert!(m.contains("modprobe hailo1x_pci"), "{m}");
    }
}
