//! The review of default drift (`review_defaults:`): what a Tutor plugin's
//! target version changes in tutor's effective configuration, computed
//! before anything changes, shown grouped so an operator can judge it, and
//! confirmed (or some old values kept) before the run goes on.
//!
//! Tutor loads its configuration in Python; `dump.py` prints it, run with
//! tutor's own interpreter: once as installed, once with the target wheel
//! (downloaded, not installed) ahead of the installed plugin on `sys.path`.
//! Everything else (the diff, the groups, the masking) is here, pure.

mod compare;
mod gather;

pub use compare::{Change, Drift, Shown, Snapshot, compare};
pub use gather::{Plain, Reviewed, Runner, Spec, gather, keep_args, python_of};

pub const DUMP_PY: &str = include_str!("dump.py");
