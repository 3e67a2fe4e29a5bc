//! The system under test: the broker a run judges (the in-process reference broker on port 0, or an external
//! URL), and what it announces about its optional features.

use std::time::Duration;

use reference_broker::client::{Connection, Received, TransportOptions};
use reference_broker::codec::{Connect, Disconnect, Packet, Properties, ProtocolVersion};

use crate::redact::redact_url;
use crate::scenario::{Feature, Version};

pub mod container;
pub mod engine;
pub mod local_image;
pub mod presets;
mod reference;
mod restart;

pub use restart::{CaseBroker, RestartSupport};

/// Which broker to run against.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// The reference broker, started in-process on 127.0.0.1, port 0.
    Reference,
    /// An external broker by URL (`mqtt://[user:pass@]host:port`, mqtts, ws, wss).
    External {
        /// URL, possibly with credentials.
        url: String,
        /// Broker name for deviation lookup.
        name: String,
    },
    /// A broker in a container, started with testcontainers and removed at shutdown.
    Container(container::ContainerSpec),
}

/// Why a target cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The broker does not answer.
    #[error("broker {url} is unreachable: {reason}")]
    Unreachable {
        /// URL without credentials.
        url: String,
        /// Cause.
        reason: String,
    },
    /// The reference broker failed to start.
    #[error("the reference broker failed to start: {0}")]
    Reference(String),
    /// The container could not be started.
    #[error(transparent)]
    Container(#[from] container::ContainerError),
}

/// A started target.
pub struct RunningTarget {
    /// URL to connect to (may carry credentials; never printed).
    pub url: String,
    /// Name for deviation lookup (`reference` for the in-process broker).
    pub name: String,
    /// Credentials taken from the URL (clients that set none use them).
    pub credentials: Option<(String, String)>,
    /// Features the target profile declares beyond its CONNACK (authentication, enhanced
    /// authentication).
    pub features: Vec<Feature>,
    broker: Option<reference::InProcess>,
    container: Option<container::RunningContainer>,
}

impl std::fmt::Debug for RunningTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningTarget")
            .field("url", &self.display_url())
            .field("name", &self.name)
            .finish()
    }
}

impl RunningTarget {
    /// The URL without credentials, for reports.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }

    /// Stop the in-process broker, if any.
    pub async fn shutdown(self) {
        if let Some(broker) = self.broker {
            reference::stop(broker).await;
        }
        if let Some(c) = self.container {
            c.stop().await;
        }
    }
}

/// Split `user:pass@` out of a URL.
pub fn split_credentials(url: &str) -> (String, Option<(String, String)>) {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let clean = match scheme {
        Some(s) => format!("{s}://{host}{path}"),
        None => format!("{host}{path}"),
    };
    (clean, Some((user.to_string(), pass.to_string())))
}

/// Start (or reach) the target.
pub async fn start(spec: &TargetSpec) -> Result<RunningTarget, TargetError> {
    match spec {
        TargetSpec::Reference => {
            let secret = format!("mqttc-{}", crate::run_id::new_run_id());
            let (broker, bound) = reference::start(&secret).await?;
            Ok(RunningTarget {
                url: format!("mqtt://{bound}"),
                name: "reference".into(),
                credentials: None,
                features: vec![Feature::Authentication, Feature::EnhancedAuth],
                broker: Some(broker),
                container: None,
            })
        }
        TargetSpec::External { url, name } => {
            let (clean, credentials) = split_credentials(url);
            let features = if credentials.is_some() {
                vec![Feature::Authentication]
            } else {
                Vec::new()
            };
            Ok(RunningTarget {
                url: clean,
                name: name.clone(),
                credentials,
                features,
                broker: None,
                container: None,
            })
        }
        TargetSpec::Container(spec) => {
            let running = container::start(spec).await?;
            Ok(RunningTarget {
                url: running.url.clone(),
                name: spec.name.clone(),
                credentials: None,
                features: Vec::new(),
                broker: None,
                container: Some(running),
            })
        }
    }
}

/// What a target supports, from its MQTT 5 CONNACK and its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// MQTT 5 accepted.
    pub v5: bool,
    /// Maximum QoS (CONNACK Maximum QoS; 2 when absent).
    pub maximum_qos: u8,
    /// Retain Available.
    pub retain: bool,
    /// Wildcard Subscription Available.
    pub wildcard: bool,
    /// Shared Subscription Available.
    pub shared: bool,
    /// Subscription Identifier Available.
    pub subscription_identifiers: bool,
    /// Topic Alias Maximum.
    pub topic_alias_maximum: u16,
    /// TLS transport.
    pub tls: bool,
    /// WebSocket transport.
    pub websocket: bool,
    /// The broker authenticates users (credentials provided, or declared by the profile).
    pub authentication: bool,
    /// The profile declares an enhanced authentication method.
    pub enhanced_auth: bool,
}

