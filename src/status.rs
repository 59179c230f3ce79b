//! The states of a step and of a run, as the scheduler decides them and the journal records them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Succeeded,
    Failed,
    FailedIgnored,
    Skipped,
    Blocked,
    Interrupted,
    Pending,
    Running,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::FailedIgnored => "failed-ignored",
            Status::Skipped => "skipped",
            Status::Blocked => "blocked",
            Status::Interrupted => "interrupted",
            Status::Pending => "pending",
            Status::Running => "running",
        }
    }
    /// Counts as done for the step's dependents.
    pub fn releases_dependents(self) -> bool {
        matches!(self, Status::Succeeded | Status::Skipped | Status::FailedIgnored)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}
