//! The step interpreter: runs one case under one version, step by step, over its clients
//! (connection, inbox, automatic acknowledgements), and returns the first failure with every
//! client's trace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reference_broker::client::TransportOptions;
use reference_broker::codec::{
    Auth, Connect, Disconnect, Packet, PacketType, Properties, PubResponse, Publish, QoS,
    ReasonCode, RetainHandling, Subscribe, Subscription, SubscriptionOptions, UnsubAck,
    Unsubscribe, Will,
};
use tokio::time::Instant;

use super::inbox::{open, recv_one, send, wait_for, Client, StepError, StepResult};
use super::link::{self, Links};
use super::matcher::{self, connack_code, suback_code};
use super::prefix::Prefixer;
use super::trace;
use super::verdict::{ClientTrace, Failure};
use crate::fault::FaultInjector;
use crate::scenario::hex;
use crate::scenario::{
    ConnectStep, ExpectOneOfStep, ExpectStep, FilterSpec, PacketKind, PropsSpec, Scenario,
    SendStep, Step, Version,
};
use crate::sut::CaseBroker;

/// Default wait for an expected packet.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(2);

/// Where and how to run a case.
#[derive(Clone)]
pub struct CaseEnv {
    /// Broker URL (may carry credentials; never printed).
    pub url: String,
    /// Transport options.
    pub transport: TransportOptions,
    /// Credentials of the target, for clients that set none.
    pub credentials: Option<(String, String)>,
    /// Protocol version of this execution.
    pub version: Version,
    /// Prefixes of this execution.
    pub prefix: Prefixer,
    /// The deadline of the whole case.
    pub deadline: Instant,
    /// Creates the proxies of a case with fault steps (none: fault steps fail).
    pub faults: Option<Arc<dyn FaultInjector>>,
    /// The broker of this case alone, when the case restarts it.
    pub broker: Option<Arc<tokio::sync::Mutex<CaseBroker>>>,
}

impl std::fmt::Debug for CaseEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseEnv")
            .field("url", &crate::redact::redact_url(&self.url))
            .field("version", &self.version)
            .field("prefix", &self.prefix)
            .field("faults", &self.faults.is_some())
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

/// Records `text` in the client's packet trace timeline (before its next connection when it
/// has none now).
fn note(c: &mut Client, text: String) {
    match c.conn.as_mut() {
        Some(conn) => conn.note(text),
        None => c.past.push(format!("(no connection) # {text}")),
    }
}

/// How a case ended when it did not pass.
#[derive(Debug)]
pub enum Outcome {
    /// A step did not hold.
    Fail(Failure),
    /// The case deadline passed.
    Timeout(Failure),
}

/// Runs one case under one version.
pub struct Interpreter<'a> {
    case: &'a Scenario,
    env: CaseEnv,
    clients: BTreeMap<String, Client>,
    /// Packet identifiers saved by `expect` steps (`save_id`).
    saved: BTreeMap<String, u16>,
    links: Option<Links>,
}

