//! Broker configuration: listeners, limits, users and ACL, from code or from a TOML file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::codec::QoS;
use crate::protocol::{Defects, ServerLimits, Variants};

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is invalid or does not fit the schema.
    #[error("invalid configuration: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The transport of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// Plain TCP.
    #[default]
    Tcp,
    /// TLS over TCP (rustls).
    Tls,
    /// WebSocket (subprotocol `mqtt`) over TCP.
    Ws,
    /// WebSocket over TLS.
    Wss,
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Transport.
    #[serde(default)]
    pub kind: ListenerKind,
    /// Address to bind; port 0 picks a free port.
    pub bind: SocketAddr,
    /// PEM certificate chain (TLS).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM private key (TLS).
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// A user allowed to connect with a password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// User name.
    pub username: String,
    /// Password hash as produced by [`crate::broker::auth::hash_password`]
    /// (`sha256$<salt>$<hex digest>`).
    pub password_hash: String,
}

/// Whether a matching ACL rule grants or refuses access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AclAction {
    /// The matching topics are allowed.
    #[default]
    Allow,
    /// The matching topics are refused (Mosquitto's `topic deny`).
    Deny,
}

/// One ACL rule: which topics the matching clients may (or, with `action = "deny"`, may not)
/// publish and subscribe to. `%c` and `%u` in filters are replaced by the client id and user
/// name (a rule using `%u` does not match a client without a user name).
///
/// Rules are ordered and the first match wins: for a PUBLISH, the first rule that applies to
/// the client and has a `publish` filter matching the topic name decides; for a subscription,
/// the first rule that applies and has a `subscribe` filter covering the whole requested
/// filter decides (a `deny` of `a/#` refuses `a/b` and `a/+`, not `#`, which only overlaps
/// it). No deciding rule: refused. No rules at all: everything allowed. Example, everything
/// except one topic:
///
/// ```toml
/// [[acl]]
/// action = "deny"
/// subscribe = ["test/nosubscribe"]
/// [[acl]]
/// publish = ["#"]
/// subscribe = ["#"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AclRule {
    /// Allow (default) or deny what the filters match.
    #[serde(default)]
    pub action: AclAction,
    /// Applies to this user only (absent: any user).
    #[serde(default)]
    pub username: Option<String>,
    /// Applies to this client id only (absent: any client).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Topic filters of the topics the client may (deny: may not) publish to.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Topic filters the client may (deny: may not) subscribe within.
    #[serde(default)]
    pub subscribe: Vec<String>,
}

/// Limits, in a serde-friendly form (see [`ServerLimits`] for their meaning).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest packet accepted, bytes.
    pub max_packet_size: u32,
    /// Inbound receive maximum.
    pub receive_maximum: u16,
    /// Inbound topic alias maximum.
    pub topic_alias_maximum: u16,
    /// Maximum QoS (0, 1 or 2).
    pub maximum_qos: u8,
    /// Retained messages supported.
    pub retain_available: bool,
    /// Server keep alive imposed on every MQTT 5 client, seconds.
    pub server_keep_alive: Option<u16>,
    /// Keep alive ceiling, seconds (Mosquitto's `max_keepalive`): an MQTT 5 client asking for
    /// more, or for 0, is sent this as Server Keep Alive; others keep their own value.
    pub max_keep_alive: Option<u16>,
    /// Seconds a new connection has to send CONNECT.
    pub connect_timeout_secs: u64,
    /// Highest session expiry interval granted, seconds.
    pub max_session_expiry: u32,
    /// Outbound in-flight QoS 1/2 messages per client.
    pub max_inflight: u16,
    /// Messages queued per session (offline sessions drop beyond it).
    pub max_queued_messages: usize,
    /// Messages queued per online client, twice (in its connection and in the broker's
    /// overflow queue), before its publishers are slowed down.
    pub max_queued_online: usize,
    /// Queue QoS 0 messages for offline clients.
    pub queue_qos0: bool,
    /// Simultaneous connections.
    pub max_connections: usize,
    /// Capacity of each connection's delivery channel.
    pub channel_capacity: usize,
    /// Subscriptions one client may hold (more: SUBACK 0x97 Quota exceeded / 0x80).
    pub max_subscriptions_per_client: usize,
    /// Retained messages the broker stores (more: new topics are not retained).
    pub max_retained_messages: usize,
    /// Wildcard subscriptions supported (off: SUBACK 0xA2 / 0x80).
    pub wildcard_subscriptions: bool,
    /// Shared subscriptions supported (off: SUBACK 0x9E / 0x80).
    pub shared_subscriptions: bool,
    /// Subscription identifiers supported (off: SUBSCRIBE with one is closed with 0xA1).
    pub subscription_identifiers: bool,
    /// Seconds a write to a client may stall (peer not reading) before the connection is
    /// treated as lost.
    pub write_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = ServerLimits::default();
        LimitsConfig {
            max_packet_size: l.max_packet_size,
            receive_maximum: l.receive_maximum,
            topic_alias_maximum: l.topic_alias_maximum,
            maximum_qos: l.maximum_qos.as_u8(),
            retain_available: l.retain_available,
            server_keep_alive: l.server_keep_alive,
            max_keep_alive: l.max_keep_alive,
            connect_timeout_secs: l.connect_timeout.as_secs(),
            max_session_expiry: l.max_session_expiry,
            max_inflight: l.max_inflight,
            max_queued_messages: l.max_queued_messages,
            max_queued_online: l.max_queued_online,
            queue_qos0: l.queue_qos0,
            max_connections: 100_000,
            channel_capacity: 1024,
            max_subscriptions_per_client: 10_000,
            max_retained_messages: 100_000,
            wildcard_subscriptions: true,
            shared_subscriptions: true,
            subscription_identifiers: true,
            write_timeout_secs: 60,
        }
    }
}

