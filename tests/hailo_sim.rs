//! The `hailo` backend against the simulated device (crates/backend/src/hailo/sim.rs): shapes, formats,
//! quantisation and batch size read from the "HEF", dequantisation, the text pipeline (lookup,
//! EOT padding, EOT row, projection), HailoRT status codes turned into advice, and recovery.

mod common;

use backend::hailo::preflight::Host;
use backend::hailo::sim::{image_function, text_function, SimControl, SimDevice, SimHef};
use backend::hailo::{npz, HailoBackend, HailoOptions, TextFiles};
use backend::{Backend, BackendError};
use clip::{l2_normalize, PreparedImage, TokenIds, CONTEXT_LENGTH};
use common::numeric::max_abs_diff;
use hailort_sys::{FormatType, InferDevice, QuantInfo};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const IMAGE_HEF: &str = "clip_resnet_50x4_image_encoder.hef";
const TEXT_HEF: &str = "clip_resnet_50x4_text_encoder.hef";

fn options(dir: &Path, text: bool, batch: u16, host_float: bool) -> HailoOptions {
    HailoOptions {
        model_name: "clip-resnet-50x4".into(),
        image_hef: dir.join(IMAGE_HEF),
        text: text.then(|| TextFiles {
            hef: dir.join(TEXT_HEF),
            embeddings: dir.join("text.npz"),
        }),
        batch_size: batch,
        timeout_ms: 1000,
        host_float,
        share_device: false,
    }
}

fn backend(hefs: Vec<(&str, SimHef)>, opts: HailoOptions) -> (HailoBackend, SimControl) {
    backend_on(hefs, opts, SimControl::default())
}

/// A backend on the chip that `control` simulates (several backends may share one).
fn backend_on(
    hefs: Vec<(&str, SimHef)>,
    opts: HailoOptions,
    control: SimControl,
) -> (HailoBackend, SimControl) {
    let hefs: HashMap<String, SimHef> = hefs.into_iter().map(|(n, h)| (n.to_string(), h)).collect();
    let c = control.clone();
    let b = HailoBackend::with_opener(
        opts,
        Box::new(move |group| {
            SimDevice::open_in(hefs.clone(), c.clone(), group)
                .map(|d| Box::new(d) as Box<dyn InferDevice>)
        }),
    );
    (b, control)
}

fn image(side: u32, seed: u32) -> PreparedImage {
    let rgb = (0..side * side * 3)
        .map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed * 977)) >> 7) as u8)
        .collect();
    PreparedImage {
        width: side,
        height: side,
        rgb,
    }
}

fn expected_image(img: &PreparedImage, dim: usize) -> Vec<f32> {
    let mut v = image_function(&img.rgb, dim);
    l2_normalize(&mut v);
    v
}

const Q8: QuantInfo = QuantInfo {
    zp: 3.0,
    scale: 0.004,
};

#[test]
fn rn50x4_shapes_float_outputs_and_hef_batch() {
    let dir = PathBuf::from("/models");
    let hef = SimHef::image(288, 640, FormatType::Uint8, Q8);
    // batch 0: HailoRT picks, and the backend reports what the model was configured with.
    let (mut b, control) = backend(vec![(IMAGE_HEF, hef)], options(&dir, false, 0, true));
    let info = b.load().unwrap();
    assert_eq!(info.embedding_dimension, 640);
    assert_eq!(info.image_size, (288, 288));
    assert_eq!(
        info.max_image_batch, 8,
        "from the HEF's default batch, not assumed"
    );
    {
        let s = control.lock();
        let (name, opts) = &s.opened[0];
        assert_eq!(name, IMAGE_HEF);
        assert_eq!(opts.input_type, FormatType::Auto, "images stay UINT8");
        assert_eq!(opts.output_type, FormatType::Float32, "library dequantises");
    }
    let imgs: Vec<_> = (0..3).map(|s| image(288, s)).collect();
    let out = b.encode_images(&imgs).unwrap();
    assert_eq!(out.len(), 3);
    for (o, i) in out.iter().zip(&imgs) {
        assert!(max_abs_diff(o, &expected_image(i, 640)) < 1e-5);
    }
    assert_ne!(out[0], out[1]);
    assert_eq!(
        control.lock().frames,
        vec![3],
        "one run for the whole batch"
    );
}