impl<'a> Interpreter<'a> {
    /// Prepare the clients of `case`.
    pub fn new(case: &'a Scenario, env: CaseEnv) -> Interpreter<'a> {
        let clients = case
            .clients
            .iter()
            .map(|(name, spec)| {
                let id = env.prefix.client_id(name, spec.client_id.as_deref());
                let client = Client::new(spec.clone(), id);
                (name.clone(), client)
            })
            .collect();
        Interpreter {
            case,
            env,
            clients,
            saved: BTreeMap::new(),
            links: None,
        }
    }

    /// Run every step that applies to this version; the first failure ends the case.
    pub async fn run(mut self) -> Result<(), Outcome> {
        let result = match self.setup_links().await {
            Ok(()) => self.run_steps().await,
            Err(e) => Err(e),
        };
        for client in self.clients.values_mut() {
            if let Some(conn) = client.conn.take() {
                conn.abort();
            }
        }
        if let Some(mut links) = self.links.take() {
            links.teardown().await;
        }
        result
    }

    /// A case with fault steps connects every client through its own proxy.
    async fn setup_links(&mut self) -> Result<(), Outcome> {
        let case = self.case;
        let Some((i, step)) = case.steps.iter().enumerate().find(|(_, s)| {
            s.fault_client().is_some() && s.only().is_none_or(|v| v == self.env.version)
        }) else {
            return Ok(());
        };
        let fail = |message: String| {
            Outcome::Fail(Failure {
                step: Some(i + 1),
                step_text: step.keyword().to_string(),
                message,
                expected: None,
                received: None,
                traces: Vec::new(),
            })
        };
        let Some(injector) = self.env.faults.clone() else {
            return Err(fail(format!(
                "step {} ({}) is a network fault, but this run has no fault injector to put \
                 proxies in front of the broker (the default embedded one or --toxiproxy URL)",
                i + 1,
                step.keyword()
            )));
        };
        let proxy_prefix = self.env.prefix.client_id("", None);
        let links = Links::setup(
            injector,
            &self.env.url,
            self.clients.keys().cloned(),
            &proxy_prefix,
        )
        .await
        .map_err(|e| fail(format!("cannot set up the proxies of the fault steps: {e}")))?;
        self.links = Some(links);
        Ok(())
    }

    /// The URL client `name` connects to: its proxy in a case with faults, else the broker.
    fn url_for(&self, name: &str) -> String {
        self.links
            .as_ref()
            .and_then(|l| l.url(name))
            .map_or_else(|| self.env.url.clone(), str::to_string)
    }

    async fn fault(&mut self, step: &Step) -> StepResult {
        let (Some(fault), Some(client)) = (link::fault_of(step), step.fault_client()) else {
            return Err(StepError::new("internal: not a fault step"));
        };
        let links = self.links.as_ref().ok_or_else(|| {
            StepError::new("network faults need a fault injector; this run has none")
        })?;
        let applied = links
            .apply(&fault, client)
            .await
            .map_err(|e| StepError::new(format!("applying {fault} failed: {e}")))?;
        for (name, toxics) in applied {
            let installed = toxics
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let text = if installed.is_empty() {
                format!("fault: {fault}")
            } else {
                format!("fault: {fault} (toxics {installed})")
            };
            if let Some(c) = self.clients.get_mut(&name) {
                note(c, text);
            }
        }
        Ok(())
    }

    async fn restart_broker(&mut self) -> StepResult {
        let broker = self
            .env
            .broker
            .clone()
            .ok_or_else(|| StepError::new("target cannot restart"))?;
        for c in self.clients.values_mut() {
            note(c, "restarting the broker".into());
        }
        broker
            .lock()
            .await
            .restart()
            .await
            .map_err(|e| StepError::new(e.to_string()))?;
        for c in self.clients.values_mut() {
            note(c, "broker restarted".into());
        }
        Ok(())
    }

    async fn run_steps(&mut self) -> Result<(), Outcome> {
        let case = self.case;
        for (i, step) in case.steps.iter().enumerate() {
            if step.only().is_some_and(|v| v != self.env.version) {
                continue;
            }
            if let Some(name) = step.client() {
                if let Some(conn) = self.clients.get_mut(name).and_then(|c| c.conn.as_mut()) {
                    conn.note(format!("step {} ({})", i + 1, step.keyword()));
                }
            }
            let remaining = self.env.deadline.saturating_duration_since(Instant::now());
            let result = match tokio::time::timeout(remaining, self.step(step)).await {
                Ok(r) => r,
                Err(_) => Err(StepError {
                    timeout: true,
                    ..StepError::new("the case ran out of time in this step")
                }),
            };
            if let Err(e) = result {
                let failure = Failure {
                    step: Some(i + 1),
                    step_text: step.keyword().to_string(),
                    message: self.unprefix(&e.message),
                    expected: e.expected.map(|x| self.unprefix(&x)),
                    received: e.received.map(|r| self.unprefix(&r)),
                    traces: self.traces(),
                };
                return Err(if e.timeout {
                    Outcome::Timeout(failure)
                } else {
                    Outcome::Fail(failure)
                });
            }
        }
        Ok(())
    }

    fn unprefix(&self, text: &str) -> String {
        let p = self.env.prefix.topic_prefix();
        if p.is_empty() {
            text.to_string()
        } else {
            text.replace(p, "")
        }
    }

    fn traces(&self) -> Vec<ClientTrace> {
        self.clients
            .iter()
            .map(|(name, c)| ClientTrace {
                client: name.clone(),
                lines: c.trace().iter().map(|l| self.unprefix(l)).collect(),
            })
            .collect()
    }

    fn client(&mut self, name: &str) -> Result<&mut Client, StepError> {
        self.clients
            .get_mut(name)
            .ok_or_else(|| StepError::new(format!("unknown client {name:?}")))
    }

    async fn step(&mut self, step: &Step) -> StepResult {
        match step {
            Step::Connect(s) => self.connect(s).await,
            Step::Subscribe(s) => {
                let filters = s.filters.iter().map(|f| self.subscription(f)).collect();
                let props = self.props(&s.properties);
                let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
                let version = self.env.version;
                let c = self.client(&s.client)?;
                let packet_id = c.packet_id();
                send(
                    c,
                    &Packet::Subscribe(Subscribe {
                        packet_id,
                        properties: props.into(),
                        subscriptions: filters,
                    }),
                )
                .await?;
                let ack = wait_for(
                    c,
                    within,
                    |p| matches!(p, Packet::SubAck(a) if a.packet_id == packet_id),
                )
                .await?;
                let Packet::SubAck(ack) = ack else {
                    return Err(StepError::new("internal: not a SUBACK"));
                };
                let received: Vec<ReasonCode> = ack.reason_codes.clone();
                match &s.expect {
                    Some(codes) => {
                        let expected: Vec<ReasonCode> =
                            codes.iter().map(|c| suback_code(c.0, version)).collect();
                        // [MQTT-3.8.4-6] / [MQTT-3.9.3-1] one code per filter, in order.
                        if expected != received {
                            return Err(StepError::diff(
                                "SUBACK codes differ",
                                format!("{expected:?}"),
                                format!("{received:?}"),
                            ));
                        }
                    }
                    None => {
                        if received.len() != s.filters.len()
                            || received.iter().any(|c| !c.is_success())
                        {
                            return Err(StepError::diff(
                                "SUBACK does not grant every filter",
                                format!("{} success codes", s.filters.len()),
                                format!("{received:?}"),
                            ));
                        }
                    }
                }
                Ok(())
            }
            Step::Unsubscribe(s) => {
                let filters = s.filters.iter().map(|f| self.env.prefix.topic(f)).collect();
                let props = self.props(&s.properties);
                let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
                let version = self.env.version;
                let c = self.client(&s.client)?;
                let packet_id = c.packet_id();
                send(
                    c,
                    &Packet::Unsubscribe(Unsubscribe {
                        packet_id,
                        properties: props.into(),
                        filters,
                    }),
                )
                .await?;
                // [MQTT-3.10.4-4] the server answers UNSUBSCRIBE with UNSUBACK.
                let ack = wait_for(
                    c,
                    within,
                    |p| matches!(p, Packet::UnsubAck(a) if a.packet_id == packet_id),
                )
                .await?;
                if version == Version::V5 {
                    let Packet::UnsubAck(UnsubAck { reason_codes, .. }) = ack else {
                        return Err(StepError::new("internal: not an UNSUBACK"));
                    };
                    let ok = match &s.expect {
                        Some(codes) => {
                            codes.iter().map(|c| c.0).collect::<Vec<_>>() == reason_codes
                        }
                        None => {
                            reason_codes.len() == s.filters.len()
                                && reason_codes.iter().all(|c| c.is_success())
                        }
                    };
                    if !ok {
                        let expected = s.expect.as_ref().map_or_else(
                            || format!("{} success codes", s.filters.len()),
                            |c| format!("{:?}", c.iter().map(|c| c.0).collect::<Vec<_>>()),
                        );
                        return Err(StepError::diff(
                            "UNSUBACK codes differ",
                            expected,
                            format!("{reason_codes:?}"),
                        ));
                    }
                }
                Ok(())
            }
            Step::Publish(s) => {
                let payload = match (&s.payload, &s.payload_hex) {
                    (_, Some(h)) => Bytes::from(
                        hex::decode_plain(h).map_err(|e| StepError::new(e.to_string()))?,
                    ),
                    (Some(t), None) => Bytes::from(t.clone()),
                    (None, None) => Bytes::new(),
                };
                let qos = QoS::from_u8(s.qos).ok_or_else(|| StepError::new("invalid qos"))?;
                let topic = self.env.prefix.topic(&s.topic);
                let properties = self.props(&s.properties);
                let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
                let c = self.client(&s.client)?;
                let packet_id = match (qos, s.packet_id) {
                    (_, Some(id)) => id,
                    (QoS::AtMostOnce, None) => 0,
                    _ => c.packet_id(),
                };
                let publish = Publish {
                    dup: s.dup,
                    qos,
                    retain: s.retain,
                    topic: topic.into(),
                    packet_id,
                    properties: properties.into(),
                    payload,
                };
                send(c, &Packet::Publish(publish)).await?;
                if qos == QoS::AtMostOnce || !s.await_ack {
                    return Ok(());
                }
                let first = if qos == QoS::AtLeastOnce {
                    PacketType::PubAck
                } else {
                    PacketType::PubRec
                };
                let ack = wait_for(c, within, |p| {
                    p.packet_type() == first && ack_id(p) == Some(packet_id)
                })
                .await?;
                let reason = ack_reason(&ack);
                if let Some(expected) = s.expect.reason {
                    if reason != expected.0 {
                        return Err(StepError::diff(
                            format!("{first:?} reason differs"),
                            format!("{:?}", expected.0),
                            format!("{reason:?}"),
                        ));
                    }
                }
                if qos == QoS::ExactlyOnce && reason.is_success() {
                    // [MQTT-4.3.3-1] the sender answers PUBREC with PUBREL and waits for PUBCOMP.
                    send(
                        c,
                        &Packet::PubRel(PubResponse {
                            packet_id,
                            ..Default::default()
                        }),
                    )
                    .await?;
                    wait_for(
                        c,
                        within,
                        |p| matches!(p, Packet::PubComp(r) if r.packet_id == packet_id),
                    )
                    .await?;
                }
                Ok(())
            }
            Step::Expect(s) => self.expect(s).await,
            Step::ExpectOneOf(s) => self.expect_one_of(s).await,
            Step::ExpectNothing(s) => {
                let kind = s.packet.map(PacketKind::packet_type);
                let c = self.client(&s.client)?;
                let wanted = |p: &Packet| kind.is_none_or(|k| p.packet_type() == k);
                if let Some(p) = c.inbox.iter().find(|p| wanted(p)) {
                    return Err(StepError::diff(
                        "a packet arrived",
                        "nothing".into(),
                        trace::redacted(p),
                    ));
                }
                let deadline = Instant::now() + s.duration.0;
                loop {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(());
                    }
                    if c.closed {
                        // No packet can arrive any more; a following expect_close observes
                        // the close.
                        return Ok(());
                    }
                    recv_one(c, deadline - now).await?;
                    if let Some(p) = c.inbox.iter().find(|p| wanted(p)) {
                        return Err(StepError::diff(
                            "a packet arrived",
                            "nothing".into(),
                            trace::redacted(p),
                        ));
                    }
                }
            }
            Step::ExpectClose(s) => {
                let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
                let version = self.env.version;
                let allowed: Option<Vec<PacketType>> = s
                    .allow_before
                    .as_ref()
                    .map(|l| l.iter().map(|k| k.packet_type()).collect());
                let c = self.client(&s.client)?;
                let deadline = Instant::now() + within;
                loop {
                    if let Some(allowed) = &allowed {
                        check_allowed_before(&c.inbox, allowed)?;
                    }
                    if c.closed {
                        break;
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(StepError::diff(
                            format!("the connection is still open after {within:?}"),
                            "the broker closes the connection".into(),
                            "connection open".into(),
                        ));
                    }
                    recv_one(c, deadline - now).await?;
                }
                let disconnect = c.inbox.iter().find_map(|p| match p {
                    Packet::Disconnect(d) => Some(d.reason),
                    _ => None,
                });
                if let (Version::V5, Some(expected), Some(got)) = (version, s.reason, disconnect) {
                    if expected.0 != got {
                        return Err(StepError::diff(
                            "DISCONNECT reason differs",
                            format!("{:?}", expected.0),
                            format!("{got:?}"),
                        ));
                    }
                }
                c.retire();
                Ok(())
            }
            Step::Send(s) => {
                let packet = self.build(s)?;
                let url = self.url_for(&s.client);
                let transport = self.env.transport.clone();
                let version = self.env.version;
                let c = self.client(&s.client)?;
                if c.conn.is_none() {
                    // A CONNECT (or anything) sent by hand opens the transport first.
                    open(c, &url, &transport).await?;
                    if let Some(conn) = c.conn.as_mut() {
                        conn.set_version(version.protocol());
                    }
                }
                if let Some(conn) = c.conn.as_mut() {
                    if let Packet::Connect(connect) = &packet {
                        conn.set_version(connect.protocol);
                        if let (Version::V5, Some(max)) =
                            (version, connect.properties.maximum_packet_size)
                        {
                            // [MQTT-3.1.2-24] as in `connect`: larger packets fail the case.
                            conn.set_max_packet_size(usize::try_from(max).unwrap_or(usize::MAX));
                        }
                    }
                }
                send(c, &packet).await
            }
            Step::SendRaw(s) => {
                let prefix = self.env.prefix.clone();
                let ids: BTreeMap<String, String> = self
                    .clients
                    .iter()
                    .map(|(n, c)| (n.clone(), c.id.clone()))
                    .collect();
                let bytes = hex::expand(&s.hex, &|t| prefix.topic(t), &|c| ids.get(c).cloned())
                    .map_err(|e| StepError::new(e.to_string()))?;
                let url = self.url_for(&s.client);
                let transport = self.env.transport.clone();
                let version = self.env.version;
                let c = self.client(&s.client)?;
                if c.conn.is_none() {
                    open(c, &url, &transport).await?;
                    if let Some(conn) = c.conn.as_mut() {
                        conn.set_version(version.protocol());
                    }
                }
                let conn = c
                    .conn
                    .as_mut()
                    .ok_or_else(|| StepError::new("not connected"))?;
                conn.send_raw(&bytes)
                    .await
                    .map_err(|e| StepError::new(format!("sending raw bytes failed: {e}")))
            }
            Step::Disconnect(s) => {
                let properties = self.props(&s.properties);
                let c = self.client(&s.client)?;
                let reason = s.reason.map_or(ReasonCode::SUCCESS, |r| r.0);
                send(
                    c,
                    &Packet::Disconnect(Disconnect {
                        reason,
                        properties: properties.into(),
                    }),
                )
                .await?;
                c.retire();
                Ok(())
            }
            Step::Drop(s) => {
                let c = self.client(&s.client)?;
                if let Some(conn) = c.conn.as_mut() {
                    conn.note("dropping the connection (no DISCONNECT)");
                }
                c.retire();
                Ok(())
            }
            Step::Sleep(s) => {
                tokio::time::sleep(s.duration().0).await;
                Ok(())
            }
            Step::RestartBroker(_) => self.restart_broker().await,
            Step::Cut(_)
            | Step::Down(_)
            | Step::Blackhole(_)
            | Step::Latency(_)
            | Step::Bandwidth(_)
            | Step::Slicer(_)
            | Step::LimitData(_)
            | Step::SlowClose(_)
            | Step::ResetPeer(_)
            | Step::Heal(_) => self.fault(step).await,
        }
    }

