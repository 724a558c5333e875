//! Account and safety answers on demand: organisation verification (403) and moderation
//! blocks (400 `moderation_blocked`), triggered by magic strings in the prompt or by
//! configuration.

use crate::state::EmulatorConfig;

/// A prompt containing this gets the 403 "Your organization must be verified to use the
/// model ..." answer.
pub const MAGIC_ORG_UNVERIFIED: &str = "[fourk:org-unverified]";

/// A prompt containing this is rejected by the (emulated) safety system.
pub const MAGIC_MODERATION: &str = "[fourk:moderation]";

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
}