#[test]
fn configured_batch_size_wins() {
    let hef = SimHef::image(8, 16, FormatType::Uint8, Q8);
    let (mut b, control) = backend(
        vec![(IMAGE_HEF, hef)],
        options(Path::new("/m"), false, 4, true),
    );
    assert_eq!(b.load().unwrap().max_image_batch, 4);
    assert_eq!(control.lock().opened[0].1.batch_size, 4);
}

#[test]
fn quantised_outputs_are_dequantised_in_rust() {
    for (ty, q) in [
        (FormatType::Uint8, Q8),
        (
            FormatType::Uint16,
            QuantInfo {
                zp: 1000.0,
                scale: 0.00002,
            },
        ),
    ] {
        let hef = SimHef::image(16, 32, ty, q);
        let (mut b, control) = backend(
            vec![(IMAGE_HEF, hef)],
            options(Path::new("/m"), false, 8, false),
        );
        b.load().unwrap();
        assert_eq!(control.lock().opened[0].1.output_type, FormatType::Auto);
        let imgs = [image(16, 1), image(16, 2)];
        let out = b.encode_images(&imgs).unwrap();
        for (o, i) in out.iter().zip(&imgs) {
            let want = expected_image(i, 32);
            // Bound: half a quantisation step per element, plus the same again through the norm.
            let raw = image_function(&i.rgb, 32);
            let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
            let tol = q.scale / norm + 1e-6;
            assert!(
                max_abs_diff(o, &want) <= tol,
                "{ty:?}: {} > {tol}",
                max_abs_diff(o, &want)
            );
        }
    }
}

#[test]
fn wrong_image_size_is_an_input_error() {
    let hef = SimHef::image(8, 16, FormatType::Uint8, Q8);
    let (mut b, _) = backend(
        vec![(IMAGE_HEF, hef)],
        options(Path::new("/m"), false, 8, true),
    );
    b.load().unwrap();
    let e = b.encode_images(&[image(9, 0)]).unwrap_err();
    assert!(
        matches!(e, BackendError::Input(ref m) if m.contains("model takes 8x8")),
        "{e:?}"
    );
}

/// Small text model: dim 4, projection 4 -> 4 (zoo layouts, transposed).
fn write_text_npz(path: &Path, vocab: usize) -> (Vec<f32>, Vec<f32>) {
    let dim = 4usize;
    // token t, feature i: distinct values
    let table: Vec<f32> = (0..vocab * dim)
        .map(|k| ((k * 37 % 23) as f32 - 11.0) / 10.0)
        .collect(); // vocab x dim
    let mut zoo = vec![0.0; dim * vocab]; // text_embeddings = table.T
    for t in 0..vocab {
        for i in 0..dim {
            zoo[i * vocab + t] = table[t * dim + i];
        }
    }
    let proj: Vec<f32> = (0..dim * dim)
        .map(|k| ((k * 7 % 5) as f32 - 2.0) / 4.0)
        .collect(); // text_projection (in x out)
    let mut proj_t = vec![0.0; dim * dim]; // projection_layer = text_projection.T
    for r in 0..dim {
        for c in 0..dim {
            proj_t[c * dim + r] = proj[r * dim + c];
        }
    }
    npz::write_npz(
        path,
        &[
            ("text_embeddings", &[dim, vocab], &zoo),
            (
                "pos_embeddings",
                &[dim, CONTEXT_LENGTH],
                &vec![0.0; dim * CONTEXT_LENGTH],
            ),
            ("projection_layer", &[dim, dim], &proj_t),
        ],
    )
    .unwrap();
    (table, proj)
}