    fn props(&self, spec: &PropsSpec) -> Properties {
        if self.env.version == Version::V5 {
            spec.to_properties(&|t| self.env.prefix.topic(t))
        } else {
            Properties::default()
        }
    }

    fn subscription(&self, f: &FilterSpec) -> Subscription {
        Subscription {
            filter: self.env.prefix.topic(&f.filter),
            options: SubscriptionOptions {
                qos: QoS::from_u8(f.qos).unwrap_or_default(),
                no_local: f.no_local,
                retain_as_published: f.retain_as_published,
                retain_handling: match f.retain_handling {
                    1 => RetainHandling::SendIfNew,
                    2 => RetainHandling::DoNotSend,
                    _ => RetainHandling::SendAtSubscribe,
                },
            },
        }
    }

    fn connect_packet(&self, name: &str, clean_start: Option<bool>) -> Result<Connect, StepError> {
        let c = self
            .clients
            .get(name)
            .ok_or_else(|| StepError::new(format!("unknown client {name:?}")))?;
        let spec = &c.spec;
        let (username, password) = match (&spec.username, &spec.password, &self.env.credentials) {
            (None, None, Some((u, p))) => (Some(u.clone()), Some(Bytes::from(p.clone()))),
            (u, p, _) => (u.clone(), p.as_ref().map(|p| Bytes::from(p.clone()))),
        };
        let will = match &spec.will {
            Some(w) => Some(Will {
                topic: self.env.prefix.topic(&w.topic),
                payload: Bytes::from(w.payload.clone()),
                qos: QoS::from_u8(w.qos).ok_or_else(|| StepError::new("invalid will qos"))?,
                retain: w.retain,
                properties: self.props(&w.properties).into(),
            }),
            None => None,
        };
        Ok(Connect {
            protocol: self.env.version.protocol(),
            clean_start: clean_start.unwrap_or(spec.clean_start),
            keep_alive: spec.keep_alive,
            client_id: c.id.clone(),
            will,
            username,
            password,
            properties: self.props(&spec.properties).into(),
        })
    }

