//! HailoRT status codes and what an operator should do about them: the one place that turns a
//! `hailo_status` into a message a user can act on.

use hailort_sys::{status as st, HrtError};
use std::path::Path;

/// `hailo_status` names, from HailoRT 5.1.1 `hailort.h` (HAILO_STATUS_VARIABLES), index = value.
const NAMES: [&str; 98] = [
    "HAILO_SUCCESS",
    "HAILO_UNINITIALIZED",
    "HAILO_INVALID_ARGUMENT",
    "HAILO_OUT_OF_HOST_MEMORY",
    "HAILO_TIMEOUT",
    "HAILO_INSUFFICIENT_BUFFER",
    "HAILO_INVALID_OPERATION",
    "HAILO_NOT_IMPLEMENTED",
    "HAILO_INTERNAL_FAILURE",
    "HAILO_DATA_ALIGNMENT_FAILURE",
    "HAILO_CHUNK_TOO_LARGE",
    "HAILO_INVALID_LOGGER_LEVEL",
    "HAILO_CLOSE_FAILURE",
    "HAILO_OPEN_FILE_FAILURE",
    "HAILO_FILE_OPERATION_FAILURE",
    "HAILO_UNSUPPORTED_CONTROL_PROTOCOL_VERSION",
    "HAILO_UNSUPPORTED_FW_VERSION",
    "HAILO_INVALID_CONTROL_RESPONSE",
    "HAILO_FW_CONTROL_FAILURE",
    "HAILO_ETH_FAILURE",
    "HAILO_ETH_INTERFACE_NOT_FOUND",
    "HAILO_ETH_RECV_FAILURE",
    "HAILO_ETH_SEND_FAILURE",
    "HAILO_INVALID_FIRMWARE",
    "HAILO_INVALID_CONTEXT_COUNT",
    "HAILO_INVALID_FRAME",
    "HAILO_INVALID_HEF",
    "HAILO_PCIE_NOT_SUPPORTED_ON_PLATFORM",
    "HAILO_INTERRUPTED_BY_SIGNAL",
    "HAILO_START_VDMA_CHANNEL_FAIL",
    "HAILO_SYNC_VDMA_BUFFER_FAIL",
    "HAILO_STOP_VDMA_CHANNEL_FAIL",
    "HAILO_CLOSE_VDMA_CHANNEL_FAIL",
    "HAILO_ATR_TABLES_CONF_VALIDATION_FAIL",
    "HAILO_EVENT_CREATE_FAIL",
    "HAILO_READ_EVENT_FAIL",
    "HAILO_DRIVER_OPERATION_FAILED",
    "HAILO_INVALID_FIRMWARE_MAGIC",
    "HAILO_INVALID_FIRMWARE_CODE_SIZE",
    "HAILO_INVALID_KEY_CERTIFICATE_SIZE",
    "HAILO_INVALID_CONTENT_CERTIFICATE_SIZE",
    "HAILO_MISMATCHING_FIRMWARE_BUFFER_SIZES",
    "HAILO_INVALID_FIRMWARE_CPU_ID",
    "HAILO_CONTROL_RESPONSE_MD5_MISMATCH",
    "HAILO_GET_CONTROL_RESPONSE_FAIL",
    "HAILO_GET_D2H_EVENT_MESSAGE_FAIL",
    "HAILO_MUTEX_INIT_FAIL",
    "HAILO_OUT_OF_DESCRIPTORS",
    "HAILO_UNSUPPORTED_OPCODE",
    "HAILO_USER_MODE_RATE_LIMITER_NOT_SUPPORTED",
    "HAILO_RATE_LIMIT_MAXIMUM_BANDWIDTH_EXCEEDED",
    "HAILO_ANSI_TO_UTF16_CONVERSION_FAILED",
    "HAILO_UTF16_TO_ANSI_CONVERSION_FAILED",
    "HAILO_UNEXPECTED_INTERFACE_INFO_FAILURE",
    "HAILO_UNEXPECTED_ARP_TABLE_FAILURE",
    "HAILO_MAC_ADDRESS_NOT_FOUND",
    "HAILO_NO_IPV4_INTERFACES_FOUND",
    "HAILO_SHUTDOWN_EVENT_SIGNALED",
    "HAILO_THREAD_ALREADY_ACTIVATED",
    "HAILO_THREAD_NOT_ACTIVATED",
    "HAILO_THREAD_NOT_JOINABLE",
    "HAILO_NOT_FOUND",
    "HAILO_COMMUNICATION_CLOSED",
    "HAILO_STREAM_ABORT",
    "HAILO_DRIVER_NOT_INSTALLED",
    "HAILO_NOT_AVAILABLE",
    "HAILO_TRAFFIC_CONTROL_FAILURE",
    "HAILO_INVALID_SECOND_STAGE",
    "HAILO_INVALID_PIPELINE",
    "HAILO_NETWORK_GROUP_NOT_ACTIVATED",
    "HAILO_VSTREAM_PIPELINE_NOT_ACTIVATED",
    "HAILO_OUT_OF_FW_MEMORY",
    "HAILO_STREAM_NOT_ACTIVATED",
    "HAILO_DEVICE_IN_USE",
    "HAILO_OUT_OF_PHYSICAL_DEVICES",
    "HAILO_INVALID_DEVICE_ARCHITECTURE",
    "HAILO_INVALID_DRIVER_VERSION",
    "HAILO_RPC_FAILED",
    "HAILO_INVALID_SERVICE_VERSION",
    "HAILO_NOT_SUPPORTED",
    "HAILO_NMS_BURST_INVALID_DATA",
    "HAILO_OUT_OF_HOST_CMA_MEMORY",
    "HAILO_QUEUE_IS_FULL",
    "HAILO_DMA_MAPPING_ALREADY_EXISTS",
    "HAILO_CANT_MEET_BUFFER_REQUIREMENTS",
    "HAILO_DRIVER_INVALID_RESPONSE",
    "HAILO_DRIVER_INVALID_IOCTL",
    "HAILO_DRIVER_TIMEOUT",
    "HAILO_DRIVER_INTERRUPTED",
    "HAILO_CONNECTION_REFUSED",
    "HAILO_DRIVER_WAIT_CANCELED",
    "HAILO_HEF_FILE_CORRUPTED",
    "HAILO_HEF_NOT_SUPPORTED",
    "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE",
    "HAILO_INVALID_HEF_USE",
    "HAILO_OPERATION_ABORTED",
    "HAILO_DEVICE_NOT_CONNECTED",
    "HAILO_DEVICE_TEMPORARILY_UNAVAILABLE",
];

