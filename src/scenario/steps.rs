//! The bodies of the protocol steps of a scenario (`connect` ... `sleep`), as typed serde
//! structs: QoS, Retain Handling, payloads, raw bytes, reason codes and durations are codec
//! values once loaded.

use bytes::Bytes;
use reference_broker::codec::PacketType;
use schemars::JsonSchema;
use serde::Deserialize;

use super::assume::ConnackAssume;
use super::codec_values::{HexBytes, Qos, Retain, Text};
use super::hex::RawTemplate;
use super::model::yes;
use super::properties::{PropName, PropsSpec};
use super::tier::Level;
use super::values::{ClientPacket, Code, Dur, Kind, Version};

/// What a CONNACK must say.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnackExpect {
    /// Reason / return code (default success).
    #[serde(default)]
    pub code: Option<Code>,
    /// Session Present flag (default false on success).
    #[serde(default)]
    pub session_present: Option<bool>,
    /// CONNACK properties to compare (5).
    #[serde(default)]
    pub properties: Option<PropsSpec>,
    /// Properties that must be absent.
    #[serde(default)]
    pub absent: Vec<PropName>,
    /// Properties that must be present, with any value.
    #[serde(default)]
    pub present: Vec<PropName>,
}

/// `connect`
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectStep {
    /// Client name.
    pub client: String,
    /// Override the client's Clean Start for this connection.
    #[serde(default)]
    pub clean_start: Option<bool>,
    /// Expected CONNACK.
    #[serde(default)]
    pub expect: ConnackExpect,
    /// Wait for CONNACK at most this long (default 2s).
    #[serde(default)]
    pub within: Option<Dur>,
    /// The broker may refuse this CONNECT under a restriction of its own that the
    /// specification allows (MQTT 5 [MQTT-3.1.4-2]; 3.1.1 section 3.1.4): a refusal CONNACK,
    /// or a close without a CONNACK, then skips the case with the refusal as the reason
    /// instead of failing it. Only for a CONNECT whose parameters a server may refuse (Keep
    /// Alive 0, say) and which is not what the case checks.
    #[serde(default)]
    pub refusal_allowed: bool,
    /// The CONNACK values the case is built on (effective Keep Alive, Session Expiry
    /// Interval, the broker's limits): a CONNACK that makes one differ skips the case, with
    /// the property and value as the reason, instead of failing it.
    #[serde(default)]
    pub assume: ConnackAssume,
    /// The normative statement this step checks: quoted when the step fails, named by
    /// deviations, and the source of the step's level when `level` is absent.
    #[serde(default)]
    pub statement: Option<String>,
    /// `must` (a difference fails the case) or `should` (it warns); default: `should` when
    /// the statement's text has SHOULD and no MUST, else `must`.
    #[serde(default)]
    pub level: Option<Level>,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// One filter of a SUBSCRIBE.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    /// Topic filter (prefixed).
    pub filter: String,
    /// Maximum QoS.
    #[serde(default)]
    pub qos: Qos,
    /// No Local (5).
    #[serde(default)]
    pub no_local: bool,
    /// Retain As Published (5).
    #[serde(default)]
    pub retain_as_published: bool,
    /// Retain Handling 0..=2 (5).
    #[serde(default)]
    pub retain_handling: Retain,
    /// Save the code the SUBACK returned for this filter under this name, so that a later
    /// `expect` can judge a delivery by the QoS actually granted (`granted`).
    #[serde(default)]
    pub save_granted: Option<String>,
}

/// What a SUBACK must say: exact codes, or a rule every code must follow.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SubackExpect {
    /// These codes, in this order.
    Codes(Vec<Code>),
    /// A rule for every code.
    Rule(SubackRule),
}

/// A rule for the codes of a SUBACK, where the specification allows several answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubackRule {
    /// One code per filter, in order, each a granted QoS at most the one requested or a
    /// failure code: "The Server might grant a lower Maximum QoS than the subscriber
    /// requested" (3.1.1 and 5, section 3.8.4), or refuse the subscription
    /// ([MQTT-3.8.4-7]; 3.1.1 [MQTT-3.8.4-5]).
    AtMost,
}

