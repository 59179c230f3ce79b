//! One run of a plan per state dir at a time.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// The per-plan lock: an OS file lock, so a crashed holder never blocks the next run.
pub struct Lock {
    _lock: Flock<File>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("plan `{plan}` is already running in this state dir (run {holder})")]
    Held { plan: String, holder: String },
    #[error("cannot lock {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl Lock {
    pub fn acquire(state: &Path, plan: &str, run_id: &str) -> Result<Lock, LockError> {
        let dir = state.join("locks");
        let path = dir.join(format!("{plan}.lock"));
        let io = |source| LockError::Io { path: path.clone(), source };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path).map_err(io)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                let mut f: &File = &lock;
                let _ = f.set_len(0);
                let _ = f.write_all(format!("{run_id} pid {}\n", std::process::id()).as_bytes());
                Ok(Lock { _lock: lock })
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default().trim().to_owned();
                Err(LockError::Held {
                    plan: plan.to_owned(),
                    holder: if holder.is_empty() { "unknown".into() } else { holder },
                })
            }
            Err((_, e)) => Err(io(std::io::Error::from(e))),
        }
    }
}
