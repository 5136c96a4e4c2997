//! Image bytes to the model's input: decode (any supported format), honour EXIF orientation,
//! convert to RGB, resize. Runs on the blocking pool, never on the async workers.

use crate::{PreparedImage, ResizeMode};
use base64::Engine as _;
use fast_image_resize as fr;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::io::Cursor;

/// Why an image cannot be prepared; each variant is a different fix for the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreprocessError {
    #[error("invalid base64 image: {0}")]
    InvalidBase64(String),
    #[error("unsupported image: {0}")]
    UnsupportedImage(String),
    #[error("invalid image: {0}")]
    InvalidImage(String),
    #[error("image too large: {0}")]
    ImageTooLarge(String),
    /// A bug of ours, not the client's input.
    #[error("internal error: {0}")]
    Internal(String),
}

impl PreprocessError {
    /// The same error, prefixed with which image of a request it is about.
    pub fn for_image(self, i: usize) -> Self {
        let tag = |m: String| format!("image {i}: {m}");
        match self {
            Self::InvalidBase64(m) => Self::InvalidBase64(tag(m)),
            Self::UnsupportedImage(m) => Self::UnsupportedImage(tag(m)),
            Self::InvalidImage(m) => Self::InvalidImage(tag(m)),
            Self::ImageTooLarge(m) => Self::ImageTooLarge(tag(m)),
            other => other,
        }
    }
}

/// Accepts plain base64 or a `data:image/...;base64,` URI; whitespace and line breaks are ignored.
pub fn decode_base64(input: &str) -> Result<Vec<u8>, PreprocessError> {
    let payload = match input.strip_prefix("data:") {
        Some(rest) => match rest.split_once(',') {
            Some((meta, data)) if meta.ends_with(";base64") => data,
            _ => {
                return Err(PreprocessError::InvalidBase64(
                    "data URI must be of the form data:<type>;base64,<data>".into(),
                ))
            }
        },
        None => input,
    };
    let engine = &base64::engine::general_purpose::STANDARD;
    let decode = |s: &str| {
        engine
            .decode(s)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
    };
    let bytes = if payload.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: String = payload
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        decode(&compact)
    } else {
        decode(payload)
    }
    .map_err(|e| PreprocessError::InvalidBase64(e.to_string()))?;
    if bytes.is_empty() {
        return Err(PreprocessError::InvalidBase64("image is empty".into()));
    }
    Ok(bytes)
}

const SUPPORTED: [ImageFormat; 6] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::WebP,
    ImageFormat::Gif,
    ImageFormat::Bmp,
    ImageFormat::Tiff,
];

fn supported_format(bytes: &[u8]) -> Result<ImageFormat, PreprocessError> {
    let format = image::guess_format(bytes).map_err(|_| {
        PreprocessError::UnsupportedImage(
            "not a recognised image (supported: JPEG, PNG, WebP, GIF, BMP, TIFF)".into(),
        )
    })?;
    if !SUPPORTED.contains(&format) {
        return Err(PreprocessError::UnsupportedImage(format!(
            "{format:?} images are not supported (supported: JPEG, PNG, WebP, GIF, BMP, TIFF)"
        )));
    }
    Ok(format)
}

/// Width and height as stored (before any EXIF orientation), from the header alone.
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), PreprocessError> {
    let format = supported_format(bytes)?;
    ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(image_error)
}

pub struct Preprocessor {
    pub size: (u32, u32),
    pub mode: ResizeMode,
    pub max_pixels: u64,
    /// Bytes the decoded image may take (pixels x channels x bytes per sample): a 16-bit or
    /// float image costs several times an 8-bit one of the same size.
    pub max_decoded_bytes: u64,
}

