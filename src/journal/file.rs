//! The journal file: appended, preallocated, synced, read back.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::Event;

pub fn runs_dir(state: &Path) -> PathBuf {
    state.join("runs")
}

/// An open journal, appended to and synced.
///
/// The file is preallocated with zeros in [`PREALLOC`] chunks and written in
/// place, so a sync writes only the new data: the file's size (metadata)
/// does not change on every event, which halves the cost of each fsync. The
/// zeros are cut off when the run ends; a reader skips them after a crash.
pub struct Journal {
    file: File,
    /// Where the next event goes; everything after it is zeros.
    offset: u64,
    /// The file's preallocated length.
    capacity: u64,
    dirty: bool,
    pub dir: PathBuf,
    pub run_id: String,
}

pub const PREALLOC: u64 = 1 << 20;

/// Preallocated bytes only the run's last record may use.
const RESERVE: u64 = 4096;

impl Journal {
    pub fn create(state: &Path, run_id: &str) -> std::io::Result<Journal> {
        let dir = runs_dir(state).join(run_id);
        std::fs::create_dir_all(dir.join("logs"))?;
        let file = OpenOptions::new().create_new(true).read(true).write(true).open(dir.join("journal.jsonl"))?;
        let mut j = Journal { file, offset: 0, capacity: 0, dirty: false, dir, run_id: run_id.to_owned() };
        j.grow(0)?;
        // The new folder's entry must survive a crash too.
        sync_dir(&runs_dir(state));
        Ok(j)
    }

    pub fn reopen(state: &Path, run_id: &str) -> std::io::Result<Journal> {
        let dir = runs_dir(state).join(run_id);
        let file = OpenOptions::new().read(true).write(true).open(dir.join("journal.jsonl"))?;
        let text = std::fs::read(dir.join("journal.jsonl"))?;
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        let capacity = text.len() as u64;
        let mut j = Journal { file, offset: end as u64, capacity, dirty: false, dir, run_id: run_id.to_owned() };
        // A torn last line from a crash: end it, so the next event starts on a line of its own.
        if end > 0 && text[end - 1] != b'\n' {
            j.write_raw(b"\n")?;
        }
        Ok(j)
    }

    pub fn log_path(&self, step: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{step}.log"))
    }

    /// Appends one event and waits until it (and all before it) is on disk.
    pub fn append(&mut self, e: &Event) -> std::io::Result<()> {
        self.append_unsynced(e)?;
        self.sync()
    }

    /// Appends one event; a later sync makes it durable (the scheduler's
    /// syncer does, beside the steps: `scheduler/durability.rs`).
    pub fn append_unsynced(&mut self, e: &Event) -> std::io::Result<()> {
        self.append_all_unsynced(std::slice::from_ref(e))
    }

    /// Appends records in one write (a step's end and the starts it released).
    pub fn append_all_unsynced(&mut self, es: &[Event]) -> std::io::Result<()> {
        let mut lines = Vec::with_capacity(256 * es.len());
        for e in es {
            serde_json::to_writer(&mut lines, e).map_err(std::io::Error::other)?;
            lines.push(b'\n');
        }
        self.write_raw(&lines)
    }

    /// The run's last record, which may use the space kept for it: after a
    /// full disk stopped the run, it still says why.
    pub fn append_last(&mut self, e: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.write_at_end(&line, 0)?;
        self.sync()
    }

    fn write_raw(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.write_at_end(data, RESERVE)
    }

    /// Appends, keeping `keep` bytes of the preallocated area free.
    fn write_at_end(&mut self, data: &[u8], keep: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        if self.offset + data.len() as u64 + keep > self.capacity {
            self.grow(data.len() as u64 + keep)?;
        }
        self.file.write_all_at(data, self.offset)?;
        self.offset += data.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Extends the zeroed area by at least `need` bytes, durably (size and blocks).
    fn grow(&mut self, need: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let add = need.div_ceil(PREALLOC).max(1) * PREALLOC;
        // Page by page: one large write makes the page cache keep the area in
        // large folios, and every later append of a few hundred bytes then
        // walks all the folio's blocks (ext4_block_write_begin).
        let page = [0u8; 4096];
        let mut at = self.capacity;
        while at < self.capacity + add {
            self.file.write_all_at(&page, at)?;
            at += page.len() as u64;
        }
        self.capacity += add;
        self.file.sync_all()
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// How many bytes have been written: a sync that starts after this call
    /// makes all of them durable.
    pub fn written(&self) -> u64 {
        self.offset
    }

    /// A second handle on the journal file, to sync it while the first goes on
    /// taking appends (the syncer: one sync covers whatever came before it).
    pub fn sync_handle(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }

    /// Records that a sync through another handle covered everything written.
    pub fn mark_synced_through(&mut self, offset: u64) {
        if offset >= self.offset {
            self.dirty = false;
        }
    }

    pub fn sync(&mut self) -> std::io::Result<()> {
        if std::mem::take(&mut self.dirty) {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

impl Drop for Journal {
    /// Cuts the unused zeros off: a finished journal is plain JSON lines.
    fn drop(&mut self) {
        if self.file.set_len(self.offset).is_ok() {
            let _ = self.file.sync_all();
        }
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Reads a journal; lines that do not parse (a torn write, preallocated zeros) are skipped.
pub fn read(state: &Path, run_id: &str) -> std::io::Result<Vec<Event>> {
    let bytes = std::fs::read(runs_dir(state).join(run_id).join("journal.jsonl"))?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(bytes[..end].split(|&b| b == b'\n').filter_map(|l| serde_json::from_slice(l).ok()).collect())
}