impl LimitsConfig {
    /// The protocol-level limits.
    pub fn server_limits(&self) -> Result<ServerLimits, ConfigError> {
        let maximum_qos = QoS::from_u8(self.maximum_qos)
            .ok_or_else(|| ConfigError::Invalid(format!("maximum_qos {}", self.maximum_qos)))?;
        if self.receive_maximum == 0 {
            return Err(ConfigError::Invalid("receive_maximum must be > 0".into()));
        }
        if self.max_inflight == 0 || self.channel_capacity == 0 || self.max_queued_online == 0 {
            return Err(ConfigError::Invalid(
                "max_inflight, channel_capacity and max_queued_online must be > 0".into(),
            ));
        }
        Ok(ServerLimits {
            max_packet_size: self.max_packet_size,
            receive_maximum: self.receive_maximum,
            topic_alias_maximum: self.topic_alias_maximum,
            maximum_qos,
            retain_available: self.retain_available,
            wildcard_subscription_available: self.wildcard_subscriptions,
            subscription_identifiers_available: self.subscription_identifiers,
            shared_subscription_available: self.shared_subscriptions,
            server_keep_alive: self.server_keep_alive,
            max_keep_alive: self.max_keep_alive,
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            max_session_expiry: self.max_session_expiry,
            max_inflight: self.max_inflight,
            max_queued_messages: self.max_queued_messages,
            max_queued_online: self.max_queued_online,
            queue_qos0: self.queue_qos0,
            variants: Variants::default(),
            defects: Defects::default(),
        })
    }
}

/// Enhanced authentication (MQTT 5): the `challenge` method. The server sends a random nonce in
/// AUTH 0x18; the client answers with `hex(sha256(nonce || secret))`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeConfig {
    /// Shared secret.
    pub secret: String,
}

/// The whole broker configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Listeners.
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Whether clients without a user name may connect (default true).
    #[serde(default = "default_true")]
    pub allow_anonymous: bool,
    /// Users with passwords.
    #[serde(default, rename = "user")]
    pub users: Vec<UserConfig>,
    /// ACL rules; none means everything is allowed.
    #[serde(default)]
    pub acl: Vec<AclRule>,
    /// The `challenge` enhanced authentication method, if enabled.
    #[serde(default)]
    pub challenge_auth: Option<ChallengeConfig>,
    /// On-disk store of persistent sessions and retained messages (`persistence = "path"`);
    /// none keeps everything in memory.
    #[serde(default)]
    pub persistence: Option<PathBuf>,
    /// Prefix of the Response Information returned to MQTT 5 clients that request it (the
    /// client id is appended); none: never returned.
    #[serde(default)]
    pub response_information: Option<String>,
    /// The choices the specifications leave to a server (`[variants]`, see
    /// [`crate::protocol::variants`]).
    #[serde(default)]
    pub variants: Variants,
    /// Deliberate defects: never read from TOML (`skip`), set only through the Rust API of the
    /// `defects` feature ([`crate::protocol::defects`]).
    #[serde(skip)]
    pub defects: Defects,
}

fn default_true() -> bool {
    true
}

impl BrokerConfig {
    /// One plain TCP listener on `addr`, default limits, anonymous access.
    pub fn default_tcp(addr: SocketAddr) -> Self {
        BrokerConfig {
            listeners: vec![ListenerConfig {
                kind: ListenerKind::Tcp,
                bind: addr,
                cert: None,
                key: None,
            }],
            limits: LimitsConfig::default(),
            allow_anonymous: true,
            users: Vec::new(),
            acl: Vec::new(),
            challenge_auth: None,
            persistence: None,
            response_information: None,
            variants: Variants::default(),
            defects: Defects::default(),
        }
    }

    /// The protocol-level limits, with the variants and defects of this configuration.
    pub fn server_limits(&self) -> Result<ServerLimits, ConfigError> {
        Ok(ServerLimits {
            variants: self.variants,
            defects: self.defects,
            ..self.limits.server_limits()?
        })
    }

    /// Parse a TOML document.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config: BrokerConfig = toml::from_str(text)?;
        config.limits.server_limits()?;
        Ok(config)
    }

    /// Read and parse a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_full_toml() {
        let text = r##"
            allow_anonymous = false
            [[listener]]
            bind = "127.0.0.1:0"
            [[listener]]
            kind = "ws"
            bind = "127.0.0.1:0"
            [limits]
            max_packet_size = 1000
            maximum_qos = 1
            [[user]]
            username = "alice"
            password_hash = "sha256$00$00"
            [[acl]]
            username = "alice"
            publish = ["clients/%c/#"]
            subscribe = ["#"]
        "##;
        let c = BrokerConfig::from_toml_str(text).unwrap();
        assert_eq!(c.listeners.len(), 2);
        assert_eq!(c.listeners[1].kind, ListenerKind::Ws);
        assert!(!c.allow_anonymous);
        assert_eq!(
            c.limits.server_limits().unwrap().maximum_qos,
            QoS::AtLeastOnce
        );
        assert_eq!(c.users[0].username, "alice");
        assert_eq!(c.acl[0].publish, vec!["clients/%c/#"]);
    }

    #[test]
    fn rejects_bad_values() {
        assert!(BrokerConfig::from_toml_str("[limits]\nmaximum_qos = 3").is_err());
        assert!(BrokerConfig::from_toml_str("bogus = 1").is_err());
    }
}
