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

    /// The error as one JSON object, for a command run with `--format json`.
    pub fn json(&self) -> serde_json::Value {
        let mut v = match self {
            Error::Plan(Failure::Invalid(i)) => serde_json::json!({
                "error": self.to_string(),
                "diagnostics": i.diagnostics,
            }),
            Error::Plan(Failure::Bind(b)) => serde_json::json!({"error": self.to_string(), "help": b.help()}),
            Error::Plan(Failure::Resolve(crate::resolve::ResolveError::Invalid(_, d))) => {
                serde_json::json!({"error": "plan is invalid; nothing was run", "diagnostics": [d]})
            }
            Error::Plan(f @ Failure::Render { .. }) => serde_json::json!({"error": f.to_string()}),
            Error::LintPath(e) => serde_json::json!({"error": e.to_string(), "help": e.help()}),
            Error::Usage { message, help } => serde_json::json!({"error": message, "help": help}),
            Error::Plan(f) => serde_json::json!({"error": f.to_string()}),
        };
        v["exit_code"] = self.exit_code().into();
        v
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
