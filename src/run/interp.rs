//! The step interpreter: runs one case under one version, step by step, over its clients
//! (connection, inbox, automatic acknowledgements), and returns the first failure with every
//! client's trace.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use reference_broker::client::TransportOptions;
use reference_broker::codec::{
    Auth, Connect, Disconnect, Packet, PacketType, Properties, PubResponse, Publish, QoS,
    ReasonCode, RetainHandling, Subscribe, Subscription, SubscriptionOptions, UnsubAck,
    Unsubscribe, Will,
};
use tokio::time::Instant;

use super::hex;
use super::inbox::{open, recv_one, send, wait_for, Client, StepError, StepResult};
use super::matcher::{self, connack_code, suback_code};
use super::prefix::Prefixer;
use super::trace;
use super::verdict::{ClientTrace, Failure};
use crate::scenario::{
    ConnectStep, ExpectStep, FilterSpec, PacketKind, PropsSpec, Scenario, SendStep, Step, Version,
};

/// Default wait for an expected packet.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(2);

/// Where and how to run a case.
#[derive(Debug, Clone)]
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
        Interpreter { case, env, clients }
    }

    /// Run every step that applies to this version; the first failure ends the case.
    pub async fn run(mut self) -> Result<(), Outcome> {
        let result = self.run_steps().await;
        for client in self.clients.values_mut() {
            if let Some(conn) = client.conn.take() {
                conn.abort();
            }
        }
        result
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
                        properties: props,
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
                        properties: props,
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
                    topic,
                    packet_id,
                    properties,
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
                let c = self.client(&s.client)?;
                let deadline = Instant::now() + within;
                while !c.closed {
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
                let url = self.env.url.clone();
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
                let url = self.env.url.clone();
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
                send(c, &Packet::Disconnect(Disconnect { reason, properties })).await?;
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
                properties: self.props(&w.properties),
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
            properties: self.props(&spec.properties),
        })
    }

    async fn connect(&mut self, s: &ConnectStep) -> StepResult {
        let connect = self.connect_packet(&s.client, s.clean_start)?;
        let version = self.env.version;
        let url = self.env.url.clone();
        let transport = self.env.transport.clone();
        let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
        let prefix = self.env.prefix.clone();
        let c = self.client(&s.client)?;
        c.retire();
        open(c, &url, &transport).await?;
        send(c, &Packet::Connect(connect)).await?;
        let ack = wait_for(c, within, |p| matches!(p, Packet::ConnAck(_))).await?;
        let Packet::ConnAck(ack) = ack else {
            return Err(StepError::new("internal: not a CONNACK"));
        };
        let expected_code =
            connack_code(s.expect.code.map_or(ReasonCode::SUCCESS, |c| c.0), version);
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

    fn build(&self, s: &SendStep) -> Result<Packet, StepError> {
        let reason = s.reason.map_or(ReasonCode::SUCCESS, |r| r.0);
        let packet_id = s.packet_id.unwrap_or(1);
        let properties = self.props(&s.properties);
        let response = PubResponse {
            packet_id,
            reason,
            properties: properties.clone(),
        };
        Ok(match s.packet {
            PacketKind::Connect => Packet::Connect(self.connect_packet(&s.client, None)?),
            PacketKind::Publish => Packet::Publish(Publish {
                dup: s.dup,
                qos: QoS::from_u8(s.qos).ok_or_else(|| StepError::new("invalid qos"))?,
                retain: s.retain,
                topic: s
                    .topic
                    .as_deref()
                    .map(|t| self.env.prefix.topic(t))
                    .unwrap_or_default(),
                packet_id: if s.qos == 0 {
                    s.packet_id.unwrap_or(0)
                } else {
                    packet_id
                },
                properties,
                payload: Bytes::from(s.payload.clone().unwrap_or_default()),
            }),
            PacketKind::Puback => Packet::PubAck(response),
            PacketKind::Pubrec => Packet::PubRec(response),
            PacketKind::Pubrel => Packet::PubRel(response),
            PacketKind::Pubcomp => Packet::PubComp(response),
            PacketKind::Subscribe => Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                subscriptions: s.filters.iter().map(|f| self.subscription(f)).collect(),
            }),
            PacketKind::Unsubscribe => Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters: s
                    .filters
                    .iter()
                    .map(|f| self.env.prefix.topic(&f.filter))
                    .collect(),
            }),
            PacketKind::Pingreq => Packet::PingReq,
            PacketKind::Disconnect => Packet::Disconnect(Disconnect { reason, properties }),
            PacketKind::Auth => Packet::Auth(Auth { reason, properties }),
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

/// A CONNACK code with its name in the numbering of `version` (3.1.1 return codes differ).
fn connack_text(code: ReasonCode, version: Version) -> String {
    if version == Version::V5 {
        return format!("{code:?}");
    }
    let name = match code.0 {
        0 => "Connection Accepted",
        1 => "unacceptable protocol version",
        2 => "identifier rejected",
        3 => "Server unavailable",
        4 => "bad user name or password",
        5 => "not authorized",
        _ => "not a 3.1.1 return code",
    };
    format!("0x{:02X} ({name})", code.0)
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