fn ids(tokens: &[u32]) -> TokenIds {
    let mut a = [0u32; CONTEXT_LENGTH];
    a[..tokens.len()].copy_from_slice(tokens);
    a
}

/// The model zoo recipe written out by hand.
fn expected_text(ids: &TokenIds, table: &[f32], proj: &[f32], dim: usize) -> Vec<f32> {
    let eot = (0..CONTEXT_LENGTH).max_by_key(|&i| ids[i]).unwrap();
    let mut rows = Vec::new();
    for (p, &id) in ids.iter().enumerate() {
        let t = if p > eot { ids[eot] } else { id } as usize;
        rows.extend_from_slice(&table[t * dim..(t + 1) * dim]);
    }
    let out = text_function(&rows, dim);
    let x = &out[eot * dim..(eot + 1) * dim];
    let mut y: Vec<f32> = (0..dim)
        .map(|c| (0..dim).map(|r| x[r] * proj[r * dim + c]).sum())
        .collect();
    l2_normalize(&mut y);
    y
}

#[test]
fn text_encoder_lookup_eot_padding_and_projection() {
    let dir = tempfile::tempdir().unwrap();
    let (table, proj) = write_text_npz(&dir.path().join("text.npz"), 12);
    for host_float in [true, false] {
        let q16 = QuantInfo {
            zp: 32768.0,
            scale: 1e-4,
        };
        let (mut b, control) = backend(
            vec![
                (IMAGE_HEF, SimHef::image(8, 4, FormatType::Uint8, Q8)),
                (TEXT_HEF, SimHef::text(4, q16, q16)),
            ],
            options(dir.path(), true, 8, host_float),
        );
        let info = b.load().unwrap();
        assert_eq!(info.embedding_dimension, 4);
        {
            let s = control.lock();
            let (name, o) = &s.opened[1];
            assert_eq!(name, TEXT_HEF);
            let want = if host_float {
                FormatType::Float32
            } else {
                FormatType::Auto
            };
            assert_eq!((o.input_type, o.output_type), (want, want));
        }
        // SOT=10, EOT=11 (largest id), like CLIP's 49406/49407.
        let texts = [ids(&[10, 3, 5, 11]), ids(&[10, 7, 11]), ids(&[10, 11])];
        let out = b.encode_texts(&texts).unwrap();
        for (o, t) in out.iter().zip(&texts) {
            let want = expected_text(t, &table, &proj, 4);
            let tol = if host_float { 1e-5 } else { 5e-3 };
            assert!(
                max_abs_diff(o, &want) < tol,
                "host_float {host_float}: {o:?} vs {want:?}"
            );
        }
        // Sanity of the check itself: another row or no projection gives a different answer.
        let wrong_row = {
            let mut t = texts[0];
            t[5] = 11; // EOT later -> different pooled row
            expected_text(&t, &table, &proj, 4)
        };
        assert!(max_abs_diff(&out[0], &wrong_row) > 1e-3);
        assert_ne!(out[0], out[1]);
    }
}

/// A backend with an image HEF of `image_dim` outputs and a 4-dimensional text HEF (unit
/// quantisation) whose tables are in `dir`.
fn image_and_text(dir: &Path, image_dim: u32) -> (HailoBackend, SimControl) {
    let q = QuantInfo {
        zp: 0.0,
        scale: 1.0,
    };
    backend(
        vec![
            (
                IMAGE_HEF,
                SimHef::image(8, image_dim, FormatType::Uint8, Q8),
            ),
            (TEXT_HEF, SimHef::text(4, q, q)),
        ],
        options(dir, true, 8, true),
    )
}