    async fn connect(&mut self, s: &ConnectStep) -> StepResult {
        let connect = self.connect_packet(&s.client, s.clean_start)?;
        let version = self.env.version;
        let url = self.url_for(&s.client);
        let transport = self.env.transport.clone();
        let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
        let prefix = self.env.prefix.clone();
        let c = self.client(&s.client)?;
        c.retire();
        open(c, &url, &transport).await?;
        if let (Version::V5, Some(max), Some(conn)) = (
            version,
            c.spec.properties.maximum_packet_size,
            c.conn.as_mut(),
        ) {
            // [MQTT-3.1.2-24] the broker must not send packets above the client's maximum:
            // a larger one fails the case (see recv_one).
            conn.set_max_packet_size(usize::try_from(max).unwrap_or(usize::MAX));
        }
        send(c, &Packet::Connect(Box::new(connect))).await?;
        let ack = wait_for(c, within, |p| matches!(p, Packet::ConnAck(_))).await?;
        let Packet::ConnAck(ack) = ack else {
            return Err(StepError::new("internal: not a CONNACK"));
        };
        let mut expected_code =
            connack_code(s.expect.code.map_or(ReasonCode::SUCCESS, |c| c.0), version);
        if c.v311_connack {
            // A server that does not speak MQTT 5 refuses in its own numbering (3.1.1
            // [MQTT-3.1.2-2]); an expected refusal is compared by its 3.1.1 equivalent.
            if !expected_code.is_success() {
                expected_code = expected_code.to_v3_connack();
            }
            return connack_v311_form(expected_code, ack.code);
        }
        // [MQTT-3.2.2-4] (3.1.1) / [MQTT-3.2.2-6] (5): a refusal carries Session Present 0.
        let expected_present = s.expect.session_present.unwrap_or(false);
        let mut diffs = Vec::new();
        if ack.code != expected_code {
            diffs.push(format!(
                "code: expected {}, received {}",
                connack_text(expected_code, version),
                connack_text(ack.code, version)
            ));
        }
        if ack.session_present != expected_present {
            diffs.push(format!(
                "session_present: expected {expected_present}, received {}",
                ack.session_present
            ));
        }
        if let Some(props) = &s.expect.properties {
            for m in props.mismatches(&ack.properties, &|t| prefix.topic(t)) {
                diffs.push(format!(
                    "properties.{}: expected {}, received {}",
                    m.name, m.expected, m.actual
                ));
            }
        }
        for name in &s.expect.absent {
            if name.is_present(&ack.properties) {
                diffs.push(format!(
                    "properties.{}: expected absent, received present",
                    name.name()
                ));
            }
        }
        for name in &s.expect.present {
            if !name.is_present(&ack.properties) {
                diffs.push(format!(
                    "properties.{}: expected present (any value), received absent",
                    name.name()
                ));
            }
        }
        if !diffs.is_empty() {
            return Err(StepError::diff(
                format!("CONNACK differs: {}", diffs.join("; ")),
                format!(
                    "code {}, session_present {expected_present}",
                    connack_text(expected_code, version)
                ),
                trace::compact(&format!("{ack:?}")),
            ));
        }
        Ok(())
    }

