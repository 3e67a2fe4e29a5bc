//! Verdict tiers and observation kinds: what level of the specification a step checks (a MUST
//! fails a broker, a SHOULD only warns), and the closed set of ways a step can fail, which
//! documented deviations name so that they excuse one failure and nothing else.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The level of the normative statement a step checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// A MUST (or MUST NOT): a broker that breaks it fails the case.
    #[default]
    Must,
    /// A SHOULD, or a recommended reason code: a broker that differs gets a warning.
    Should,
}

impl Level {
    /// The level a statement's text implies: SHOULD (or RECOMMENDED) without any MUST (or
    /// SHALL) is a SHOULD; anything else is a MUST.
    pub fn of_text(text: &str) -> Level {
        let has = |word: &str| {
            text.split(|c: char| !c.is_ascii_alphabetic())
                .any(|w| w == word)
        };
        let must = has("MUST") || has("SHALL") || has("REQUIRED");
        let should = has("SHOULD") || has("RECOMMENDED");
        if should && !must {
            Level::Should
        } else {
            Level::Must
        }
    }

    /// `MUST` or `SHOULD`, for reports.
    pub fn label(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        }
    }
}

/// How a step failed: a small closed set derived from what the runner observed. Deviations
/// name one of the broker-behaviour kinds; the others are never excused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Observation {
    /// A packet arrived where none (or none of its kind) may arrive.
    UnexpectedPacket,
    /// The expected packet did not arrive in time on a connection that stayed open.
    MissingPacket,
    /// The broker kept a connection open that it must close.
    ConnectionKeptOpen,
    /// The expected packet arrived with another reason code (CONNACK, SUBACK, UNSUBACK,
    /// PUBACK/PUBREC, DISCONNECT, AUTH).
    WrongReasonCode,
    /// The expected packet arrived with another field value (payload, QoS, flags,
    /// properties, topic).
    PacketDiffers,
    /// The broker sent bytes that do not decode, or a packet larger than allowed.
    MalformedPacket,
    /// The connection closed (or was reset) while the step waited for a packet or sent one.
    ConnectionClosed,
    /// A connection could not be opened (refused, unreachable).
    ConnectionRefused,
    /// The case ran out of time.
    Timeout,
    /// The harness itself failed (a proxy, a restart, a scenario mistake).
    Harness,
}

impl Observation {
    /// Every kind, in documentation order.
    pub const ALL: [Observation; 10] = [
        Observation::UnexpectedPacket,
        Observation::MissingPacket,
        Observation::ConnectionKeptOpen,
        Observation::WrongReasonCode,
        Observation::PacketDiffers,
        Observation::MalformedPacket,
        Observation::ConnectionClosed,
        Observation::ConnectionRefused,
        Observation::Timeout,
        Observation::Harness,
    ];

    /// Whether a documented deviation may excuse a failure of this kind: only observed broker
    /// behaviour, never a lost or refused connection, a timeout or a harness error.
    pub fn excusable(self) -> bool {
        matches!(
            self,
            Observation::UnexpectedPacket
                | Observation::MissingPacket
                | Observation::ConnectionKeptOpen
                | Observation::WrongReasonCode
                | Observation::PacketDiffers
                | Observation::MalformedPacket
        )
    }

    /// Whether a step at SHOULD level turns a failure of this kind into a warning: any
    /// judgement of the broker's answer (a close instead of a recommended packet included),
    /// never a refused connection, a timeout or a harness error.
    pub fn warnable(self) -> bool {
        !matches!(
            self,
            Observation::ConnectionRefused | Observation::Timeout | Observation::Harness
        )
    }

    /// The kebab-case name used in manifests and reports.
    pub fn name(self) -> &'static str {
        match self {
            Observation::UnexpectedPacket => "unexpected-packet",
            Observation::MissingPacket => "missing-packet",
            Observation::ConnectionKeptOpen => "connection-kept-open",
            Observation::WrongReasonCode => "wrong-reason-code",
            Observation::PacketDiffers => "packet-differs",
            Observation::MalformedPacket => "malformed-packet",
            Observation::ConnectionClosed => "connection-closed",
            Observation::ConnectionRefused => "connection-refused",
            Observation::Timeout => "timeout",
            Observation::Harness => "harness",
        }
    }
}

impl std::fmt::Display for Observation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_decides_the_level_when_it_has_should_and_no_must() {
        assert_eq!(
            Level::of_text("the Server SHOULD send a DISCONNECT"),
            Level::Should
        );
        assert_eq!(
            Level::of_text("The Server MUST close; it SHOULD send DISCONNECT"),
            Level::Must
        );
        assert_eq!(Level::of_text("MUSTARD SHOULDER"), Level::Must);
        assert_eq!(Level::of_text(""), Level::Must);
    }

    #[test]
    fn only_broker_behaviour_is_excusable() {
        let excusable: Vec<&str> = Observation::ALL
            .iter()
            .filter(|k| k.excusable())
            .map(|k| k.name())
            .collect();
        assert_eq!(
            excusable,
            [
                "unexpected-packet",
                "missing-packet",
                "connection-kept-open",
                "wrong-reason-code",
                "packet-differs",
                "malformed-packet"
            ]
        );
        assert!(!Observation::Timeout.warnable());
        assert!(Observation::ConnectionClosed.warnable());
    }
}
