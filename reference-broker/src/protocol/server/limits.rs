//! What the server announces in CONNACK (MQTT 5) and enforces: its limits and capabilities.

use std::time::Duration;

use crate::codec::QoS;

/// Limits and capabilities of the server, announced in CONNACK (MQTT 5) and enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Largest packet the server accepts, in bytes.
    pub max_packet_size: u32,
    /// How many inbound QoS 1/2 PUBLISH may be unacknowledged at once.
    pub receive_maximum: u16,
    /// Highest inbound topic alias accepted (0 disables aliases).
    pub topic_alias_maximum: u16,
    /// Highest QoS the server supports.
    pub maximum_qos: QoS,
    /// Whether retained messages are supported.
    pub retain_available: bool,
    /// Whether wildcard subscriptions are supported.
    pub wildcard_subscription_available: bool,
    /// Whether subscription identifiers are supported.
    pub subscription_identifiers_available: bool,
    /// Whether shared subscriptions are supported.
    pub shared_subscription_available: bool,
    /// Keep alive the server imposes on every MQTT 5 client (Server Keep Alive), if any.
    pub server_keep_alive: Option<u16>,
    /// Highest keep alive granted to an MQTT 5 client (Mosquitto's `max_keepalive`): a client
    /// asking for more, or for 0 (none), gets this as Server Keep Alive; others keep theirs.
    /// MQTT 3.1.x has no way to tell the client, so it does not apply there.
    pub max_keep_alive: Option<u16>,
    /// Close a connection that sends no CONNECT within this time.
    pub connect_timeout: Duration,
    /// Highest session expiry interval granted, in seconds.
    pub max_session_expiry: u32,
    /// Most outbound QoS 1/2 messages in flight per client, whatever its receive maximum.
    pub max_inflight: u16,
    /// Most messages queued per session (offline sessions drop beyond it).
    pub max_queued_messages: usize,
    /// Most messages queued per online client before its publishers are slowed down: in its
    /// connection (waiting for its Receive Maximum) and again in the broker's overflow queue.
    /// Small, so that a slow consumer slows its publishers instead of holding seconds of
    /// messages (latency); capped by `max_queued_messages`.
    pub max_queued_online: usize,
    /// Whether QoS 0 messages are queued for offline or flow-controlled clients.
    pub queue_qos0: bool,
    /// The choices the specification leaves to the server.
    pub variants: crate::protocol::Variants,
    /// Deliberate defects (selftest only; none unless built with the `defects` feature).
    pub defects: crate::protocol::Defects,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_packet_size: 1024 * 1024,
            receive_maximum: 1024,
            topic_alias_maximum: 64,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
            server_keep_alive: None,
            max_keep_alive: None,
            connect_timeout: Duration::from_secs(10),
            max_session_expiry: u32::MAX,
            max_inflight: 1024,
            max_queued_messages: 10_000,
            max_queued_online: 1000,
            queue_qos0: false,
            variants: Default::default(),
            defects: Default::default(),
        }
    }
}
