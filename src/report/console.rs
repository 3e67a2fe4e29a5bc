//! The console report: progress while running (a bar on a terminal, one line per finished
//! case otherwise), then each failure as a block a person can act on (the step's file and line,
//! the statements it checks quoted, expected vs received, bounded traces) and a summary table.

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::json::Counts;
use super::junit::failure_text;
use super::{source, ReportError, Reporter};
use crate::coverage;
use crate::run::{CaseResult, RunEvent, Verdict};

/// How the console shows a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleStyle {
    /// A progress bar on stderr (for a terminal) instead of one line per finished case.
    pub progress: bool,
    /// Only the failures and the totals: no per-case lines, skip or deviation lists.
    pub quiet: bool,
    /// ANSI colours on verdicts.
    pub color: bool,
}

/// Console reporter writing case lines and the final report to `out`, the bar to stderr.
pub struct ConsoleReporter<W: Write> {
    out: W,
    bar: Option<ProgressBar>,
    style: ConsoleStyle,
    incomplete: Option<String>,
}

impl<W: Write> ConsoleReporter<W> {
    /// A reporter writing to `out` in `style`.
    pub fn new(out: W, style: ConsoleStyle) -> Self {
        ConsoleReporter {
            out,
            bar: None,
            style,
            incomplete: None,
        }
    }
}

/// Trace lines kept per client in a failure block (the last ones: the failure is at the end).
const TRACE_LINES: usize = 40;
/// Characters of a quoted statement.
const QUOTE_CHARS: usize = 240;
/// Statements quoted per failure.
const QUOTES: usize = 3;

/// `label` in the colour of its verdict when `color` is on.
fn paint(label: &str, verdict: &Verdict, color: bool) -> String {
    if !color {
        return label.to_string();
    }
    let code = match verdict {
        Verdict::Pass => "32",
        Verdict::Warning => "1;33",
        Verdict::Fail { .. } | Verdict::Timeout { .. } | Verdict::Flaky { .. } => "1;31",
        Verdict::Deviation { .. } => "33",
        Verdict::Skipped { .. } => "2",
        Verdict::Error { .. } => "1;35",
    };
    format!("\x1b[{code}m{label}\x1b[0m")
}

