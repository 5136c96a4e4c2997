//! What `hailo-clip doctor` asks of the Hailo side: the device's versions and whether each HEF
//! configures, through the same HailoRT calls and messages the backend uses, so the doctor is
//! not a second HailoRT client of its own.

#[cfg(feature = "hailo")]
use super::{advice, preflight, ARCH};
use std::path::{Path, PathBuf};

/// What the device checks found, from the real device or not at all.
#[derive(Debug, Default, Clone)]
pub struct DeviceFacts {
    pub library: Option<String>,
    pub firmware: Option<String>,
    pub architecture: Option<String>,
    /// (HEF path, error) for each HEF that failed to load; all loaded when empty.
    pub hef_errors: Vec<(PathBuf, String)>,
    pub hefs_loaded: Vec<PathBuf>,
    /// The device could not be opened: why.
    pub open_error: Option<String>,
    /// The open failed because another process holds the device.
    pub busy: bool,
}

/// Opens the real device (feature `hailo`) and loads each HEF once; None without the feature.
pub type DeviceProbe<'a> = &'a dyn Fn(&[PathBuf]) -> Option<DeviceFacts>;

/// "5.1.1" and "5.1.1-dev" etc.: compares the leading major.minor.revision numbers.
pub fn same_version(a: &str, b: &str) -> bool {
    let nums = |s: &str| -> Vec<u32> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|x| !x.is_empty())
            .take(3)
            .filter_map(|x| x.parse().ok())
            .collect()
    };
    nums(a) == nums(b)
}

pub fn npz_arrays(path: &Path) -> Result<Vec<String>, String> {
    super::files::check_file(path)?;
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let z = zip::ZipArchive::new(std::io::BufReader::new(f))
        .map_err(|e| format!("{} is not an .npz: {e}", path.display()))?;
    Ok(z.file_names()
        .map(|n| n.trim_end_matches(".npy").to_string())
        .collect())
}

#[cfg(feature = "hailo")]
pub fn probe_device(hefs: &[PathBuf], group: Option<&str>) -> Option<DeviceFacts> {
    use hailort_sys::{FormatType, HailoDevice, InferDevice, OpenOptions};
    let mut facts = DeviceFacts {
        library: hailort_sys::library_version().map(|v| v.to_string()),
        ..Default::default()
    };
    let driver = preflight::Host::default().driver_version();
    let mut dev = match HailoDevice::open(group) {
        Ok(d) => d,
        Err(e) => {
            facts.busy = matches!(
                e.status,
                hailort_sys::status::DEVICE_IN_USE | hailort_sys::status::OUT_OF_PHYSICAL_DEVICES
            );
            facts.open_error = Some(advice::explain(&e, &context(None, &facts.library, &driver)));
            return Some(facts);
        }
    };
    if let Ok(id) = dev.identity() {
        facts.firmware = id.firmware.map(|v| v.to_string());
        facts.architecture = Some(id.architecture);
    }
    for h in hefs {
        let opts = OpenOptions {
            batch_size: 1,
            input_type: FormatType::Auto,
            output_type: FormatType::Float32,
        };
        match dev.open_model(h, &opts) {
            Ok(_) => facts.hefs_loaded.push(h.clone()),
            Err(e) => {
                let msg = advice::explain(&e, &context(Some(h), &facts.library, &driver));
                facts.hef_errors.push((h.clone(), msg));
            }
        }
    }
    Some(facts)
}

#[cfg(feature = "hailo")]
fn context<'a>(
    hef: Option<&'a Path>,
    library: &Option<String>,
    driver: &Option<String>,
) -> advice::Context<'a> {
    advice::Context {
        hef,
        library_version: library.clone(),
        driver_version: driver.clone(),
        expected_arch: ARCH,
        holders: preflight::Host::default().device_holders(),
    }
}

#[cfg(not(feature = "hailo"))]
pub fn probe_device(_hefs: &[PathBuf], _group: Option<&str>) -> Option<DeviceFacts> {
    None
}
