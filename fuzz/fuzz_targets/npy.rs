//! The model zoo's .npy arrays (token embeddings, text projection): parsed or refused, never a
//! panic or an allocation the file's own size does not justify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = backend::hailo::npz::parse_npy(data) {
        let n: usize = a.shape.iter().product();
        assert_eq!(a.data.len(), n);
    }
});