/// One line for a finished case: verdict, suite / case [version], time.
pub fn case_line(r: &CaseResult, color: bool) -> String {
    let label = format!("{:<9}", r.verdict.label());
    format!(
        "{} {} / {} {:.2}s",
        paint(&label, &r.verdict, color),
        r.suite,
        r.display_name(),
        r.duration.as_secs_f64()
    )
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// Where the failing step is written: `file:line`, else the file.
fn location(r: &CaseResult, step: Option<usize>) -> String {
    let line = step.and_then(|n| {
        let text = std::fs::read_to_string(&r.file).ok()?;
        source::step_line(&text, &r.case, n)
    });
    match line {
        Some(l) => format!("{}:{l}", r.file.display()),
        None => r.file.display().to_string(),
    }
}

/// The failure block of one result (the console report and the libtest trials print it).
pub fn failure_block(r: &CaseResult, color: bool) -> String {
    let Some(f) = r.verdict.failure() else {
        return String::new();
    };
    let mut s = format!(
        "\n{} {} / {}\n  at {}\n",
        paint(r.verdict.label(), &r.verdict, color),
        r.suite,
        r.display_name(),
        location(r, f.step),
    );
    s.push_str(&quotes(r, f.statement.as_deref()));

    let mut bounded = f.clone();
    for t in &mut bounded.traces {
        if t.lines.len() > TRACE_LINES {
            let dropped = t.lines.len() - TRACE_LINES;
            t.lines.drain(..dropped);
            t.lines
                .insert(0, format!("... {dropped} earlier line(s) not shown"));
        }
    }
    for line in failure_text(&bounded).lines() {
        s.push_str("  ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// The statements a block quotes: the step's own first (the one judged), then the case's,
/// so that a broker author can check the judgement against the text.
fn quotes(r: &CaseResult, step_statement: Option<&str>) -> String {
    let mut s = String::new();
    let mut ids: Vec<&str> = Vec::new();
    if let Some(id) = step_statement {
        ids.push(id);
    }
    for id in &r.statements {
        if !ids.contains(&id.as_str()) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        s.push_str("  spec: (no statement cited)\n");
    } else {
        s.push_str(&format!("  spec: {}\n", ids.join(", ")));
    }
    for id in ids.iter().take(QUOTES) {
        if let Some(st) = coverage::statement(r.version, id) {
            s.push_str(&format!("    {id}: \"{}\"\n", cut(&st.text, QUOTE_CHARS)));
        }
    }
    s
}

/// The warning block of one result: each SHOULD-level step that did not hold, with the
/// statement it checks quoted and expected vs received (no traces: nothing MUST broke).
pub fn warning_block(r: &CaseResult, color: bool) -> String {
    if r.warnings.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "\n{} {} / {}\n",
        paint("WARN", &Verdict::Warning, color),
        r.suite,
        r.display_name(),
    );
    for w in &r.warnings {
        s.push_str(&format!("  at {}\n", location(r, Some(w.step))));
        s.push_str(&format!("  {} [{}, SHOULD level]\n", w.headline(), w.kind));
        match w.statement.as_deref() {
            Some(id) => {
                let text = coverage::statement(r.version, id)
                    .map(|st| format!(": \"{}\"", cut(&st.text, QUOTE_CHARS)))
                    .unwrap_or_default();
                s.push_str(&format!("    {id}{text}\n"));
            }
            None => s.push_str(&quotes(r, None)),
        }
        if let Some(e) = &w.expected {
            s.push_str(&format!("  recommended: {e}\n"));
        }
        if let Some(got) = &w.received {
            s.push_str(&format!("  received: {got}\n"));
        }
    }
    s
}

/// The final report as text, plain and complete (see [`render_with`]).
pub fn render(results: &[CaseResult], elapsed: std::time::Duration) -> String {
    render_with(results, elapsed, ConsoleStyle::default(), None)
}

/// The final report as text: failure blocks, skips (not-run runs counted, not listed),
/// documented deviations, a table per suite, the totals, and why the run is incomplete.
pub fn render_with(
    results: &[CaseResult],
    elapsed: std::time::Duration,
    style: ConsoleStyle,
    incomplete: Option<&str>,
) -> String {
    let mut s = String::new();
    for r in results {
        // Harness errors get a block too: they say what failed on our side.
        if r.verdict.is_failure() || matches!(r.verdict, Verdict::Error { .. }) {
            s.push_str(&failure_block(r, style.color));
        }
    }
    // Warnings apart from failures: the broker did what the specification allows, not what
    // it recommends.
    for r in results {
        s.push_str(&warning_block(r, style.color));
    }
    let skipped: Vec<&CaseResult> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Skipped { .. }) && !r.verdict.is_not_run())
        .collect();
    if !skipped.is_empty() && !style.quiet {
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
    if !deviations.is_empty() && !style.quiet {
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
    // A deviation whose case passes is out of date: said even in quiet mode.
    let stale: Vec<&CaseResult> = results
        .iter()
        .filter(|r| r.stale_deviation.is_some())
        .collect();
    if !stale.is_empty() {
        s.push_str("\nstale deviations (the case passes now; remove them from the manifest):\n");
        for r in stale {
            if let Some(d) = &r.stale_deviation {
                s.push_str(&format!(
                    "  {} / {}: {} {} at {}\n",
                    r.suite,
                    r.display_name(),
                    d.statement,
                    d.kind,
                    d.step
                ));
            }
        }
    }
    // Retained messages the runner could not clear may reach later runs: said even in quiet
    // mode, apart from the verdicts (they change none).
    let noted: Vec<&CaseResult> = results.iter().filter(|r| !r.notes.is_empty()).collect();
    if !noted.is_empty() {
        s.push_str("\nnotes (not verdicts):\n");
        for r in noted {
            for note in &r.notes {
                s.push_str(&format!("  {} / {}: {note}\n", r.suite, r.display_name()));
            }
        }
    }
    // Runs that never ran: one line per reason, not one per run.
    let mut not_run: Vec<(&str, usize)> = Vec::new();
    for r in results {
        if let (true, Verdict::Skipped { reason }) = (r.verdict.is_not_run(), &r.verdict) {
            match not_run.iter_mut().find(|(why, _)| *why == reason.as_str()) {
                Some((_, n)) => *n += 1,
                None => not_run.push((reason, 1)),
            }
        }
    }
    if !not_run.is_empty() {
        s.push('\n');
        for (why, n) in not_run {
            s.push_str(&format!("{n} run(s) {why}\n"));
        }
    }
    let mut suites: Vec<&str> = Vec::new();
    for r in results {
        if !suites.contains(&r.suite.as_str()) {
            suites.push(&r.suite);
        }
    }
    s.push_str(&format!(
        "\n{:<24} {:>7} {:>8} {:>7} {:>10} {:>8}\n",
        "suite", "passed", "warnings", "failed", "deviations", "skipped"
    ));
    if !style.quiet {
        for suite in &suites {
            let c = Counts::of(results.iter().filter(|r| r.suite == *suite));
            s.push_str(&format!(
                "{:<24} {:>7} {:>8} {:>7} {:>10} {:>8}\n",
                suite, c.passed, c.warnings, c.failed, c.deviations, c.skipped
            ));
        }
    }
    let c = Counts::of(results);
    s.push_str(&format!(
        "{:<24} {:>7} {:>8} {:>7} {:>10} {:>8}\n{} runs in {:.2}s\n",
        "total",
        c.passed,
        c.warnings,
        c.failed,
        c.deviations,
        c.skipped,
        results.len(),
        elapsed.as_secs_f64()
    ));
    if let Some(reason) = incomplete {
        s.push_str(&format!("INCOMPLETE: {reason}\n"));
    }
    s
}

impl<W: Write> ConsoleReporter<W> {
    /// A line above the bar, or on `out` when there is none.
    fn line(&mut self, text: &str) -> std::io::Result<()> {
        match &self.bar {
            Some(bar) => {
                bar.println(text);
                Ok(())
            }
            None => {
                writeln!(self.out, "{text}")?;
                self.out.flush()
            }
        }
    }
}

impl<W: Write> Reporter for ConsoleReporter<W> {
    fn report(&mut self, event: &RunEvent) -> Result<(), ReportError> {
        let io = |source| ReportError::Io {
            path: "<console>".into(),
            source,
        };
        match event {
            RunEvent::Started { total, target } => {
                if !self.style.quiet {
                    writeln!(self.out, "running {total} case runs against {target}")
                        .and_then(|()| self.out.flush())
                        .map_err(io)?;
                }
                if self.style.progress {
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
            // Said once, in the summary.
            RunEvent::Incomplete { reason } => self.incomplete = Some(reason.clone()),
            RunEvent::CaseFinished(r) => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                // Not-run runs are counted at the end, not listed (--fail-fast, broker gone).
                let show = if self.bar.is_some() {
                    r.verdict.is_failure() || matches!(r.verdict, Verdict::Error { .. })
                } else {
                    !self.style.quiet && !r.verdict.is_not_run()
                };
                if show {
                    self.line(&case_line(r, self.style.color)).map_err(io)?;
                }
            }
            RunEvent::Finished { results, elapsed } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                let text = render_with(results, *elapsed, self.style, self.incomplete.as_deref());
                self.out.write_all(text.as_bytes()).map_err(io)?;
                self.out.flush().map_err(io)?;
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
            warnings: Vec::new(),
            stale_deviation: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_note_is_said_in_the_summary_and_changes_no_verdict() {
        let mut noted = result(0, "left", "s1", Verdict::Pass);
        noted.notes = vec!["cannot clear the retained message of t: closed".into()];
        let text = render(&[noted], Duration::from_millis(10));
        assert!(
            text.contains("notes (not verdicts):\n  s1 / left [5]: cannot clear the retained message of t: closed\n"),
            "{text}"
        );
        assert!(!text.contains("FAIL"), "{text}");
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
            kind: None,
            statement: None,
            not_excused: None,
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
            "FAIL s1 / bad [5]",
            "  at scenarios/f/x.yaml",
            "  spec: MQTT-3.3.1-5",
            "    MQTT-3.3.1-5: \"If the RETAIN flag is set to 1 in a PUBLISH packet sent by a Client to a Server, the Server MUST replace any existing retained message for this topic and store the Application Message.\"",
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
        assert_eq!(row("s1 "), "1 0 1 0 0");
        assert_eq!(row("s2 "), "0 0 0 0 1");
        assert_eq!(row("total"), "1 0 1 0 1");
        assert!(text.ends_with("3 runs in 1.50s\n"), "{text}");
    }
}
