//! Image bytes to the model's input: decode (any supported format), honour EXIF orientation,
//! convert to RGB, resize. Runs on the blocking pool, never on the async workers.

use crate::{jpeg, PreparedImage, ResizeMode};
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
    // SIMD first (AVX2 or NEON, several GB/s: a 12 MP photo's 3.6 MB of base64 in well under a
    // millisecond); anything it refuses takes the path below, for whitespace and the message.
    let simd = if payload.len() % 4 == 0 {
        base64_simd::STANDARD.decode_to_vec(payload)
    } else {
        base64_simd::STANDARD_NO_PAD.decode_to_vec(payload)
    };
    if let Ok(bytes) = simd {
        if bytes.is_empty() {
            return Err(PreprocessError::InvalidBase64("image is empty".into()));
        }
        return Ok(bytes);
    }
    let engine = &base64::engine::general_purpose::STANDARD;
    let decode = |s: &str| {
        engine
            .decode(s)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
    };
    // Straight decode first: scanning megabytes for whitespace costs more than a rare retry.
    let bytes = decode(payload)
        .or_else(|e| {
            if payload.bytes().any(|b| b.is_ascii_whitespace()) {
                let compact: String = payload
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                decode(&compact)
            } else {
                Err(e)
            }
        })
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
    /// Bytes to the model input. JPEGs are decoded scaled in the DCT domain (see `crate::jpeg`),
    /// everything else at full size; both then take the same bicubic resize.
    pub fn prepare(&self, bytes: &[u8]) -> Result<PreparedImage, PreprocessError> {
        self.prepare_with(bytes, true)
    }

    /// As `prepare`, but a JPEG is decoded at full size first: the reference the scaled path is
    /// measured against (bench/jpeg.sh, tests).
    pub fn prepare_full_decode(&self, bytes: &[u8]) -> Result<PreparedImage, PreprocessError> {
        self.prepare_with(bytes, false)
    }

    fn prepare_with(&self, bytes: &[u8], scaled: bool) -> Result<PreparedImage, PreprocessError> {
        if image::guess_format(bytes).ok() == Some(ImageFormat::Jpeg) {
            let min = if scaled {
                self.size
            } else {
                (u32::MAX, u32::MAX)
            };
            if let jpeg::Outcome::Decoded(d) = jpeg::decode(bytes, min, self.max_pixels)? {
                let rgb = image::RgbImage::from_raw(d.width, d.height, d.rgb).ok_or_else(|| {
                    PreprocessError::Internal("JPEG decoder returned a short buffer".into())
                })?;
                let mut img = DynamicImage::ImageRgb8(rgb);
                img.apply_orientation(d.orientation);
                return self.resize(&img);
            }
        }
        let img = self.decode(bytes)?;
        self.resize(&img)
    }

    /// Full-size decode of any supported format, EXIF orientation applied.
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

    /// Resizes straight from the decoded buffer when it is 8-bit gray, gray+alpha, RGB or RGBA
    /// (alpha dropped afterwards, on the small image, as a plain RGB conversion would); other
    /// layouts are converted to RGB first.
    pub fn resize(&self, img: &DynamicImage) -> Result<PreparedImage, PreprocessError> {
        let direct = matches!(
            img,
            DynamicImage::ImageLuma8(_)
                | DynamicImage::ImageLumaA8(_)
                | DynamicImage::ImageRgb8(_)
                | DynamicImage::ImageRgba8(_)
        );
        let converted;
        let src = if direct {
            img
        } else {
            converted = DynamicImage::ImageRgb8(img.to_rgb8());
            &converted
        };
        let (sw, sh) = (src.width(), src.height());
        let pixel = fr::IntoImageView::pixel_type(src)
            .ok_or_else(|| PreprocessError::Internal("resize: unknown pixel layout".into()))?;
        let (w, h) = self.size;
        // Catmull-Rom with support scaled on downsizing, as PIL's BICUBIC (what CLIP was trained with).
        // No alpha weighting: channels are resized independently, so dropping alpha afterwards
        // gives what dropping it first would.
        let opts = fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::CatmullRom))
            .use_alpha(false);
        let mut resizer = fr::Resizer::new();
        let resize_err = |e: fr::ResizeError| PreprocessError::Internal(format!("resize: {e}"));
        if self.mode == ResizeMode::CenterCrop && w == h {
            // torchvision's order and rounding: short side to the input size, then the centre crop.
            let (sw, sh) = (sw as u64, sh as u64);
            let side = w as u64;
            let (rw, rh) = if sw <= sh {
                (side, (side * sh / sw).max(side))
            } else {
                ((side * sw / sh).max(side), side)
            };
            let mut mid = fr::images::Image::new(rw as u32, rh as u32, pixel);
            resizer.resize(src, &mut mid, &opts).map_err(resize_err)?;
            let top = ((rh - side) as f64 / 2.0).round_ties_even() as usize;
            let left = ((rw - side) as f64 / 2.0).round_ties_even() as usize;
            let (rw, side) = (rw as usize, side as usize);
            let bpp = pixel.size();
            let buf = mid.buffer();
            let mut out = Vec::with_capacity(side * side * 3);
            for y in top..top + side {
                let row = (y * rw + left) * bpp;
                push_rgb(&mut out, &buf[row..row + side * bpp], bpp);
            }
            return Ok(PreparedImage {
                width: w,
                height: h,
                rgb: out,
            });
        }
        let mut dst = fr::images::Image::new(w, h, pixel);
        let opts = if self.mode == ResizeMode::CenterCrop {
            opts.fit_into_destination(Some((0.5, 0.5)))
        } else {
            opts
        };
        resizer.resize(src, &mut dst, &opts).map_err(resize_err)?;
        let rgb = if pixel == fr::PixelType::U8x3 {
            dst.into_vec()
        } else {
            let mut out = Vec::with_capacity(w as usize * h as usize * 3);
            push_rgb(&mut out, dst.buffer(), pixel.size());
            out
        };
        Ok(PreparedImage {
            width: w,
            height: h,
            rgb,
        })
    }
}

