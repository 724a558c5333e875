//! Account and safety answers on demand: organisation verification (403) and moderation
//! blocks (400 `moderation_blocked`), triggered by magic strings in the prompt or by
//! configuration.

use crate::config::EmulatorConfig;

/// A prompt containing this gets the 403 "Your organization must be verified to use the
/// model ..." answer.
pub const MAGIC_ORG_UNVERIFIED: &str = "[fourk:org-unverified]";

/// A prompt containing this is rejected by the (emulated) safety system.
pub const MAGIC_MODERATION: &str = "[fourk:moderation]";

/// A prompt containing this gets an image stream that fails after its partial images: the
/// Images API sends an `error` event instead of the completed image, the Responses API an
/// `error` event instead of the finished item (non-streamed requests are not affected).
pub const MAGIC_STREAM_ERROR: &str = "[fourk:stream-error]";

/// A prompt containing this gets a `wrong-size` answer (half of each edge) whenever the size
/// asked for is above the model's non-experimental limit (over 2560x1440 pixels on
/// gpt-image-2), and normal answers below it: a native 4K attempt fails verification while
/// a 2K master succeeds, which is how `fourk deliver`'s fallback is tested.
pub const MAGIC_WRONG_SIZE_EXPERIMENTAL: &str = "[fourk:wrong-size-experimental]";

/// The fault [`MAGIC_WRONG_SIZE_EXPERIMENTAL`] asks for, if the prompt and size call for it.
pub(crate) fn experimental_fault(
    prompt: &str,
    model: &fourk_api::ModelCaps,
    width: u32,
    height: u32,
) -> Option<crate::faults::InjectedFault> {
    (prompt.contains(MAGIC_WRONG_SIZE_EXPERIMENTAL)
        && model.is_experimental(fourk_api::Size::new(width, height)))
    .then_some(crate::faults::InjectedFault {
        kind: crate::faults::FaultKind::WrongSize,
        variant: 0,
    })
}

/// A prompt containing this gets an opaque image even when `background: transparent` was
/// asked for (the answer still says `transparent`), as a preview feature may do: a client
/// that checks the returned alpha channel catches it.
pub const MAGIC_NO_ALPHA: &str = "[fourk:no-alpha]";

/// The key colour of a prompt that asks for a flat chroma-key backdrop: the first `#RRGGBB`
/// after the words `chroma-key background` (or `chroma key background`, any case). A model
/// asked for that paints the backdrop in exactly that colour, so the emulator does too.
pub(crate) fn key_background(prompt: &str) -> Option<[u8; 3]> {
    let lower = prompt.to_ascii_lowercase();
    let at = ["chroma-key background", "chroma key background"]
        .iter()
        .filter_map(|p| lower.find(p))
        .min()?;
    let rest = &prompt[at..];
    rest.match_indices('#').find_map(|(i, _)| {
        let hex = rest.get(i + 1..i + 7)?;
        let next_is_hex = rest[i + 7..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_hexdigit());
        if next_is_hex || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |k: usize| u8::from_str_radix(&hex[k..k + 2], 16).ok();
        Some([byte(0)?, byte(2)?, byte(4)?])
    })
}

/// What the policy says about a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Go ahead.
    Allowed,
    /// 403: the organisation must be verified for this model.
    OrganizationNotVerified,
    /// The safety system rejects the prompt.
    ModerationBlocked,
}

/// Organisation verification is checked first, as access comes before content.
pub(crate) fn judge(config: &EmulatorConfig, prompt: &str) -> Verdict {
    if config.fail_org_verification || prompt.contains(MAGIC_ORG_UNVERIFIED) {
        return Verdict::OrganizationNotVerified;
    }
    if prompt.contains(MAGIC_MODERATION) {
        return Verdict::ModerationBlocked;
    }
    let lower = prompt.to_lowercase();
    let blocked = config
        .moderation_block_words
        .iter()
        .map(|w| w.trim().to_lowercase())
        .any(|w| !w.is_empty() && lower.contains(&w));
    if blocked {
        Verdict::ModerationBlocked
    } else {
        Verdict::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_strings_flags_and_words() {
        let mut c = EmulatorConfig::default();
        assert_eq!(judge(&c, "a fox"), Verdict::Allowed);
        assert_eq!(
            judge(&c, "a fox [fourk:org-unverified]"),
            Verdict::OrganizationNotVerified
        );
        assert_eq!(judge(&c, "[fourk:moderation] a fox"), Verdict::ModerationBlocked);
        c.moderation_block_words = vec!["Crimson".into(), " ".into()];
        assert_eq!(judge(&c, "a crimson fox"), Verdict::ModerationBlocked);
        assert_eq!(judge(&c, "a red fox"), Verdict::Allowed);
        c.fail_org_verification = true;
        assert_eq!(judge(&c, "a red fox"), Verdict::OrganizationNotVerified);
    }

    #[test]
    fn key_backgrounds_are_read_from_the_prompt() {
        assert_eq!(
            key_background("a fox. On a flat Chroma-Key background of solid #00FF00 (green)."),
            Some([0, 255, 0])
        );
        assert_eq!(
            key_background("a fox on a chroma key background #ff00Ff"),
            Some([255, 0, 255])
        );
        assert_eq!(key_background("a #00FF00 fox on a plain background"), None);
        assert_eq!(key_background("chroma-key background #00FF0"), None);
        assert_eq!(key_background("chroma-key background #00FF00A"), None);
        assert_eq!(key_background("chroma-key background, no colour"), None);
    }
}
