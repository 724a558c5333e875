//! The values of the pipeline's options as text (`#RRGGBB`, `KEY=VALUE`, `x,y,w,h`, a key
//! colour, a gravity, a pad), parsed once for every door: the CLI's flags and the MCP
//! server's JSON arguments give the same errors.

use fourk_imaging::metadata;
use fourk_imaging::{Gravity, KeySpec, Pad};

/// `#RRGGBB` or `RRGGBB`.
///
/// # Errors
/// A message naming the expected form.
pub fn color(s: &str) -> Result<[u8; 3], String> {
    let hex = s.trim().trim_start_matches('#');
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "invalid colour '{s}': expected #RRGGBB, for example #00b140"
        ));
    }
    let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
    Ok([c(0), c(2), c(4)])
}

/// `KEY=VALUE`, a PNG text entry.
///
/// # Errors
/// A message naming the expected form, or why the key cannot be a PNG text key.
pub fn meta(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid --meta '{s}': expected KEY=VALUE, for example title=Lighthouse"))?;
    metadata::check_text_key(k)?;
    Ok((k.to_owned(), v.to_owned()))
}

/// `x,y,w,h` in pixels (width and height at least 3).
///
/// # Errors
/// A message naming the expected form.
pub fn crop(s: &str) -> Result<(u32, u32, u32, u32), String> {
    let bad =
        || format!("invalid crop '{s}': expected x,y,width,height in pixels, for example 1400,800,1024,1024");
    let v: Vec<u32> = s
        .split(',')
        .map(|p| p.trim().parse::<u32>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    match v[..] {
        [x, y, w, h] if w >= 3 && h >= 3 => Ok((x, y, w, h)),
        _ => Err(bad()),
    }
}

/// `word` (any case): `Some(None)`; a colour: `Some(Some(rgb))`; anything else: `None`.
fn word_or_color(s: &str, word: &str) -> Option<Option<[u8; 3]>> {
    if s.trim().eq_ignore_ascii_case(word) {
        return Some(None);
    }
    color(s).ok().map(Some)
}

/// The chroma key: `auto` or `#RRGGBB`.
///
/// # Errors
/// A message naming the expected form.
pub fn key(s: &str) -> Result<KeySpec, String> {
    word_or_color(s, "auto")
        .map(|c| c.map_or(KeySpec::Auto, KeySpec::Color))
        .ok_or_else(|| format!("invalid key '{s}': expected auto or #RRGGBB, for example #00b140"))
}

/// `center`, `top`, `bottom`, `left`, `right`, or a focal point `x,y` as fractions.
///
/// # Errors
/// A message naming the expected forms.
pub fn gravity(s: &str) -> Result<Gravity, String> {
    let t = s.trim().to_ascii_lowercase();
    Ok(match t.as_str() {
        "center" | "centre" => Gravity::Center,
        "top" => Gravity::Top,
        "bottom" => Gravity::Bottom,
        "left" => Gravity::Left,
        "right" => Gravity::Right,
        _ => {
            let bad = || {
                format!(
                    "invalid gravity '{s}': expected center, top, bottom, left, right, or a focal point x,y as fractions from 0 to 1 (for example 0.5,0.3)"
                )
            };
            let (x, y) = t.split_once(',').ok_or_else(bad)?;
            let (x, y) = (
                x.trim().parse::<f32>().map_err(|_| bad())?,
                y.trim().parse::<f32>().map_err(|_| bad())?,
            );
            if !(0.0..=1.0).contains(&x) || !(0.0..=1.0).contains(&y) {
                return Err(bad());
            }
            Gravity::Point(x, y)
        }
    })
}

/// The padding of `contain` and `crop`: `transparent` or `#RRGGBB`.
///
/// # Errors
/// A message naming the expected form.
pub fn pad(s: &str) -> Result<Pad, String> {
    word_or_color(s, "transparent")
        .map(|c| c.map_or(Pad::Transparent, Pad::Color))
        .ok_or_else(|| format!("invalid pad '{s}': expected transparent or #RRGGBB"))
}
