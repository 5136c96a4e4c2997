//! PNG ancillary chunks that can decompress to far more than the image (an ICC profile or
//! compressed text: zlib streams with no size in their header) are dropped before decoding.
//! The service never uses them: colours are taken as sRGB, as CLIP's training data was read.

use std::borrow::Cow;

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
const DROPPED: [&[u8; 4]; 3] = [b"iCCP", b"zTXt", b"iTXt"];

/// `png` without its iCCP, zTXt and iTXt chunks; the input itself when it has none, or when it
/// is not a well-formed chunk sequence (the decoder then reports what is wrong).
pub fn without_compressed_ancillary(png: &[u8]) -> Cow<'_, [u8]> {
    let Some(mut rest) = png.strip_prefix(SIGNATURE) else {
        return Cow::Borrowed(png);
    };
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut at = SIGNATURE.len();
    let mut dropped = false;
    while rest.len() >= 12 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(total) = len.checked_add(12).filter(|&t| t <= rest.len()) else {
            break;
        };
        let kind = &rest[4..8];
        if DROPPED.iter().any(|d| &d[..] == kind) {
            dropped = true;
        } else {
            spans.push((at, at + total));
        }
        at += total;
        rest = &rest[total..];
    }
    if !dropped {
        return Cow::Borrowed(png);
    }
    let mut out = Vec::with_capacity(png.len());
    out.extend_from_slice(SIGNATURE);
    for (a, b) in spans {
        out.extend_from_slice(&png[a..b]);
    }
    // Whatever followed the last whole chunk (a truncated one) stays, for the decoder to judge.
    out.extend_from_slice(&png[at..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(&[0, 0, 0, 0]);
        c
    }

    #[test]
    fn drops_only_the_compressed_ancillary_chunks() {
        let mut png = SIGNATURE.to_vec();
        png.extend(chunk(b"IHDR", &[1; 13]));
        png.extend(chunk(b"iCCP", &[2; 40]));
        png.extend(chunk(b"IDAT", &[3; 5]));
        png.extend(chunk(b"zTXt", &[4; 9]));
        png.extend(chunk(b"IEND", &[]));
        let out = without_compressed_ancillary(&png);
        let mut want = SIGNATURE.to_vec();
        want.extend(chunk(b"IHDR", &[1; 13]));
        want.extend(chunk(b"IDAT", &[3; 5]));
        want.extend(chunk(b"IEND", &[]));
        assert_eq!(&out[..], &want[..]);
        assert!(matches!(
            without_compressed_ancillary(&want),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            without_compressed_ancillary(b"GIF89a"),
            Cow::Borrowed(_)
        ));
    }
}
