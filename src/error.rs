//! The one error type of the command line: every failure that stops a
//! command before it does its job. It knows its exit code and how it is
//! shown; `main` prints it, nothing else does.

use crate::lint::PathError;
use crate::prepare::Failure;

/// Bad arguments or an invalid plan: nothing ran.
pub const EXIT_INVALID: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The plan did not load, check, bind or render.
    #[error(transparent)]
    Plan(#[from] Failure),
    /// `plan lint` was given paths it cannot lint.
    #[error(transparent)]
    LintPath(#[from] PathError),
    /// Anything else the operator can fix: what is wrong, and what to do.
    #[error("{message}")]
    Usage { message: String, help: Option<String> },
}

impl Error {
    pub fn usage(message: impl Into<String>, help: Option<&str>) -> Error {
        Error::Usage { message: message.into(), help: help.map(str::to_owned) }
    }

    pub fn exit_code(&self) -> u8 {
        EXIT_INVALID
    }

    /// The whole message for stderr.
    pub fn render(&self) -> String {
        match self {
            Error::Plan(f) => f.render(),
            Error::LintPath(e) => format!("error: {e}\n  help: {}\n", e.help()),
            Error::Usage { message, help: Some(h) } => format!("error: {message}\n  help: {h}\n"),
            Error::Usage { message, help: None } => format!("error: {message}\n"),
        }
    }
}
