//! Image bytes -> decode, orientation, RGB, resize: any input ends in a prepared image or an
//! error, within the pixel limit, never a panic.
#![no_main]

use clip::preprocess::Preprocessor;
use clip::ResizeMode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let pre = Preprocessor {
        size: (32, 32),
        mode: if mode & 1 == 0 {
            ResizeMode::Squash
        } else {
            ResizeMode::CenterCrop
        },
        max_pixels: 4_000_000,
        max_decoded_bytes: 64 << 20,
    };
    if let Ok(p) = pre.prepare(bytes) {
        assert_eq!(p.rgb.len(), 32 * 32 * 3);
    }
});