/// `subscribe`
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeStep {
    /// Client name.
    pub client: String,
    /// Filters and options.
    pub filters: Vec<FilterSpec>,
    /// SUBSCRIBE properties (5).
    #[serde(default)]
    pub properties: PropsSpec,
    /// Expected SUBACK codes, or `at_most` (each code a QoS at most the requested one, or a
    /// failure); default: every code a success.
    #[serde(default)]
    pub expect: Option<SubackExpect>,
    /// Wait for SUBACK at most this long (default 2s).
    #[serde(default)]
    pub within: Option<Dur>,
    /// The normative statement this step checks: quoted when the step fails, named by
    /// deviations, and the source of the step's level when `level` is absent.
    #[serde(default)]
    pub statement: Option<String>,
    /// `must` (a difference fails the case) or `should` (it warns); default: `should` when
    /// the statement's text has SHOULD and no MUST, else `must`.
    #[serde(default)]
    pub level: Option<Level>,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `unsubscribe`
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnsubscribeStep {
    /// Client name.
    pub client: String,
    /// Topic filters (prefixed).
    pub filters: Vec<String>,
    /// UNSUBSCRIBE properties (5).
    #[serde(default)]
    pub properties: PropsSpec,
    /// Expected UNSUBACK codes (checked in 5 only).
    #[serde(default)]
    pub expect: Option<Vec<Code>>,
    /// Wait for UNSUBACK at most this long (default 2s).
    #[serde(default)]
    pub within: Option<Dur>,
    /// The normative statement this step checks: quoted when the step fails, named by
    /// deviations, and the source of the step's level when `level` is absent.
    #[serde(default)]
    pub statement: Option<String>,
    /// `must` (a difference fails the case) or `should` (it warns); default: `should` when
    /// the statement's text has SHOULD and no MUST, else `must`.
    #[serde(default)]
    pub level: Option<Level>,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// What the acknowledgement of a PUBLISH must say.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AckExpect {
    /// PUBACK / PUBREC reason code (5).
    #[serde(default)]
    pub reason: Option<Code>,
}

/// `publish`
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishStep {
    /// Client name.
    pub client: String,
    /// Topic (prefixed).
    pub topic: String,
    /// Payload as text.
    #[serde(default)]
    pub payload: Option<Text>,
    /// Payload as hex.
    #[serde(default)]
    pub payload_hex: Option<HexBytes>,
    /// QoS.
    #[serde(default)]
    pub qos: Qos,
    /// RETAIN flag.
    #[serde(default)]
    pub retain: bool,
    /// DUP flag.
    #[serde(default)]
    pub dup: bool,
    /// Packet identifier (default: the client's next one).
    #[serde(default)]
    pub packet_id: Option<u16>,
    /// PUBLISH properties (5).
    #[serde(default)]
    pub properties: PropsSpec,
    /// Complete the QoS 1/2 flow before the next step (default true).
    #[serde(default = "yes")]
    pub await_ack: bool,
    /// Expected acknowledgement.
    #[serde(default)]
    pub expect: AckExpect,
    /// Wait for the acknowledgement at most this long (default 2s).
    #[serde(default)]
    pub within: Option<Dur>,
    /// The normative statement this step checks: quoted when the step fails, named by
    /// deviations, and the source of the step's level when `level` is absent.
    #[serde(default)]
    pub statement: Option<String>,
    /// `must` (a difference fails the case) or `should` (it warns); default: `should` when
    /// the statement's text has SHOULD and no MUST, else `must`.
    #[serde(default)]
    pub level: Option<Level>,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

impl PublishStep {
    /// The payload: `payload_hex` or `payload` (the loader rejects both), else empty.
    pub fn payload_bytes(&self) -> Bytes {
        match (&self.payload_hex, &self.payload) {
            (Some(h), _) => h.0.clone(),
            (None, Some(t)) => t.0.clone(),
            (None, None) => Bytes::new(),
        }
    }
}

fn publish_kind() -> Kind {
    Kind(PacketType::Publish)
}

/// `expect`: a pattern the next packet of that kind must match.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectStep {
    /// Client name.
    pub client: String,
    /// Packet kind (default publish).
    #[serde(default = "publish_kind")]
    pub packet: Kind,
    /// Topic (prefixed before comparing).
    #[serde(default)]
    pub topic: Option<String>,
    /// Payload as text.
    #[serde(default)]
    pub payload: Option<Text>,
    /// Payload as hex.
    #[serde(default)]
    pub payload_hex: Option<HexBytes>,
    /// QoS.
    #[serde(default)]
    pub qos: Option<Qos>,
    /// RETAIN flag.
    #[serde(default)]
    pub retain: Option<bool>,
    /// DUP flag.
    #[serde(default)]
    pub dup: Option<bool>,
    /// Packet identifier.
    #[serde(default)]
    pub packet_id: Option<u16>,
    /// Reason code (acks, DISCONNECT, AUTH, CONNACK).
    #[serde(default)]
    pub reason: Option<Code>,
    /// SUBACK / UNSUBACK codes.
    #[serde(default)]
    pub codes: Option<Vec<Code>>,
    /// CONNACK Session Present.
    #[serde(default)]
    pub session_present: Option<bool>,
    /// Properties to compare (only those listed).
    #[serde(default)]
    pub properties: Option<PropsSpec>,
    /// Properties that must be absent.
    #[serde(default)]
    pub absent: Vec<PropName>,
    /// Properties that must be present, with any value.
    #[serde(default)]
    pub present: Vec<PropName>,
    /// Save the received packet identifier under this name (for `packet_id_from`).
    #[serde(default)]
    pub save_id: Option<String>,
    /// The packet identifier must equal the one saved under this name.
    #[serde(default)]
    pub packet_id_from: Option<String>,
    /// The delivery's QoS is the minimum of `qos` (the published QoS) and the QoS granted to
    /// the filter saved under this name (`save_granted`): [MQTT-3.8.4-8]; 3.1.1
    /// [MQTT-3.8.4-6]. When that filter was refused, the step does not apply and holds
    /// without reading a packet.
    #[serde(default)]
    pub granted: Option<String>,
    /// How long to wait (default 2s).
    #[serde(default)]
    pub within: Option<Dur>,
    /// The normative statement this step checks: quoted when the step fails, named by
    /// deviations, and the source of the step's level when `level` is absent.
    #[serde(default)]
    pub statement: Option<String>,
    /// `must` (a difference fails the case) or `should` (it warns); default: `should` when
    /// the statement's text has SHOULD and no MUST, else `must`.
    #[serde(default)]
    pub level: Option<Level>,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `expect_one_of`: the step holds when every pattern of one alternative matches a distinct
/// queued packet of its kind on its client (in any order); the matched packets are consumed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectOneOfStep {
    /// The alternatives, each a list of `expect` patterns (each naming its client).
    pub alternatives: Vec<Vec<ExpectStep>>,
    /// The step also holds when the broker closes one of these clients' connections first
    /// (e.g. "SUBACK 0x8F, or the connection is closed").
    #[serde(default)]
    pub or_close: Vec<String>,
    /// How long to wait for one alternative to be complete (default 2s).
    #[serde(default)]
    pub within: Option<Dur>,
    /// The normative statement this step checks: quoted when the step fails, named by
    /// deviations, and the source of the step's level when `level` is absent.
    #[serde(default)]
    pub statement: Option<String>,
    /// `must` (a difference fails the case) or `should` (it warns); default: `should` when
    /// the statement's text has SHOULD and no MUST, else `must`.
    #[serde(default)]
    pub level: Option<Level>,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `expect_nothing`
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectNothingStep {
    /// Client name.
    pub client: String,
    /// How long nothing must arrive.
    #[serde(rename = "for")]
    pub duration: Dur,
    /// Only this kind counts (default: any packet).
    #[serde(default)]
    pub packet: Option<Kind>,
    /// Only a packet with this reason code counts (CONNACK, DISCONNECT, PUBACK, PUBREC,
    /// PUBREL, PUBCOMP): e.g. "no CONNACK 0x00", where a refusal is allowed. A 3.1.1 CONNACK
    /// is compared by its return code.
    #[serde(default)]
    pub reason: Option<Code>,
    /// The normative statement this step checks: quoted when the step fails, named by
    /// deviations, and the source of the step's level when `level` is absent.
    #[serde(default)]
    pub statement: Option<String>,
    /// `must` (a difference fails the case) or `should` (it warns); default: `should` when
    /// the statement's text has SHOULD and no MUST, else `must`.
    #[serde(default)]
    pub level: Option<Level>,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `expect_close`
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectCloseStep {
    /// Client name.
    pub client: String,
    /// How long to wait (default 2s).
    #[serde(default)]
    pub within: Option<Dur>,
    /// In 5, the reason of a DISCONNECT sent before the close.
    #[serde(default)]
    pub reason: Option<Code>,
    /// When set, only packets of these kinds may arrive before the close (`[]`: nothing at
    /// all, e.g. no CONNACK; `[disconnect]`: nothing but a DISCONNECT, and nothing after it).
    #[serde(default)]
    pub allow_before: Option<Vec<Kind>>,
    /// The normative statement this step checks: quoted when the step fails, named by
    /// deviations, and the source of the step's level when `level` is absent.
    #[serde(default)]
    pub statement: Option<String>,
    /// `must` (a difference fails the case) or `should` (it warns); default: `should` when
    /// the statement's text has SHOULD and no MUST, else `must`.
    #[serde(default)]
    pub level: Option<Level>,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `send`: one packet, exactly as described (fields default to zero / empty).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendStep {
    /// Client name.
    pub client: String,
    /// Packet kind.
    pub packet: ClientPacket,
    /// Packet identifier.
    #[serde(default)]
    pub packet_id: Option<u16>,
    /// Use the packet identifier saved by an `expect` with `save_id`.
    #[serde(default)]
    pub packet_id_from: Option<String>,
    /// Reason code.
    #[serde(default)]
    pub reason: Option<Code>,
    /// Topic (PUBLISH, prefixed).
    #[serde(default)]
    pub topic: Option<String>,
    /// Payload as text (PUBLISH).
    #[serde(default)]
    pub payload: Text,
    /// QoS (PUBLISH).
    #[serde(default)]
    pub qos: Qos,
    /// RETAIN (PUBLISH).
    #[serde(default)]
    pub retain: bool,
    /// DUP (PUBLISH).
    #[serde(default)]
    pub dup: bool,
    /// Filters (SUBSCRIBE).
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
    /// Properties (5).
    #[serde(default)]
    pub properties: PropsSpec,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `send_raw`
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRawStep {
    /// Client name (its transport is opened if needed).
    pub client: String,
    /// Hex bytes; spaces allowed; `${topic:NAME}` and `${client_id:NAME}` placeholders.
    pub hex: RawTemplate,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `disconnect`
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisconnectStep {
    /// Client name.
    pub client: String,
    /// Reason code (5).
    #[serde(default)]
    pub reason: Option<Code>,
    /// DISCONNECT properties (5).
    #[serde(default)]
    pub properties: PropsSpec,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `drop`
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DropStep {
    /// Client name.
    pub client: String,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `sleep: 1.5s` or `sleep: {for: 1.5s, only: "5"}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
// The message for a value that is neither form (instead of serde's "untagged enum SleepStep").
#[serde(
    untagged,
    expecting = "a duration like 1.5s, or {for: DURATION, only: VERSION}"
)]
pub enum SleepStep {
    /// Just a duration.
    Plain(Dur),
    /// A duration with a version restriction.
    Full {
        /// How long.
        #[serde(rename = "for")]
        duration: Dur,
        /// Version restriction.
        #[serde(default)]
        only: Option<Version>,
    },
}

impl SleepStep {
    /// How long to sleep.
    pub fn duration(&self) -> Dur {
        match self {
            SleepStep::Plain(d) | SleepStep::Full { duration: d, .. } => *d,
        }
    }
}
