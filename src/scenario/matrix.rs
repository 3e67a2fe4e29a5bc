//! Generated cases: a YAML document with a top-level `matrix:` is expanded, as text and before
//! the typed parse, into one document per combination of its parameters (`{{ expr }}`
//! substituted, `#if expr` / `#else` / `#end` comment blocks kept or blanked). Line numbers
//! are preserved, so later errors still point into the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::expr::{self, Expr, Ty, Value};
use super::load::LoadError;
use super::yaml_error::locate;

/// One YAML document of a file, ready for the typed parse.
#[derive(Debug, Clone)]
pub struct Part {
    /// The document, preceded by blank lines so that its lines keep their numbers in the file.
    pub text: String,
    /// For a generated document: which matrix (its first line) and the combination
    /// (`pub=1, sub=2`).
    pub combination: Option<(usize, String)>,
}

/// A scalar of a parameter list or an `exclude` entry.
struct Scalar(Value);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum S {
            Bool(bool),
            Int(i64),
            Str(String),
        }
        Ok(Scalar(match S::deserialize(d)? {
            S::Bool(b) => Value::Bool(b),
            S::Int(i) => Value::Int(i),
            S::Str(s) => Value::Str(s),
        }))
    }
}

/// The parameters in declaration order.
struct Params(Vec<(String, Vec<Value>)>);

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of parameter names to lists of values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Vec<Scalar>>()? {
                    out.push((k, v.into_iter().map(|s| s.0).collect()));
                }
                Ok(Params(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<Scalar>),
    One(Scalar),
}