#[test]
fn text_vocab_overflow_is_input_error_and_dim_mismatch_is_setup() {
    let dir = tempfile::tempdir().unwrap();
    write_text_npz(&dir.path().join("text.npz"), 12);
    let (mut b, _) = image_and_text(dir.path(), 4);
    b.load().unwrap();
    let e = b.encode_texts(&[ids(&[10, 49407])]).unwrap_err();
    assert!(
        matches!(e, BackendError::Input(ref m) if m.contains("outside the vocabulary")),
        "{e:?}"
    );

    // Image encoder of 6 dimensions vs a 4-dimensional projection.
    let (mut b, _) = image_and_text(dir.path(), 6);
    let e = b.load().unwrap_err();
    assert!(
        matches!(e, BackendError::Setup(ref m) if m.contains("gives 4 dimensions")),
        "{e:?}"
    );
}

#[test]
fn run_fault_then_reload_recovers() {
    let hef = SimHef::image(8, 16, FormatType::Uint8, Q8);
    let (mut b, control) = backend(
        vec![(IMAGE_HEF, hef)],
        options(Path::new("/m"), false, 8, true),
    );
    b.load().unwrap();
    control.fail_runs(1, 77); // HAILO_RPC_FAILED
    let e = b.encode_images(&[image(8, 0)]).unwrap_err();
    match e {
        BackendError::Fault(m) => {
            assert!(m.contains("HAILO_RPC_FAILED (77)"), "{m}");
            assert!(m.contains("lost contact"), "{m}");
        }
        other => panic!("expected a fault, got {other:?}"),
    }
    // HailoRT shuts a configured model down after a failed run: it stays broken until rebuilt.
    assert!(matches!(
        b.encode_images(&[image(8, 0)]),
        Err(BackendError::Fault(_))
    ));
    b.load().unwrap();
    assert_eq!(control.lock().device_opens, 2, "load() reopens the device");
    assert_eq!(b.encode_images(&[image(8, 0)]).unwrap().len(), 1);
}

#[test]
fn device_open_errors_become_advice() {
    let hef = SimHef::image(8, 16, FormatType::Uint8, Q8);
    let (mut b, control) = backend(
        vec![(IMAGE_HEF, hef)],
        options(Path::new("/models"), false, 8, true),
    );
    control.lock().open_status = Some(74);
    let e = b.load().unwrap_err().to_string();
    assert!(e.contains("another process owns the Hailo device"), "{e}");
    assert!(e.contains("hailo-ollama"), "{e}");

    control.lock().open_status = Some(64);
    assert!(b
        .load()
        .unwrap_err()
        .to_string()
        .contains("modprobe hailo1x_pci"));

    control.lock().open_status = None;
    control.lock().model_status = Some(93);
    let e = b.load().unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "/models/{IMAGE_HEF} was compiled for another device"
        )),
        "{e}"
    );
    assert!(e.contains("hailo10h"), "{e}");

    control.lock().model_status = None;
    b.load().unwrap();
}

/// `backend.hailo.share_device`: two processes' backends on one chip both run when both open it
/// in the shared group; one that opens it alone is refused with 74 and told of the setting.
#[test]
fn a_shared_device_takes_two_backends_and_an_exclusive_one_refuses_the_second() {
    let chip = SimControl::default();
    let hef = || vec![(IMAGE_HEF, SimHef::image(8, 16, FormatType::Uint8, Q8))];
    let shared = || HailoOptions {
        share_device: true,
        ..options(Path::new("/models"), false, 8, true)
    };
    let (mut a, _) = backend_on(hef(), shared(), chip.clone());
    let (mut b, _) = backend_on(hef(), shared(), chip.clone());
    a.load().unwrap();
    b.load().unwrap();
    assert_eq!(a.encode_images(&[image(8, 1)]).unwrap().len(), 1);
    assert_eq!(b.encode_images(&[image(8, 2)]).unwrap().len(), 1);
    let groups: Vec<_> = chip
        .lock()
        .open_groups
        .iter()
        .map(|g| g.1.clone())
        .collect();
    assert_eq!(groups, vec![Some("SHARED".to_string()); 2]);

    let (mut alone, _) = backend_on(
        hef(),
        options(Path::new("/models"), false, 8, true),
        chip.clone(),
    );
    let e = alone.load().unwrap_err().to_string();
    assert!(e.contains("HAILO_OUT_OF_PHYSICAL_DEVICES (74)"), "{e}");
    assert!(e.contains("backend.hailo.share_device: true"), "{e}");
    b.unload();
    drop(a);
    alone.load().unwrap();
    let (mut late, _) = backend_on(hef(), shared(), chip.clone());
    assert!(
        late.load().is_err(),
        "a device opened alone admits no other"
    );
}

