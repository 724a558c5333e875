//! The closed sets of values a request may carry, one enum each.
//!
//! Requests use these enums; responses keep the same fields as open strings (see
//! [`crate::ImagesResponse`]) because the API adds values faster than clients are released.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in documentation order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire string.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let lower = s.trim().to_ascii_lowercase();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == lower)
                    .ok_or_else(|| {
                        format!(
                            "invalid {} '{}': expected one of {}",
                            $what,
                            s,
                            Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    })
            }
        }
    };
}

wire_enum!(
    /// `quality`.
    Quality, "quality" {
        /// Cheapest, for drafts.
        Low = "low",
        /// Middle.
        Medium = "medium",
        /// Best of gpt-image-2.
        High = "high",
        /// The model decides.
        Auto = "auto",
        /// gpt-image-2.5 family only.
        Xhigh = "xhigh",
        /// gpt-image-2.5 family only.
        Max = "max",
    }
);

wire_enum!(
    /// `output_format`.
    OutputFormat, "output format" {
        /// Lossless; the default.
        Png = "png",
        /// Lossy, no alpha.
        Jpeg = "jpeg",
        /// Lossy (from the API), with alpha.
        Webp = "webp",
    }
);

impl OutputFormat {
    /// The usual file extension.
    #[must_use]
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
        }
    }

    /// The MIME type.
    #[must_use]
    pub const fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }

    /// Whether the format can carry an alpha channel.
    #[must_use]
    pub const fn has_alpha(self) -> bool {
        !matches!(self, Self::Jpeg)
    }

    /// The format a file extension names (`jpg` and `jpeg` both mean JPEG).
    #[must_use]
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "png" => Some(Self::Png),
            "jpg" | "jpeg" => Some(Self::Jpeg),
            "webp" => Some(Self::Webp),
            _ => None,
        }
    }
}

wire_enum!(
    /// `background`.
    Background, "background" {
        /// An alpha channel with transparent pixels (PNG or WebP only).
        Transparent = "transparent",
        /// No transparency.
        Opaque = "opaque",
        /// The model decides.
        Auto = "auto",
    }
);

wire_enum!(
    /// `moderation` (generations only).
    Moderation, "moderation" {
        /// Less restrictive filtering.
        Low = "low",
        /// The default.
        Auto = "auto",
    }
);

wire_enum!(
    /// `input_fidelity` on edits (and the Responses tool): how closely the output keeps the
    /// style and features, especially faces, of the input images. gpt-image-2 does not take it.
    InputFidelity, "input fidelity" {
        /// Keep the input's features closely (more input tokens).
        High = "high",
        /// The default.
        Low = "low",
    }
);

wire_enum!(
    /// `action` of the Responses API's `image_generation` tool.
    ToolAction, "tool action" {
        /// Always draw a new image.
        Generate = "generate",
        /// Always edit an image from the conversation.
        Edit = "edit",
        /// The model decides (the default).
        Auto = "auto",
    }
);

wire_enum!(
    /// `detail` of an `input_image` content part: how finely the mainline model looks at it.
    ImageDetail, "image detail" {
        /// Fewer tokens.
        Low = "low",
        /// More tokens.
        High = "high",
        /// The model decides.
        Auto = "auto",
        /// The image as sent, without resizing.
        Original = "original",
    }
);

wire_enum!(
    /// `role` of an input message.
    Role, "role" {
        /// The person asking.
        User = "user",
        /// A previous answer of the model.
        Assistant = "assistant",
        /// System instructions.
        System = "system",
        /// Developer instructions.
        Developer = "developer",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_and_print_the_wire_strings() {
        assert_eq!("HIGH".parse::<Quality>(), Ok(Quality::High));
        assert_eq!(serde_json::to_string(&OutputFormat::Jpeg).unwrap(), "\"jpeg\"");
        let err = "gif".parse::<OutputFormat>().unwrap_err();
        assert!(err.contains("png, jpeg, webp"), "{err}");
        assert_eq!(OutputFormat::from_extension("JPG"), Some(OutputFormat::Jpeg));
    }
}
