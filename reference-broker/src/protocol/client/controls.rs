//! The client's misbehaviour switches: what a conformance test makes it do wrong on purpose.

use std::time::Duration;

/// Switches that make the client misbehave on purpose, for conformance tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controls {
    /// Answer PUBLISH with PUBACK/PUBREC and PUBREL with PUBCOMP (default true). When false
    /// nothing is acknowledged: the test sends acknowledgements itself.
    pub auto_ack: bool,
    /// Queue acknowledgements instead of sending them, until [`ClientState::release_held`].
    pub hold_acks: bool,
    /// Send acknowledgements only this long after the packet they answer.
    pub ack_delay: Option<Duration>,
    /// On PUBREC, never send the PUBREL (the QoS 2 flow stalls half way).
    pub never_send_pubrel: bool,
    /// Send PINGREQ when keep alive requires it (default true).
    pub auto_ping: bool,
    /// Replace topics with aliases when the broker allows them (default false).
    pub use_topic_aliases: bool,
    /// Refuse to send what the broker's CONNACK forbids (default true). When false the
    /// client exceeds Receive Maximum, Maximum Packet Size, Maximum QoS on request.
    pub enforce_limits: bool,
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            auto_ack: true,
            hold_acks: false,
            ack_delay: None,
            never_send_pubrel: false,
            auto_ping: true,
            use_topic_aliases: false,
            enforce_limits: true,
        }
    }
}

/// In which order held acknowledgements go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOrder {
    /// The order they were produced in.
    InOrder,
    /// Reversed: out of order on purpose.
    Reversed,
}