pub fn name(status: i32) -> &'static str {
    usize::try_from(status)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("HAILO_UNKNOWN_STATUS")
}

/// What is known when a call fails; each field is optional because it may not be known yet.
#[derive(Debug, Default, Clone)]
pub struct Context<'a> {
    pub hef: Option<&'a Path>,
    pub library_version: Option<String>,
    pub driver_version: Option<String>,
    /// Runtime major.minor the HEF must have been compiled for (e.g. "5.1").
    pub expected_arch: &'a str,
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
        st::OUT_OF_PHYSICAL_DEVICES | st::DEVICE_IN_USE => "another process owns the Hailo device: stop it \
             (e.g. hailo-ollama, a GStreamer/Frigate pipeline or another hailo-clip) or wait for it to exit; \
             only one process can open a Hailo-10H"
            .to_string(),
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
    fn table_matches_header_numbers() {
        assert_eq!(name(0), "HAILO_SUCCESS");
        assert_eq!(name(7), "HAILO_NOT_IMPLEMENTED");
        assert_eq!(name(26), "HAILO_INVALID_HEF");
        assert_eq!(name(64), "HAILO_DRIVER_NOT_INSTALLED");
        assert_eq!(name(73), "HAILO_DEVICE_IN_USE");
        assert_eq!(name(74), "HAILO_OUT_OF_PHYSICAL_DEVICES");
        assert_eq!(name(76), "HAILO_INVALID_DRIVER_VERSION");
        assert_eq!(name(77), "HAILO_RPC_FAILED");
        assert_eq!(name(93), "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE");
        assert_eq!(name(97), "HAILO_DEVICE_TEMPORARILY_UNAVAILABLE");
        assert_eq!(name(98), "HAILO_UNKNOWN_STATUS");
        assert_eq!(name(-1), "HAILO_UNKNOWN_STATUS");
        // The constants the crate exports agree with the table.
        for (v, n) in [
            (st::INVALID_HEF, "HAILO_INVALID_HEF"),
            (st::DEVICE_IN_USE, "HAILO_DEVICE_IN_USE"),
            (st::INVALID_DRIVER_VERSION, "HAILO_INVALID_DRIVER_VERSION"),
            (
                st::HEF_NOT_COMPATIBLE_WITH_DEVICE,
                "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE",
            ),
            (st::DRIVER_NOT_INSTALLED, "HAILO_DRIVER_NOT_INSTALLED"),
            (st::OUT_OF_PHYSICAL_DEVICES, "HAILO_OUT_OF_PHYSICAL_DEVICES"),
            (st::TIMEOUT, "HAILO_TIMEOUT"),
        ] {
            assert_eq!(name(v), n);
        }
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
