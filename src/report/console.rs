//! The console report: a progress bar while running, then the details of each failure (step,
//! expected vs received, every client's trace) and a summary table per suite.

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::json::Counts;
use super::junit::failure_text;
use super::{ReportError, Reporter};
use crate::run::{CaseResult, RunEvent, Verdict};

/// Console reporter writing the final report to `out` and the progress bar to stderr.
pub struct ConsoleReporter<W: Write> {
    out: W,
    bar: Option<ProgressBar>,
    show_progress: bool,
}

impl<W: Write> ConsoleReporter<W> {
    /// A reporter; `progress` enables the progress bar (hidden anyway when stderr is no tty).
    pub fn new(out: W, progress: bool) -> Self {
        ConsoleReporter {
            out,
            bar: None,
            show_progress: progress,
        }
    }
}

/// The failure block of one result (verdict, suite, case, file, statements, failed step,
/// expected vs received, traces), empty when it did not fail. The console report and the
/// libtest trials print the same block.
pub fn failure_block(r: &CaseResult) -> String {
    let Some(f) = r.verdict.failure() else {
        return String::new();
    };
    let mut s = format!(
        "\n{} {} / {} ({})\n  spec: {}\n",
        r.verdict.label(),
        r.suite,
        r.display_name(),
        r.file.display(),
        r.statements.join(", ")
    );
    for line in failure_text(f).lines() {
        s.push_str("  ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// The final report as text.
pub fn render(results: &[CaseResult], elapsed: std::time::Duration) -> String {
    let mut s = String::new();
    for r in results {
        if !matches!(r.verdict, Verdict::Deviation { .. }) {
            s.push_str(&failure_block(r));
        }
    }
    let skipped: Vec<&CaseResult> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Skipped { .. }))
        .collect();
    if !skipped.is_empty() {
        s.push_str("\nskipped:\n");
        for r in skipped {
            if let Verdict::Skipped { reason } = &r.verdict {
                s.push_str(&format!("  {} / {}: {reason}\n", r.suite, r.display_name()));
            }
        }
    }
    let deviations: Vec<&CaseResult> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Deviation { .. }))
        .collect();
    if !deviations.is_empty() {
        s.push_str("\nexpected deviations:\n");
        for r in deviations {
            if let Verdict::Deviation { deviation, .. } = &r.verdict {
                s.push_str(&format!(
                    "  {} / {}: {} {}\n",
                    r.suite,
                    r.display_name(),
                    deviation.statement,
                    deviation.reason
                ));
            }
        }
    }
    let mut suites: Vec<&str> = Vec::new();
    for r in results {
        if !suites.contains(&r.suite.as_str()) {
            suites.push(&r.suite);
        }
    }
    s.push_str(&format!(
        "\n{:<24} {:>7} {:>7} {:>10} {:>8}\n",
        "suite", "passed", "failed", "deviations", "skipped"
    ));
    for suite in &suites {
        let c = Counts::of(results.iter().filter(|r| r.suite == *suite));
        s.push_str(&format!(
            "{:<24} {:>7} {:>7} {:>10} {:>8}\n",
            suite, c.passed, c.failed, c.deviations, c.skipped
        ));
    }
    let c = Counts::of(results);
    s.push_str(&format!(
        "{:<24} {:>7} {:>7} {:>10} {:>8}\n{} runs in {:.2}s\n",
        "total",
        c.passed,
        c.failed,
        c.deviations,
        c.skipped,
        results.len(),
        elapsed.as_secs_f64()
    ));
    s
}

impl<W: Write> Reporter for ConsoleReporter<W> {
    fn report(&mut self, event: &RunEvent) -> Result<(), ReportError> {
        let io = |source| ReportError::Io {
            path: "<console>".into(),
            source,
        };
        match event {
            RunEvent::Started { total, target } => {
                writeln!(self.out, "running {total} case runs against {target}").map_err(io)?;
                if self.show_progress {
                    let bar = ProgressBar::with_draw_target(
                        Some(u64::try_from(*total).unwrap_or(u64::MAX)),
                        ProgressDrawTarget::stderr(),
                    );
                    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
                        bar.set_style(style);
                    }
                    self.bar = Some(bar);
                }
            }
            RunEvent::CaseStarted { case, version, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{case} [{version}]"));
                }
            }
            RunEvent::CaseFinished(r) => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    if r.verdict.is_failure() {
                        bar.println(format!(
                            "{} {} / {}",
                            r.verdict.label(),
                            r.suite,
                            r.display_name()
                        ));
                    }
                }
            }
            RunEvent::Finished { results, elapsed } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                self.out
                    .write_all(render(results, *elapsed).as_bytes())
                    .map_err(io)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::run::{ClientTrace, Failure};
    use crate::scenario::Version;

    fn result(index: usize, case: &str, suite: &str, verdict: Verdict) -> CaseResult {
        CaseResult {
            index,
            suite: suite.into(),
            feature: "f".into(),
            case: case.into(),
            version: Version::V5,
            file: "scenarios/f/x.yaml".into(),
            statements: vec!["MQTT-3.3.1-5".into()],
            tags: Vec::new(),
            verdict,
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(5),
            attempts: 1,
        }
    }

    #[test]
    fn failures_show_step_expected_received_and_traces_then_a_summary() {
        let failure = Failure {
            step: Some(4),
            step_text: "expect".into(),
            message: "Publish differs: payload".into(),
            expected: Some("Publish payload=\"a\"".into()),
            received: Some("Publish payload=\"b\"".into()),
            traces: vec![ClientTrace {
                client: "sub".into(),
                lines: vec!["+0.001s <- PingResp".into()],
            }],
        };
        let results = vec![
            result(0, "ok", "s1", Verdict::Pass),
            result(1, "bad", "s1", Verdict::Fail { failure }),
            result(
                2,
                "later",
                "s2",
                Verdict::Skipped {
                    reason: "requires tls: no".into(),
                },
            ),
        ];
        let text = render(&results, Duration::from_millis(1500));
        let expected_lines = [
            "FAIL s1 / bad [5] (scenarios/f/x.yaml)",
            "  spec: MQTT-3.3.1-5",
            "  step 4 (expect): Publish differs: payload",
            "  expected: Publish payload=\"a\"",
            "  received: Publish payload=\"b\"",
            "  --- trace of client sub ---",
            "  +0.001s <- PingResp",
            "  s2 / later [5]: requires tls: no",
        ];
        for line in expected_lines {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        let row = |s: &str| {
            text.lines()
                .find(|l| l.starts_with(s))
                .unwrap()
                .split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(row("s1 "), "1 1 0 0");
        assert_eq!(row("s2 "), "0 0 0 1");
        assert_eq!(row("total"), "1 1 0 1");
        assert!(text.ends_with("3 runs in 1.50s\n"), "{text}");
    }
}
