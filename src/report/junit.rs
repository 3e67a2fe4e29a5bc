//! The JUnit XML report: a testsuite per suite, a testcase per case and version
//! (`classname` = feature, `name` = `case [version]`), failures with their traces, and the
//! spec statements and scenario file in system-out.

use std::path::PathBuf;

use junit_report::{
    Duration as JDuration, OffsetDateTime, ReportBuilder, TestCase, TestCaseBuilder,
    TestSuiteBuilder,
};

use super::{ReportError, Reporter};
use crate::run::{CaseResult, Failure, RunEvent, Verdict};

/// Writes the JUnit file when the run finishes.
pub struct JunitReporter {
    path: PathBuf,
    incomplete: Option<String>,
}

impl JunitReporter {
    /// A reporter writing to `path` (parent directories are created).
    pub fn new(path: PathBuf) -> Self {
        JunitReporter {
            path,
            incomplete: None,
        }
    }

    /// [`JunitReporter::new`], after checking that `path` can be written: a bad path fails
    /// before the run, not after it.
    pub fn create(path: PathBuf) -> Result<Self, ReportError> {
        let reporter = JunitReporter::new(path);
        reporter.open()?;
        Ok(reporter)
    }

    /// The report file, created with its parent directories.
    fn open(&self) -> Result<std::fs::File, ReportError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
                path: dir.into(),
                source,
            })?;
        }
        std::fs::File::create(&self.path).map_err(|source| ReportError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

fn jduration(d: std::time::Duration) -> JDuration {
    JDuration::try_from(d).unwrap_or(JDuration::ZERO)
}

fn timestamp(t: std::time::SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(t)
}

/// The failure text: headline, expected vs received, every client's trace.
pub fn failure_text(f: &Failure) -> String {
    let mut out = String::new();
    out.push_str(&f.headline());
    out.push('\n');
    if let Some(e) = &f.expected {
        out.push_str(&format!("expected: {e}\n"));
    }
    if let Some(r) = &f.received {
        out.push_str(&format!("received: {r}\n"));
    }
    if let Some(why) = &f.not_excused {
        out.push_str(&format!("not excused: {why}\n"));
    }
    for t in &f.traces {
        out.push_str(&format!("--- trace of client {} ---\n", t.client));
        for line in &t.lines {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn testcase(r: &CaseResult) -> TestCase {
    let name = r.display_name();
    let time = jduration(r.duration);
    let mut builder = match &r.verdict {
        // A warning passes (nothing MUST broke); system-out says WARNING and the statement.
        Verdict::Pass | Verdict::Warning => TestCaseBuilder::success(&name, time),
        // junit-4.xsd allows no attributes on <skipped>: the reason goes to system-out.
        Verdict::Skipped { .. } | Verdict::Deviation { .. } => TestCaseBuilder::skipped(&name),
        Verdict::Fail { failure } => {
            TestCaseBuilder::failure(&name, time, "fail", &failure.headline())
        }
        Verdict::Timeout { failure } => {
            TestCaseBuilder::failure(&name, time, "timeout", &failure.headline())
        }
        Verdict::Error { failure } => {
            TestCaseBuilder::error(&name, time, "harness", &failure.headline())
        }
        Verdict::Flaky {
            passed,
            failed,
            failure,
        } => TestCaseBuilder::failure(
            &name,
            time,
            "flaky",
            &format!(
                "flaky: {passed} passed, {failed} failed; {}",
                failure.headline()
            ),
        ),
    };
    if let (Some(f), false) = (
        r.verdict.failure(),
        matches!(r.verdict, Verdict::Deviation { .. }),
    ) {
        // The failure element carries expected vs received and the traces.
        builder.set_trace(&failure_text(f));
    }
    let mut tc = builder.build();
    tc.set_classname(&r.feature);
    tc.set_filepath(&r.file.display().to_string());
    let mut out = format!(
        "scenario: {}\nspec: {}\nversion: {}\nverdict: {}\nattempts: {}\n",
        r.file.display(),
        r.statements.join(", "),
        r.version,
        r.verdict.label(),
        r.attempts
    );
    match &r.verdict {
        Verdict::Skipped { reason } => out.push_str(&format!("skipped: {reason}\n")),
        Verdict::Deviation { deviation, .. } => out.push_str(&format!(
            "documented deviation ({}): {}\n",
            deviation.statement, deviation.reason
        )),
        _ => {}
    }
    for w in &r.warnings {
        out.push_str(&format!(
            "WARNING {} (SHOULD level, {}): {}\n",
            w.statement.as_deref().unwrap_or("-"),
            w.kind,
            w.headline()
        ));
        if let Some(text) = w
            .statement
            .as_deref()
            .and_then(|id| crate::coverage::statement(r.version, id))
        {
            out.push_str(&format!("  statement: {}\n", text.text));
        }
        if let Some(e) = &w.expected {
            out.push_str(&format!("  recommended: {e}\n"));
        }
        if let Some(got) = &w.received {
            out.push_str(&format!("  received: {got}\n"));
        }
    }
    if let Some(d) = &r.stale_deviation {
        out.push_str(&format!(
            "stale deviation ({}, {} at {}): the case passes now; {}\n",
            d.statement, d.kind, d.step, d.reason
        ));
    }
    for note in &r.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    if let Some(f) = r.verdict.failure() {
        out.push('\n');
        out.push_str(&failure_text(f));
    }
    tc.set_system_out(&out);
    tc
}

impl Reporter for JunitReporter {
    fn report(&mut self, event: &RunEvent) -> Result<(), ReportError> {
        let results = match event {
            RunEvent::Incomplete { reason } => {
                self.incomplete = Some(reason.clone());
                return Ok(());
            }
            RunEvent::Finished { results, .. } => results,
            _ => return Ok(()),
        };
        let mut suites: Vec<(String, Vec<&CaseResult>)> = Vec::new();
        for r in results {
            match suites.iter_mut().find(|(n, _)| *n == r.suite) {
                Some((_, list)) => list.push(r),
                None => suites.push((r.suite.clone(), vec![r])),
            }
        }
        let mut report = ReportBuilder::new();
        for (name, list) in suites {
            let mut suite = TestSuiteBuilder::new(&name);
            if let Some(first) = list.iter().map(|r| r.started).min() {
                suite.set_timestamp(timestamp(first));
            }
            suite.add_testcases(list.iter().map(|r| testcase(r)));
            if let Some(reason) = &self.incomplete {
                suite.set_system_err(&format!("incomplete run: {reason}\n"));
            }
            report.add_testsuite(suite.build());
        }
        if let (Some(reason), true) = (&self.incomplete, results.is_empty()) {
            // No case finished: one empty suite still says why the report is empty.
            report.add_testsuite(
                TestSuiteBuilder::new("incomplete")
                    .set_system_err(&format!("incomplete run: {reason}\n"))
                    .build(),
            );
        }
        let file = self.open()?;
        report
            .build()
            .write_xml(std::io::BufWriter::new(file))
            .map_err(|e| ReportError::Junit(e.to_string()))
    }
}
