//! Run ids: sortable by start time, unique by a random suffix.

use std::fs::File;

use super::now;

/// A new run id: sortable by start time, unique by a random suffix.
pub fn new_run_id() -> String {
    let t = now();
    let compact: String = t[..19].chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    let mut seed = [0u8; 2];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut seed);
    }
    format!("{compact}Z-{:04x}", u16::from_le_bytes(seed) ^ (std::process::id() as u16))
}
