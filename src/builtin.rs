//! The built-in actions that run no program: `remove` and `confirm`.

use std::io::IsTerminal;
use std::path::{Component, Path};

/// Why `remove` refused or failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RemoveError(pub String);

/// Recursive delete, refusing `/`, empty and relative paths, and any path
/// whose real location (symlinks resolved) is not strictly inside `within`.
/// A missing path is success: the goal, its absence, holds.
pub fn remove(path: &str, within: Option<&str>) -> Result<String, RemoveError> {
    if path.trim().is_empty() {
        return Err(RemoveError("refusing to remove an empty path".into()));
    }
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(RemoveError(format!("refusing to remove `{path}`: not an absolute path")));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(RemoveError(format!("refusing to remove `{path}`: it contains `..`")));
    }
    if p.symlink_metadata().is_err() {
        return Ok(format!("{path} does not exist; nothing to remove"));
    }
    let real = p.canonicalize().map_err(|e| RemoveError(format!("cannot resolve `{path}`: {e}")))?;
    if real == Path::new("/") {
        return Err(RemoveError(format!("refusing to remove `{path}`: it is `/`")));
    }
    if let Some(w) = within {
        if w.trim().is_empty() || !Path::new(w).is_absolute() {
            return Err(RemoveError(format!(
                "refusing to remove `{path}`: `within` must be an absolute path, not `{w}`"
            )));
        }
        let w_real =
            Path::new(w).canonicalize().map_err(|e| RemoveError(format!("cannot resolve `within` `{w}`: {e}")))?;
        if real == w_real || !real.starts_with(&w_real) {
            return Err(RemoveError(format!(
                "refusing to remove `{path}`: its real path {} is not inside {}",
                real.display(),
                w_real.display()
            )));
        }
    }
    let meta = real.symlink_metadata().map_err(|e| RemoveError(format!("cannot read `{}`: {e}", real.display())))?;
    // remove_dir_all does not follow symlinks inside the tree.
    let result = if meta.is_dir() { std::fs::remove_dir_all(&real) } else { std::fs::remove_file(&real) };
    result.map_err(|e| RemoveError(format!("cannot remove {}: {e}", real.display())))?;
    Ok(format!("removed {}", real.display()))
}

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// One question at a time: independent `confirm` steps become ready
/// together, and two prompts reading one terminal would take each other's
/// answers.
static PROMPT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Asks y/N on the terminal. Anything but y/yes is no.
pub fn ask(message: &str) -> bool {
    use std::io::Write;
    let _one_at_a_time = PROMPT.lock().unwrap_or_else(|p| p.into_inner());
    let mut err = std::io::stderr();
    let _ = write!(err, "{} [y/N] ", message.trim());
    let _ = err.flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
