//! The JSON Schema of a scenario file, generated from the serde model so that the two never
//! drift, and validation of YAML documents against it.

use std::path::Path;

use serde_json::{json, Value};

use super::model::Scenario;

/// The JSON Schema of one YAML document: a case or a list of cases.
pub fn json_schema() -> Value {
    let generated = schemars::schema_for!(Scenario);
    let mut scenario = generated.to_value();
    let defs = scenario
        .as_object_mut()
        .and_then(|o| o.remove("$defs"))
        .unwrap_or_else(|| json!({}));
    if let Some(o) = scenario.as_object_mut() {
        o.remove("$schema");
    }
    let mut defs = match defs {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    document_matrix(&mut scenario);
    defs.insert("Scenario".into(), scenario);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/mqtt-conformance/schema/scenario.json",
        "title": "mqtt-conformance scenario",
        "description": "One YAML document of a scenario file: a case, or a list of cases (see scenarios/FORMAT.md).",
        "anyOf": [
            {"$ref": "#/$defs/Scenario"},
            {"type": "array", "items": {"$ref": "#/$defs/Scenario"}}
        ],
        "$defs": defs,
    })
}

/// `matrix:` and `exclude:` of a generated case (expanded before the typed parse, so not in
/// the model; see `matrix.rs`).
fn document_matrix(scenario: &mut Value) {
    let scalar = json!({"type": ["integer", "boolean", "string"]});
    if let Some(props) = scenario
        .get_mut("properties")
        .and_then(Value::as_object_mut)
    {
        props.insert(
            "matrix".into(),
            json!({
                "description": "Generated cases: parameters and their values; the document is expanded into one case per combination, with `{{ expr }}` substituted and `#if expr`/`#else`/`#end` comment blocks kept or dropped (scenarios/FORMAT.md).",
                "type": "object",
                "additionalProperties": {"type": "array", "items": scalar, "minItems": 1}
            }),
        );
        props.insert(
            "exclude".into(),
            json!({
                "description": "Combinations left out: a boolean expression, or parameter values (one or a list each) that must all match.",
                "type": "array",
                "items": {"anyOf": [
                    {"type": "string"},
                    {"type": "object", "additionalProperties": {"anyOf": [scalar, {"type": "array", "items": scalar}]}}
                ]}
            }),
        );
    }
}

/// The schema as committed in `suites/schema.json` (pretty JSON, trailing newline).
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// A schema violation in one document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: document {document}: {pointer}: {message}")]
pub struct SchemaViolation {
    /// The file.
    pub file: String,
    /// 1-based document number.
    pub document: usize,
    /// JSON pointer of the offending value (`/steps/2/publish/qos`).
    pub pointer: String,
    /// What the schema says.
    pub message: String,
}

/// Validates YAML documents against a schema.
pub struct SchemaValidator {
    validator: jsonschema::Validator,
}

impl SchemaValidator {
    /// A validator for `schema` (e.g. `suites/schema.json`, or [`json_schema`]).
    pub fn new(schema: &Value) -> Result<SchemaValidator, String> {
        // Validate each case against the Scenario definition (a list is split here), so that
        // errors point into the case instead of at a top-level anyOf.
        let mut one = schema.clone();
        if let Some(o) = one.as_object_mut() {
            if o.get("$defs").is_some_and(|d| d.get("Scenario").is_some()) {
                o.remove("anyOf");
                o.insert("$ref".into(), json!("#/$defs/Scenario"));
            }
        }
        jsonschema::validator_for(&one)
            .map(|validator| SchemaValidator { validator })
            .map_err(|e| e.to_string())
    }

    /// Every violation of every document of `text` (the content of `file`). YAML that does
    /// not parse at all is left to the typed loader, which reports line and column.
    pub fn check(&self, text: &str, file: &Path) -> Vec<SchemaViolation> {
        let Ok(docs) = serde_saphyr::from_multiple::<Value>(text) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let cases: Vec<(String, &Value)> = match doc {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(n, c)| (format!("/{n}"), c))
                    .collect(),
                other => vec![(String::new(), other)],
            };
            for (prefix, case) in cases {
                for e in self.validator.iter_errors(case) {
                    out.push(SchemaViolation {
                        file: file.display().to_string(),
                        document: i + 1,
                        pointer: format!("{prefix}{}", e.instance_path()),
                        message: e.to_string(),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_matches_the_model() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/schema.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == json_schema_text(),
            "suites/schema.json is stale: run `cargo run -- schema > suites/schema.json`"
        );
    }

    #[test]
    fn schema_accepts_valid_and_rejects_invalid_documents() {
        let v = SchemaValidator::new(&json_schema()).unwrap();
        let ok = "name: c\nversions: [\"3.1.1\", 5]\nclients: {a: {}}\nsteps:\n  - connect: {client: a, expect: {code: 0x87}}\n  - sleep: 1.5s\n  - expect: {client: a, reason: not_authorized, within: 2s}\n";
        assert_eq!(v.check(ok, Path::new("f.yaml")), vec![]);
        let bad = "name: c\nversions: [\"4\"]\nsteps:\n  - publish: {client: a, topic: t, qos: 1, colour: red}\n  - sleep: soon\n";
        let errors = v.check(bad, Path::new("f.yaml"));
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&"/versions/0"), "{errors:?}");
        assert!(
            pointers.iter().any(|p| p.starts_with("/steps/0")),
            "{errors:?}"
        );
        assert!(
            pointers.iter().any(|p| p.starts_with("/steps/1")),
            "{errors:?}"
        );
    }
}
