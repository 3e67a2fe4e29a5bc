//! MQTT 5 properties as written in scenarios: building them for packets sent, comparing them
//! with packets received (only the listed ones), asserting absence by name.

use bytes::Bytes;
use reference_broker::codec::Properties;
use schemars::JsonSchema;
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
        /// A set of MQTT 5 properties in a scenario. Unset fields are neither sent nor compared.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct PropsSpec {
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
            /// The codec properties to send; `topic` maps a scenario topic to its prefixed form.
            pub fn to_properties(&self, topic: &dyn Fn(&str) -> String) -> Properties {
                let mut p = Properties::default();
                $(p.$field = self.$field.clone().map(Into::into);)*
                p.correlation_data = self.correlation_data.as_ref().map(|s| Bytes::from(s.clone()));
                p.authentication_data =
                    self.authentication_data.as_ref().map(|s| Bytes::from(s.clone()));
                p.response_topic = self.response_topic.as_deref().map(topic).map(Into::into);
                if let Some(id) = self.subscription_identifier {
                    p.subscription_identifiers.push(id);
                }
                if let Some(ids) = &self.subscription_identifiers {
                    p.subscription_identifiers.extend(ids.iter().copied());
                }
                if let Some(user) = &self.user_properties {
                    p.user_properties = user
                        .iter()
                        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                        .collect();
                }
                p
            }

            /// Compare the listed properties with `actual`; unlisted ones are ignored.
            pub fn mismatches(
                &self,
                actual: &Properties,
                topic: &dyn Fn(&str) -> String,
            ) -> Vec<PropertyMismatch> {
                let mut out = Vec::new();
                let mut check = |name: &'static str, expected: Option<String>, actual: String| {
                    if let Some(expected) = expected {
                        if expected != actual {
                            out.push(PropertyMismatch { name, expected, actual });
                        }
                    }
                };
                $(check(
                    stringify!($field),
                    self.$field.as_ref().map(|v| format!("{:?}", Some(v))),
                    format!("{:?}", actual.$field.as_ref()),
                );)*
                check(
                    "correlation_data",
                    self.correlation_data.as_ref().map(|v| format!("{:?}", Some(v.as_bytes()))),
                    format!("{:?}", actual.correlation_data.as_deref()),
                );
                check(
                    "authentication_data",
                    self.authentication_data.as_ref().map(|v| format!("{:?}", Some(v.as_bytes()))),
                    format!("{:?}", actual.authentication_data.as_deref()),
                );
                check(
                    "response_topic",
                    self.response_topic.as_deref().map(|v| format!("{:?}", Some(topic(v)))),
                    format!("{:?}", actual.response_topic.as_ref()),
                );
                let ids = match (&self.subscription_identifiers, self.subscription_identifier) {
                    (Some(ids), _) => Some(ids.clone()),
                    (None, Some(id)) => Some(vec![id]),
                    (None, None) => None,
                };
                check(
                    "subscription_identifiers",
                    ids.map(|v| format!("{v:?}")),
                    format!("{:?}", actual.subscription_identifiers),
                );
                check(
                    "user_properties",
                    self.user_properties.as_ref().map(|v| format!("{v:?}")),
                    format!("{:?}", actual.user_properties),
                );
                out
            }
        }
    };
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
        let spec = PropsSpec {
            message_expiry_interval: Some(10),
            ..Default::default()
        };
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
        let spec = PropsSpec {
            subscription_identifiers: Some(vec![7, 8]),
            ..Default::default()
        };
        let actual = Properties {
            subscription_identifiers: vec![8, 7],
            ..Default::default()
        };
        assert_eq!(spec.mismatches(&actual, &same).len(), 1);
    }
}
