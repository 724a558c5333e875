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
