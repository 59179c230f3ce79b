//! Diagnostics: what lint reports, and how every invalid plan is shown.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use crate::code::Code;
use crate::model::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A plan file's text, with its name as shown to the user.
#[derive(Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: Arc<str>,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: String, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile { name, text, line_starts }
    }

    /// The 1-based line and (character) column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count());
        (line as u32 + 1, col as u32 + 1)
    }

    /// A position for a byte range of this file.
    pub fn pos(&self, offset: usize, len: usize) -> Pos {
        let (line, column) = self.line_col(offset);
        Pos { line, column, offset: offset as u32, len: len as u32 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// Where the offending text ends (the position after its last character).
    pub end_line: u32,
    pub end_column: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(skip)]
    pub offset: usize,
    #[serde(skip)]
    pub len: usize,
}

impl Diagnostic {
    pub fn error(code: Code, file: &SourceFile, pos: Pos, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, file, pos, message)
    }

    pub fn warning(code: Code, file: &SourceFile, pos: Pos, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, file, pos, message)
    }

    fn new(severity: Severity, code: Code, file: &SourceFile, pos: Pos, message: impl Into<String>) -> Self {
        let end = if pos.line == 0 || file.text.is_empty() {
            (pos.line, pos.column)
        } else {
            file.line_col(pos.offset as usize + pos.len as usize)
        };
        Diagnostic {
            severity,
            code,
            message: message.into(),
            file: file.name.clone(),
            line: pos.line,
            column: pos.column,
            end_line: end.0,
            end_column: end.1,
            help: None,
            offset: pos.offset as usize,
            len: pos.len as usize,
        }
    }

    /// A diagnostic about a whole file or a value that has no position.
    pub fn file_level(severity: Severity, code: Code, file: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            code,
            message: message.into(),
            file: file.to_owned(),
            line: 1,
            column: 1,
            end_line: 1,
            end_column: 1,
            help: None,
            offset: 0,
            len: 0,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// "did you mean `x`?" for the closest candidate by edit distance.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= (word.len().max(c.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// Renders diagnostics the way rustc does: a first line editors' problem
/// matchers read, `FILE:LINE:COL: error[CODE]: MESSAGE`, then the source
/// lines around it with the offending text underlined, then the help. Box
/// drawing where the locale can show it, ASCII elsewhere; no colours, so
/// output is stable in tests and logs. At most [`SHOWN_PER_FILE`] per file:
/// nobody reads the ten-thousandth error of a file (`--format json` has them all).
pub fn render_human(diags: &[Diagnostic], sources: &[Arc<SourceFile>]) -> String {
    let glyphs = if unicode_locale() { &UNICODE } else { &ASCII };
    let mut out = String::new();
    let mut shown: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for d in diags {
        let n = shown.entry(d.file.as_str()).or_default();
        *n += 1;
        if *n > SHOWN_PER_FILE {
            continue;
        }
        let style = if d.is_error() { "1;31" } else { "1;33" };
        let kind = crate::output::paint(&format!("{}[{}]", sev(d), d.code), style);
        let _ = writeln!(out, "{}:{}:{}: {kind}: {}", d.file, d.line, d.column, d.message);
        if let Some(src) = sources.iter().find(|s| s.name == d.file && d.line > 0 && d.offset <= s.text.len()) {
            snippet(&mut out, src, d, glyphs);
        }
        if let Some(h) = &d.help {
            let _ = writeln!(out, "  help: {h}");
        }
    }
    let mut over: Vec<(&&str, &usize)> = shown.iter().filter(|(_, n)| **n > SHOWN_PER_FILE).collect();
    over.sort();
    for (file, n) in over {
        let _ =
            writeln!(out, "{file}: {} more diagnostics not shown (--format json lists them all)", n - SHOWN_PER_FILE);
    }
    out
}

struct Glyphs {
    top: &'static str,
    bar: &'static str,
    mark_bar: &'static str,
    mark: char,
    bottom: &'static str,
}

const UNICODE: Glyphs = Glyphs { top: "╭─", bar: "│", mark_bar: "·", mark: '─', bottom: "╰────" };
const ASCII: Glyphs = Glyphs { top: ",-", bar: "|", mark_bar: ":", mark: '^', bottom: "`----" };

/// Box drawing only where the locale is UTF-8 and the terminal is not `dumb`.
fn unicode_locale() -> bool {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let locale = var("LC_ALL").or_else(|| var("LC_CTYPE")).or_else(|| var("LANG")).unwrap_or_default().to_lowercase();
    (locale.contains("utf-8") || locale.contains("utf8")) && var("TERM").as_deref() != Some("dumb")
}

/// The line before, the line, and the line after, with the span underlined
/// (to the end of its first line). Lines are cut at 200 characters around
/// the mark, so a 100 KB line costs what a short one does.
fn snippet(out: &mut String, src: &SourceFile, d: &Diagnostic, g: &Glyphs) {
    const WIDTH: usize = 200;
    let line_no = d.line as usize;
    let text_of = |n: usize| src.text.lines().nth(n.wrapping_sub(1)).filter(|_| n > 0);
    let Some(line) = text_of(line_no) else { return };
    let gutter = (line_no + 1).to_string().len();
    let col = d.column.max(1) as usize - 1;
    let skip = col.saturating_sub(WIDTH / 2);
    let cut = |l: &str| l.chars().skip(skip).take(WIDTH).collect::<String>();
    let _ = writeln!(out, "{:gutter$} {}[{}:{}:{}]", "", g.top, d.file, d.line, d.column);
    if let Some(before) = text_of(line_no - 1) {
        let _ = writeln!(out, "{:>gutter$} {} {}", line_no - 1, g.bar, cut(before));
    }
    let _ = writeln!(out, "{line_no:>gutter$} {} {}", g.bar, cut(line));
    let span_chars =
        src.text.get(d.offset..d.offset + d.len).map_or(1, |t| t.split('\n').next().unwrap_or("").chars().count());
    let width = span_chars.clamp(1, (line.chars().count() + 1).saturating_sub(col).max(1));
    let marks: String = std::iter::repeat_n(g.mark, width.min(WIDTH)).collect();
    let _ = writeln!(out, "{:gutter$} {} {}{marks}", "", g.mark_bar, " ".repeat(col - skip));
    if let Some(after) = text_of(line_no + 1) {
        let _ = writeln!(out, "{:>gutter$} {} {}", line_no + 1, g.bar, cut(after));
    }
    let _ = writeln!(out, "{:gutter$} {}", "", g.bottom);
}

/// How many diagnostics of one file the human output shows.
pub const SHOWN_PER_FILE: usize = 50;

fn sev(d: &Diagnostic) -> &'static str {
    match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}
