//! The scenario model: a case, its clients and its steps, read from YAML straight into a typed
//! plan (codec values resolved at load, unknown fields rejected). The step bodies are in
//! `steps` (protocol steps) and `faults` (fault steps).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::codec_values::{Qos, Text};
use super::faults::{
    BandwidthStep, BlackholeStep, LatencyStep, LimitDataStep, LinkStep, ResetPeerStep, RestartStep,
    SlicerStep, SlowCloseStep,
};
use super::properties::PropsSpec;
use super::steps::{
    ConnectStep, DisconnectStep, DropStep, ExpectCloseStep, ExpectNothingStep, ExpectOneOfStep,
    ExpectStep, PublishStep, SendRawStep, SendStep, SleepStep, SubscribeStep, UnsubscribeStep,
};
use super::tier::Level;
use super::values::{Dur, Feature, Version};

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
    #[schemars(extend("default" = {}))]
    pub clients: BTreeMap<String, ClientSpec>,
    /// What happens, in order.
    pub steps: Vec<Step>,
    /// The time budget this case needs at least, when its own waits are long (a close it
    /// allows to come late on a broker with a coarse timer): the run's `--timeout` applies
    /// when larger.
    #[serde(default)]
    pub timeout: Option<Dur>,
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
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WillSpec {
    /// Will topic (prefixed).
    pub topic: String,
    /// Will payload as text.
    #[serde(default)]
    pub payload: Text,
    /// Will QoS.
    #[serde(default)]
    pub qos: Qos,
    /// Will retain flag.
    #[serde(default)]
    pub retain: bool,
    /// Will properties (5).
    #[serde(default)]
    pub properties: PropsSpec,
}

pub(super) fn yes() -> bool {
    true
}

fn sixty() -> u16 {
    60
}

/// A named client and its CONNECT options.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
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
    pub password: Option<Text>,
    /// Will message.
    #[serde(default)]
    #[schemars(extend("default" = null))]
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

    /// The statement a step says it checks and the level it gives, for the steps that can
    /// carry them (`(None, None)` for the others).
    pub fn check(&self) -> (Option<&str>, Option<Level>) {
        let (statement, level) = match self {
            Step::Connect(s) => (&s.statement, s.level),
            Step::Subscribe(s) => (&s.statement, s.level),
            Step::Unsubscribe(s) => (&s.statement, s.level),
            Step::Publish(s) => (&s.statement, s.level),
            Step::Expect(s) => (&s.statement, s.level),
            Step::ExpectOneOf(s) => (&s.statement, s.level),
            Step::ExpectNothing(s) => (&s.statement, s.level),
            Step::ExpectClose(s) => (&s.statement, s.level),
            _ => return (None, None),
        };
        (statement.as_deref(), level)
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
