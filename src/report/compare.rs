//! `compare`: several runs (JSON reports, one or more per broker) side by side, as a matrix of
//! brokers by case and by statement with the differences marked and totals per suite, in
//! text, Markdown (the README compatibility table) or HTML.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use super::document::{Document, ResultRow};
use super::html::{escape, STYLE};
use super::ReportError;

/// One broker's results, from one or more JSON reports.
#[derive(Debug, Clone, Default)]
pub struct Column {
    /// The broker's label.
    pub label: String,
    /// Results by [`ResultRow::key`].
    pub rows: BTreeMap<String, ResultRow>,
    /// Suites in first-seen order.
    pub suites: Vec<String>,
}

/// The label of a report: the text in parentheses at the end of its target
/// (`mqtt://127.0.0.1:1883 (mosquitto)` -> `mosquitto`), else the file stem.
fn default_label(doc: &Document, path: &Path) -> String {
    let t = doc.target.trim();
    if let (Some(open), true) = (t.rfind('('), t.ends_with(')')) {
        return t[open + 1..t.len() - 1].to_string();
    }
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Read the arguments of `compare`: `PATH` or `LABEL=PATH`; reports with the same label are
/// merged into one column (a run per suite, for instance), in argument order.
pub fn load(args: &[String]) -> Result<Vec<Column>, ReportError> {
    let mut columns: Vec<Column> = Vec::new();
    for arg in args {
        let (label, path) = match arg.split_once('=') {
            Some((l, p)) if !Path::new(arg).exists() => (Some(l.to_string()), Path::new(p)),
            _ => (None, Path::new(arg.as_str())),
        };
        let doc = Document::read(path)?;
        let label = label.unwrap_or_else(|| default_label(&doc, path));
        let idx = match columns.iter().position(|c| c.label == label) {
            Some(i) => i,
            None => {
                columns.push(Column {
                    label,
                    ..Column::default()
                });
                columns.len() - 1
            }
        };
        let col = &mut columns[idx];
        for r in doc.results {
            if !col.suites.contains(&r.suite) {
                col.suites.push(r.suite.clone());
            }
            col.rows.insert(r.key(), r);
        }
    }
    Ok(columns)
}

/// Counts per verdict class.
pub type Tally = BTreeMap<String, usize>;

fn tally<'a>(rows: impl IntoIterator<Item = &'a ResultRow>) -> Tally {
    let mut t = Tally::new();
    for r in rows {
        *t.entry(r.class().to_string()).or_default() += 1;
    }
    t
}

/// `pass / fail / deviation / skipped` (and `/ N warn` etc. for other kinds present).
fn tally_cell(t: &Tally) -> String {
    let get = |k: &str| t.get(k).copied().unwrap_or(0);
    let mut s = format!(
        "{} / {} / {} / {}",
        get("pass"),
        get("fail"),
        get("deviation"),
        get("skipped")
    );
    for (k, n) in t {
        if !["pass", "fail", "deviation", "skipped"].contains(&k.as_str()) && *n > 0 {
            let _ = write!(s, " / {n} {k}");
        }
    }
    s
}

