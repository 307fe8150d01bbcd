//! Diagnostics: user errors and warnings that point at a place in a source file, carry a
//! hint, and render either for people (miette, with a source snippet) or for scripts (JSON).

use crate::source::{Sources, Span};
use serde::Serialize;
use std::fmt;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The manifest cannot be used.
    Error,
    /// The manifest is used, but something is ignored or approximated.
    Warning,
}

/// One error or warning about the user's input.
#[derive(Debug, Clone, PartialEq)]
pub struct Diag {
    /// Error or warning.
    pub severity: Severity,
    /// A stable, greppable code such as `unknown-key`.
    pub code: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where it is wrong, when known.
    pub span: Option<Span>,
    /// A short text printed under the caret.
    pub label: Option<String>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diag {
    /// A new error.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diag {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            label: None,
            help: None,
        }
    }
    /// A new warning.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Diag {
            severity: Severity::Warning,
            ..Diag::error(code, message)
        }
    }
    /// Points the diagnostic at a span.
    pub fn at(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }
    /// Points the diagnostic at a span when one is known.
    pub fn at_opt(mut self, span: Option<Span>) -> Self {
        self.span = span.or(self.span);
        self
    }
    /// Sets the text under the caret.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
    /// Sets the hint.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The JSON shape of a diagnostic (`--format json`), documented in docs/manifest.md.
#[derive(Debug, Serialize)]
pub struct DiagJson {
    /// `error` or `warning`.
    pub severity: Severity,
    /// Stable code.
    pub code: &'static str,
    /// Message.
    pub message: String,
    /// File path, when the diagnostic has a location.
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// Hint.
    pub help: Option<String>,
}

impl Diag {
    /// The machine-readable form.
    pub fn to_json(&self, sources: &Sources) -> DiagJson {
        let (file, line, column) = match self.span {
            Some(s) => {
                let f = sources.get(s.file);
                let (l, c) = f.line_col(s.start);
                (Some(f.path.display().to_string()), Some(l), Some(c))
            }
            None => (None, None, None),
        };
        DiagJson {
            severity: self.severity,
            code: self.code,
            message: self.message.clone(),
            file,
            line,
            column,
            help: self.help.clone(),
        }
    }

    /// The human-readable form: `× message [code]` (`⚠` for warnings), the `file:line:col`
    /// frame with a snippet and an underline, and the hint.
    pub fn render(&self, sources: &Sources, color: bool) -> String {
        use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_context_lines(1)
            .with_width(100);
        let mut report = MietteDiag {
            diag: self,
            src: None,
            labels: vec![],
        };
        if let Some(span) = self.span {
            let file = sources.get(span.file);
            report.src = Some(NamedSource::new(
                file.path.display().to_string(),
                file.text.clone(),
            ));
            let len = (span.end - span.start)
                .max(1)
                .min(file.text.len().saturating_sub(span.start).max(1));
            report
                .labels
                .push(LabeledSpan::new(self.label.clone(), span.start, len));
        }
        let mut out = String::new();
        let _ = handler.render_report(&mut out, &report);
        out
    }
}

struct MietteDiag<'a> {
    diag: &'a Diag,
    src: Option<miette::NamedSource<std::sync::Arc<str>>>,
    labels: Vec<miette::LabeledSpan>,
}

impl fmt::Debug for MietteDiag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diag, f)
    }
}
impl fmt::Display for MietteDiag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The code goes on the message line (miette would give it a line of its own).
        write!(f, "{} [{}]", self.diag.message, self.diag.code)
    }
}
impl std::error::Error for MietteDiag<'_> {}
impl miette::Diagnostic for MietteDiag<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.src.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}

/// The closest candidate to `word` when it is close enough to be a likely typo.
pub fn did_you_mean<'a, I: IntoIterator<Item = &'a str>>(
    word: &str,
    candidates: I,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let cl = c.to_ascii_lowercase();
            let score = if cl == lower {
                1.0
            } else {
                strsim::jaro_winkler(&lower, &cl)
            };
            let dist = strsim::osa_distance(&lower, &cl);
            (c, score, dist)
        })
        .filter(|&(c, score, dist)| score >= 0.85 || dist <= (c.len().max(word.len()) / 3).max(1))
        .max_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal))
        .map(|(c, _, _)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["handler", "runtime", "memory", "timeout", "environment"];
        assert_eq!(did_you_mean("handlr", keys), Some("handler"));
        assert_eq!(did_you_mean("memroy", keys), Some("memory"));
        assert_eq!(did_you_mean("Runtime", keys), Some("runtime"));
        assert_eq!(did_you_mean("zzzzzz", keys), None);
    }
}
