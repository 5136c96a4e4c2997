//! HailoRT for Hailo-10H through a small C++ shim (`shim/hrt_shim.cpp`) over the C++ InferModel
//! API; HailoRT's C API cannot configure models on the 10H (it returns HAILO_NOT_IMPLEMENTED).
//!
//! The crate always provides the device-neutral types and the [`InferDevice`] / [`InferModel`]
//! traits, so code above it can be tested against a simulated device. The real device
//! ([`HailoDevice`]) exists only with the `link` feature, which compiles the shim and links
//! `libhailort`.

use std::fmt;
use std::path::Path;

#[cfg(feature = "link")]
mod ffi;
#[cfg(feature = "link")]
pub use ffi::{library_version, status_name, HailoDevice};

/// `hailo_status` values used by callers (numbers from HailoRT 5.x `hailort.h`).
pub mod status {
    pub const SUCCESS: i32 = 0;
    pub const INVALID_ARGUMENT: i32 = 2;
    pub const OUT_OF_HOST_MEMORY: i32 = 3;
    pub const TIMEOUT: i32 = 4;
    pub const INVALID_OPERATION: i32 = 6;
    pub const NOT_IMPLEMENTED: i32 = 7;
    pub const INTERNAL_FAILURE: i32 = 8;
    pub const OPEN_FILE_FAILURE: i32 = 13;
    pub const INVALID_HEF: i32 = 26;
    pub const DRIVER_OPERATION_FAILED: i32 = 36;
    pub const NOT_FOUND: i32 = 61;
    pub const COMMUNICATION_CLOSED: i32 = 62;
    pub const STREAM_ABORT: i32 = 63;
    pub const DRIVER_NOT_INSTALLED: i32 = 64;
    pub const DEVICE_IN_USE: i32 = 73;
    pub const OUT_OF_PHYSICAL_DEVICES: i32 = 74;
    pub const INVALID_DEVICE_ARCHITECTURE: i32 = 75;
    pub const INVALID_DRIVER_VERSION: i32 = 76;
    pub const RPC_FAILED: i32 = 77;
    pub const NOT_SUPPORTED: i32 = 79;
    pub const DRIVER_INVALID_RESPONSE: i32 = 85;
    pub const DRIVER_INVALID_IOCTL: i32 = 86;
    pub const DRIVER_TIMEOUT: i32 = 87;
    pub const CONNECTION_REFUSED: i32 = 89;
    pub const HEF_FILE_CORRUPTED: i32 = 91;
    pub const HEF_NOT_SUPPORTED: i32 = 92;
    pub const HEF_NOT_COMPATIBLE_WITH_DEVICE: i32 = 93;
    pub const DEVICE_NOT_CONNECTED: i32 = 96;
    pub const DEVICE_TEMPORARILY_UNAVAILABLE: i32 = 97;

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
}

/// A failed HailoRT call: the `hailo_status` and what the shim was doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HrtError {
    pub status: i32,
    pub message: String,
}

impl HrtError {
    pub fn new(status: i32, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl fmt::Display for HrtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (hailo_status {})", self.message, self.status)
    }
}

impl std::error::Error for HrtError {}

/// `hailo_format_type_t`. `Auto` asks HailoRT to keep the HEF's own format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatType {
    Auto,
    Uint8,
    Uint16,
    Float32,
    Other(i32),
}

impl FormatType {
    pub fn from_raw(v: i32) -> Self {
        match v {
            0 => Self::Auto,
            1 => Self::Uint8,
            2 => Self::Uint16,
            3 => Self::Float32,
            o => Self::Other(o),
        }
    }

    pub fn raw(self) -> i32 {
        match self {
            Self::Auto => 0,
            Self::Uint8 => 1,
            Self::Uint16 => 2,
            Self::Float32 => 3,
            Self::Other(o) => o,
        }
    }

    /// Bytes per element on the host, when the type has a fixed width.
    pub fn element_size(self) -> Option<usize> {
        match self {
            Self::Uint8 => Some(1),
            Self::Uint16 => Some(2),
            Self::Float32 => Some(4),
            _ => None,
        }
    }
}

/// `hailo_format_order_t` values the backend cares about; anything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatOrder {
    Auto,
    Nhwc,
    Nhcw,
    Fcr,
    F8cr,
    Nhw,
    Nc,
    Other(i32),
}

impl FormatOrder {
    pub fn from_raw(v: i32) -> Self {
        match v {
            0 => Self::Auto,
            1 => Self::Nhwc,
            2 => Self::Nhcw,
            3 => Self::Fcr,
            4 => Self::F8cr,
            5 => Self::Nhw,
            6 => Self::Nc,
            o => Self::Other(o),
        }
    }

    pub fn raw(self) -> i32 {
        match self {
            Self::Auto => 0,
            Self::Nhwc => 1,
            Self::Nhcw => 2,
            Self::Fcr => 3,
            Self::F8cr => 4,
            Self::Nhw => 5,
            Self::Nc => 6,
            Self::Other(o) => o,
        }
    }
}

