//! Loading scenario files: YAML documents to [`Scenario`]s, with file:line:column errors and
//! the checks serde cannot express (known clients, QoS ranges, hex).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::hex::HexError;
use super::model::{Scenario, Step};
use super::yaml_error::locate;

/// A case loaded from a file.
#[derive(Debug, Clone)]
pub struct LoadedCase {
    /// The case.
    pub scenario: Arc<Scenario>,
    /// The file it came from.
    pub file: PathBuf,
    /// The feature it belongs to: the first path component under `scenarios/`.
    pub feature: String,
}

/// Why a scenario file is invalid.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The YAML does not parse into the model.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line (0 if unknown).
        line: u64,
        /// 1-based column (0 if unknown).
        column: u64,
        /// What is wrong (field and what was expected).
        message: String,
    },
    /// The YAML parses but the case is inconsistent.
    #[error("{file}: case {case:?}: {message}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Case name.
        case: String,
        /// What is wrong.
        message: String,
    },
}

/// One YAML document: a case or a list of cases.
enum Doc {
    One(Box<Scenario>),
    Many(Vec<Scenario>),
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Doc;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a case (a mapping) or a list of cases")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Doc, A::Error> {
                Scenario::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|s| Doc::One(Box::new(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Doc, A::Error> {
                Vec::<Scenario>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(Doc::Many)
            }
        }
        d.deserialize_any(V)
    }
}

/// The feature of a scenario file: the first directory under `scenarios/`, else its parent.
pub fn feature_of(file: &Path) -> String {
    let parts: Vec<String> = file
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(i) = parts.iter().rposition(|p| p == "scenarios") {
        if i + 2 < parts.len() {
            return parts[i + 1].clone();
        }
    }
    file.parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scenarios".to_string())
}

/// Parse the cases in `text` (the content of `file`); documents with a `matrix:` are expanded
/// first, one case per combination.
pub fn parse_str(text: &str, file: &Path) -> Result<Vec<LoadedCase>, LoadError> {
    let feature = feature_of(file);
    let mut cases = Vec::new();
    let mut generated: Vec<(usize, String, String)> = Vec::new();
    for part in super::matrix::expand(text, file)? {
        let docs: Vec<Doc> = serde_saphyr::from_multiple(&part.text).map_err(|e| {
            let mut err = syntax(e, &part.text, file);
            if let (LoadError::Syntax { message, .. }, Some((_, combo))) =
                (&mut err, &part.combination)
            {
                message.push_str(&format!(" (matrix combination {combo})"));
            }
            err
        })?;
        for doc in docs {
            let list = match doc {
                Doc::One(s) => vec![*s],
                Doc::Many(v) => v,
            };
            for scenario in list {
                check(&scenario, file)?;
                if let Some((line, combo)) = &part.combination {
                    generated.push((*line, scenario.name.clone(), combo.clone()));
                }
                cases.push(LoadedCase {
                    scenario: Arc::new(scenario),
                    file: file.to_path_buf(),
                    feature: feature.clone(),
                });
            }
        }
    }
    let mut lines: Vec<usize> = generated.iter().map(|g| g.0).collect();
    lines.dedup();
    for line in lines {
        super::matrix::check_unique_names(
            generated
                .iter()
                .filter(|g| g.0 == line)
                .map(|g| (g.1.as_str(), g.2.as_str())),
            file,
            line,
        )?;
    }
    Ok(cases)
}

/// Read and parse one scenario file.
pub fn load_file(file: &Path) -> Result<Vec<LoadedCase>, LoadError> {
    let text = std::fs::read_to_string(file).map_err(|source| LoadError::Io {
        file: file.to_path_buf(),
        source,
    })?;
    parse_str(&text, file)
}

/// Turn a serde-saphyr error into `file:line:column: field ...: message`.
fn syntax(e: serde_saphyr::Error, text: &str, file: &Path) -> LoadError {
    let at = locate(&e, text);
    LoadError::Syntax {
        file: file.to_path_buf(),
        line: at.line,
        column: at.column,
        message: at.message,
    }
}