#[test]
fn missing_hef_and_missing_device_node() {
    let (mut b, _) = backend(vec![], options(Path::new("/models"), false, 8, true));
    let e = b.load().unwrap_err().to_string();
    assert!(e.contains("HAILO_OPEN_FILE_FAILURE (13)"), "{e}");
    assert!(
        e.contains(&format!("cannot read /models/{IMAGE_HEF}")),
        "{e}"
    );

    let root = tempfile::tempdir().unwrap();
    let hef = SimHef::image(8, 16, FormatType::Uint8, Q8);
    let (b, control) = backend(
        vec![(IMAGE_HEF, hef)],
        options(Path::new("/m"), false, 8, true),
    );
    let mut b = b.with_preflight(Host::new(root.path()));
    let e = b.load().unwrap_err().to_string();
    assert!(e.contains("hailo1x_pci kernel module is not loaded"), "{e}");
    assert_eq!(
        control.lock().device_opens,
        0,
        "nothing opened when the node is missing"
    );
}

#[test]
fn versions_for_info() {
    let dir = tempfile::tempdir().unwrap();
    write_text_npz(&dir.path().join("text.npz"), 12);
    let (mut b, _) = image_and_text(dir.path(), 4);
    b.load().unwrap();
    let v = b.versions();
    assert_eq!(v["hailort"], "5.1.1");
    assert_eq!(v["hailo_firmware"], "5.1.1");
    assert_eq!(v["hailo_device"], "hailo10h");
    assert_eq!(v["hailo_driver"], "unknown");
    assert_eq!(v["image_hef"], IMAGE_HEF);
    assert_eq!(v["text_hef"], TEXT_HEF);
}

/// The whole service path: the device thread marks the backend unhealthy after a fault, rebuilds
/// it through load(), probes, and serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_recovers_after_device_fault() {
    use base64::Engine as _;
    use config::{BackendKind, Settings};
    use engine::health::Phase;
    use engine::Engine;

    let dir = tempfile::tempdir().unwrap();
    // The worker's probe encodes CLIP's real SOT/EOT ids, so this table covers the full vocabulary.
    write_text_npz(&dir.path().join("text.npz"), 49408);
    let (b, control) = image_and_text(dir.path(), 4);
    let mut settings = Settings::default();
    settings.backend.kind = BackendKind::Hailo;
    let engine = Engine::with_backend(settings, Box::new(b));
    assert_eq!(engine.wait_settled().await, Phase::Ready);

    let mut png = Vec::new();
    image::RgbImage::from_fn(20, 10, |x, y| {
        image::Rgb([(x * 12) as u8, (y * 25) as u8, 7])
    })
    .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
    .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let first = engine.embed_images(vec![b64.clone()]).await.unwrap().value;

    control.fail_runs(1, 62); // HAILO_COMMUNICATION_CLOSED
    assert!(engine.embed_images(vec![b64.clone()]).await.is_err());
    let mut recovered = false;
    for _ in 0..500 {
        if engine.status().phase == Phase::Ready {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(recovered, "phase stayed {:?}", engine.status().phase);
    assert!(control.lock().device_opens >= 2);
    let again = engine.embed_images(vec![b64]).await.unwrap().value;
    assert!(max_abs_diff(&first[0], &again[0]) < 1e-6);
}
