//! What a HEF's streams look like to the host: their checks, the batch a model takes, and
//! (de)quantisation between host floats and the HEF's integer formats.

use hailort_sys::{FormatType, InferModel, StreamInfo};

pub fn batch_of(model: &dyn InferModel) -> usize {
    let d = model.desc();
    if d.batch_size > 0 {
        d.batch_size as usize
    } else {
        d.async_queue_size.max(1)
    }
}

pub fn check_stream(s: &StreamInfo) -> Result<(), String> {
    let size = s.format_type.element_size().ok_or_else(|| {
        format!(
            "{} has format {:?}, which this backend cannot read",
            s.name, s.format_type
        )
    })?;
    if s.frame_size != s.elements() * size {
        return Err(format!(
            "{} frame is {} bytes, expected {} ({}x{}x{} {:?})",
            s.name,
            s.frame_size,
            s.elements() * size,
            s.height,
            s.width,
            s.features,
            s.format_type
        ));
    }
    if s.format_type != FormatType::Float32 && s.quant.is_empty() {
        return Err(format!(
            "{} is quantised but has no quantisation info",
            s.name
        ));
    }
    Ok(())
}

pub fn check_output(o: &StreamInfo) -> Result<(), String> {
    check_stream(o)?;
    if o.elements() == 0 {
        return Err(format!("output {} is empty", o.name));
    }
    Ok(())
}

/// Host values of one frame of a stream: FLOAT32 as is, UINT8/UINT16 as `(q - zp) * scale`
/// (per feature when the HEF quantises per feature).
pub fn dequantize(bytes: &[u8], s: &StreamInfo) -> Vec<f32> {
    let features = s.features.max(1) as usize;
    let q = |k: usize| {
        let qi = if s.quant.len() == features {
            s.quant[k % features]
        } else {
            s.quant[0]
        };
        (qi.zp, qi.scale)
    };
    match s.format_type {
        FormatType::Float32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        FormatType::Uint16 => bytes
            .chunks_exact(2)
            .enumerate()
            .map(|(k, c)| {
                let (zp, scale) = q(k);
                (u16::from_le_bytes([c[0], c[1]]) as f32 - zp) * scale
            })
            .collect(),
        _ => bytes
            .iter()
            .enumerate()
            .map(|(k, &b)| {
                let (zp, scale) = q(k);
                (b as f32 - zp) * scale
            })
            .collect(),
    }
}

/// Inverse of [`dequantize`] for inputs: `q = round(x / scale + zp)`, clamped to the type.
pub fn quantize(values: &[f32], s: &StreamInfo, out: &mut Vec<u8>) {
    let features = s.features.max(1) as usize;
    for (k, &x) in values.iter().enumerate() {
        let qi = if s.quant.len() == features {
            s.quant[k % features]
        } else {
            s.quant[0]
        };
        let q = (x / qi.scale + qi.zp).round();
        match s.format_type {
            FormatType::Float32 => out.extend_from_slice(&x.to_le_bytes()),
            FormatType::Uint16 => {
                out.extend_from_slice(&(q.clamp(0.0, u16::MAX as f32) as u16).to_le_bytes())
            }
            _ => out.push(q.clamp(0.0, 255.0) as u8),
        }
    }
}