impl Preprocessor {
    pub fn prepare(&self, bytes: &[u8]) -> Result<PreparedImage, PreprocessError> {
        let img = self.decode(bytes)?;
        self.resize(&img)
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<DynamicImage, PreprocessError> {
        let format = supported_format(bytes)?;
        let bytes = if format == ImageFormat::Png {
            crate::png_chunks::without_compressed_ancillary(bytes)
        } else {
            std::borrow::Cow::Borrowed(bytes)
        };
        let mut reader = ImageReader::with_format(Cursor::new(&bytes[..]), format);
        let mut limits = image::Limits::default();
        // Belt and braces: the header checks below refuse bombs; this caps any decoder's own
        // buffers (a PNG's compressed ICC profile, say) at the same budget.
        limits.max_alloc = Some(self.max_decoded_bytes);
        reader.limits(limits);
        let mut decoder = reader.into_decoder().map_err(image_error)?;
        let (w, h) = decoder.dimensions();
        let pixels = w as u64 * h as u64;
        if pixels > self.max_pixels {
            return Err(PreprocessError::ImageTooLarge(format!(
                "image is {w}x{h} = {pixels} pixels; the limit is {} (limits.max_image_pixels)",
                self.max_pixels
            )));
        }
        if pixels == 0 {
            return Err(PreprocessError::InvalidImage("image has no pixels".into()));
        }
        let decoded = decoder.total_bytes();
        if decoded > self.max_decoded_bytes {
            return Err(PreprocessError::ImageTooLarge(format!(
                "image is {w}x{h} {:?} = {decoded} bytes decoded; the limit is {} (limits.max_decoded_bytes)",
                decoder.color_type(),
                self.max_decoded_bytes
            )));
        }
        let orientation = decoder.orientation().map_err(image_error)?;
        let img = DynamicImage::from_decoder(decoder).map_err(image_error)?;
        // To 8-bit RGB before turning: the rotation then copies the smallest form of the image.
        let mut img = match img {
            DynamicImage::ImageRgb8(_) => img,
            other => DynamicImage::ImageRgb8(other.into_rgb8()),
        };
        img.apply_orientation(orientation);
        Ok(img)
    }

    pub fn resize(&self, img: &DynamicImage) -> Result<PreparedImage, PreprocessError> {
        let rgb = match img {
            DynamicImage::ImageRgb8(rgb) => std::borrow::Cow::Borrowed(rgb),
            other => std::borrow::Cow::Owned(other.to_rgb8()),
        };
        let (w, h) = self.size;
        // Catmull-Rom with support scaled on downsizing, as PIL's BICUBIC (what CLIP was trained with).
        let opts = fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::CatmullRom));
        let mut resizer = fr::Resizer::new();
        let resize_err = |e: fr::ResizeError| PreprocessError::Internal(format!("resize: {e}"));
        if self.mode == ResizeMode::CenterCrop && w == h {
            // torchvision's order and rounding: short side to the input size, then the centre crop.
            let (sw, sh) = (rgb.width() as u64, rgb.height() as u64);
            let side = w as u64;
            let (rw, rh) = if sw <= sh {
                (side, (side * sh / sw).max(side))
            } else {
                ((side * sw / sh).max(side), side)
            };
            let mut mid = fr::images::Image::new(rw as u32, rh as u32, fr::PixelType::U8x3);
            resizer
                .resize(rgb.as_ref(), &mut mid, &opts)
                .map_err(resize_err)?;
            let top = ((rh - side) as f64 / 2.0).round_ties_even() as usize;
            let left = ((rw - side) as f64 / 2.0).round_ties_even() as usize;
            let (rw, side) = (rw as usize, side as usize);
            let buf = mid.buffer();
            let mut out = Vec::with_capacity(side * side * 3);
            for y in top..top + side {
                let row = (y * rw + left) * 3;
                out.extend_from_slice(&buf[row..row + side * 3]);
            }
            return Ok(PreparedImage {
                width: w,
                height: h,
                rgb: out,
            });
        }
        let mut dst = fr::images::Image::new(w, h, fr::PixelType::U8x3);
        let opts = if self.mode == ResizeMode::CenterCrop {
            opts.fit_into_destination(Some((0.5, 0.5)))
        } else {
            opts
        };
        resizer
            .resize(rgb.as_ref(), &mut dst, &opts)
            .map_err(resize_err)?;
        Ok(PreparedImage {
            width: w,
            height: h,
            rgb: dst.into_vec(),
        })
    }
}

