//! MQTT 5 properties as written in scenarios: building them for packets sent, comparing them
//! with packets received (only the listed ones), asserting absence by name.

use bytes::Bytes;
use reference_broker::codec::Properties;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// One property that differs between a pattern and a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyMismatch {
    /// The property name (snake case).
    pub name: &'static str,
    /// What the scenario expects.
    pub expected: String,
    /// What the packet carries.
    pub actual: String,
}

macro_rules! scalar_props {
    ($($field:ident : $ty:ty),* $(,)?) => {
        // The YAML and JSON Schema form, read into `PropsSpec` at load.
        /// A set of MQTT 5 properties in a scenario. Unset fields are neither sent nor compared.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[schemars(rename = "PropsSpec")]
        pub struct PropsYaml {
            $(
                #[doc = concat!("The `", stringify!($field), "` property.")]
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
            /// Correlation data, as text.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub correlation_data: Option<String>,
            /// Authentication data, as text.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub authentication_data: Option<String>,
            /// Response topic (prefixed per run like any topic).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub response_topic: Option<String>,
            /// One subscription identifier (SUBSCRIBE).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub subscription_identifier: Option<u32>,
            /// Subscription identifiers, in order (PUBLISH received).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub subscription_identifiers: Option<Vec<u32>>,
            /// User properties as `[key, value]` pairs, in order.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub user_properties: Option<Vec<(String, String)>>,
        }

        impl From<PropsYaml> for PropsSpec {
            fn from(y: PropsYaml) -> PropsSpec {
                let mut p = Properties::default();
                $(p.$field = y.$field.map(Into::into);)*
                p.correlation_data = y.correlation_data.map(Bytes::from);
                p.authentication_data = y.authentication_data.map(Bytes::from);
                p.response_topic = y.response_topic.map(Into::into);
                let ids_listed = y.subscription_identifier.is_some() || y.subscription_identifiers.is_some();
                p.subscription_identifiers.extend(y.subscription_identifier);
                p.subscription_identifiers.extend(y.subscription_identifiers.into_iter().flatten());
                let user_listed = y.user_properties.is_some();
                p.user_properties = y
                    .user_properties
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect();
                PropsSpec { properties: p, ids_listed, user_listed }
            }
        }

        impl From<PropsSpec> for PropsYaml {
            fn from(spec: PropsSpec) -> PropsYaml {
                let p = spec.properties;
                let text = |b: Bytes| String::from_utf8_lossy(&b).into_owned();
                PropsYaml {
                    $($field: p.$field.map(Into::into),)*
                    correlation_data: p.correlation_data.map(text),
                    authentication_data: p.authentication_data.map(text),
                    response_topic: p.response_topic.map(Into::into),
                    subscription_identifier: None,
                    subscription_identifiers: spec.ids_listed.then_some(p.subscription_identifiers),
                    user_properties: spec.user_listed.then(|| {
                        p.user_properties
                            .into_iter()
                            .map(|(k, v)| (k.into(), v.into()))
                            .collect()
                    }),
                }
            }
        }

        /// The name of a property, for `absent` lists.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
        #[serde(rename_all = "snake_case")]
        #[allow(non_camel_case_types)]
        pub enum PropName {
            $(
                #[doc = concat!("`", stringify!($field), "`")]
                $field,
            )*
            /// `correlation_data`
            correlation_data,
            /// `authentication_data`
            authentication_data,
            /// `response_topic`
            response_topic,
            /// `subscription_identifiers`
            subscription_identifiers,
            /// `user_properties`
            user_properties,
        }

        impl PropName {
            /// Whether `props` carries this property.
            pub fn is_present(self, props: &Properties) -> bool {
                match self {
                    $(PropName::$field => props.$field.is_some(),)*
                    PropName::correlation_data => props.correlation_data.is_some(),
                    PropName::authentication_data => props.authentication_data.is_some(),
                    PropName::response_topic => props.response_topic.is_some(),
                    PropName::subscription_identifiers => !props.subscription_identifiers.is_empty(),
                    PropName::user_properties => !props.user_properties.is_empty(),
                }
            }

            /// The snake-case name.
            pub fn name(self) -> &'static str {
                match self {
                    $(PropName::$field => stringify!($field),)*
                    PropName::correlation_data => "correlation_data",
                    PropName::authentication_data => "authentication_data",
                    PropName::response_topic => "response_topic",
                    PropName::subscription_identifiers => "subscription_identifiers",
                    PropName::user_properties => "user_properties",
                }
            }
        }

        impl PropsSpec {
            /// The codec properties to send; `topic` maps a scenario topic to its prefixed
            /// form (the only thing left to do at run time).
            pub fn to_properties(&self, topic: &dyn Fn(&str) -> String) -> Properties {
                let mut p = self.properties.clone();
                if let Some(t) = &p.response_topic {
                    p.response_topic = Some(topic(t).into());
                }
                p
            }

            /// Compare the listed properties with `actual`; unlisted ones are ignored.
            pub fn mismatches(
                &self,
                actual: &Properties,
                topic: &dyn Fn(&str) -> String,
            ) -> Vec<PropertyMismatch> {
                let expected = self.to_properties(topic);
                let mut out = Vec::new();
                let mut check = |name: &'static str, listed: bool, same: bool, e: String, a: String| {
                    if listed && !same {
                        out.push(PropertyMismatch { name, expected: e, actual: a });
                    }
                };
                macro_rules! one {
                    ($f:ident) => {
                        check(
                            stringify!($f),
                            expected.$f.is_some(),
                            expected.$f == actual.$f,
                            format!("{:?}", expected.$f),
                            format!("{:?}", actual.$f),
                        )
                    };
                }
                $(one!($field);)*
                one!(correlation_data);
                one!(authentication_data);
                one!(response_topic);
                check(
                    "subscription_identifiers",
                    self.ids_listed,
                    expected.subscription_identifiers == actual.subscription_identifiers,
                    format!("{:?}", expected.subscription_identifiers),
                    format!("{:?}", actual.subscription_identifiers),
                );
                check(
                    "user_properties",
                    self.user_listed,
                    expected.user_properties == actual.user_properties,
                    format!("{:?}", expected.user_properties),
                    format!("{:?}", actual.user_properties),
                );
                out
            }
        }
    };
}

