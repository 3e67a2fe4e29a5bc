//! Reports: one [`Reporter`] trait fed by run events, implemented by the console, JUnit,
//! JSON and HTML reporters; `compare` renders several JSON reports side by side.

pub mod compare;
pub mod console;
pub mod document;
pub mod html;
pub mod json;
pub mod junit;
pub mod source;

use crate::run::RunEvent;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// JUnit serialisation failed.
    #[error("cannot write the JUnit report: {0}")]
    Junit(String),
    /// A report given as input is not a JSON report.
    #[error("{path} is not a JSON report of mqtt-conformance: {message}")]
    Input {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// JSON serialisation failed.
    #[error("cannot write the JSON report: {0}")]
    Json(#[from] serde_json::Error),
}

/// Something that consumes run events.
pub trait Reporter {
    /// Handle one event.
    fn report(&mut self, event: &RunEvent) -> Result<(), ReportError>;
}

/// Several reporters as one; the first error is kept and the others still get every event.
#[derive(Default)]
pub struct Reporters {
    list: Vec<Box<dyn Reporter>>,
    error: Option<ReportError>,
}

impl Reporters {
    /// Add a reporter.
    pub fn push(&mut self, r: Box<dyn Reporter>) {
        self.list.push(r);
    }

    /// Feed an event to every reporter.
    pub fn event(&mut self, event: &RunEvent) {
        for r in &mut self.list {
            if let Err(e) = r.report(event) {
                self.error.get_or_insert(e);
            }
        }
    }

    /// The first error any reporter hit.
    pub fn finish(self) -> Result<(), ReportError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
