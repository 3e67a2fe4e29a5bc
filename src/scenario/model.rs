//! The scenario model: what a YAML case says, as serde types (unknown fields rejected).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::faults::{
    BandwidthStep, BlackholeStep, LatencyStep, LimitDataStep, LinkStep, ResetPeerStep, RestartStep,
    SlicerStep, SlowCloseStep,
};
use super::properties::{PropName, PropsSpec};
use super::values::{Code, Dur, Feature, PacketKind, Version};

/// One test case.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name within its suite, kebab-case.
    pub name: String,
    /// What the case checks, for humans.
    #[serde(default)]
    pub description: String,
    /// Normative statements checked, per version.
    #[serde(default)]
    pub spec: BTreeMap<Version, Vec<String>>,
    /// The versions the case runs under (once each).
    pub versions: Vec<Version>,
    /// Free tags for selection.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Optional broker features the case needs.
    #[serde(default)]
    pub requires: Vec<Feature>,
    /// Named clients and their CONNECT options.
    #[serde(default)]
    pub clients: BTreeMap<String, ClientSpec>,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

impl Scenario {
    /// Whether any step is a network fault (the clients then connect through proxies).
    pub fn has_faults(&self) -> bool {
        self.steps.iter().any(|s| s.fault_client().is_some())
    }

    /// Whether any step restarts the broker.
    pub fn restarts_broker(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, Step::RestartBroker(_)))
    }

    /// The normative statements this case checks under `version`.
    pub fn statements(&self, version: Version) -> &[String] {
        self.spec.get(&version).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// A will message in a client's CONNECT.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WillSpec {
    /// Will topic (prefixed).
    pub topic: String,
    /// Will payload as text.
    #[serde(default)]
    pub payload: String,
    /// Will QoS.
    #[serde(default)]
    pub qos: u8,
    /// Will retain flag.
    #[serde(default)]
    pub retain: bool,
    /// Will properties (5).
    #[serde(default)]
    pub properties: PropsSpec,
}

fn yes() -> bool {
    true
}

fn sixty() -> u16 {
    60
}

/// A named client and its CONNECT options.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Clean Session (3.1.1) / Clean Start (5).
    #[serde(default = "yes")]
    pub clean_start: bool,
    /// Keep alive in seconds.
    #[serde(default = "sixty")]
    pub keep_alive: u16,
    /// `auto` (default), `""` for an empty id, or a name that is prefixed per run.
    #[serde(default)]
    pub client_id: Option<String>,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
    /// Will message.
    #[serde(default)]
    pub will: Option<WillSpec>,
    /// CONNECT properties (5).
    #[serde(default)]
    pub properties: PropsSpec,
    /// Whether the runner acknowledges QoS 1/2 deliveries itself.
    #[serde(default = "yes")]
    pub auto_ack: bool,
}

impl Default for ClientSpec {
    fn default() -> Self {
        ClientSpec {
            clean_start: true,
            keep_alive: 60,
            client_id: None,
            username: None,
            password: None,
            will: None,
            properties: PropsSpec::default(),
            auto_ack: true,
        }
    }
}

/// One step of a case. Every step body may carry `only: "3.1.1"` or `only: "5"`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Open a connection and send CONNECT; expect CONNACK.
    Connect(ConnectStep),
    /// SUBSCRIBE and expect SUBACK.
    Subscribe(SubscribeStep),
    /// UNSUBSCRIBE and expect UNSUBACK.
    Unsubscribe(UnsubscribeStep),
    /// PUBLISH (and complete its QoS flow unless told not to).
    Publish(PublishStep),
    /// Expect a packet on a client.
    Expect(ExpectStep),
    /// Expect one of several alternative packet sets (any order within a set).
    ExpectOneOf(ExpectOneOfStep),
    /// Expect no packet (of a kind) for a while.
    ExpectNothing(ExpectNothingStep),
    /// Expect the broker to close the connection.
    ExpectClose(ExpectCloseStep),
    /// Send one packet exactly as described.
    Send(SendStep),
    /// Send raw bytes.
    SendRaw(SendRawStep),
    /// Normal DISCONNECT.
    Disconnect(DisconnectStep),
    /// Close the TCP connection abruptly.
    Drop(DropStep),
    /// Wait (only where the protocol is about time).
    Sleep(SleepStep),
    /// Fault: drop the TCP connection both ways without DISCONNECT (reconnecting works).
    Cut(LinkStep),
    /// Fault: drop the connection and refuse new ones until `heal`.
    Down(LinkStep),
    /// Fault: keep the socket open but pass no data (half-open link).
    Blackhole(BlackholeStep),
    /// Fault: delay data.
    Latency(LatencyStep),
    /// Fault: limit the rate.
    Bandwidth(BandwidthStep),
    /// Fault: split the stream into small chunks with pauses.
    Slicer(SlicerStep),
    /// Fault: close the connection after N bytes.
    LimitData(LimitDataStep),
    /// Fault: delay the close of the connection.
    SlowClose(SlowCloseStep),
    /// Fault: reset the connection (TCP RST) on the next data.
    ResetPeer(ResetPeerStep),
    /// Remove every fault and accept connections again.
    Heal(LinkStep),
    /// Restart the broker (same address, same configuration).
    RestartBroker(RestartStep),
}

