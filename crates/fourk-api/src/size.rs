//! The `size` field: `WIDTHxHEIGHT`, `auto`, or a named preset, parsed once.
//!
//! The same [`Size`] is what clap parses from `--size`, what serde reads from and writes to the
//! wire, and what the emulator parses out of a request body, so a size means one thing
//! everywhere. Parsing checks only the *form*; whether a model accepts the size is a question
//! for [`crate::ModelCaps::check_size`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Named sizes accepted wherever a size is, so `--size 4k` means 3840x2160.
///
/// The three standard sizes are listed under their own names as well, so `--help` shows
/// every size every GPT Image model takes.
pub const PRESETS: &[(&str, u32, u32)] = &[
    ("4k", 3840, 2160),
    ("4k-portrait", 2160, 3840),
    ("2k", 2560, 1440),
    ("2k-portrait", 1440, 2560),
    ("square", 2048, 2048),
    ("1024x1024", 1024, 1024),
    ("1536x1024", 1536, 1024),
    ("1024x1536", 1024, 1536),
];

/// A requested image size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    /// Let the model choose (`auto`).
    Auto,
    /// An explicit `WIDTHxHEIGHT`.
    Exact {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

impl Size {
    /// An explicit size.
    #[must_use]
    pub const fn new(width: u32, height: u32) -> Self {
        Self::Exact { width, height }
    }

    /// Width and height, or `None` for `auto`.
    #[must_use]
    pub const fn dims(self) -> Option<(u32, u32)> {
        match self {
            Self::Auto => None,
            Self::Exact { width, height } => Some((width, height)),
        }
    }

    /// Width times height, or `None` for `auto`.
    #[must_use]
    pub fn pixels(self) -> Option<u64> {
        self.dims().map(|(w, h)| u64::from(w) * u64::from(h))
    }

    /// Parse the wire form only: `WIDTHxHEIGHT` or `auto`. Presets such as `4k` are a fourk
    /// convenience the API does not know, so the emulator rejects them as the API would.
    ///
    /// # Errors
    /// As [`FromStr`], plus [`SizeParseError::Malformed`] for preset names.
    pub fn parse_wire(s: &str) -> Result<Self, SizeParseError> {
        let t = s.trim().to_ascii_lowercase();
        if PRESETS
            .iter()
            .any(|(name, _, _)| *name == t && !name.contains('x'))
        {
            return Err(SizeParseError::Malformed { input: s.to_owned() });
        }
        s.parse()
    }

    /// One line per preset, for help texts.
    #[must_use]
    pub fn preset_help() -> String {
        PRESETS
            .iter()
            .filter(|(name, _, _)| !name.contains('x'))
            .map(|(name, w, h)| format!("{name}={w}x{h}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Exact { width, height } => write!(f, "{width}x{height}"),
        }
    }
}

/// Why a string is not a size at all (the `format` rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SizeParseError {
    /// Empty input.
    #[error(
        "size is empty: expected WIDTHxHEIGHT (for example 3840x2160), `auto`, or a preset ({})",
        Size::preset_help()
    )]
    Empty,
    /// An aspect ratio such as `16:9` where a size is needed; carries the ratio.
    #[error(
        "invalid size '{input}': `size` takes pixels, not an aspect ratio; expected WIDTHxHEIGHT, for example 3840x2160 for 16:9"
    )]
    AspectRatio {
        /// What was given.
        input: String,
        /// The ratio's two terms.
        ratio: (u32, u32),
    },
    /// Anything else that is not `WIDTHxHEIGHT`, `auto` or a preset.
    #[error(
        "invalid size '{input}': expected WIDTHxHEIGHT (for example 3840x2160), `auto`, or a preset ({})",
        Size::preset_help()
    )]
    Malformed {
        /// What was given.
        input: String,
    },
    /// A zero edge.
    #[error("invalid size '{input}': width and height must be positive")]
    Zero {
        /// What was given.
        input: String,
    },
}