/// `hailo_quant_info_t`: float = (q - zp) * scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantInfo {
    pub zp: f32,
    pub scale: f32,
}

/// One input or output stream of a configured model, in its host-side format.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    pub name: String,
    pub height: u32,
    pub width: u32,
    pub features: u32,
    pub format_type: FormatType,
    pub format_order: FormatOrder,
    /// Bytes of one frame on the host.
    pub frame_size: usize,
    /// One entry, or one per feature when the HEF quantises per feature.
    pub quant: Vec<QuantInfo>,
}

impl StreamInfo {
    pub fn elements(&self) -> usize {
        self.height as usize * self.width as usize * self.features as usize
    }
}

/// What a model was configured as.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDesc {
    pub inputs: Vec<StreamInfo>,
    pub outputs: Vec<StreamInfo>,
    /// Batch size the model was configured with (0 = chosen by HailoRT).
    pub batch_size: u16,
    /// Frames the configured model takes in flight at once.
    pub async_queue_size: usize,
}

/// How to open a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// 0 = let HailoRT choose.
    pub batch_size: u16,
    /// Host format for every input (`Auto` keeps the HEF's).
    pub input_type: FormatType,
    /// Host format for every output (`Float32` makes HailoRT dequantise).
    pub output_type: FormatType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub revision: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.revision)
    }
}

/// `hailo_device_architecture_t`.
pub fn architecture_name(arch: i32) -> &'static str {
    match arch {
        0 => "hailo8_a0",
        1 => "hailo8",
        2 => "hailo8l",
        3 => "hailo15h",
        4 => "hailo15l",
        5 => "hailo15m",
        6 => "hailo10h",
        7 => "mars",
        _ => "unknown",
    }
}

/// What the physical device says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceIdentity {
    pub firmware: Option<Version>,
    pub architecture: String,
    pub board_name: String,
    pub product_name: String,
    pub serial_number: String,
    pub device_id: String,
}

/// An open accelerator: HailoRT's VDevice, or a simulation of it.
pub trait InferDevice: Send {
    /// Loads a HEF and configures it for inference.
    fn open_model(
        &mut self,
        hef: &Path,
        opts: &OpenOptions,
    ) -> Result<Box<dyn InferModel>, HrtError>;
    fn identity(&mut self) -> Result<DeviceIdentity, HrtError>;
    /// The runtime library's version, when there is one.
    fn library_version(&self) -> Option<Version>;
}

/// A configured model on an [`InferDevice`].
pub trait InferModel: Send {
    fn desc(&self) -> &ModelDesc;
    /// Runs `frames` frames. `inputs[i]` holds `frames * frame_size` bytes of input stream i, back
    /// to back; `outputs[j]` receives the same for output stream j. After an error the model is
    /// dead: drop it and open it again.
    fn run(
        &mut self,
        frames: usize,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        timeout_ms: u32,
    ) -> Result<(), HrtError>;
}

#[cfg(test)]
mod tests {
    use super::status as st;

    #[test]
    fn table_matches_header_numbers() {
        assert_eq!(st::name(0), "HAILO_SUCCESS");
        assert_eq!(st::name(7), "HAILO_NOT_IMPLEMENTED");
        assert_eq!(st::name(26), "HAILO_INVALID_HEF");
        assert_eq!(st::name(64), "HAILO_DRIVER_NOT_INSTALLED");
        assert_eq!(st::name(73), "HAILO_DEVICE_IN_USE");
        assert_eq!(st::name(74), "HAILO_OUT_OF_PHYSICAL_DEVICES");
        assert_eq!(st::name(76), "HAILO_INVALID_DRIVER_VERSION");
        assert_eq!(st::name(77), "HAILO_RPC_FAILED");
        assert_eq!(st::name(93), "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE");
        assert_eq!(st::name(97), "HAILO_DEVICE_TEMPORARILY_UNAVAILABLE");
        assert_eq!(st::name(98), "HAILO_UNKNOWN_STATUS");
        assert_eq!(st::name(-1), "HAILO_UNKNOWN_STATUS");
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
            assert_eq!(st::name(v), n);
        }
    }

    use super::*;

    #[test]
    fn format_round_trip() {
        for v in 0..8 {
            assert_eq!(FormatType::from_raw(v).raw(), v);
            assert_eq!(FormatOrder::from_raw(v).raw(), v);
        }
        assert_eq!(FormatType::Uint16.element_size(), Some(2));
        assert_eq!(FormatType::Auto.element_size(), None);
    }

    #[test]
    fn error_display_names_status() {
        let e = HrtError::new(status::INVALID_HEF, "create_infer_model(x.hef) failed");
        assert_eq!(
            e.to_string(),
            "create_infer_model(x.hef) failed (hailo_status 26)"
        );
    }
}
