//! Output names from untrusted job files: whatever a job says, the file lands directly in
//! the output folder under a portable name.

/// Longest name kept, in characters (before the extension and any `-N` suffix), well under
/// the 255-byte limit of common file systems.
pub const MAX_NAME_CHARS: usize = 100;

/// Names Windows reserves whatever the extension (`NUL.png` is the NUL device there).
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
    "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A file stem that cannot leave the output folder and is valid on Linux, macOS and
/// Windows: path separators, NUL, control and punctuation characters become `_`; leading
/// and trailing dots and spaces go (no `..`, no hidden files, no Windows trailing dot);
/// reserved device names get a `_` prefix; long names are cut. `None` when nothing is left.
#[must_use]
pub fn sanitize(raw: &str) -> Option<String> {
    let mapped: String = raw
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ' | '+' | '@' | '=' | ',') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| c == '.' || c == ' ' || c == '_');
    // Runs of dots could still read as `..` to a careless consumer; one dot is enough.
    let mut out = String::with_capacity(trimmed.len());
    for c in trimmed.chars() {
        if c == '.' && out.ends_with('.') {
            continue;
        }
        out.push(c);
    }
    let out: String = out.chars().take(MAX_NAME_CHARS).collect();
    // The cut can end the name in what the trim above takes off; take it off again, so that a
    // sanitised name is its own sanitised form.
    let out = out.trim_end_matches(['.', ' ', '_']).to_owned();
    if out.is_empty() {
        return None;
    }
    let stem = out.split('.').next().unwrap_or("");
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem.trim())) {
        return Some(format!("_{out}"));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_escapes_the_folder() {
        for (raw, want) in [
            ("../../etc/passwd", Some("etc_passwd")),
            ("/abs/path/x", Some("abs_path_x")),
            ("C:\\Windows\\system32", Some("C__Windows_system32")),
            ("a\0b", Some("a_b")),
            ("..", None),
            (".", None),
            ("", None),
            ("   ", None),
            (".hidden", Some("hidden")),
            ("trailing. ", Some("trailing")),
            ("a..b", Some("a.b")),
            ("NUL", Some("_NUL")),
            ("con.txt", Some("_con.txt")),
            ("Com1", Some("_Com1")),
            ("console", Some("console")),
            ("hero shot-1", Some("hero shot-1")),
            ("café/🙂", Some("café")),
            ("tab\tnew\nline", Some("tab_new_line")),
        ] {
            assert_eq!(sanitize(raw).as_deref(), want, "{raw:?}");
        }
    }

    #[test]
    fn results_are_plain_file_names() {
        for raw in [
            "../x",
            "/x",
            "a/../../b",
            "\\\\server\\share",
            "x\0/..",
            "....//....",
        ] {
            if let Some(s) = sanitize(raw) {
                let p = std::path::Path::new(&s);
                assert_eq!(p.components().count(), 1, "{raw:?} -> {s:?}");
                assert!(
                    matches!(p.components().next(), Some(std::path::Component::Normal(_))),
                    "{s}"
                );
                assert!(!s.contains(['/', '\\', '\0']));
            }
        }
        assert_eq!(
            sanitize(&"x".repeat(500)).unwrap().chars().count(),
            MAX_NAME_CHARS
        );
    }

    /// Found by the `jobs` fuzz target: a name cut at the length limit ended in `_`, which
    /// sanitising again took off.
    #[test]
    fn a_sanitised_name_is_its_own_sanitised_form() {
        for raw in [
            format!("a{}b", "/".repeat(120)),
            format!("x-{}", "\0".repeat(140)),
            format!("{}z", ". ".repeat(80)),
        ] {
            let once = sanitize(&raw).unwrap();
            assert_eq!(sanitize(&once).as_deref(), Some(once.as_str()), "{raw:?}");
            assert!(!once.ends_with(['_', '.', ' ']), "{once:?}");
        }
    }
}
