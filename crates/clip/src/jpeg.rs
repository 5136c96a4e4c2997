//! JPEG decoding through libjpeg-turbo's decoder (the `mozjpeg` crate, built from its vendored
//! source), scaled in the DCT domain: a 4000x3000 photo for a 288x288 model is decoded straight
//! to 500x375, skipping most of the inverse DCT and writing 1/64 of the pixels.
//!
//! Strict: libjpeg reports truncated or corrupt entropy data as a warning and fills the rest of
//! the picture with grey; here every such warning is an error, so a broken upload is refused
//! rather than classified.

use crate::preprocess::PreprocessError;
use image::metadata::Orientation;
use mozjpeg::decompress::DecompressBuilder;
use mozjpeg::Marker;
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr, J_COLOR_SPACE};
use std::os::raw::c_int;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// A JPEG decoded at a reduced scale: packed RGB, orientation not yet applied.
pub struct Decoded {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    pub orientation: Orientation,
    /// 1, 2, 4 or 8: the full image is this many times larger in each dimension (rounded up).
    pub reduction: u32,
}

/// What `decode` found instead of pixels.
pub enum Outcome {
    Decoded(Decoded),
    /// CMYK/YCCK (Adobe print files): libjpeg cannot convert these to RGB; the caller takes its
    /// general path.
    NotRgbConvertible,
}

/// Pillow's `Image.draft` rule: the largest of 1/8, 1/4, 1/2 that keeps the decoded image at
/// least `min` in both dimensions, so the bicubic resize that follows still only shrinks.
pub fn reduction_for(full: (u32, u32), min: (u32, u32)) -> u32 {
    let fit = (full.0 / min.0.max(1)).min(full.1 / min.1.max(1));
    [8, 4, 2].into_iter().find(|&s| fit >= s).unwrap_or(1)
}

/// The message libjpeg formats for its current error or warning.
fn message(cinfo: &mut jpeg_common_struct) -> String {
    let mut buf = [0u8; 80];
    // SAFETY: `err` is the manager installed by `decode`; format_message writes at most 80 bytes
    // into the buffer (the binding declares it shared, the C side writes it).
    unsafe {
        if let Some(format) = (*cinfo.err).format_message {
            let format: unsafe extern "C-unwind" fn(&mut jpeg_common_struct, &mut [u8; 80]) =
                std::mem::transmute(format);
            format(cinfo, &mut buf);
        }
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The payload carried by the unwind out of libjpeg: its message for the client.
struct JpegFailure(String);

extern "C-unwind" fn error_exit(cinfo: &mut jpeg_common_struct) {
    let msg = message(cinfo);
    resume_unwind(Box::new(JpegFailure(msg)));
}

extern "C-unwind" fn emit_message(cinfo: &mut jpeg_common_struct, level: c_int) {
    // Levels >= 0 are trace messages; -1 is a warning.
    if level >= 0 {
        return;
    }
    // SAFETY: as in `message`.
    let code = unsafe { (*cinfo.err).msg_code };
    // Harmless: stray bytes between segments, unknown JFIF minor versions, Adobe transform flags
    // and bad ICC chunks leave every pixel as encoded. Everything else (premature end of file or
    // of a data segment, bad Huffman or arithmetic codes, broken progression) means libjpeg is
    // about to invent pixels.
    let harmless = [
        mozjpeg_sys::JWRN_EXTRANEOUS_DATA,
        mozjpeg_sys::JWRN_JFIF_MAJOR,
        mozjpeg_sys::JWRN_ADOBE_XFORM,
        mozjpeg_sys::JWRN_BOGUS_ICC,
    ];
    if !harmless.contains(&code) {
        let msg = message(cinfo);
        resume_unwind(Box::new(JpegFailure(msg)));
    }
}

fn error_manager() -> jpeg_error_mgr {
    // SAFETY: jpeg_std_error fills in every field of a zeroed manager.
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(error_exit);
    err.emit_message = Some(emit_message);
    err
}

/// Decodes `bytes` at the largest reduction that keeps the image (once EXIF-oriented) at least
/// `min` in both dimensions; refuses images over `max_pixels` from the header alone.
pub fn decode(bytes: &[u8], min: (u32, u32), max_pixels: u64) -> Result<Outcome, PreprocessError> {
    match catch_unwind(AssertUnwindSafe(|| decode_inner(bytes, min, max_pixels))) {
        Ok(r) => r,
        Err(payload) => match payload.downcast::<JpegFailure>() {
            Ok(f) => Err(PreprocessError::InvalidImage(format!("JPEG: {}", f.0))),
            // A panic of ours, not libjpeg's: not the client's fault, and not to be hidden.
            Err(other) => resume_unwind(other),
        },
    }
}

fn decode_inner(
    bytes: &[u8],
    min: (u32, u32),
    max_pixels: u64,
) -> Result<Outcome, PreprocessError> {
    let invalid = |e: std::io::Error| PreprocessError::InvalidImage(format!("JPEG: {e}"));
    let mut dec = DecompressBuilder::new()
        .with_err(error_manager())
        .with_markers(&[Marker::APP(1)])
        .from_mem(bytes)
        .map_err(invalid)?;
    let (w, h) = (dec.width() as u32, dec.height() as u32);
    let pixels = w as u64 * h as u64;
    if pixels > max_pixels {
        return Err(PreprocessError::ImageTooLarge(format!(
            "image is {w}x{h} = {pixels} pixels; the limit is {max_pixels} (limits.max_image_pixels)"
        )));
    }
    if pixels == 0 {
        return Err(PreprocessError::InvalidImage("image has no pixels".into()));
    }
    if matches!(
        dec.color_space(),
        J_COLOR_SPACE::JCS_CMYK | J_COLOR_SPACE::JCS_YCCK
    ) {
        return Ok(Outcome::NotRgbConvertible);
    }
    let orientation = dec
        .markers()
        .find_map(|m| {
            m.data
                .strip_prefix(b"Exif\0\0")
                .and_then(Orientation::from_exif_chunk)
        })
        .unwrap_or(Orientation::NoTransforms);
    // A quarter turn swaps the decoded image's dimensions relative to the model input's.
    let turned = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let min = if turned { (min.1, min.0) } else { min };
    let reduction = reduction_for((w, h), min);
    dec.scale((8 / reduction) as u8);
    let mut started = dec.rgb().map_err(invalid)?;
    let (sw, sh) = (started.width() as u32, started.height() as u32);
    let rgb: Vec<u8> = started.read_scanlines().map_err(invalid)?;
    if rgb.len() != sw as usize * sh as usize * 3 {
        return Err(PreprocessError::InvalidImage(
            "JPEG: image data ended early".into(),
        ));
    }
    // Reads to the end of the entropy data: truncation after the last scanline is caught too.
    started.finish().map_err(invalid)?;
    Ok(Outcome::Decoded(Decoded {
        width: sw,
        height: sh,
        rgb,
        orientation,
        reduction,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduction_follows_pillow_draft() {
        assert_eq!(reduction_for((4000, 3000), (288, 288)), 8);
        assert_eq!(reduction_for((640, 480), (288, 288)), 1);
        assert_eq!(reduction_for((640, 480), (64, 64)), 4);
        assert_eq!(reduction_for((1200, 600), (288, 288)), 2);
        assert_eq!(reduction_for((288, 288), (288, 288)), 1);
        assert_eq!(reduction_for((2304, 2303), (288, 288)), 4);
    }
}