    async fn expect(&mut self, s: &ExpectStep) -> StepResult {
        let resolved = self.resolve_saved(s)?;
        let s = &resolved;
        let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
        let kind = s.packet.packet_type();
        let version = self.env.version;
        let prefix = self.env.prefix.clone();
        let c = self.client(&s.client)?;
        let packet = match wait_for(c, within, |p| p.packet_type() == kind).await {
            Ok(p) => p,
            Err(mut e) => {
                e.expected = Some(describe_expect(s));
                return Err(e);
            }
        };
        let diffs = matcher::mismatches(s, &packet, version, &prefix);
        if diffs.is_empty() {
            if let Some(name) = &s.save_id {
                let id = packet_id_of(&packet).ok_or_else(|| {
                    StepError::new(format!("save_id: a {kind:?} has no packet identifier"))
                })?;
                self.saved.insert(name.clone(), id);
            }
            return Ok(());
        }
        Err(StepError::diff(
            format!(
                "{kind:?} differs: {}",
                diffs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            describe_expect(s),
            trace::redacted(&packet),
        ))
    }

    async fn expect_one_of(&mut self, s: &ExpectOneOfStep) -> StepResult {
        let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
        let deadline = Instant::now() + within;
        let version = self.env.version;
        let prefix = self.env.prefix.clone();
        let alternatives = s
            .alternatives
            .iter()
            .map(|alt| alt.iter().map(|e| self.resolve_saved(e)).collect())
            .collect::<Result<Vec<Vec<ExpectStep>>, StepError>>()?;
        let mut names: Vec<String> = alternatives
            .iter()
            .flatten()
            .map(|e| e.client.clone())
            .chain(s.or_close.iter().cloned())
            .collect();
        names.sort();
        names.dedup();
        for name in &names {
            self.client(name)?;
        }
        loop {
            for alt in &alternatives {
                if let Some(mut claims) = self.claim(alt, version, &prefix) {
                    // Remove from the back so the indices stay valid.
                    claims.sort_by(|a, b| b.cmp(a));
                    for (name, index) in claims {
                        if let Some(c) = self.clients.get_mut(&name) {
                            c.inbox.remove(index);
                        }
                    }
                    return Ok(());
                }
            }
            if let Some(name) = s
                .or_close
                .iter()
                .find(|n| self.clients.get(*n).is_some_and(|c| c.closed))
            {
                // The broker chose to close this connection: that is the accepted reaction.
                if let Some(c) = self.clients.get_mut(name) {
                    c.retire();
                }
                return Ok(());
            }
            let now = Instant::now();
            let all_closed = names
                .iter()
                .all(|n| self.clients.get(n).is_none_or(|c| c.closed));
            if now >= deadline || all_closed {
                let pending: Vec<String> = names
                    .iter()
                    .filter_map(|n| self.clients.get(n).map(|c| (n, c)))
                    .flat_map(|(n, c)| {
                        c.inbox
                            .iter()
                            .map(move |p| format!("{n}: {}", trace::redacted(p)))
                    })
                    .collect();
                let expected = alternatives
                    .iter()
                    .map(|alt| {
                        alt.iter()
                            .map(|e| format!("{}: {}", e.client, describe_expect(e)))
                            .collect::<Vec<_>>()
                            .join(" + ")
                    })
                    .collect::<Vec<_>>()
                    .join(" | ");
                return Err(StepError::diff(
                    if all_closed && now < deadline {
                        "no alternative matched and every connection is closed".to_string()
                    } else {
                        format!("no alternative matched within {within:?}")
                    },
                    expected,
                    if pending.is_empty() {
                        "nothing".into()
                    } else {
                        pending.join(", ")
                    },
                ));
            }
            // Poll each client in turn for a short slice: packets of other kinds stay queued.
            let slice = (deadline - now).min(Duration::from_millis(10));
            for name in &names {
                let c = self.client(name)?;
                if !c.closed {
                    recv_one(c, slice).await?;
                }
            }
        }
    }

    /// The packets (client, inbox index) matching every pattern of `alt`, each a distinct
    /// packet; `None` when one pattern has no match yet.
    fn claim(
        &self,
        alt: &[ExpectStep],
        version: Version,
        prefix: &Prefixer,
    ) -> Option<Vec<(String, usize)>> {
        let mut claims: Vec<(String, usize)> = Vec::new();
        for e in alt {
            let c = self.clients.get(&e.client)?;
            let kind = e.packet.packet_type();
            let index = c.inbox.iter().enumerate().position(|(i, p)| {
                p.packet_type() == kind
                    && !claims.iter().any(|(n, j)| *n == e.client && *j == i)
                    && matcher::mismatches(e, p, version, prefix).is_empty()
            })?;
            claims.push((e.client.clone(), index));
        }
        Some(claims)
    }

    /// `s` with `packet_id_from` replaced by the saved identifier it names.
    fn resolve_saved(&self, s: &ExpectStep) -> Result<ExpectStep, StepError> {
        let mut s = s.clone();
        if let Some(name) = &s.packet_id_from {
            s.packet_id = Some(self.saved_id(name)?);
        }
        Ok(s)
    }

    fn saved_id(&self, name: &str) -> Result<u16, StepError> {
        self.saved.get(name).copied().ok_or_else(|| {
            StepError::new(format!(
                "no packet identifier saved as {name:?} (an earlier expect with save_id)"
            ))
        })
    }

    fn build(&self, s: &SendStep) -> Result<Packet, StepError> {
        let reason = s.reason.map_or(ReasonCode::SUCCESS, |r| r.0);
        let from = match &s.packet_id_from {
            Some(name) => Some(self.saved_id(name)?),
            None => None,
        };
        let from = from.or(s.packet_id);
        let packet_id = from.unwrap_or(1);
        let properties = self.props(&s.properties);
        let response = PubResponse {
            packet_id,
            reason,
            properties: properties.clone().into(),
        };
        Ok(match s.packet {
            PacketKind::Connect => Packet::Connect(Box::new(self.connect_packet(&s.client, None)?)),
            PacketKind::Publish => Packet::Publish(Publish {
                dup: s.dup,
                qos: QoS::from_u8(s.qos).ok_or_else(|| StepError::new("invalid qos"))?,
                retain: s.retain,
                topic: s
                    .topic
                    .as_deref()
                    .map(|t| self.env.prefix.topic(t))
                    .unwrap_or_default()
                    .into(),
                packet_id: if s.qos == 0 {
                    from.unwrap_or(0)
                } else {
                    packet_id
                },
                properties: properties.into(),
                payload: Bytes::from(s.payload.clone().unwrap_or_default()),
            }),
            PacketKind::Puback => Packet::PubAck(response),
            PacketKind::Pubrec => Packet::PubRec(response),
            PacketKind::Pubrel => Packet::PubRel(response),
            PacketKind::Pubcomp => Packet::PubComp(response),
            PacketKind::Subscribe => Packet::Subscribe(Subscribe {
                packet_id,
                properties: properties.into(),
                subscriptions: s.filters.iter().map(|f| self.subscription(f)).collect(),
            }),
            PacketKind::Unsubscribe => Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties: properties.into(),
                filters: s
                    .filters
                    .iter()
                    .map(|f| self.env.prefix.topic(&f.filter))
                    .collect(),
            }),
            PacketKind::Pingreq => Packet::PingReq,
            PacketKind::Disconnect => Packet::Disconnect(Disconnect {
                reason,
                properties: properties.into(),
            }),
            PacketKind::Auth => Packet::Auth(Auth {
                reason,
                properties: properties.into(),
            }),
            other => return Err(StepError::new(format!("a client cannot send {other:?}"))),
        })
    }
}