impl Step {
    /// The keyword of the step in YAML.
    pub fn keyword(&self) -> &'static str {
        match self {
            Step::Connect(_) => "connect",
            Step::Subscribe(_) => "subscribe",
            Step::Unsubscribe(_) => "unsubscribe",
            Step::Publish(_) => "publish",
            Step::Expect(_) => "expect",
            Step::ExpectOneOf(_) => "expect_one_of",
            Step::ExpectNothing(_) => "expect_nothing",
            Step::ExpectClose(_) => "expect_close",
            Step::Send(_) => "send",
            Step::SendRaw(_) => "send_raw",
            Step::Disconnect(_) => "disconnect",
            Step::Drop(_) => "drop",
            Step::Sleep(_) => "sleep",
            Step::Cut(_) => "cut",
            Step::Down(_) => "down",
            Step::Blackhole(_) => "blackhole",
            Step::Latency(_) => "latency",
            Step::Bandwidth(_) => "bandwidth",
            Step::Slicer(_) => "slicer",
            Step::LimitData(_) => "limit_data",
            Step::SlowClose(_) => "slow_close",
            Step::ResetPeer(_) => "reset_peer",
            Step::Heal(_) => "heal",
            Step::RestartBroker(_) => "restart_broker",
        }
    }

    /// The version restriction of this step.
    pub fn only(&self) -> Option<Version> {
        match self {
            Step::Connect(s) => s.only,
            Step::Subscribe(s) => s.only,
            Step::Unsubscribe(s) => s.only,
            Step::Publish(s) => s.only,
            Step::Expect(s) => s.only,
            Step::ExpectOneOf(s) => s.only,
            Step::ExpectNothing(s) => s.only,
            Step::ExpectClose(s) => s.only,
            Step::Send(s) => s.only,
            Step::SendRaw(s) => s.only,
            Step::Disconnect(s) => s.only,
            Step::Drop(s) => s.only,
            Step::Sleep(SleepStep::Plain(_)) => None,
            Step::Sleep(SleepStep::Full { only, .. }) => *only,
            Step::Cut(s) | Step::Down(s) | Step::Heal(s) => s.only,
            Step::Blackhole(s) => s.only,
            Step::Latency(s) => s.only,
            Step::Bandwidth(s) => s.only,
            Step::Slicer(s) => s.only,
            Step::LimitData(s) => s.only,
            Step::SlowClose(s) => s.only,
            Step::ResetPeer(s) => s.only,
            Step::RestartBroker(s) => s.only,
        }
    }

    /// The client the step acts on, if any.
    pub fn client(&self) -> Option<&str> {
        Some(match self {
            Step::Connect(s) => &s.client,
            Step::Subscribe(s) => &s.client,
            Step::Unsubscribe(s) => &s.client,
            Step::Publish(s) => &s.client,
            Step::Expect(s) => &s.client,
            Step::ExpectOneOf(_) => return None,
            Step::ExpectNothing(s) => &s.client,
            Step::ExpectClose(s) => &s.client,
            Step::Send(s) => &s.client,
            Step::SendRaw(s) => &s.client,
            Step::Disconnect(s) => &s.client,
            Step::Drop(s) => &s.client,
            Step::Sleep(_) | Step::RestartBroker(_) => return None,
            Step::Cut(_)
            | Step::Down(_)
            | Step::Blackhole(_)
            | Step::Latency(_)
            | Step::Bandwidth(_)
            | Step::Slicer(_)
            | Step::LimitData(_)
            | Step::SlowClose(_)
            | Step::ResetPeer(_)
            | Step::Heal(_) => return self.fault_client().flatten(),
        })
    }

    /// For a network fault step, the client it names (`Some(None)`: every client); `None` for
    /// any other step.
    pub fn fault_client(&self) -> Option<Option<&str>> {
        let client = match self {
            Step::Cut(s) | Step::Down(s) | Step::Heal(s) => &s.client,
            Step::Blackhole(s) => &s.client,
            Step::Latency(s) => &s.client,
            Step::Bandwidth(s) => &s.client,
            Step::Slicer(s) => &s.client,
            Step::LimitData(s) => &s.client,
            Step::SlowClose(s) => &s.client,
            Step::ResetPeer(s) => &s.client,
            _ => return None,
        };
        Some(client.as_deref())
    }
}

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
    pub qos: u8,
    /// No Local (5).
    #[serde(default)]
    pub no_local: bool,
    /// Retain As Published (5).
    #[serde(default)]
    pub retain_as_published: bool,
    /// Retain Handling 0..=2 (5).
    #[serde(default)]
    pub retain_handling: u8,
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
    /// Expected SUBACK codes; default: every code a success.
    #[serde(default)]
    pub expect: Option<Vec<Code>>,
    /// Wait for SUBACK at most this long (default 2s).
    #[serde(default)]
    pub within: Option<Dur>,
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
    pub payload: Option<String>,
    /// Payload as hex.
    #[serde(default)]
    pub payload_hex: Option<String>,
    /// QoS.
    #[serde(default)]
    pub qos: u8,
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
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

fn publish_kind() -> PacketKind {
    PacketKind::Publish
}

/// `expect`: a pattern the next packet of that kind must match.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectStep {
    /// Client name.
    pub client: String,
    /// Packet kind (default publish).
    #[serde(default = "publish_kind")]
    pub packet: PacketKind,
    /// Topic (prefixed before comparing).
    #[serde(default)]
    pub topic: Option<String>,
    /// Payload as text.
    #[serde(default)]
    pub payload: Option<String>,
    /// Payload as hex.
    #[serde(default)]
    pub payload_hex: Option<String>,
    /// QoS.
    #[serde(default)]
    pub qos: Option<u8>,
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
    /// How long to wait (default 2s).
    #[serde(default)]
    pub within: Option<Dur>,
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
    pub packet: Option<PacketKind>,
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
    pub allow_before: Option<Vec<PacketKind>>,
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
    pub packet: PacketKind,
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
    pub payload: Option<String>,
    /// QoS (PUBLISH).
    #[serde(default)]
    pub qos: u8,
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
    pub hex: String,
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
