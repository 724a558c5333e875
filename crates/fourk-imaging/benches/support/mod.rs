//! Test data shared by the `save_path` bench and the `save_peak_memory` example: a 4K image
//! with the entropy of a photograph, and the JSON body the API would wrap it in.
//!
//! Deterministic, so figures are comparable between runs and machines.

use std::borrow::Cow;

use base64::Engine as _;
use fourk_api::OutputFormat;
use image::{DynamicImage, RgbImage};
use serde::Deserialize;

pub const WIDTH: u32 = 3840;
pub const HEIGHT: u32 = 2160;

/// Smooth gradients and shapes (which PNG's filters predict well) plus per-pixel grain
/// (which they cannot), tuned so the PNG lands at 10-20 MB like a real 4K photo; a synthetic
/// image without grain compresses to a few hundred kilobytes and would flatter the decoder.
pub fn photo_like() -> RgbImage {
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // (centre x, centre y, radius, colour)
    let discs: Vec<(f32, f32, f32, [f32; 3])> = (0..24)
        .map(|_| {
            let r = next();
            (
                (r % u64::from(WIDTH)) as f32,
                ((r >> 16) % u64::from(HEIGHT)) as f32,
                60.0 + ((r >> 32) % 500) as f32,
                [
                    ((r >> 40) & 255) as f32,
                    ((r >> 48) & 255) as f32,
                    ((r >> 56) & 255) as f32,
                ],
            )
        })
        .collect();
    RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let mut c = [
            255.0 * fx / WIDTH as f32,
            255.0 * fy / HEIGHT as f32,
            128.0 + 90.0 * ((fx + 0.6 * fy) / 310.0).sin(),
        ];
        for &(cx, cy, radius, colour) in &discs {
            let d = ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt();
            if d < radius {
                // Soft-edged discs: a blend that fades towards the rim, like out-of-focus light.
                let t = 0.55 * (1.0 - d / radius).sqrt();
                for (ch, col) in c.iter_mut().zip(colour) {
                    *ch = *ch * (1.0 - t) + col * t;
                }
            }
        }
        let grain = next();
        let mut px = [0u8; 3];
        for (i, (out, ch)) in px.iter_mut().zip(c).enumerate() {
            let noise = ((grain >> (i * 8)) & 31) as f32 - 15.5;
            *out = (ch + noise).clamp(0.0, 255.0) as u8;
        }
        image::Rgb(px)
    })
}

/// The PNG bytes of [`photo_like`].
pub fn photo_png() -> Vec<u8> {
    fourk_imaging::encode(&DynamicImage::ImageRgb8(photo_like()), OutputFormat::Png, None)
        .expect("png encodes")
}

/// An `ImagesResponse` body around `png`, shaped like the API's.
pub fn response_body(png: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(png);
    format!(
        r#"{{"created":1,"background":"opaque","data":[{{"b64_json":"{b64}"}}],"output_format":"png","quality":"high","size":"{WIDTH}x{HEIGHT}","usage":{{"input_tokens":50,"input_tokens_details":{{"image_tokens":0,"text_tokens":50}},"output_tokens":6240,"total_tokens":6290}}}}"#
    )
}

/// The part of the body the save path reads. `Cow` borrows the base64 straight out of the
/// body unless the JSON escaped a character (base64 never needs escaping, though `\/` is
/// legal JSON), so the 20 MB string is never copied.
#[derive(Deserialize)]
pub struct Body<'a> {
    #[serde(borrow)]
    pub data: Vec<Item<'a>>,
}

/// One entry of `data`.
#[derive(Deserialize)]
pub struct Item<'a> {
    #[serde(borrow)]
    pub b64_json: Cow<'a, str>,
}