fn describe_expect(s: &ExpectStep) -> String {
    let mut parts = vec![format!("{:?}", s.packet.packet_type())];
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    };
    add("topic", s.topic.clone());
    add("payload", s.payload.as_ref().map(|p| format!("{p:?}")));
    add("payload_hex", s.payload_hex.clone());
    add("qos", s.qos.map(|q| q.to_string()));
    add("retain", s.retain.map(|q| q.to_string()));
    add("dup", s.dup.map(|q| q.to_string()));
    add("packet_id", s.packet_id.map(|q| q.to_string()));
    add("reason", s.reason.map(|r| format!("{:?}", r.0)));
    add(
        "codes",
        s.codes
            .as_ref()
            .map(|c| format!("{:?}", c.iter().map(|c| c.0).collect::<Vec<_>>())),
    );
    add("session_present", s.session_present.map(|q| q.to_string()));
    add(
        "properties",
        s.properties.as_ref().map(|p| format!("{p:?}")),
    );
    if !s.absent.is_empty() {
        parts.push(format!("absent={:?}", s.absent));
    }
    parts.join(" ")
}

/// The verdict on a CONNACK in 3.1.1 form received on an MQTT 5 connection: it holds only
/// when the case expected that refusal.
fn connack_v311_form(expected: ReasonCode, received: ReasonCode) -> StepResult {
    if expected == received {
        return Ok(());
    }
    let expected_text = if expected.is_success() {
        "an MQTT 5 CONNACK accepting the connection".to_string()
    } else {
        connack_text(expected, Version::V311)
    };
    Err(StepError::diff(
        "the broker refused the MQTT 5 connection with a CONNACK in MQTT 3.1.1 form",
        expected_text,
        format!(
            "CONNACK return code {} (3.1.1 form)",
            connack_text(received, Version::V311)
        ),
    ))
}

