//! Broker profiles (`run --profile FILE`, TOML): what a run must know about a broker that
//! discovery cannot see. Credentials for every connection (raw CONNECT bytes included), declared
//! features and limits, the topic root its ACL lets the test user use, and its documented
//! deviations. `probe --write-profile` writes one from what the probe learnt; the container
//! presets ship one each (`profiles/*.toml`).

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::suite::{Deviation, Field, Suite};

/// A broker profile as written in TOML (see `profiles/example.toml`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The broker's name: the suites' `deviations:` of this name apply, and reports show it
    /// (`--broker-name` wins over it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    /// Free text: version, configuration, where the values come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Credentials used by every connection of every case, raw CONNECT bytes included (cases
    /// about authentication itself keep their own). Credentials in the broker URL win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// Optional features, declared where discovery cannot see them (absent: the probe decides).
    #[serde(default, skip_serializing_if = "Features::is_empty")]
    pub features: Features,
    /// Limits, declared where discovery cannot see them (absent: the probe decides).
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    /// What the broker's ACL lets the test user use.
    #[serde(default, skip_serializing_if = "Acl::is_empty")]
    pub acl: Acl,
    /// The broker's documented deviations (same shape as the suites' `deviations:`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deviations: Vec<Deviation>,
}

/// A user name and password the broker accepts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// User Name of every CONNECT.
    pub username: String,
    /// Password of every CONNECT.
    pub password: String,
}

/// Optional features (the names of `requires:`); `true`/`false` overrides the probe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Features {
    /// Retained messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<bool>,
    /// Wildcard subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard_subscriptions: Option<bool>,
    /// Shared subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_subscriptions: Option<bool>,
    /// Subscription identifiers (MQTT 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_identifiers: Option<bool>,
    /// The broker checks passwords (so the authentication cases can run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<bool>,
    /// The broker implements the reference's `challenge` enhanced authentication method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhanced_auth: Option<bool>,
    /// A zero-byte ClientId is accepted (MQTT-3.1.3-6 makes it a MAY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_length_client_id: Option<bool>,
}

impl Features {
    fn is_empty(&self) -> bool {
        *self == Features::default()
    }
}

/// Limits of the broker; absent values are left to discovery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Highest QoS the broker supports (0, 1 or 2); the runner never sends above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 2))]
    pub maximum_qos: Option<u8>,
    /// Receive Maximum: QoS 1/2 messages the broker accepts in flight from one client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_maximum: Option<u16>,
    /// Messages the broker keeps in flight towards one client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_inflight: Option<u16>,
    /// Maximum Packet Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_packet_size: Option<u32>,
    /// Topic Alias Maximum (0: no topic aliases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_alias_maximum: Option<u16>,
    /// Server Keep Alive the broker imposes on every client (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_keep_alive: Option<u16>,
    /// Highest Keep Alive the broker accepts (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_keep_alive: Option<u16>,
    /// Highest Session Expiry Interval the broker keeps (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_expiry_maximum: Option<u32>,
    /// Deepest topic (levels) the broker accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_topic_levels: Option<u16>,
}

impl Limits {
    fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// What the ACL lets the test user use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Acl {
    /// Topic levels every case's topics are rooted under (e.g. `tests/conformance`), in
    /// place of the default first level `mqttc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_root: Option<String>,
}

impl Acl {
    fn is_empty(&self) -> bool {
        *self == Acl::default()
    }
}

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file cannot be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The TOML does not parse, or does not fit the profile model.
    #[error("{file}:{line}:{column}: {field}: {message}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Dotted path of the offending field (`limits.maximum_qos`; `.` for the document).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A value the model accepts but a broker cannot have.
    #[error("{file}: {field}: {message}")]
    Value {
        /// The file.
        file: PathBuf,
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, l)| l)
        .chars()
        .count()
        + 1;
    (line, column)
}

