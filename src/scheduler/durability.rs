//! The journal's group commit: steps that end together share one sync.

use std::sync::{Arc, Mutex};

use crate::journal::Journal;
use crate::process;
use crate::reporter::Reporter;

/// The journal's group commit: a second handle that syncs while appends go on
/// through the first, and the offset known to be on disk. A sync covers
/// everything written before it began. Whoever needs an offset durable either
/// finds it already is, waits for the sync under way and looks again, or
/// leads the next sync, which then serves everyone who wrote before it: so
/// steps that end together share one sync instead of queueing one each.
pub(super) struct Durability {
    pub(super) journal: Arc<Mutex<Journal>>,
    file: Option<Arc<std::fs::File>>,
    pub(super) state: Mutex<SyncState>,
    done: std::sync::Condvar,
    reporter: Arc<dyn Reporter>,
}

#[derive(Default)]
pub(super) struct SyncState {
    pub(super) synced: u64,
    pub(super) in_flight: bool,
    /// Syncs made, for the trace at the end of a run.
    pub(super) syncs: u64,
}

impl Durability {
    /// Takes over the journal; its second handle is opened here.
    pub(super) fn new(journal: Journal, reporter: Arc<dyn Reporter>) -> Arc<Durability> {
        let file = journal.sync_handle().ok().map(Arc::new);
        Arc::new(Durability {
            journal: Arc::new(Mutex::new(journal)),
            file,
            state: Mutex::new(SyncState::default()),
            done: std::sync::Condvar::new(),
            reporter,
        })
    }

    /// Returns once everything up to `through` is on disk (or a sync failed,
    /// which is reported). Blocks: call it on a blocking thread, or inline
    /// when nothing else needs this one.
    pub(super) fn make_durable(&self, through: u64) {
        let Ok(mut st) = self.state.lock() else { return self.reporter.note("error: journal sync state poisoned") };
        loop {
            if st.synced >= through {
                return;
            }
            if st.in_flight {
                st = match self.done.wait(st) {
                    Ok(st) => st,
                    Err(_) => return,
                };
                continue;
            }
            st.in_flight = true;
            drop(st);
            let upto = self.journal.lock().map(|j| j.written()).unwrap_or(0);
            let result = match &self.file {
                Some(f) => f.sync_data(),
                None => self
                    .journal
                    .lock()
                    .map_err(|_| std::io::Error::other("journal lock poisoned"))
                    .and_then(|mut j| j.sync()),
            };
            if result.is_ok()
                && let Ok(mut j) = self.journal.lock()
            {
                j.mark_synced_through(upto);
            }
            st = match self.state.lock() {
                Ok(st) => st,
                Err(_) => return,
            };
            st.in_flight = false;
            st.syncs += 1;
            self.done.notify_all();
            match result {
                // Our sync began after our write: it covered it.
                Ok(()) => {
                    st.synced = st.synced.max(upto);
                    return;
                }
                Err(err) => {
                    drop(st);
                    return self.reporter.note(&format!("error: cannot write the journal: {err}"));
                }
            }
        }
    }

    /// For spawning a step: makes `through` durable first.
    pub(super) fn barrier(self: &Arc<Self>) -> process::Barrier {
        let d = self.clone();
        Arc::new(move |through| d.make_durable(through))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Event;

    /// Many threads that each append and then need their event durable: every
    /// one returns only once the sync watermark covers it, none hangs, and
    /// the syncs made are at most one per caller.
    #[test]
    fn group_commit_covers_every_caller() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::create(dir.path(), "r1").expect("journal");
        let d = Durability::new(journal, Arc::new(crate::reporter::Json::new()));
        let journal = d.journal.clone();
        let callers = 16;
        std::thread::scope(|s| {
            for k in 0..callers {
                let (d, journal) = (d.clone(), journal.clone());
                s.spawn(move || {
                    for round in 0..5 {
                        let through = {
                            let mut j = journal.lock().expect("journal");
                            let e = Event::RunResumed { time: format!("{k}-{round}"), pid: k, pid_start: None };
                            j.append_unsynced(&e).expect("append");
                            j.written()
                        };
                        d.make_durable(through);
                        assert!(d.state.lock().expect("state").synced >= through);
                    }
                });
            }
        });
        let st = d.state.lock().expect("state");
        let written = journal.lock().expect("journal").written();
        assert_eq!(st.synced, written);
        assert!(!st.in_flight);
        assert!((1..=callers as u64 * 5).contains(&st.syncs), "{} syncs", st.syncs);
        assert!(!journal.lock().expect("journal").is_dirty());
    }
}