/// A CONNACK code with its name in the numbering of `version` (3.1.1 return codes differ).
fn connack_text(code: ReasonCode, version: Version) -> String {
    if version == Version::V5 {
        return format!("{code:?}");
    }
    let name = reference_broker::codec::reason::v3::connack_name(code)
        .unwrap_or("not a 3.1.1 return code");
    format!("0x{:02X} ({name})", code.0)
}

/// The packet identifier a received packet carries, if its kind has one.
fn packet_id_of(p: &Packet) -> Option<u16> {
    match p {
        Packet::Publish(x) if x.qos != QoS::AtMostOnce => Some(x.packet_id),
        Packet::SubAck(x) => Some(x.packet_id),
        Packet::UnsubAck(x) => Some(x.packet_id),
        other => ack_id(other),
    }
}

/// Fails when the inbox holds a packet whose kind is not in `allowed`, or any packet after
/// a DISCONNECT ([MQTT-3.14.0-1] nothing follows a DISCONNECT on that connection).
fn check_allowed_before(
    inbox: &std::collections::VecDeque<Packet>,
    allowed: &[PacketType],
) -> StepResult {
    let mut after_disconnect = false;
    for p in inbox {
        if after_disconnect || !allowed.contains(&p.packet_type()) {
            return Err(StepError::diff(
                if after_disconnect {
                    "a packet arrived after the DISCONNECT"
                } else {
                    "a packet arrived before the close"
                },
                format!("only {allowed:?}, then the close"),
                trace::redacted(p),
            ));
        }
        after_disconnect = matches!(p, Packet::Disconnect(_));
    }
    Ok(())
}

fn ack_id(p: &Packet) -> Option<u16> {
    match p {
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            Some(r.packet_id)
        }
        _ => None,
    }
}

fn ack_reason(p: &Packet) -> ReasonCode {
    match p {
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => r.reason,
        _ => ReasonCode::SUCCESS,
    }
}