/// An `exclude` entry: a boolean expression, or parameter values that all match.
#[derive(Deserialize)]
#[serde(untagged)]
enum Exclude {
    When(String),
    Values(BTreeMap<String, OneOrMany>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    matrix: Params,
    #[serde(default)]
    exclude: Vec<Exclude>,
}

/// The header keys of a matrix document; their blocks are removed before expansion.
const HEADER_KEYS: [&str; 2] = ["matrix:", "exclude:"];

/// Split `text` into its documents, expanding those with a top-level `matrix:`.
pub fn expand(text: &str, file: &Path) -> Result<Vec<Part>, LoadError> {
    if !text.lines().any(|l| l.starts_with("matrix:")) {
        return Ok(vec![Part {
            text: text.to_string(),
            combination: None,
        }]);
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 0..=lines.len() {
        let sep = lines
            .get(i)
            .is_some_and(|l| l.trim_end() == "---" || l.starts_with("--- "));
        if i == lines.len() || sep {
            let doc = &lines[start..i];
            if doc.iter().any(|l| l.starts_with("matrix:")) {
                parts.extend(expand_doc(doc, start, file)?);
            } else if doc
                .iter()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
            {
                parts.push(Part {
                    text: format!("{}{}\n", "\n".repeat(start), doc.join("\n")),
                    combination: None,
                });
            }
            start = i + 1;
        }
    }
    Ok(parts)
}

/// A `{{ expr }}` or `#if expr` found in the template.
struct Site {
    line: usize,
    /// Byte range of `{{ ... }}` in the line (for substitution).
    range: std::ops::Range<usize>,
    expr: Expr,
}

enum Directive {
    If(Expr),
    Else,
    End,
}

fn syntax(file: &Path, line: usize, column: usize, message: String) -> LoadError {
    LoadError::Syntax {
        file: file.to_path_buf(),
        line: line as u64,
        column: column as u64,
        message,
    }
}

/// The expression error `e` in the expression starting at byte `from` of line `line` (0-based).
fn expr_error(
    file: &Path,
    lines: &[&str],
    first: usize,
    line: usize,
    from: usize,
    e: expr::ExprError,
) -> LoadError {
    let l = lines[line - first];
    let col = l.get(..from).map_or(0, |p| p.chars().count()) + e.at + 1;
    syntax(file, line + 1, col, e.message)
}

fn expand_doc(doc: &[&str], first: usize, file: &Path) -> Result<Vec<Part>, LoadError> {
    // 1. The header blocks, and the body with them blanked.
    let mut header = vec![""; doc.len()];
    let mut body: Vec<&str> = doc.to_vec();
    let mut in_header = false;
    for (i, l) in doc.iter().enumerate() {
        let top = l.starts_with(|c: char| !c.is_whitespace() && c != '#' && c != '-');
        if top {
            in_header = HEADER_KEYS.iter().any(|k| l.starts_with(k));
        }
        if in_header {
            header[i] = l;
            body[i] = "";
        }
    }
    let header_text = format!("{}{}\n", "\n".repeat(first), header.join("\n"));
    let h: Header = serde_saphyr::from_str(&header_text).map_err(|e| {
        let at = locate(&e, &header_text);
        syntax(file, at.line as usize, at.column as usize, at.message)
    })?;
    let matrix_line = first
        + doc
            .iter()
            .position(|l| l.starts_with("matrix:"))
            .unwrap_or(0)
        + 1;
    let at_matrix = |m: String| syntax(file, matrix_line, 1, m);

    // 2. Parameter types.
    let mut types = BTreeMap::new();
    for (name, values) in &h.matrix.0 {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || name.starts_with(|c: char| c.is_ascii_digit())
            || ["true", "false", "min", "max"].contains(&name.as_str())
        {
            return Err(at_matrix(format!(
                "parameter `{name}`: not a name (letters, digits, `_`)"
            )));
        }
        let Some(ty) = values.first().map(Value::ty) else {
            return Err(at_matrix(format!("parameter `{name}` has no values")));
        };
        if let Some(v) = values.iter().find(|v| v.ty() != ty) {
            return Err(at_matrix(format!(
                "parameter `{name}`: value {v} is not a {ty} like the first"
            )));
        }
        if types.insert(name.clone(), ty).is_some() {
            return Err(at_matrix(format!("parameter `{name}` is declared twice")));
        }
    }
    if types.is_empty() {
        return Err(at_matrix("`matrix` declares no parameter".into()));
    }

    // 3. Parse and type-check every expression once.
    let mut sites = Vec::new();
    let mut directives = BTreeMap::new();
    let mut depth = 0usize;
    for (i, l) in body.iter().enumerate() {
        let line = first + i;
        let trimmed = l.trim_start();
        let indent = l.len() - trimmed.len();
        if let Some(cond) = trimmed.strip_prefix("#if ") {
            let from = indent + 4;
            let e = expr::parse(cond).map_err(|e| expr_error(file, doc, first, line, from, e))?;
            match expr::check(&e, &types) {
                Ok(Ty::Bool) => {}
                Ok(t) => {
                    return Err(syntax(
                        file,
                        line + 1,
                        from + 1,
                        format!("`#if` needs a boolean, got {t}"),
                    ))
                }
                Err(e) => return Err(expr_error(file, doc, first, line, from, e)),
            }
            directives.insert(i, Directive::If(e));
            depth += 1;
            continue;
        }
        if trimmed.trim_end() == "#else" || trimmed.trim_end() == "#end" {
            if depth == 0 {
                return Err(syntax(
                    file,
                    line + 1,
                    indent + 1,
                    format!("`{}` without `#if`", trimmed.trim_end()),
                ));
            }
            if trimmed.trim_end() == "#end" {
                depth -= 1;
                directives.insert(i, Directive::End);
            } else {
                directives.insert(i, Directive::Else);
            }
            continue;
        }
        let mut pos = 0;
        while let Some(open) = l[pos..].find("{{").map(|o| o + pos) {
            let Some(close) = l[open..].find("}}").map(|c| c + open) else {
                return Err(syntax(
                    file,
                    line + 1,
                    l[..open].chars().count() + 1,
                    "`{{` without `}}`".into(),
                ));
            };
            let inner = &l[open + 2..close];
            let e =
                expr::parse(inner).map_err(|e| expr_error(file, doc, first, line, open + 2, e))?;
            expr::check(&e, &types).map_err(|e| expr_error(file, doc, first, line, open + 2, e))?;
            sites.push(Site {
                line: i,
                range: open..close + 2,
                expr: e,
            });
            pos = close + 2;
        }
    }
    if depth != 0 {
        return Err(at_matrix("an `#if` has no `#end`".into()));
    }
    let mut excludes = Vec::new();
    for x in &h.exclude {
        match x {
            Exclude::When(text) => {
                let (line, from) = find_in(doc, text).unwrap_or((0, 0));
                let here = |e| expr_error(file, doc, first, first + line, from, e);
                let e = expr::parse(text).map_err(here)?;
                match expr::check(&e, &types) {
                    Ok(Ty::Bool) => excludes.push(Ok(e)),
                    Ok(t) => {
                        return Err(at_matrix(format!(
                            "exclude {text:?}: needs a boolean, got {t}"
                        )))
                    }
                    Err(e) => return Err(here(e)),
                }
            }
            Exclude::Values(m) => {
                let mut want = BTreeMap::new();
                for (k, v) in m {
                    let Some(ty) = types.get(k) else {
                        return Err(at_matrix(format!("exclude: unknown parameter `{k}`")));
                    };
                    let vals: Vec<Value> = match v {
                        OneOrMany::One(s) => vec![s.0.clone()],
                        OneOrMany::Many(l) => l.iter().map(|s| s.0.clone()).collect(),
                    };
                    if let Some(bad) = vals.iter().find(|v| v.ty() != *ty) {
                        return Err(at_matrix(format!("exclude: `{k}: {bad}` is not a {ty}")));
                    }
                    want.insert(k.clone(), vals);
                }
                excludes.push(Err(want));
            }
        }
    }

    // 4. One document per combination.
    let mut parts = Vec::new();
    for env in combinations(&h.matrix.0) {
        let mut excluded = false;
        for x in &excludes {
            excluded |= match x {
                Ok(e) => {
                    expr::eval(e, &env).map_err(|e| at_matrix(e.message))? == Value::Bool(true)
                }
                Err(want) => want
                    .iter()
                    .all(|(k, vals)| env.get(k).is_some_and(|v| vals.contains(v))),
            };
        }
        if excluded {
            continue;
        }
        let mut out: Vec<String> = body.iter().map(|l| l.to_string()).collect();
        for s in sites.iter().rev() {
            let v = expr::eval(&s.expr, &env)
                .map_err(|e| expr_error(file, doc, first, first + s.line, s.range.start + 2, e))?;
            out[s.line].replace_range(s.range.clone(), &v.to_string());
        }
        // Keep or blank the conditional blocks.
        let mut stack: Vec<(bool, bool)> = Vec::new(); // (parent live, this branch live)
        for (i, l) in out.iter_mut().enumerate() {
            let live = stack.last().is_none_or(|&(p, b)| p && b);
            match directives.get(&i) {
                Some(Directive::If(e)) => {
                    let c =
                        expr::eval(e, &env).map_err(|e| at_matrix(e.message))? == Value::Bool(true);
                    stack.push((live, c));
                    l.clear();
                }
                Some(Directive::Else) => {
                    if let Some(top) = stack.last_mut() {
                        top.1 = !top.1;
                    }
                    l.clear();
                }
                Some(Directive::End) => {
                    stack.pop();
                    l.clear();
                }
                None if !live => l.clear(),
                None => {}
            }
        }
        let label = env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(Part {
            text: format!("{}{}\n", "\n".repeat(first), out.join("\n")),
            combination: Some((matrix_line, label)),
        });
    }
    if parts.is_empty() {
        return Err(at_matrix("`exclude` leaves no combination".into()));
    }
    Ok(parts)
}

/// Where `needle` first appears in `doc`: (line index, byte offset).
fn find_in(doc: &[&str], needle: &str) -> Option<(usize, usize)> {
    doc.iter()
        .enumerate()
        .find_map(|(i, l)| l.find(needle).map(|o| (i, o)))
}

/// Every combination of the parameters, the first parameter varying slowest.
fn combinations(params: &[(String, Vec<Value>)]) -> Vec<BTreeMap<String, Value>> {
    let mut out = vec![BTreeMap::new()];
    for (name, values) in params {
        out = out
            .into_iter()
            .flat_map(|env| {
                values.iter().map(move |v| {
                    let mut e = env.clone();
                    e.insert(name.clone(), v.clone());
                    e
                })
            })
            .collect();
    }
    out
}

/// Two combinations of one matrix must not give the same case name.
pub fn check_unique_names<'a>(
    names: impl Iterator<Item = (&'a str, &'a str)>,
    file: &Path,
    line: usize,
) -> Result<(), LoadError> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, combo) in names {
        if let Some(other) = seen.insert(name, combo) {
            return Err(syntax(
                file,
                line,
                1,
                format!(
                    "the name template gives {name:?} to two combinations ({other}) and ({combo}): use every parameter in `name`"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T: &str = "\
# a comment
matrix:
  sub: [0, 1, 2]
  pub: [0, 1, 2]
  v: [\"3.1.1\", \"5\"]
exclude:
  - {sub: 0, pub: [1, 2]}
  - \"sub == 2 && pub == 2\"
name: q-s{{sub}}-p{{pub}}-v{{ v == \"5\" ? 5 : 3 }}
versions: [\"{{v}}\"]
steps:
  #if pub > 0
  - publish: {qos: {{ min(pub, sub) }}}
  #else
  - sleep: 1s
  #end
";

    #[test]
    fn expands_every_combination_but_the_excluded() {
        let parts = expand(T, Path::new("f.yaml")).unwrap();
        // 9 x 2 = 18, minus (0,1),(0,2) x 2 and (2,2) x 2.
        assert_eq!(parts.len(), 12);
        let p = parts
            .iter()
            .find(|p| p.text.contains("q-s2-p1-v5"))
            .unwrap();
        assert!(p.text.contains("versions: [\"5\"]"), "{}", p.text);
        assert!(p.text.contains("- publish: {qos: 1}"), "{}", p.text);
        assert!(!p.text.contains("sleep"), "{}", p.text);
        assert!(!p.text.contains("matrix") && !p.text.contains("exclude"));
        // Line numbers are kept.
        assert_eq!(p.text.lines().count(), T.lines().count());
        assert_eq!(p.text.lines().nth(8), Some("name: q-s2-p1-v5"));
        let zero = parts
            .iter()
            .find(|p| p.text.contains("q-s0-p0-v3"))
            .unwrap();
        assert!(zero.text.contains("- sleep: 1s") && !zero.text.contains("publish"));
        assert!(!parts.iter().any(|p| p.text.contains("q-s2-p2")));
        assert!(!parts.iter().any(|p| p.text.contains("q-s0-p1")));
    }

    #[test]
    fn documents_without_matrix_pass_through() {
        let text = "name: a\n---\nmatrix: {x: [1, 2]}\nname: b{{x}}\n";
        let parts = expand(text, Path::new("f.yaml")).unwrap();
        assert_eq!(parts.len(), 3);
        assert!(parts[0].combination.is_none());
        assert_eq!(parts[2].text, "\n\n\nname: b2\n");
        assert_eq!(
            expand("name: a\n", Path::new("f")).unwrap()[0].text,
            "name: a\n"
        );
    }

    fn error(text: &str) -> (u64, u64, String) {
        match expand(text, Path::new("f.yaml")).unwrap_err() {
            LoadError::Syntax {
                line,
                column,
                message,
                ..
            } => (line, column, message),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn errors_name_line_and_column() {
        let (l, c, m) = error("matrix: {a: [1]}\nname: x{{ a + true }}\n");
        assert_eq!((l, c), (2, 13), "{m}");
        assert!(m.contains("integer operands"), "{m}");
        let (l, c, m) = error("matrix: {a: [1]}\nname: x\nsteps:\n  - {qos: {{ b }}}\n");
        assert_eq!((l, c), (4, 14), "{m}");
        assert!(m.contains("unknown parameter `b`"), "{m}");
        let (l, c, m) = error("matrix: {a: [1]}\nname: x{{ a\n");
        assert_eq!((l, c), (2, 8), "{m}");
        let (l, _, m) = error("matrix: {a: [1]}\nname: x\n  #if a\n  #end\n");
        assert_eq!(l, 3, "{m}");
        assert!(m.contains("boolean"), "{m}");
        let (_, _, m) = error("matrix: {a: [1]}\nname: x\n  #if a == 1\n");
        assert!(m.contains("no `#end`"), "{m}");
        let (_, _, m) = error("matrix: {a: [1, true]}\nname: x\n");
        assert!(m.contains("not a integer") || m.contains("not a"), "{m}");
        let (_, _, m) = error("matrix: {a: [1]}\nexclude: [{a: 1}]\nname: x\n");
        assert!(m.contains("no combination"), "{m}");
        let (_, _, m) = error("matrix: {a: [1]}\nexclude: [{b: 1}]\nname: x\n");
        assert!(m.contains("unknown parameter `b`"), "{m}");
        let (l, c, m) = error("matrix: {a: [1]}\nexclude: [\"a +\"]\nname: x\n");
        assert_eq!((l, c), (2, 15), "{m}");
        let (l, _, m) = error("matrix: {a: [1]}\ncolour: 1\nexclude: 3\n");
        assert_eq!(l, 3, "{m}");
    }
}
