//! The journal: one folder per run under the state dir, an append-only
//! JSON-lines file whose records are written before what they describe (and
//! made durable beside the steps: `scheduler/durability.rs`), and one log
//! per step. Secrets never reach either: callers mask
//! every text before it gets here.
//!
//! A run killed at any instant leaves a journal whose complete lines parse;
//! a torn last line (power loss mid-write) is ignored on reading.

mod calendar;
mod event;
mod file;
mod lock;
mod run_id;
mod summary;

use std::path::{Path, PathBuf};

pub use calendar::{format_time, now};
pub use event::{Event, FileSum};
pub use file::{Journal, read, runs_dir};
pub use lock::{Lock, LockError};
pub use run_id::new_run_id;
pub use summary::{RunSummary, StepState, list_runs};

/// `--state-dir`, else `$XDG_STATE_HOME/plan`, else `~/.local/state/plan`.
pub fn state_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(d) = flag {
        return d.to_path_buf();
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("plan");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/plan")
}

/// SHA-256 in hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let d = sha2::Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in d.iter() {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    /// The FIPS 180-2 test vectors, as lowercase hex.
    #[test]
    fn sha256_hex_is_the_digest_in_lowercase_hex() {
        assert_eq!(super::sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(super::sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
