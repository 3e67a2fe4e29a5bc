//! The HTML report (`run --html PATH`): one self-contained file (inline style and script, no
//! fetches) with the summary, filters by verdict, suite, chapter and tag (also driven by the
//! URL fragment, `#verdict=fail&suite=smoke`), every case with its statements quoted, the
//! failed step, expected vs received and a packet timeline per client, and a coverage view
//! by chapter (statement -> cases -> verdicts). Rendered from the JSON report's data model,
//! so verdict kinds it does not know get their own filter value and colour class.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use super::document::{Document, ResultRow};
use super::{ReportError, Reporter};
use crate::coverage;
use crate::run::RunEvent;
use crate::scenario::Version;

/// Escape text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The chapter of a statement id: `MQTT-3.3.1-5` -> `3`.
pub fn chapter(id: &str) -> String {
    coverage::section(id)
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Verdict classes in display order; kinds not listed here follow, alphabetically.
const ORDER: [&str; 5] = ["fail", "warn", "deviation", "skipped", "pass"];

/// Every verdict class present in `rows`, in display order.
pub fn classes<'a>(rows: impl IntoIterator<Item = &'a ResultRow>) -> Vec<String> {
    let present: BTreeSet<String> = rows.into_iter().map(|r| r.class().to_string()).collect();
    let mut out: Vec<String> = ORDER
        .iter()
        .filter(|c| present.contains(**c))
        .map(|c| c.to_string())
        .collect();
    out.extend(present.into_iter().filter(|c| !ORDER.contains(&c.as_str())));
    out
}