impl Capabilities {
    /// Capabilities from CONNACK properties (MQTT 5 section 3.2.2.3: absent means available).
    pub fn from_connack(props: &Properties, url: &str, profile: &[Feature]) -> Capabilities {
        let on = |v: Option<u8>| v.is_none_or(|b| b != 0);
        Capabilities {
            v5: true,
            maximum_qos: props.maximum_qos.unwrap_or(2),
            retain: on(props.retain_available),
            wildcard: on(props.wildcard_subscription_available),
            shared: on(props.shared_subscription_available),
            subscription_identifiers: on(props.subscription_identifier_available),
            topic_alias_maximum: props.topic_alias_maximum.unwrap_or(0),
            tls: url.starts_with("mqtts://") || url.starts_with("wss://"),
            websocket: url.starts_with("ws://") || url.starts_with("wss://"),
            authentication: profile.contains(&Feature::Authentication),
            enhanced_auth: profile.contains(&Feature::EnhancedAuth),
        }
    }

    /// Why `feature` is unmet under `version`, or None when the target has it.
    pub fn unmet(&self, feature: Feature, version: Version) -> Option<String> {
        let announced =
            |what: &str| format!("the broker announces no {what} in its MQTT 5 CONNACK");
        let missing = match feature {
            Feature::Retain if !self.retain => announced("Retain Available"),
            Feature::WildcardSubscriptions if !self.wildcard => {
                announced("Wildcard Subscription Available")
            }
            Feature::SharedSubscriptions if !self.shared => {
                announced("Shared Subscription Available")
            }
            Feature::SubscriptionIdentifiers if !self.subscription_identifiers => {
                announced("Subscription Identifier Available")
            }
            Feature::Qos1 if self.maximum_qos < 1 => format!("Maximum QoS is {}", self.maximum_qos),
            Feature::Qos2 if self.maximum_qos < 2 => format!("Maximum QoS is {}", self.maximum_qos),
            Feature::TopicAlias if self.topic_alias_maximum == 0 => {
                "Topic Alias Maximum is 0".into()
            }
            Feature::Tls if !self.tls => "the target is not a TLS listener".into(),
            Feature::Websocket if !self.websocket => {
                "the target is not a WebSocket listener".into()
            }
            Feature::Authentication if !self.authentication => {
                "the target profile provides no credentials and declares no authentication".into()
            }
            Feature::EnhancedAuth if !self.enhanced_auth => {
                "the target profile declares no enhanced authentication method".into()
            }
            _ => return None,
        };
        let _ = version;
        Some(format!("requires {}: {missing}", feature.name()))
    }
}

/// Probe the target with an MQTT 5 CONNECT; an unreachable broker is an error, a broker that
/// refuses MQTT 5 gives `v5: false`.
pub async fn probe(
    target: &RunningTarget,
    transport: &TransportOptions,
    run_id: &str,
) -> Result<Capabilities, TargetError> {
    let unreachable = |reason: String| TargetError::Unreachable {
        url: target.display_url(),
        reason,
    };
    let mut conn = Connection::open(&target.url, transport)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let (username, password) = match &target.credentials {
        Some((u, p)) => (Some(u.clone()), Some(bytes::Bytes::from(p.clone()))),
        None => (None, None),
    };
    let connect = Connect {
        protocol: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 30,
        client_id: format!("{run_id}-probe"),
        will: None,
        username,
        password,
        properties: Properties::default().into(),
    };
    conn.send(&Packet::Connect(Box::new(connect)))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let received = conn.recv(Duration::from_secs(5)).await;
    let url = target.url.clone();
    let caps = match received {
        Ok(Received::Packet(Packet::ConnAck(ack))) if ack.code.is_success() => {
            let _ = conn.send(&Packet::Disconnect(Disconnect::default())).await;
            Capabilities::from_connack(&ack.properties, &url, &target.features)
        }
        Ok(Received::Packet(Packet::ConnAck(ack))) if ack.code.0 == 0x84 || ack.code.0 == 0x01 => {
            Capabilities {
                v5: false,
                ..Capabilities::from_connack(&Properties::default(), &url, &target.features)
            }
        }
        Ok(Received::Closed) => Capabilities {
            v5: false,
            ..Capabilities::from_connack(&Properties::default(), &url, &target.features)
        },
        Ok(other) => {
            return Err(unreachable(format!(
                "unexpected answer to CONNECT: {other:?}"
            )))
        }
        Err(e) => return Err(unreachable(e.to_string())),
    };
    conn.abort();
    Ok(caps)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_from_urls() {
        let (url, creds) = split_credentials("mqtt://u:p@h:1883");
        assert_eq!(url, "mqtt://h:1883");
        assert_eq!(creds, Some(("u".into(), "p".into())));
        assert_eq!(split_credentials("mqtt://h:1").1, None);
    }

    #[test]
    fn absent_connack_properties_mean_available() {
        let caps = Capabilities::from_connack(&Properties::default(), "mqtt://h:1", &[]);
        assert_eq!(caps.unmet(Feature::Retain, Version::V5), None);
        assert_eq!(caps.unmet(Feature::Qos2, Version::V5), None);
        let limited = Capabilities::from_connack(
            &Properties {
                maximum_qos: Some(1),
                retain_available: Some(0),
                ..Default::default()
            },
            "mqtt://h:1",
            &[],
        );
        assert!(limited.unmet(Feature::Qos2, Version::V5).is_some());
        assert!(limited.unmet(Feature::Retain, Version::V5).is_some());
        assert_eq!(limited.unmet(Feature::Qos1, Version::V5), None);
    }
}