/// A set of MQTT 5 properties in a scenario, resolved to the codec's [`Properties`] while the
/// YAML is read (so a bad value is a file:line:column error and nothing is converted per
/// step). Unset properties are neither sent nor compared.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(from = "PropsYaml", into = "PropsYaml")]
pub struct PropsSpec {
    /// The properties as sent (the response topic not yet prefixed for the run).
    pub properties: Properties,
    /// Whether subscription identifiers were listed (compared even when none).
    ids_listed: bool,
    /// Whether user properties were listed (compared even when none).
    user_listed: bool,
}

impl std::ops::Deref for PropsSpec {
    type Target = Properties;

    fn deref(&self) -> &Properties {
        &self.properties
    }
}

impl JsonSchema for PropsSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        PropsYaml::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        PropsYaml::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        PropsYaml::json_schema(generator)
    }
}

scalar_props! {
    payload_format_indicator: u8,
    message_expiry_interval: u32,
    content_type: String,
    session_expiry_interval: u32,
    assigned_client_identifier: String,
    server_keep_alive: u16,
    authentication_method: String,
    request_problem_information: u8,
    will_delay_interval: u32,
    request_response_information: u8,
    response_information: String,
    server_reference: String,
    reason_string: String,
    receive_maximum: u16,
    topic_alias_maximum: u16,
    topic_alias: u16,
    maximum_qos: u8,
    retain_available: u8,
    maximum_packet_size: u32,
    wildcard_subscription_available: u8,
    subscription_identifier_available: u8,
    shared_subscription_available: u8,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn same(t: &str) -> String {
        t.to_string()
    }

    #[test]
    fn only_listed_properties_are_compared() {
        let spec = PropsSpec::from(PropsYaml {
            message_expiry_interval: Some(10),
            ..Default::default()
        });
        let actual = Properties {
            message_expiry_interval: Some(10),
            content_type: Some("x".into()),
            ..Default::default()
        };
        assert!(spec.mismatches(&actual, &same).is_empty());
        let wrong = Properties {
            message_expiry_interval: Some(9),
            ..Default::default()
        };
        let m = spec.mismatches(&wrong, &same);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].name, "message_expiry_interval");
        let missing = Properties::default();
        assert_eq!(spec.mismatches(&missing, &same).len(), 1);
    }

    #[test]
    fn subscription_identifiers_compare_in_order() {
        let spec = PropsSpec::from(PropsYaml {
            subscription_identifiers: Some(vec![7, 8]),
            ..Default::default()
        });
        let actual = Properties {
            subscription_identifiers: vec![8, 7],
            ..Default::default()
        };
        assert_eq!(spec.mismatches(&actual, &same).len(), 1);
    }
}
