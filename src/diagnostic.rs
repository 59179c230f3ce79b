//! Diagnostics: what lint reports, and how every invalid plan is shown.

use std::fmt::Write as _;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
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
        Diagnostic {
            severity,
            code,
            message: message.into(),
            file: file.name.clone(),
            line: pos.line,
            column: pos.column,
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

#[derive(Debug)]
struct Rendered<'a> {
    diag: &'a Diagnostic,
    source: Option<NamedSource<Arc<str>>>,
}

impl std::fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.diag.message)
    }
}
impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        Some(Box::new(self.diag.code))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.diag.help.as_ref().map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let span = SourceSpan::new(self.diag.offset.into(), self.diag.len.max(1));
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(None, span))))
    }
}

/// Renders diagnostics the way rustc does: `code`, message, `file:line:col`,
/// the source line and a caret, then the help. No colours, so output is
/// stable in tests and logs.
/// At most [`SHOWN_PER_FILE`] per file: nobody reads the ten-thousandth
/// error of a file, and each costs a snippet of its line (`--format json` has them all).
pub fn render_human(diags: &[Diagnostic], sources: &[Arc<SourceFile>]) -> String {
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100);
    let mut out = String::new();
    let mut shown: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for d in diags {
        let n = shown.entry(d.file.as_str()).or_default();
        *n += 1;
        if *n > SHOWN_PER_FILE {
            continue;
        }
        let source = sources
            .iter()
            .find(|s| s.name == d.file && d.line > 0 && d.offset <= s.text.len())
            .map(|s| NamedSource::new(s.name.clone(), s.text.clone()));
        let has_source = source.is_some();
        let r = Rendered { diag: d, source };
        if !has_source {
            let _ = writeln!(out, "{}:{}:{}: {}[{}]: {}", d.file, d.line, d.column, sev(d), d.code, d.message);
            if let Some(h) = &d.help {
                let _ = writeln!(out, "  help: {h}");
            }
            continue;
        }
        let _ = handler.render_report(&mut out, &r);
    }
    let mut over: Vec<(&&str, &usize)> = shown.iter().filter(|(_, n)| **n > SHOWN_PER_FILE).collect();
    over.sort();
    for (file, n) in over {
        let _ =
            writeln!(out, "{file}: {} more diagnostics not shown (--format json lists them all)", n - SHOWN_PER_FILE);
    }
    out
}

/// How many diagnostics of one file the human output shows.
pub const SHOWN_PER_FILE: usize = 50;

fn sev(d: &Diagnostic) -> &'static str {
    match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}
