//! The capability table in use: the built-in one, plus a user file.

use std::path::Path;

use anyhow::Context;
use fourk_api::Capabilities;

/// The variable that names a user models file.
pub const MODELS_ENV: &str = "FOURK_MODELS";

/// Built-in table merged with `file` (or `$FOURK_MODELS`), user entries winning.
///
/// # Errors
/// When the user file cannot be read or parsed.
pub fn load(file: Option<&Path>) -> anyhow::Result<Capabilities> {
    let builtin = Capabilities::builtin();
    let from_env = std::env::var_os(MODELS_ENV).filter(|v| !v.is_empty());
    let path = file.map(Path::to_path_buf).or_else(|| from_env.map(Into::into));
    let Some(path) = path else {
        return Ok(builtin);
    };
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading models file {} (from --models-file or {MODELS_ENV})",
            path.display()
        )
    })?;
    let user =
        Capabilities::from_toml(&text).with_context(|| format!("parsing models file {}", path.display()))?;
    Ok(builtin.merged_with(user))
}

/// How old a check may be before `fourk models --check` flags the entry.
pub const STALE_AFTER_DAYS: i64 = 90;

/// An entry whose facts were checked too long ago (or never).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stale {
    /// The model id.
    pub id: String,
    /// When it was checked (`YYYY-MM-DD`), if it says.
    pub checked: Option<String>,
    /// Days since, when the date is readable.
    pub age_days: Option<i64>,
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian).
#[must_use]
pub fn day_number(date: &str) -> Option<i64> {
    let mut parts = date.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Today as a day number, from the system clock.
#[must_use]
pub fn today() -> i64 {
    i64::try_from(crate::outputs::since_epoch().as_secs() / 86_400).unwrap_or(0)
}

/// The entries of `caps` not checked within [`STALE_AFTER_DAYS`] of `today` (a day number),
/// or with no readable check date.
#[must_use]
pub fn stale(caps: &Capabilities, today: i64) -> Vec<Stale> {
    caps.models
        .iter()
        .filter_map(|m| {
            let age = m.checked.as_deref().and_then(day_number).map(|d| today - d);
            (age.is_none_or(|a| a > STALE_AFTER_DAYS)).then(|| Stale {
                id: m.id.clone(),
                checked: m.checked.clone(),
                age_days: age,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_in_days() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2026-12-03"), Some(20_790));
        assert_eq!(
            day_number("2024-03-01").unwrap() - day_number("2024-02-28").unwrap(),
            2
        );
        assert_eq!(day_number("2026-13-01"), None);
        assert_eq!(day_number("soon"), None);
    }

    #[test]
    fn entries_older_than_ninety_days_are_flagged_with_a_fixed_clock() {
        let caps = Capabilities::builtin();
        // The OpenAI entries were checked on 2026-12-03, Gemini's on 2026-12-04.
        let checked = day_number("2026-12-03").unwrap();
        assert!(
            stale(&caps, checked + 1).is_empty(),
            "the built-in table is fresh"
        );
        assert!(stale(&caps, checked + STALE_AFTER_DAYS).is_empty());
        let late = stale(&caps, checked + STALE_AFTER_DAYS + 2);
        assert_eq!(late.len(), caps.models.len());
        assert_eq!(late[0].age_days, Some(STALE_AFTER_DAYS + 2));
        let legacy =
            Capabilities::from_toml("[[model]]\nid = \"x\"\nstatus = \"retired\"\nretired = \"gone\"\n")
                .unwrap();
        assert_eq!(stale(&legacy, checked)[0].checked, None, "no date is flagged too");
    }
}