/// The inline stylesheet shared by the run report and the compare matrix.
pub const STYLE: &str = r#"
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:.5rem;color:#222}
h1{font-size:1.3rem;word-break:break-all}h2{font-size:1.1rem}
.pill{display:inline-block;padding:.1rem .5rem;border-radius:1rem;margin:.1rem;font-weight:600;font-size:.85rem}
.pass{background:#d8f3dc}.fail{background:#ffccd5}.deviation{background:#ffe8a3}.skipped{background:#e5e5e5}
.warn{background:#ffd8a8}.other{background:#cfe2ff}
nav{display:flex;flex-wrap:wrap;gap:.5rem;position:sticky;top:0;background:#fff;padding:.4rem 0;border-bottom:1px solid #ddd}
nav label{display:flex;flex-direction:column;font-size:.8rem}select{font-size:.95rem;max-width:12rem}
details.case{border:1px solid #ddd;border-radius:.4rem;margin:.3rem 0;padding:.3rem .5rem}
details.case>summary{cursor:pointer;overflow-wrap:anywhere}
q{display:block;color:#444;margin:.2rem 0 .4rem 1rem;font-style:italic}
pre,ol.trace{font:12px/1.35 ui-monospace,monospace;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere}
ol.trace{padding-left:1.5rem}li.fault{background:#ffe8a3;font-weight:600}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));gap:.5rem}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.2rem .4rem;vertical-align:top;text-align:left}
.scroll{overflow-x:auto}tr.diff td:first-child{border-left:4px solid #d63384}
[hidden]{display:none!important}
"#;

const SCRIPT: &str = r#"
(function(){
var keys=['verdict','suite','chapter','tag'];
function state(){var s={};location.hash.replace(/^#/,'').split('&').forEach(function(p){var kv=p.split('=');if(kv[0])s[decodeURIComponent(kv[0])]=decodeURIComponent(kv[1]||'');});return s;}
function apply(){var s=state(),n=0,cases=document.querySelectorAll('details.case');
keys.forEach(function(k){var el=document.getElementById('f-'+k);if(el)el.value=s[k]||'';});
cases.forEach(function(c){var ok=keys.every(function(k){if(!s[k])return true;return (' '+(c.dataset[k]||'')+' ').indexOf(' '+s[k]+' ')>=0;});c.hidden=!ok;if(ok)n++;});
var shown=document.getElementById('shown');if(shown)shown.textContent=n+' of '+cases.length+' case runs shown';}
keys.forEach(function(k){var el=document.getElementById('f-'+k);if(el)el.addEventListener('change',function(){var s=state();s[k]=el.value;
location.hash=keys.filter(function(x){return s[x];}).map(function(x){return x+'='+encodeURIComponent(s[x]);}).join('&');});});
window.addEventListener('hashchange',apply);apply();})();
"#;

fn version_of(label: &str) -> Option<Version> {
    Version::parse(label)
}

fn select(out: &mut String, key: &str, label: &str, values: &[String]) {
    let _ = write!(
        out,
        "<label>{label}<select id=\"f-{key}\"><option value=\"\">all</option>"
    );
    for v in values {
        let v = escape(v);
        let _ = write!(out, "<option value=\"{v}\">{v}</option>");
    }
    out.push_str("</select></label>");
}

/// The CSS class of a verdict class (unknown kinds share `other`).
fn css(class: &str) -> &str {
    if ORDER.contains(&class) {
        class
    } else {
        "other"
    }
}

fn case_block(out: &mut String, i: usize, r: &ResultRow) {
    let class = r.class();
    let chapters: BTreeSet<String> = r.statements.iter().map(|s| chapter(s)).collect();
    let _ = write!(
        out,
        "<details class=\"case\" id=\"case-{i}\" data-verdict=\"{}\" data-suite=\"{}\" data-chapter=\"{}\" data-tag=\"{}\"><summary><span class=\"pill {}\">{}</span> {} / {} [{}]</summary>",
        escape(class),
        escape(&r.suite),
        escape(&chapters.into_iter().collect::<Vec<_>>().join(" ")),
        escape(&r.tags.join(" ")),
        css(class),
        escape(&r.verdict),
        escape(&r.suite),
        escape(&r.case),
        escape(&r.version),
    );
    let _ = write!(out, "<p>{} · {:.0} ms</p>", escape(&r.file), r.duration_ms);
    for id in &r.statements {
        let text = version_of(&r.version)
            .and_then(|v| coverage::statement(v, id))
            .map(|s| s.text.as_str())
            .unwrap_or("(statement text not found)");
        let _ = write!(out, "<b>{}</b><q>{}</q>", escape(id), escape(text));
    }
    if let Some(reason) = &r.reason {
        let _ = write!(out, "<p>skipped: {}</p>", escape(reason));
    }
    if let Some(d) = &r.deviation {
        let _ = write!(
            out,
            "<p>documented deviation: <b>{}</b> {}</p>",
            escape(&d.statement),
            escape(&d.reason)
        );
    }
    for w in &r.warnings {
        let _ = write!(
            out,
            "<p><b>WARNING</b> (SHOULD level, {}) step {} ({}): {}{}</p>",
            escape(&w.kind),
            w.step,
            escape(&w.step_text),
            escape(&w.message),
            w.statement
                .as_deref()
                .map(|id| format!(" [{}]", escape(id)))
                .unwrap_or_default()
        );
        for (label, v) in [("recommended", &w.expected), ("received", &w.received)] {
            if let Some(v) = v {
                let _ = write!(out, "<p>{label}: <code>{}</code></p>", escape(v));
            }
        }
    }
    if let Some(d) = &r.stale_deviation {
        let _ = write!(
            out,
            "<p>stale deviation (the case passes now): <b>{}</b> {}</p>",
            escape(&d.statement),
            escape(&d.reason)
        );
    }
    if let Some(f) = &r.failure {
        let step = match f.step {
            Some(n) => format!("step {n} ({}): ", f.step_text),
            None => String::new(),
        };
        let _ = write!(out, "<p><b>{}{}</b></p>", escape(&step), escape(&f.message));
        out.push_str("<div class=\"cols\">");
        for (label, v) in [("expected", &f.expected), ("received", &f.received)] {
            if let Some(v) = v {
                let _ = write!(out, "<div>{label}<pre>{}</pre></div>", escape(v));
            }
        }
        out.push_str("</div><div class=\"cols\">");
        for t in &f.traces {
            let _ = write!(
                out,
                "<div>client <b>{}</b><ol class=\"trace\">",
                escape(&t.client)
            );
            for line in &t.lines {
                let fault = line.contains("# fault") || line.contains("restart");
                let _ = write!(
                    out,
                    "<li{}>{}</li>",
                    if fault { " class=\"fault\"" } else { "" },
                    escape(line)
                );
            }
            out.push_str("</ol></div>");
        }
        out.push_str("</div>");
    }
    out.push_str("</details>\n");
}

/// Statement id -> the results (index, row) that check it.
type ByStatement<'a> = BTreeMap<String, Vec<(usize, &'a ResultRow)>>;

fn coverage_view(out: &mut String, doc: &Document) {
    // chapter -> statement -> [(result index, row)]
    let mut by_chapter: BTreeMap<u32, ByStatement> = BTreeMap::new();
    for (i, r) in doc.results.iter().enumerate() {
        for id in &r.statements {
            let ch = chapter(id).parse().unwrap_or(u32::MAX);
            by_chapter
                .entry(ch)
                .or_default()
                .entry(id.clone())
                .or_default()
                .push((i, r));
        }
    }
    out.push_str("<section id=\"coverage\"><h2>Coverage by chapter</h2>");
    for (ch, statements) in &by_chapter {
        let mut ids: Vec<&String> = statements.keys().collect();
        ids.sort_by_key(|id| {
            let body = id.trim_start_matches("MQTT-");
            body.split(['.', '-'])
                .map(|p| p.parse::<u32>().unwrap_or(u32::MAX))
                .collect::<Vec<_>>()
        });
        let _ = write!(
            out,
            "<details><summary>Chapter {ch}: {} statements</summary><div class=\"scroll\"><table><tr><th>statement</th><th>cases</th></tr>",
            ids.len()
        );
        for id in ids {
            let _ = write!(out, "<tr><td><b>{}</b></td><td>", escape(id));
            for (i, r) in &statements[id] {
                let _ = write!(
                    out,
                    "<a href=\"#case-{i}\" class=\"pill {}\" onclick=\"document.getElementById('case-{i}').open=true\">{} [{}] {}</a> ",
                    css(r.class()),
                    escape(&r.case),
                    escape(&r.version),
                    escape(&r.verdict)
                );
            }
            out.push_str("</td></tr>");
        }
        out.push_str("</table></div></details>");
    }
    out.push_str("</section>");
}

/// The whole report as one HTML document.
pub fn render(doc: &Document) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>MQTT conformance: {}</title><style>{STYLE}</style></head><body>",
        escape(&doc.target)
    );
    let _ = write!(
        out,
        "<h1>MQTT conformance: {}</h1><p id=\"summary\">{} case runs in {:.1} s: ",
        escape(&doc.target),
        doc.results.len(),
        doc.elapsed_ms / 1000.0
    );
    let classes = classes(&doc.results);
    for c in &classes {
        let n = doc.results.iter().filter(|r| r.class() == c).count();
        let _ = write!(
            out,
            "<a class=\"pill {}\" href=\"#verdict={}\">{n} {}</a>",
            css(c),
            escape(c),
            escape(c)
        );
    }
    out.push_str("</p><nav>");
    let suites: Vec<String> = doc
        .results
        .iter()
        .map(|r| r.suite.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut chapters: Vec<String> = doc
        .results
        .iter()
        .flat_map(|r| r.statements.iter().map(|s| chapter(s)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    chapters.sort_by_key(|c| c.parse::<u32>().unwrap_or(u32::MAX));
    let tags: Vec<String> = doc
        .results
        .iter()
        .flat_map(|r| r.tags.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    select(&mut out, "verdict", "verdict", &classes);
    select(&mut out, "suite", "suite", &suites);
    select(&mut out, "chapter", "spec chapter", &chapters);
    select(&mut out, "tag", "tag", &tags);
    out.push_str("</nav><p id=\"shown\"></p><main id=\"cases\">\n");
    for (i, r) in doc.results.iter().enumerate() {
        case_block(&mut out, i, r);
    }
    out.push_str("</main>");
    coverage_view(&mut out, doc);
    let _ = writeln!(out, "<script>{SCRIPT}</script></body></html>");
    out
}

/// Writes the HTML report to a file when the run finishes.
pub struct HtmlReporter {
    path: PathBuf,
    target: String,
}

impl HtmlReporter {
    /// A reporter writing to `path` (parent directories are created).
    pub fn new(path: PathBuf) -> Self {
        HtmlReporter {
            path,
            target: String::new(),
        }
    }
}

impl Reporter for HtmlReporter {
    fn report(&mut self, event: &RunEvent) -> Result<(), ReportError> {
        match event {
            RunEvent::Started { target, .. } => self.target = target.clone(),
            RunEvent::Finished { results, elapsed } => {
                let doc = Document::of(&self.target, elapsed.as_secs_f64() * 1000.0, results)?;
                write_file(&self.path, &render(&doc))?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Write `text` to `path`, creating its directory.
pub fn write_file(path: &std::path::Path, text: &str) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::report::document::FailureRow;

    fn row(case: &str, verdict: &str) -> ResultRow {
        ResultRow {
            suite: "s".into(),
            case: case.into(),
            version: "5".into(),
            statements: vec!["MQTT-3.3.1-5".into()],
            tags: vec!["retain".into()],
            verdict: verdict.into(),
            ..Default::default()
        }
    }

    #[test]
    fn every_case_appears_with_statement_text_and_unknown_kinds_slot_in() {
        let mut failed = row("bad<case>", "fail");
        failed.failure = Some(FailureRow {
            step: Some(3),
            step_text: "expect".into(),
            message: "differs".into(),
            expected: Some("a".into()),
            received: Some("b".into()),
            traces: vec![super::super::document::TraceRow {
                client: "c".into(),
                lines: vec!["+0.001s -> # fault: cut".into()],
            }],
        });
        let doc = Document {
            target: "t".into(),
            elapsed_ms: 10.0,
            results: vec![
                row("ok", "pass"),
                failed,
                row("w", "warn"),
                row("n", "novel"),
            ],
        };
        let html = render(&doc);
        assert_eq!(html.matches("<details class=\"case\"").count(), 4);
        assert!(html.contains("bad&lt;case&gt;"));
        assert!(html.contains("data-verdict=\"novel\""));
        assert!(html.contains("<option value=\"warn\">"));
        assert!(html.contains("<li class=\"fault\">"));
        assert!(
            html.contains("retained"),
            "statement text of MQTT-3.3.1-5 quoted"
        );
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}
