//! Making the journal durable beside the steps, never in front of them.
//!
//! Every record is *written* before the action it describes (so a crash or
//! kill of `plan` never loses one: the kernel has it). A syncer thread makes
//! records durable (fdatasync through a second handle on the file) while the
//! steps run: whenever records are written and not yet synced, a sync is in
//! flight, or starts within [`GATHER`] (2 ms) of the previous one. After a power loss only the records of the last
//! sync interval can be missing; the file is still a prefix of what was
//! written, and `--resume` runs those steps again. (SQLite's
//! `synchronous=NORMAL`, bounded to the steps in flight.) The run's last
//! record is synced before `plan` exits.

use std::sync::{Arc, Condvar, Mutex};

use crate::journal::Journal;
use crate::reporter::Reporter;

/// How long the syncer lets records gather after a sync that left nothing
/// behind. Measured on this project's machines (1,000 independent `true` at
/// -j2): without it 1,298 syncs and plan/ninja 1.35; with 2 ms, ~1.14.
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

pub(super) struct Durability {
    pub(super) journal: Arc<Mutex<Journal>>,
    pub(super) state: Mutex<SyncState>,
    wake: Condvar,
}

#[derive(Default)]
pub(super) struct SyncState {
    /// Bytes known to be on disk.
    pub(super) synced: u64,
    /// Bytes written so far (the syncer's target).
    pub(super) written: u64,
    /// Syncs made, for the trace at the end of a run.
    pub(super) syncs: u64,
    stop: bool,
    /// The syncer waits for records (and must be woken).
    idle: bool,
}

impl Durability {
    /// Takes over the journal and starts the syncer on a thread of its own.
    pub(super) fn start(journal: Journal, reporter: Arc<dyn Reporter>) -> (Arc<Durability>, Syncer) {
        let file = journal.sync_handle().ok();
        let written = journal.written();
        let d = Arc::new(Durability {
            journal: Arc::new(Mutex::new(journal)),
            state: Mutex::new(SyncState { synced: written, written, ..SyncState::default() }),
            wake: Condvar::new(),
        });
        let worker = d.clone();
        let thread = std::thread::Builder::new()
            .name("journal-sync".into())
            .spawn(move || worker.sync_loop(file, reporter))
            .ok();
        let syncer = Syncer { durability: d.clone(), thread };
        (d, syncer)
    }

    /// Tells the syncer that the journal now holds `written` bytes.
    pub(super) fn written(&self, written: u64) {
        let wake = match self.state.lock() {
            Ok(mut st) if written > st.written => {
                st.written = written;
                // A busy syncer looks at `written` again after its sync: only an idle one needs waking.
                st.idle
            }
            _ => false,
        };
        // Woken after the lock is released, the syncer does not wake only to wait for it.
        if wake {
            self.wake.notify_one();
        }
    }

    fn sync_loop(&self, file: Option<std::fs::File>, reporter: Arc<dyn Reporter>) {
        loop {
            let upto = {
                let Ok(mut st) = self.state.lock() else { return };
                while st.written <= st.synced && !st.stop {
                    st.idle = true;
                    st = match self.wake.wait(st) {
                        Ok(st) => st,
                        Err(_) => return,
                    };
                    st.idle = false;
                }
                if st.written <= st.synced {
                    return; // stopped, and everything is on disk
                }
                st.written
            };
            // The sync covers everything written before it began, through `upto` at least.
            let result = match &file {
                Some(f) => f.sync_data(),
                None => self
                    .journal
                    .lock()
                    .map_err(|_| std::io::Error::other("journal lock poisoned"))
                    .and_then(|mut j| j.sync()),
            };
            if let Err(err) = result {
                reporter.note(&format!("error: cannot sync the journal: {err}"));
            }
            if let Ok(mut j) = self.journal.lock() {
                j.mark_synced_through(upto);
            }
            let Ok(mut st) = self.state.lock() else { return };
            st.synced = st.synced.max(upto);
            st.syncs += 1;
            let more = st.written > st.synced;
            drop(st);
            if !more {
                // Let the next records gather: a sync right behind every
                // append makes appends wait on the page being written back.
                std::thread::sleep(GATHER);
            }
        }
    }
}

/// The syncer's handle: [`Syncer::finish`] waits until every record is on disk.
pub(super) struct Syncer {
    durability: Arc<Durability>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    /// Stops the syncer once everything written is synced, and waits for it.
    pub(super) fn finish(mut self) {
        if let Ok(mut st) = self.durability.state.lock() {
            st.stop = true;
            self.durability.wake.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Without a thread (none could be made), sync here.
        if let Ok(mut j) = self.durability.journal.lock() {
            let _ = j.sync();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Event;

    /// Many threads append and tell the syncer; when it finishes, every byte
    /// written is synced, and the syncs made are at most one per append.
    #[test]
    fn the_syncer_covers_every_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::create(dir.path(), "r1").expect("journal");
        let (d, syncer) = Durability::start(journal, Arc::new(crate::reporter::Json::new()));
        let callers = 16;
        std::thread::scope(|s| {
            for k in 0..callers {
                let d = d.clone();
                s.spawn(move || {
                    for round in 0..5 {
                        let written = {
                            let mut j = d.journal.lock().expect("journal");
                            let e = Event::RunResumed { time: format!("{k}-{round}"), pid: k, pid_start: None };
                            j.append_unsynced(&e).expect("append");
                            j.written()
                        };
                        d.written(written);
                    }
                });
            }
        });
        syncer.finish();
        let st = d.state.lock().expect("state");
        let written = d.journal.lock().expect("journal").written();
        assert_eq!(st.synced, written);
        assert!((1..=callers as u64 * 5).contains(&st.syncs), "{} syncs", st.syncs);
        assert!(!d.journal.lock().expect("journal").is_dirty());
    }
}
