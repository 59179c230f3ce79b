//! The texts masked on every output path. They start as the secret values
//! of vars and facts, and grow while a run goes on: the capture of a step
//! that reads a secret is secret too (taint).

use std::sync::{Arc, RwLock};

use crate::bind::MIN_SECRET_CHARS;

pub struct Secrets {
    masks: RwLock<Arc<Vec<String>>>,
}

impl Secrets {
    pub fn new(masks: Vec<String>) -> Secrets {
        Secrets { masks: RwLock::new(Arc::new(masks)) }
    }

    /// The masks as they are now.
    pub fn get(&self) -> Arc<Vec<String>> {
        self.masks.read().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn mask(&self, text: &str) -> String {
        crate::render::mask(text, &self.get())
    }

    /// Adds every line of a value (and its quoted forms) to the masks.
    pub fn add(&self, value: &str) {
        let Ok(mut masks) = self.masks.write() else { return };
        let mut all: Vec<String> = masks.iter().cloned().collect();
        all.extend(masks_of(value.lines()));
        *masks = Arc::new(sorted(all));
    }
}

/// The masks for secret lines: each line, trimmed, of at least
/// [`MIN_SECRET_CHARS`] characters, and the forms it takes when shown:
/// shell-quoted (`show` prints commands quoted) and JSON-escaped. Longest
/// first, so a secret containing another is masked whole.
pub fn masks_of<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let all = lines
        .map(str::trim)
        .filter(|l| l.chars().count() >= MIN_SECRET_CHARS)
        .flat_map(|l| {
            let quoted = crate::template::shell_quote(l);
            let escaped = serde_json::to_string(l).unwrap_or_default();
            [l.to_owned(), quoted, escaped.trim_matches('"').to_owned()]
        })
        .collect();
    sorted(all)
}

fn sorted(mut all: Vec<String>) -> Vec<String> {
    all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    all.dedup();
    all
}
