//! The journal's records: one JSON object per line, tagged by `event`.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::status::{RunStatus, Status};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    RunStarted {
        run_id: String,
        plan: String,
        time: String,
        pid: u32,
        /// When `pid` started (clock ticks since boot): with the pid, it names
        /// the `plan` process even after the pid is reused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid_start: Option<u64>,
        /// Every plan file that went into the graph, with its SHA-256.
        files: Vec<FileSum>,
        /// Non-secret values of vars and facts; secrets are listed by name only.
        values: IndexMap<String, String>,
        secrets: Vec<String>,
        /// Step ids in execution order.
        steps: Vec<String>,
    },
    RunResumed {
        time: String,
        pid: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid_start: Option<u64>,
    },
    StepStarted {
        step: String,
        attempt: u32,
        time: String,
        /// SHA-256 of the step as rendered (secrets masked); `--resume` compares it.
        definition: String,
        log: String,
    },
    /// The step's process group, so a resume after a crash can stop what is left of it.
    StepSpawned {
        step: String,
        pgid: i32,
        /// The leader's start time (clock ticks since boot), where the kernel has no pidfs.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        start_time: Option<u64>,
        /// The leader's pidfs inode (Linux 6.9 and later): names it even after its pid is reused.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        pidfs: Option<u64>,
    },
    StepFinished {
        step: String,
        attempt: u32,
        time: String,
        status: Status,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        exit_code: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        signal: Option<String>,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        message: Option<String>,
        /// The captured value (masked), kept so a resumed run can give it to descendants.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        capture: Option<String>,
        /// The capture was made from a secret: journaled masked, so a resume runs the step again.
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        secret_capture: bool,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        definition: Option<String>,
        /// A failed attempt that will be retried.
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        retrying: bool,
    },
    /// A default review's decision: the drift it accepted (a digest of the
    /// report as shown, secrets masked), the behaviour keys, the keys kept.
    Reviewed { step: String, time: String, drift: String, behaviour: Vec<String>, kept: Vec<String>, decision: String },
    RunFinished {
        time: String,
        status: RunStatus,
        /// Why the run stopped, when not because of a step (the journal could not be written).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileSum {
    pub path: String,
    pub sha256: String,
}