/// Every suite of every column, in first-seen order.
fn suites(columns: &[Column]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in columns {
        for s in &c.suites {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
    }
    out
}

/// Every case key, in suite order then by name.
fn keys(columns: &[Column]) -> Vec<String> {
    let order = suites(columns);
    let mut all: BTreeSet<(usize, String)> = BTreeSet::new();
    for c in columns {
        for (k, r) in &c.rows {
            let i = order
                .iter()
                .position(|s| *s == r.suite)
                .unwrap_or(usize::MAX);
            all.insert((i, k.clone()));
        }
    }
    all.into_iter().map(|(_, k)| k).collect()
}

/// The verdict class of `key` in each column (`-`: not run there).
fn row_classes(columns: &[Column], key: &str) -> Vec<String> {
    columns
        .iter()
        .map(|c| c.rows.get(key).map_or("-", |r| r.class()).to_string())
        .collect()
}

fn differs(cells: &[String]) -> bool {
    cells.iter().collect::<BTreeSet<_>>().len() > 1
}

/// One statement's class in a column: the worst of its cases (fail, warn, deviation, pass,
/// skipped), with how many cases check it.
fn statement_matrix(columns: &[Column]) -> BTreeMap<String, Vec<(String, usize)>> {
    let mut ids: BTreeSet<String> = BTreeSet::new();
    for c in columns {
        for r in c.rows.values() {
            for s in &r.statements {
                ids.insert(format!("{} [{}]", s, r.version));
            }
        }
    }
    let rank = |c: &str| match c {
        "fail" => 0,
        "pass" => 4,
        "skipped" => 5,
        "deviation" => 2,
        _ => 1,
    };
    ids.into_iter()
        .map(|id| {
            let cells = columns
                .iter()
                .map(|c| {
                    let rows: Vec<&ResultRow> = c
                        .rows
                        .values()
                        .filter(|r| {
                            r.statements
                                .iter()
                                .any(|s| format!("{} [{}]", s, r.version) == id)
                        })
                        .collect();
                    let worst = rows
                        .iter()
                        .map(|r| r.class())
                        .min_by_key(|c| rank(c))
                        .unwrap_or("-")
                        .to_string();
                    (worst, rows.len())
                })
                .collect();
            (id, cells)
        })
        .collect()
}

/// The README compatibility table: a row per broker, a column per suite, each cell
/// `pass / fail / deviation / skipped`; then the cases whose verdicts differ.
pub fn markdown(columns: &[Column]) -> String {
    let suites = suites(columns);
    let mut out = format!(
        "| broker | {} |\n| --- |{}\n",
        suites.join(" | "),
        " --- |".repeat(suites.len())
    );
    for c in columns {
        let cells: Vec<String> = suites
            .iter()
            .map(|s| tally_cell(&tally(c.rows.values().filter(|r| r.suite == *s))))
            .collect();
        let _ = writeln!(out, "| {} | {} |", c.label, cells.join(" | "));
    }
    let diffs: Vec<(String, Vec<String>)> = keys(columns)
        .into_iter()
        .map(|k| {
            let cells = row_classes(columns, &k);
            (k, cells)
        })
        .filter(|(_, cells)| differs(cells))
        .collect();
    if !diffs.is_empty() {
        let labels: Vec<&str> = columns.iter().map(|c| c.label.as_str()).collect();
        let _ = write!(
            out,
            "\nCase runs whose verdicts differ ({}):\n\n| case | {} |\n| --- |{}\n",
            diffs.len(),
            labels.join(" | "),
            " --- |".repeat(labels.len())
        );
        for (k, cells) in diffs {
            let _ = writeln!(out, "| `{k}` | {} |", cells.join(" | "));
        }
    }
    out
}

/// A plain-text matrix: totals per broker and suite, then every case run whose verdicts
/// differ (`*`) across brokers.
pub fn text(columns: &[Column]) -> String {
    let mut out = String::from("totals (pass / fail / deviation / skipped):\n");
    for c in columns {
        let _ = writeln!(
            out,
            "  {:<28} {}",
            c.label,
            tally_cell(&tally(c.rows.values()))
        );
    }
    let keys = keys(columns);
    let width = keys.iter().map(String::len).max().unwrap_or(4).min(70);
    let _ = write!(out, "\n  {:<width$}", "case");
    for c in columns {
        let _ = write!(out, " {:>12}", c.label.chars().take(12).collect::<String>());
    }
    out.push('\n');
    let mut n = 0;
    for k in &keys {
        let cells = row_classes(columns, k);
        if !differs(&cells) {
            continue;
        }
        n += 1;
        let _ = write!(out, "* {k:<width$}");
        for cell in cells {
            let _ = write!(out, " {cell:>12}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{n} of {} case runs differ", keys.len());
    out
}

/// The HTML matrix: totals, brokers by case and by statement, differing rows marked (and a
/// toggle to show only them).
pub fn html(columns: &[Column]) -> String {
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>MQTT conformance: compare</title><style>{STYLE}</style></head><body><h1>MQTT conformance: {} brokers compared</h1>",
        columns.len()
    );
    let suites = suites(columns);
    out.push_str("<h2>Totals (pass / fail / deviation / skipped)</h2><div class=\"scroll\"><table><tr><th>broker</th>");
    for s in &suites {
        let _ = write!(out, "<th>{}</th>", escape(s));
    }
    out.push_str("</tr>");
    for c in columns {
        let _ = write!(out, "<tr><td>{}</td>", escape(&c.label));
        for s in &suites {
            let t = tally(c.rows.values().filter(|r| r.suite == *s));
            let _ = write!(out, "<td>{}</td>", escape(&tally_cell(&t)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></div><p><label><input type=\"checkbox\" id=\"only-diff\"> only rows that differ</label></p>");
    let head = |out: &mut String, first: &str| {
        let _ = write!(out, "<div class=\"scroll\"><table><tr><th>{first}</th>");
        for c in columns {
            let _ = write!(out, "<th>{}</th>", escape(&c.label));
        }
        out.push_str("</tr>");
    };
    let keys = keys(columns);
    let ndiff = keys
        .iter()
        .filter(|k| differs(&row_classes(columns, k)))
        .count();
    let _ = write!(
        out,
        "<h2 id=\"by-case\">By case ({ndiff} of {} differ)</h2>",
        keys.len()
    );
    head(&mut out, "case");
    for k in &keys {
        let cells = row_classes(columns, k);
        let _ = write!(
            out,
            "<tr class=\"{}\"><td>{}</td>",
            if differs(&cells) { "diff" } else { "same" },
            escape(k)
        );
        for (c, cell) in columns.iter().zip(&cells) {
            let title = c
                .rows
                .get(k)
                .and_then(|r| {
                    r.failure
                        .as_ref()
                        .map(|f| f.message.clone())
                        .or(r.reason.clone())
                })
                .unwrap_or_default();
            let _ = write!(
                out,
                "<td class=\"{}\" title=\"{}\">{}</td>",
                cell_css(cell),
                escape(&title),
                escape(cell)
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></div>");
    let statements = statement_matrix(columns);
    out.push_str(
        "<h2 id=\"by-statement\">By statement (worst verdict of the cases checking it)</h2>",
    );
    head(&mut out, "statement");
    for (id, cells) in &statements {
        let classes: Vec<String> = cells.iter().map(|(c, _)| c.clone()).collect();
        let _ = write!(
            out,
            "<tr class=\"{}\"><td>{}</td>",
            if differs(&classes) { "diff" } else { "same" },
            escape(id)
        );
        for (class, n) in cells {
            let _ = write!(
                out,
                "<td class=\"{}\">{} ({n})</td>",
                cell_css(class),
                escape(class)
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></div>");
    out.push_str("<script>document.getElementById('only-diff').addEventListener('change',function(e){document.querySelectorAll('tr.same').forEach(function(r){r.hidden=e.target.checked;});});</script></body></html>\n");
    out
}

fn cell_css(class: &str) -> &str {
    match class {
        "pass" | "fail" | "deviation" | "skipped" | "warn" => class,
        "-" => "",
        _ => "other",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn col(label: &str, verdicts: &[(&str, &str)]) -> Column {
        let mut c = Column {
            label: label.into(),
            suites: vec!["s".into()],
            ..Column::default()
        };
        for (case, v) in verdicts {
            let r = ResultRow {
                suite: "s".into(),
                case: (*case).into(),
                version: "5".into(),
                statements: vec!["MQTT-3.3.1-5".into()],
                verdict: (*v).into(),
                ..Default::default()
            };
            c.rows.insert(r.key(), r);
        }
        c
    }

    #[test]
    fn markdown_totals_and_differences() {
        let cols = vec![
            col("ref", &[("a", "pass"), ("b", "pass")]),
            col("other", &[("a", "pass"), ("b", "timeout")]),
        ];
        let md = markdown(&cols);
        assert!(md.starts_with("| broker | s |\n| --- | --- |\n| ref | 2 / 0 / 0 / 0 |\n| other | 1 / 1 / 0 / 0 |\n"), "{md}");
        assert!(md.contains("| `s::b::v5` | pass | fail |"), "{md}");
        assert!(!md.contains("s::a::v5"), "{md}");
        let html = html(&cols);
        assert!(html.contains("<tr class=\"diff\"><td>s::b::v5</td>"));
        assert!(html.contains("MQTT-3.3.1-5 [5]"));
        assert!(text(&cols).contains("1 of 2 case runs differ"));
    }
}