impl SizeParseError {
    /// The text that failed to parse.
    #[must_use]
    pub fn input(&self) -> &str {
        match self {
            Self::Empty => "",
            Self::AspectRatio { input, .. } | Self::Malformed { input } | Self::Zero { input } => input,
        }
    }
}

impl FromStr for Size {
    type Err = SizeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() {
            return Err(SizeParseError::Empty);
        }
        let lower = t.to_ascii_lowercase();
        if lower == "auto" {
            return Ok(Self::Auto);
        }
        if let Some((_, w, h)) = PRESETS.iter().find(|(name, _, _)| *name == lower) {
            return Ok(Self::new(*w, *h));
        }
        if let Some((a, b)) = lower.split_once(':')
            && let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>())
            && a > 0
            && b > 0
        {
            return Err(SizeParseError::AspectRatio {
                input: s.to_owned(),
                ratio: (a, b),
            });
        }
        let malformed = || SizeParseError::Malformed { input: s.to_owned() };
        let (w, h) = lower.split_once('x').ok_or_else(malformed)?;
        let digits = |v: &str| !v.is_empty() && v.len() <= 6 && v.bytes().all(|b| b.is_ascii_digit());
        if !digits(w) || !digits(h) {
            return Err(malformed());
        }
        let (width, height) = (
            w.parse::<u32>().map_err(|_| malformed())?,
            h.parse::<u32>().map_err(|_| malformed())?,
        );
        if width == 0 || height == 0 {
            return Err(SizeParseError::Zero { input: s.to_owned() });
        }
        Ok(Self::new(width, height))
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Size {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let presets: Vec<&str> = PRESETS.iter().map(|(name, _, _)| *name).collect();
        schemars::json_schema!({
            "type": "string",
            "description": format!(
                "WIDTHxHEIGHT (edges multiples of 16, long edge at most 3840, ratio at most 3:1, 655,360 to 8,294,400 pixels for gpt-image-2), `auto`, or a preset: {}. Resolution comes only from this field, never from the prompt.",
                presets.join(", ")
            ),
            "examples": ["4k", "3840x2160", "2560x1440", "1024x1024"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_presets_and_auto() {
        assert_eq!("3840x2160".parse(), Ok(Size::new(3840, 2160)));
        assert_eq!("4K".parse(), Ok(Size::new(3840, 2160)));
        assert_eq!("4k-portrait".parse(), Ok(Size::new(2160, 3840)));
        assert_eq!("2k".parse(), Ok(Size::new(2560, 1440)));
        assert_eq!("2k-portrait".parse(), Ok(Size::new(1440, 2560)));
        assert_eq!("square".parse(), Ok(Size::new(2048, 2048)));
        assert_eq!("auto".parse(), Ok(Size::Auto));
        assert_eq!(" 1024X1536 ".parse(), Ok(Size::new(1024, 1536)));
    }

    #[test]
    fn the_wire_form_has_no_presets() {
        assert_eq!(Size::parse_wire("3840x2160"), Ok(Size::new(3840, 2160)));
        assert_eq!(Size::parse_wire("auto"), Ok(Size::Auto));
        assert!(Size::parse_wire("4k").is_err());
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(
            "16:9".parse::<Size>(),
            Err(SizeParseError::AspectRatio { ratio: (16, 9), .. })
        ));
        for bad in [
            "",
            "x",
            "1920",
            "1920x",
            "x1080",
            "1920*1080",
            "-1x5",
            "1e3x100",
            "9999999x1",
        ] {
            assert!(bad.parse::<Size>().is_err(), "{bad} parsed");
        }
        assert!(matches!(
            "0x100".parse::<Size>(),
            Err(SizeParseError::Zero { .. })
        ));
    }

    #[test]
    fn serde_round_trip_is_the_wire_string() {
        let s: Size = serde_json::from_str("\"4k\"").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"3840x2160\"");
        assert_eq!(serde_json::to_string(&Size::Auto).unwrap(), "\"auto\"");
        assert!(serde_json::from_str::<Size>("\"big\"").is_err());
    }
}