/// Appends 8-bit pixels of `bpp` bytes (gray, gray+alpha, RGB, RGBA) as RGB.
fn push_rgb(out: &mut Vec<u8>, px: &[u8], bpp: usize) {
    match bpp {
        3 => out.extend_from_slice(px),
        4 => px
            .chunks_exact(4)
            .for_each(|p| out.extend_from_slice(&p[..3])),
        _ => px
            .chunks_exact(bpp)
            .for_each(|p| out.extend_from_slice(&[p[0], p[0], p[0]])),
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
            max_decoded_bytes: 128 << 20,
            ..pre(ResizeMode::Squash)
        };
        assert!(matches!(
            p.prepare(&png(20, 20)),
            Err(PreprocessError::ImageTooLarge(_))
        ));
    }

    /// A photo-like JPEG: smooth gradients plus seeded noise, so the entropy data is not trivial.
    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let mut seed = 1u32;
        let img: ImageBuffer<Rgb<u8>, _> = ImageBuffer::from_fn(w, h, |x, y| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let n = (seed >> 28) as u8;
            Rgb([(x * 240 / w) as u8 + n, (y * 255 / h) as u8, 128 + n])
        });
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    /// `jpeg` with an EXIF APP1 segment (little-endian TIFF, one Orientation entry) after SOI.
    fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
        tiff.extend_from_slice(&orientation.to_le_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn jpeg_is_decoded_scaled_then_resized() {
        let bytes = jpeg(512, 384);
        let p = pre(ResizeMode::Squash);
        match jpeg::decode(&bytes, p.size, p.max_pixels).unwrap() {
            jpeg::Outcome::Decoded(d) => {
                assert_eq!((d.width, d.height, d.reduction), (64, 48, 8));
            }
            jpeg::Outcome::NotRgbConvertible => panic!("an RGB JPEG"),
        }
        for mode in [ResizeMode::Squash, ResizeMode::CenterCrop] {
            let p = pre(mode);
            let scaled = p.prepare(&bytes).unwrap();
            let full = p.prepare_full_decode(&bytes).unwrap();
            assert_eq!(scaled.rgb.len(), 32 * 32 * 3);
            assert_ne!(scaled.rgb, full.rgb);
            let worst = scaled
                .rgb
                .iter()
                .zip(&full.rgb)
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            assert!(worst <= 24, "{mode:?}: {worst} levels apart");
        }
    }

    #[test]
    fn exif_orientation_is_applied_after_the_scaled_decode() {
        let plain = jpeg(512, 128);
        let turned = with_orientation(&plain, 6);
        // For a 64x32 input the turned image (128x512 once upright) may shrink by 2 only.
        let want = |bytes: &[u8]| match jpeg::decode(bytes, (64, 32), 1 << 20).unwrap() {
            jpeg::Outcome::Decoded(d) => (d.reduction, d.orientation),
            jpeg::Outcome::NotRgbConvertible => panic!("an RGB JPEG"),
        };
        assert_eq!(
            want(&plain),
            (4, image::metadata::Orientation::NoTransforms)
        );
        assert_eq!(want(&turned), (2, image::metadata::Orientation::Rotate90));
        let p = Preprocessor {
            size: (64, 32),
            ..pre(ResizeMode::Squash)
        };
        let mut upright = p.decode(&plain).unwrap();
        upright.apply_orientation(image::metadata::Orientation::Rotate90);
        let reference = p.resize(&upright).unwrap();
        let got = p.prepare(&turned).unwrap();
        let worst = got
            .rgb
            .iter()
            .zip(&reference.rgb)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst <= 24, "{worst} levels from the upright reference");
    }

    #[test]
    fn truncated_or_corrupt_jpeg_is_refused() {
        let bytes = jpeg(256, 192);
        for cut in [bytes.len() / 2, bytes.len() - 2, 200] {
            assert!(
                matches!(
                    pre(ResizeMode::Squash).prepare(&bytes[..cut]),
                    Err(PreprocessError::InvalidImage(_))
                ),
                "cut at {cut} of {}",
                bytes.len()
            );
        }
        // Entropy data overwritten with a marker in the middle: libjpeg would pad with grey.
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid..mid + 4].copy_from_slice(&[0xFF, 0xD0 + 3, 0xFF, 0xC4]);
        assert!(matches!(
            pre(ResizeMode::Squash).prepare(&bad),
            Err(PreprocessError::InvalidImage(_))
        ));
    }

    #[test]
    fn rgba_and_gray_resize_like_their_rgb_conversion() {
        let rgb: ImageBuffer<Rgb<u8>, _> = ImageBuffer::from_fn(90, 70, |x, y| {
            Rgb([(x * 3) as u8, (y * 3) as u8, (x + y) as u8])
        });
        let src = DynamicImage::ImageRgb8(rgb);
        for mode in [ResizeMode::Squash, ResizeMode::CenterCrop] {
            let p = pre(mode);
            for img in [
                DynamicImage::ImageRgba8(src.to_rgba8()),
                DynamicImage::ImageLuma8(src.to_luma8()),
                DynamicImage::ImageLumaA8(src.to_luma_alpha8()),
            ] {
                let direct = p.resize(&img).unwrap();
                let via_rgb = p.resize(&DynamicImage::ImageRgb8(img.to_rgb8())).unwrap();
                assert_eq!(direct.rgb, via_rgb.rgb, "{mode:?} {:?}", img.color());
            }
        }
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