fn image_error(e: image::ImageError) -> PreprocessError {
    use image::error::{ImageError as E, LimitErrorKind};
    match e {
        E::Limits(l) => match l.kind() {
            LimitErrorKind::DimensionError | LimitErrorKind::InsufficientMemory => {
                PreprocessError::ImageTooLarge(format!("image exceeds decoding limits: {l}"))
            }
            _ => PreprocessError::InvalidImage(l.to_string()),
        },
        E::Unsupported(u) => PreprocessError::UnsupportedImage(u.to_string()),
        other => PreprocessError::InvalidImage(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img: ImageBuffer<Rgb<u8>, _> =
            ImageBuffer::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 7]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn pre(mode: ResizeMode) -> Preprocessor {
        Preprocessor {
            size: (32, 32),
            mode,
            max_pixels: 1_000_000,
            max_decoded_bytes: 64 << 20,
        }
    }

    #[test]
    fn base64_forms() {
        let raw = b"\x89PNG....";
        let b = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(decode_base64(&b).unwrap(), raw);
        assert_eq!(
            decode_base64(&format!("data:image/png;base64,{b}")).unwrap(),
            raw
        );
        let wrapped = format!("{}\n {}\r\n", &b[..4], &b[4..]);
        assert_eq!(decode_base64(&wrapped).unwrap(), raw);
        assert!(matches!(
            decode_base64("%%%"),
            Err(PreprocessError::InvalidBase64(_))
        ));
        assert!(decode_base64("data:image/png,abc").is_err());
    }

    #[test]
    fn resizes_both_modes() {
        for mode in [ResizeMode::Squash, ResizeMode::CenterCrop] {
            let p = pre(mode).prepare(&png(100, 50)).unwrap();
            assert_eq!((p.width, p.height, p.rgb.len()), (32, 32, 32 * 32 * 3));
        }
    }

    #[test]
    fn refuses_pixel_bombs_from_header() {
        let p = Preprocessor {
            max_pixels: 100,
            ..pre(ResizeMode::Squash)
        };
        assert!(matches!(
            p.prepare(&png(20, 20)),
            Err(PreprocessError::ImageTooLarge(_))
        ));
    }

    #[test]
    fn refuses_deep_images_by_decoded_bytes() {
        // 16-bit RGBA: 8 bytes a pixel, so 100x100 needs 80,000 bytes.
        let img = DynamicImage::ImageRgba16(image::ImageBuffer::new(100, 100));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        let p = Preprocessor {
            max_decoded_bytes: 79_999,
            ..pre(ResizeMode::Squash)
        };
        let err = p.prepare(out.get_ref()).unwrap_err();
        assert!(
            matches!(&err, PreprocessError::ImageTooLarge(m) if m.contains("limits.max_decoded_bytes")),
            "{err}"
        );
        let p = Preprocessor {
            max_decoded_bytes: 80_000,
            ..pre(ResizeMode::Squash)
        };
        assert!(p.prepare(out.get_ref()).is_ok());
    }

    #[test]
    fn unsupported_and_corrupt() {
        assert!(matches!(
            pre(ResizeMode::Squash).prepare(b"hello world, not an image"),
            Err(PreprocessError::UnsupportedImage(_))
        ));
        let mut bytes = png(10, 10);
        bytes.truncate(40);
        assert!(matches!(
            pre(ResizeMode::Squash).prepare(&bytes),
            Err(PreprocessError::InvalidImage(_))
        ));
    }
}