/// The checks serde cannot express.
fn check(s: &Scenario, file: &Path) -> Result<(), LoadError> {
    let fail = |message: String| LoadError::Invalid {
        file: file.to_path_buf(),
        case: s.name.clone(),
        message,
    };
    if s.name.trim().is_empty() {
        return Err(fail("`name` is empty".into()));
    }
    // The name becomes a topic level of the run prefix: no `/`, `+`, `#` or spaces.
    if !s
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(fail(
            "`name` may contain only letters, digits, `-`, `_` and `.` (kebab-case)".into(),
        ));
    }
    if s.versions.is_empty() {
        return Err(fail(
            "`versions` is empty: list \"3.1.1\", \"5\" or both".into(),
        ));
    }
    if s.steps.is_empty() {
        return Err(fail("`steps` is empty".into()));
    }
    let mut saved = std::collections::BTreeSet::new();
    let mut grants = std::collections::BTreeSet::new();
    for (i, step) in s.steps.iter().enumerate() {
        let at = |m: String| fail(format!("step {} ({}): {m}", i + 1, step.keyword()));
        if let Some(client) = step.client() {
            if !s.clients.contains_key(client) {
                return Err(at(format!(
                    "unknown client {client:?} (declared: {})",
                    s.clients.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        match step {
            Step::Subscribe(sub) if sub.filters.is_empty() => {
                return Err(at("`filters` is empty".into()));
            }
            Step::Subscribe(sub) => {
                grants.extend(sub.filters.iter().filter_map(|f| f.save_granted.clone()));
            }
            Step::Publish(p) if p.payload.is_some() && p.payload_hex.is_some() => {
                return Err(at("give `payload` or `payload_hex`, not both".into()));
            }
            Step::Expect(e) => {
                check_saved(&e.packet_id_from, &saved).map_err(at)?;
                if let Some(name) = &e.save_id {
                    saved.insert(name.clone());
                }
                check_granted(e, &grants).map_err(at)?;
                if e.payload.is_some() && e.payload_hex.is_some() {
                    return Err(at("give `payload` or `payload_hex`, not both".into()));
                }
            }
            Step::ExpectOneOf(o) => {
                if o.alternatives.is_empty() || o.alternatives.iter().any(Vec::is_empty) {
                    return Err(at("`alternatives` must list non-empty pattern lists".into()));
                }
                if let Some(n) = o.or_close.iter().find(|n| !s.clients.contains_key(*n)) {
                    return Err(at(format!("or_close: unknown client {n:?}")));
                }
                for e in o.alternatives.iter().flatten() {
                    if !s.clients.contains_key(&e.client) {
                        return Err(at(format!("unknown client {:?}", e.client)));
                    }
                    if e.payload.is_some() && e.payload_hex.is_some() {
                        return Err(at("give `payload` or `payload_hex`, not both".into()));
                    }
                    if e.save_id.is_some() {
                        return Err(at("`save_id` is not allowed inside `expect_one_of`".into()));
                    }
                    if e.granted.is_some() {
                        return Err(at("`granted` is not allowed inside `expect_one_of`".into()));
                    }
                    check_saved(&e.packet_id_from, &saved).map_err(at)?;
                }
            }
            Step::Send(x) => {
                check_saved(&x.packet_id_from, &saved).map_err(at)?;
            }
            Step::SendRaw(r) => {
                if let Some(name) = r.hex.clients().find(|n| !s.clients.contains_key(*n)) {
                    return Err(at(HexError::UnknownClient(name.to_string()).to_string()));
                }
            }
            Step::Slicer(sl) if sl.size == 0 || sl.variation >= sl.size => {
                return Err(at(format!(
                    "size must be at least 1 and variation below it (size {}, variation {})",
                    sl.size, sl.variation
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A `granted` must name a filter saved by an earlier `subscribe` (`save_granted`), and come
/// with the published `qos` it is the minimum of.
fn check_granted(
    e: &crate::scenario::ExpectStep,
    grants: &std::collections::BTreeSet<String>,
) -> Result<(), String> {
    match &e.granted {
        Some(n) if !grants.contains(n) => Err(format!(
            "`granted: {n}` names no filter saved by an earlier `subscribe` (`save_granted: {n}`)"
        )),
        Some(_) if e.qos.is_none() => {
            Err("`granted` needs `qos`: the QoS the message was published at".into())
        }
        _ => Ok(()),
    }
}

/// A `packet_id_from` must name an id saved by an earlier `expect` (`save_id`).
fn check_saved(
    name: &Option<String>,
    saved: &std::collections::BTreeSet<String>,
) -> Result<(), String> {
    match name {
        Some(n) if !saved.contains(n) => Err(format!(
            "`packet_id_from: {n}` names no id saved by an earlier `expect` (`save_id: {n}`)"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rstest::rstest;

    const HEAD: &str = "name: c\nversions: [\"5\"]\nclients: {a: {}}\n";

    fn err(text: &str) -> LoadError {
        parse_str(text, Path::new("scenarios/x/f.yaml")).unwrap_err()
    }

    #[test]
    fn a_valid_case_loads_with_its_feature() {
        let text = format!("{HEAD}steps:\n  - connect: {{client: a}}\n  - publish: {{client: a, topic: t, qos: 1}}\n  - sleep: 10ms\n");
        let cases = parse_str(&text, Path::new("scenarios/pubsub/a.yaml")).unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].feature, "pubsub");
        assert_eq!(cases[0].scenario.steps.len(), 3);
    }

    #[test]
    fn documents_and_lists_both_give_cases() {
        let one = format!("{HEAD}steps: [{{connect: {{client: a}}}}]\n");
        let two = one.replace("name: c", "name: d");
        let text = format!("{one}---\n{two}");
        assert_eq!(parse_str(&text, Path::new("f.yaml")).unwrap().len(), 2);
        let indented = |s: &str| {
            s.lines()
                .enumerate()
                .map(|(i, l)| {
                    if i == 0 {
                        format!("- {l}\n")
                    } else {
                        format!("  {l}\n")
                    }
                })
                .collect::<String>()
        };
        let list = format!("{}{}", indented(&one), indented(&two));
        assert_eq!(parse_str(&list, Path::new("f.yaml")).unwrap().len(), 2);
    }

    #[rstest]
    #[case::unknown_top_field("name: c\nversions: [\"5\"]\ncolor: red\nsteps: []\n", 3, 1, "color")]
    #[case::unknown_step_field("name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - connect: {client: a, colour: 1}\n", 5, 26, "colour")]
    #[case::unknown_step(
        "name: c\nversions: [\"5\"]\nsteps:\n  - jump: {client: a}\n",
        4,
        5,
        "jump"
    )]
    #[case::bad_version("name: c\nversions: [\"4\"]\nsteps: []\n", 2, 12, "3.1.1")]
    #[case::bad_duration("name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - expect_nothing: {client: a, for: 2 minutes}\n", 5, 33, "field `for`: invalid value: string \"2 minutes\", expected a duration")]
    #[case::bad_reason("name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - disconnect: {client: a, reason: nope}\n", 5, 29, "field `reason`: invalid value: string \"nope\", expected a reason code")]
    #[case::wrong_type("name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - publish: {client: a, topic: t, qos: high}\n", 5, 41, "field `qos`: invalid u8")]
    #[case::missing_field(
        "name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - publish: {client: a}\n",
        5,
        15,
        "missing field `topic`"
    )]
    #[case::bad_packet_kind("name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - expect: {client: a, packet: pubx}\n", 5, 33, "unknown variant `pubx`, expected one of connect")]
    #[case::qos3("name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - publish: {client: a, topic: t, qos: 3}\n", 5, 36, "field `qos`: invalid value: integer `3`, expected a QoS 0, 1 or 2")]
    #[case::bad_retain_handling("name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - subscribe: {client: a, filters: [{filter: t, retain_handling: 3}]}\n", 5, 50, "field `retain_handling`: invalid value: integer `3`, expected a Retain Handling 0, 1 or 2")]
    #[case::bad_will_qos("name: c\nversions: [\"5\"]\nclients: {a: {will: {topic: t, qos: 5}}}\nsteps: [{sleep: 1s}]\n", 3, 32, "field `qos`: invalid value: integer `5`, expected a QoS 0, 1 or 2")]
    #[case::bad_payload_hex("name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - publish: {client: a, topic: t, payload_hex: 6g}\n", 5, 49, "field `payload_hex`: invalid hex \"6g\"")]
    #[case::bad_raw_hex("name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - send_raw: {client: a, hex: \"3g\"}\n", 5, 32, "field `hex`: invalid hex \"3g\"")]
    #[case::bad_absent_name("name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - expect: {client: a, absent: [colour]}\n", 5, 34, "unknown variant `colour`")]
    fn syntax_errors_name_line_column_and_field(
        #[case] text: &str,
        #[case] line: u64,
        #[case] column: u64,
        #[case] needle: &str,
    ) {
        let e = err(text);
        let shown = e.to_string();
        match e {
            LoadError::Syntax {
                line: l,
                column: c,
                message,
                ..
            } => {
                assert_eq!((l, c), (line, column), "{shown}");
                assert!(message.contains(needle), "{message:?} lacks {needle:?}");
                assert!(
                    shown.starts_with(&format!("scenarios/x/f.yaml:{line}:{column}: ")),
                    "{shown}"
                );
            }
            other => panic!("expected a syntax error, got {other}"),
        }
    }

    #[rstest]
    #[case::unknown_client(&format!("{HEAD}steps:\n  - connect: {{client: b}}\n"), "step 1 (connect): unknown client \"b\"")]
    #[case::name_with_wildcard(
        "name: c+d\nversions: [\"5\"]\nsteps: [{sleep: 1s}]\n",
        "`name` may contain only"
    )]
    #[case::no_versions("name: c\nversions: []\nsteps: [{sleep: 1s}]\n", "`versions` is empty")]
    #[case::no_steps(&format!("{HEAD}steps: []\n"), "`steps` is empty")]
    #[case::bad_placeholder(&format!("{HEAD}steps:\n  - send_raw: {{client: a, hex: \"${{client_id:zz}}\"}}\n"), "unknown client \"zz\"")]
    #[case::granted_unsaved(&format!("{HEAD}steps:\n  - expect: {{client: a, qos: 1, granted: g}}\n"), "`granted: g` names no filter saved")]
    #[case::granted_without_qos(&format!("{HEAD}steps:\n  - subscribe: {{client: a, filters: [{{filter: t, save_granted: g}}]}}\n  - expect: {{client: a, granted: g}}\n"), "`granted` needs `qos`")]
    fn semantic_errors_name_the_case_and_step(#[case] text: &str, #[case] needle: &str) {
        let e = err(text);
        assert!(matches!(e, LoadError::Invalid { .. }), "{e}");
        assert!(e.to_string().contains(needle), "{e} lacks {needle:?}");
        assert!(
            e.to_string().starts_with("scenarios/x/f.yaml: case \"c"),
            "{e}"
        );
    }

    #[test]
    fn a_server_packet_in_send_is_an_error_at_its_line_and_column() {
        let text = format!("{HEAD}steps:\n  - send: {{client: a, packet: connack}}\n");
        let e = err(&text).to_string();
        assert!(
            e.starts_with("scenarios/x/f.yaml:5:31: field `packet`: a client cannot send ConnAck"),
            "{e}"
        );
    }
}