impl Profile {
    /// Parse a profile; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Profile, ProfileError> {
        let invalid = |e: &toml::de::Error, field: String| {
            let (line, column) = e.span().map_or((1, 1), |s| line_column(text, s.start));
            ProfileError::Invalid {
                file: file.to_path_buf(),
                line,
                column,
                field,
                message: e.message().trim().to_string(),
            }
        };
        let de = toml::de::Deserializer::parse(text).map_err(|e| invalid(&e, ".".into()))?;
        let profile: Profile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            invalid(e.inner(), path)
        })?;
        profile.check(file)?;
        Ok(profile)
    }

    /// Read and parse the profile at `path`.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Profile::parse(&text, path)
    }

    /// Checks serde cannot express.
    fn check(&self, file: &Path) -> Result<(), ProfileError> {
        let bad = |field: &str, message: &str| ProfileError::Value {
            file: file.to_path_buf(),
            field: field.into(),
            message: message.into(),
        };
        if self.limits.maximum_qos.is_some_and(|q| q > 2) {
            return Err(bad("limits.maximum_qos", "must be 0, 1 or 2"));
        }
        let l = &self.limits;
        let zero = [
            ("limits.receive_maximum", l.receive_maximum.map(u32::from)),
            ("limits.max_inflight", l.max_inflight.map(u32::from)),
            ("limits.maximum_packet_size", l.maximum_packet_size),
            ("limits.max_keep_alive", l.max_keep_alive.map(u32::from)),
            ("limits.max_topic_levels", l.max_topic_levels.map(u32::from)),
        ]
        .into_iter()
        .find(|(_, v)| *v == Some(0));
        if let Some((field, _)) = zero {
            return Err(bad(field, "must be at least 1 (leave it out for no limit)"));
        }
        if let Some(root) = &self.acl.topic_root {
            let bad_root = root.is_empty()
                || root.starts_with('/')
                || root.ends_with('/')
                || root.starts_with('$')
                || root.contains(['+', '#', '\0']);
            if bad_root {
                return Err(bad(
                    "acl.topic_root",
                    "must be topic levels without wildcards, `$`, or a leading/trailing `/`",
                ));
            }
        }
        Ok(())
    }

    /// The profile as TOML (for `probe --write-profile`).
    pub fn to_toml(&self) -> String {
        let mut text = toml::to_string_pretty(self).unwrap_or_default();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }

    /// The credentials as `(user, password)`, the shape the run uses.
    pub fn credential_pair(&self) -> Option<(String, String)> {
        self.credentials
            .as_ref()
            .map(|c| (c.username.clone(), c.password.clone()))
    }

    /// Every deviation names a case of some suite under `root` and fits it (see
    /// [`crate::suite::Deviation::check`]); `file` names the profile in the error, which
    /// gives the field at fault (`deviations[2].step`).
    pub fn check_deviations(&self, file: &Path, root: &Path) -> Result<(), ProfileError> {
        if self.deviations.is_empty() {
            return Ok(());
        }
        // Manifests that do not load are reported when the run loads them.
        let suites: Vec<Suite> = crate::suite::discover(root)
            .unwrap_or_default()
            .iter()
            .filter_map(|f| crate::suite::load(f, root).ok().map(|(s, _)| s))
            .collect();
        for (i, d) in self.deviations.iter().enumerate() {
            let bad = |field: Field, message: String| ProfileError::Value {
                file: file.to_path_buf(),
                field: format!("deviations[{i}].{}", field.name()),
                message,
            };
            let mut misfit = None;
            let mut fits = false;
            for suite in &suites {
                let Some(case) = suite.cases.iter().find(|c| c.scenario.name == d.case) else {
                    continue;
                };
                match d.check(&case.scenario, &suite.manifest.versions_of(&case.scenario)) {
                    Ok(()) => fits = true,
                    Err(m) => misfit = misfit.or(Some(m)),
                }
            }
            match (fits, misfit) {
                (true, _) => {}
                (false, Some((field, message))) => return Err(bad(field, message)),
                (false, None) => {
                    return Err(bad(
                        Field::Case,
                        format!(
                            "no suite under {} has a case named {:?}",
                            root.display(),
                            d.case
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Add the profile's deviations under `broker` to the suites whose case they fit, so that
    /// they are looked up like the manifests' own (and `broker` is a name the suites know).
    pub fn add_deviations(&self, suites: &mut [Suite], broker: &str) {
        for suite in suites {
            let fitting: Vec<Deviation> = self
                .deviations
                .iter()
                .filter(|d| {
                    suite.cases.iter().any(|c| {
                        c.scenario.name == d.case
                            && d.check(&c.scenario, &suite.manifest.versions_of(&c.scenario))
                                .is_ok()
                    })
                })
                .cloned()
                .collect();
            suite
                .manifest
                .deviations
                .entry(broker.to_string())
                .or_default()
                .extend(fitting);
        }
    }
}

/// The JSON Schema of a profile, as committed in `profiles/schema.json`.
pub fn json_schema_text() -> String {
    let mut schema = schemars::schema_for!(Profile).to_value();
    if let Some(o) = schema.as_object_mut() {
        o.insert(
            "$id".into(),
            "https://github.com/mqtt-conformance/schema/profile.json".into(),
        );
        o.insert("title".into(), "mqtt-conformance broker profile".into());
    }
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// The shipped profile of container preset `name` (`profiles/<name>.toml`), if any.
pub fn preset(name: &str) -> Option<Result<Profile, ProfileError>> {
    let text = match name {
        "emqx" => include_str!("../../profiles/emqx.toml"),
        "mosquitto" => include_str!("../../profiles/mosquitto.toml"),
        "hivemq" => include_str!("../../profiles/hivemq.toml"),
        "nanomq" => include_str!("../../profiles/nanomq.toml"),
        "vernemq" => include_str!("../../profiles/vernemq.toml"),
        _ => return None,
    };
    Some(Profile::parse(
        text,
        &Path::new("profiles").join(format!("{name}.toml")),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_matches_the_model() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/schema.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == json_schema_text(),
            "profiles/schema.json is stale: run `cargo run -- schema --profile > profiles/schema.json`"
        );
    }

    #[test]
    fn the_example_and_every_preset_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let example = Profile::load(&dir.join("example.toml")).unwrap();
        assert!(example.credentials.is_some());
        for name in crate::sut::presets::NAMES {
            let p = preset(name).unwrap().unwrap();
            assert_eq!(p.broker.as_deref(), Some(*name));
        }
    }

    #[test]
    fn errors_give_file_line_column_and_field() {
        let text = "broker = \"x\"\n[limits]\nmaximum_qos = \"two\"\n";
        let err = Profile::parse(text, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("p.toml:3:15: limits.maximum_qos: "),
            "{err}"
        );
        let err = Profile::parse("[features]\nretian = true\n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.toml:2:1: features"), "{err}");
        assert!(err.contains("retian"), "{err}");
        let err = Profile::parse("[limits]\nmaximum_qos = 3\n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.maximum_qos"), "{err}");
        let err = Profile::parse("[limits]\nmax_inflight = 0\n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("limits.max_inflight: must be at least 1"),
            "{err}"
        );
        let err = Profile::parse("broker = \n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.toml:1:"), "{err}");
    }

    #[test]
    fn the_profiles_deviations_are_looked_up_like_the_manifests() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut suites: Vec<Suite> = crate::suite::resolve(root, &["smoke".into()])
            .unwrap()
            .iter()
            .map(|f| crate::suite::load(f, root).unwrap().0)
            .collect();
        let text = "[[deviations]]\ncase = \"smoke-pubsub-qos0\"\nversion = \"5\"\nstatement = \"MQTT-3.3.1-12\"\nstep = 5\nkind = \"missing-packet\"\nreason = \"documented\"\n";
        let p = Profile::parse(text, Path::new("p.toml")).unwrap();
        p.add_deviations(&mut suites, "lab-broker");
        let found = suites[0].deviation(
            "lab-broker",
            "smoke-pubsub-qos0",
            crate::scenario::Version::V5,
        );
        assert_eq!(found.map(|d| d.reason.as_str()), Some("documented"));
        assert!(suites[0]
            .deviation("other", "smoke-pubsub-qos0", crate::scenario::Version::V5)
            .is_none());
    }

    #[rstest::rstest]
    #[case::unknown_case(
        "case = \"nope\"\nstatement = \"S\"\nstep = 1\nkind = \"missing-packet\"",
        "deviations[1].case: no suite under"
    )]
    #[case::statement_not_cited("case = \"smoke-pubsub-qos0\"\nversion = \"5\"\nstatement = \"MQTT-3.3.1-9\"\nstep = 5\nkind = \"missing-packet\"", "deviations[1].statement: the case does not cite MQTT-3.3.1-9 under 5")]
    #[case::step_out_of_range("case = \"smoke-pubsub-qos0\"\nversion = \"5\"\nstatement = \"MQTT-3.3.1-12\"\nstep = 6\nkind = \"missing-packet\"", "deviations[1].step: step 6: the case has 5 steps")]
    #[case::kind_never_excused("case = \"smoke-pubsub-qos0\"\nversion = \"5\"\nstatement = \"MQTT-3.3.1-12\"\nstep = 5\nkind = \"harness\"", "deviations[1].kind: kind harness is never excused")]
    fn a_deviation_that_cannot_apply_makes_the_profile_unusable(
        #[case] fields: &str,
        #[case] expected: &str,
    ) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = format!("[[deviations]]\ncase = \"smoke-pubsub-qos0\"\nversion = \"5\"\nstatement = \"MQTT-3.3.1-12\"\nstep = 5\nkind = \"missing-packet\"\nreason = \"fits\"\n\n[[deviations]]\n{fields}\nreason = \"r\"\n");
        let p = Profile::parse(&text, Path::new("p.toml")).unwrap();
        let e = p.check_deviations(Path::new("p.toml"), root).unwrap_err();
        assert!(e.to_string().starts_with("p.toml: "), "{e}");
        assert!(e.to_string().contains(expected), "{e}");
    }

    #[test]
    fn the_deviations_of_the_example_and_every_preset_fit_their_cases() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let file = root.join("profiles/example.toml");
        Profile::load(&file)
            .unwrap()
            .check_deviations(&file, root)
            .unwrap();
        for name in crate::sut::presets::NAMES {
            if let Some(p) = preset(name) {
                p.unwrap().check_deviations(Path::new(name), root).unwrap();
            }
        }
    }

    #[test]
    fn a_profile_round_trips_through_toml() {
        let p = Profile {
            broker: Some("b".into()),
            credentials: Some(Credentials {
                username: "u".into(),
                password: "p".into(),
            }),
            limits: Limits {
                maximum_qos: Some(1),
                ..Limits::default()
            },
            ..Profile::default()
        };
        assert_eq!(Profile::parse(&p.to_toml(), Path::new("x")).unwrap(), p);
    }
}
