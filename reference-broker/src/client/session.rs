//! The full-protocol async client: the tokio shell that drives a [`ClientState`] over a
//! [`Connection`]. It only does I/O when a method is awaited (no background task), so a test
//! decides exactly when the client reads, writes and sends PINGREQ.

// `run_until`'s pickers hand back declined events by value: moving them is the point.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::{
    Auth, ConnAck, Disconnect, Packet, Properties, Publish, QoS, ReasonCode, SubAck, Subscription,
    SubscriptionOptions, UnsubAck,
};

use super::clock::now;
use super::connection::packet_name;
use super::url::{parse_url, BrokerUrl};
use super::{ClientError, Connection, Direction, Received, Trace, TraceEvent, TransportOptions};
use crate::protocol::client::{
    ClientState, ConnectOptions, Controls, Event, ReleaseOrder, StateError,
};

/// Default time a client method waits for the broker's answer.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An MQTT client over one broker URL; reconnects resume the session.
pub struct Client {
    conn: Connection,
    state: ClientState,
    url: BrokerUrl,
    transport: TransportOptions,
    timeout: Duration,
    stash: VecDeque<Event>,
    connack: ConnAck,
    last_sent: Option<String>,
    last_received: Option<String>,
    started: Instant,
    history: Trace,
    responder: Option<AuthResponder>,
}

/// Answers the broker's AUTH packets during an enhanced authentication exchange.
pub type AuthResponder = Box<dyn FnMut(&Auth) -> Auth + Send>;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .field("conn", &self.conn)
            .field("state", &self.state)
            .field("stashed_events", &self.stash.len())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connect to `url` (user:password in the URL fill in missing credentials) and wait for
    /// a successful CONNACK. A refusal is [`ClientError::Refused`] with its reason code.
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<Client, ClientError> {
        let url = parse_url(url)?;
        Self::connect_with(
            &url,
            &TransportOptions::default(),
            options,
            Controls::default(),
        )
        .await
    }

    /// [`Client::connect`] with transport options and control switches.
    pub async fn connect_with(
        url: &BrokerUrl,
        transport: &TransportOptions,
        options: ConnectOptions,
        controls: Controls,
    ) -> Result<Client, ClientError> {
        Self::connect_with_auth(url, transport, options, controls, None).await
    }

    /// [`Client::connect_with`] with MQTT 5 enhanced authentication: `responder` answers
    /// each AUTH 0x18 (Continue authentication) the broker sends before CONNACK; set the
    /// method with [`ConnectOptions::authentication`]. The responder is kept for reconnects.
    pub async fn connect_with_auth(
        url: &BrokerUrl,
        transport: &TransportOptions,
        mut options: ConnectOptions,
        controls: Controls,
        responder: Option<AuthResponder>,
    ) -> Result<Client, ClientError> {
        if options.username.is_none() {
            if let Some(user) = url.username() {
                options.username = Some(user.to_string());
                options.password = url.password().map(|p| Bytes::copy_from_slice(p.as_bytes()));
            }
        }
        let started = now();
        let conn = Connection::open_url(url, transport).await?;
        let mut state = ClientState::new(options);
        state.controls = controls;
        let mut client = Client {
            conn,
            state,
            url: url.clone(),
            transport: transport.clone(),
            timeout: DEFAULT_TIMEOUT,
            stash: VecDeque::new(),
            connack: ConnAck::default(),
            last_sent: None,
            last_received: None,
            started,
            history: Trace::default(),
            responder,
        };
        client.handshake().await?;
        Ok(client)
    }

    async fn handshake(&mut self) -> Result<ConnAck, ClientError> {
        if let Some(max) = self.state.options().properties.maximum_packet_size {
            self.conn.set_max_packet_size(max as usize);
        }
        self.state.connect(now());
        let timeout = self.timeout;
        loop {
            let event = self
                .run_until("CONNACK", timeout, |e| match e {
                    Event::Connected(_) | Event::Auth(_) => Ok(e),
                    other => Err(other),
                })
                .await?;
            match event {
                Event::Connected(ack) => {
                    self.connack = ack.clone();
                    return Ok(ack);
                }
                Event::Auth(auth) => {
                    let Some(responder) = self.responder.as_mut() else {
                        return Err(ClientError::Protocol(format!(
                            "broker sent AUTH {} but no authentication responder is set",
                            auth.reason
                        )));
                    };
                    let answer = responder(&auth);
                    self.send_packet(Packet::Auth(answer)).await?;
                }
                _ => {}
            }
        }
    }

    /// The CONNACK of the current connection.
    pub fn connack(&self) -> &ConnAck {
        &self.connack
    }

    /// The state machine (limits, in-flight count, phase).
    pub fn state(&self) -> &ClientState {
        &self.state
    }

    /// Control switches (hold acknowledgements, never send PUBREL, ...).
    pub fn controls_mut(&mut self) -> &mut Controls {
        &mut self.state.controls
    }

    /// How long methods wait for the broker (default 10 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The packet-level connection underneath (raw mode: `send_raw`, `recv`).
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Everything sent and received, across reconnects.
    pub fn trace(&self) -> Trace {
        let mut all = self.history.clone();
        let offset = self
            .conn
            .started_at()
            .saturating_duration_since(self.started);
        all.append(self.conn.trace(), offset);
        all
    }

    /// Publish and wait until the flow completes (QoS 0: written; QoS 1: PUBACK; QoS 2:
    /// PUBCOMP). Returns the final reason code.
    pub async fn publish(
        &mut self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<ReasonCode, ClientError> {
        self.publish_message(Publish {
            dup: false,
            qos,
            retain,
            topic: topic.into().into(),
            packet_id: 0,
            properties: Default::default(),
            payload: payload.into(),
        })
        .await
    }

    /// [`Client::publish`] with a whole PUBLISH (properties included; id and DUP are set by
    /// the client).
    pub async fn publish_message(&mut self, publish: Publish) -> Result<ReasonCode, ClientError> {
        let id = self.start_publish(publish).await?;
        let (_, reason) = self.wait_published(Some(id), self.timeout).await?;
        Ok(reason)
    }

    /// Queue a publish and write what can be written, without waiting for its
    /// acknowledgement; returns its packet id (0 for QoS 0). Collect the outcome with
    /// [`Client::wait_published`].
    pub async fn start_publish(&mut self, publish: Publish) -> Result<u16, ClientError> {
        let qos = publish.qos;
        let id = self
            .state
            .publish(now(), publish)
            .map_err(|e| self.state_error(e))?;
        self.flush().await?;
        let _ = qos;
        Ok(id)
    }

    /// Wait for a publish to complete: the one with `packet_id`, or any when `None`.
    pub async fn wait_published(
        &mut self,
        packet_id: Option<u16>,
        timeout: Duration,
    ) -> Result<(u16, ReasonCode), ClientError> {
        let what = match packet_id {
            Some(0) => "QoS 0 publish to be written".to_string(),
            Some(id) => format!("the acknowledgement of PUBLISH id={id}"),
            None => "a publish acknowledgement".to_string(),
        };
        self.run_until(&what, timeout, |e| match e {
            Event::Published {
                packet_id: id,
                reason,
                ..
            } if packet_id.is_none_or(|want| want == id) => Ok((id, reason)),
            other => Err(other),
        })
        .await
    }

    /// Subscribe to one filter; returns the SUBACK (check its reason codes).
    pub async fn subscribe(
        &mut self,
        filter: impl Into<String>,
        qos: QoS,
    ) -> Result<SubAck, ClientError> {
        self.subscribe_many(
            vec![Subscription {
                filter: filter.into(),
                options: SubscriptionOptions {
                    qos,
                    ..Default::default()
                },
            }],
            Properties::default(),
        )
        .await
    }

    /// Subscribe to several filters with options and properties (subscription identifier,
    /// user properties).
    pub async fn subscribe_many(
        &mut self,
        subscriptions: Vec<Subscription>,
        properties: Properties,
    ) -> Result<SubAck, ClientError> {
        let id = self
            .state
            .subscribe(subscriptions, properties)
            .map_err(|e| self.state_error(e))?;
        let timeout = self.timeout;
        self.run_until(&format!("SUBACK id={id}"), timeout, |e| match e {
            Event::SubAck(s) if s.packet_id == id => Ok(s),
            other => Err(other),
        })
        .await
    }

    /// Unsubscribe; returns the UNSUBACK.
    pub async fn unsubscribe(&mut self, filters: Vec<String>) -> Result<UnsubAck, ClientError> {
        let id = self
            .state
            .unsubscribe(filters, Properties::default())
            .map_err(|e| self.state_error(e))?;
        let timeout = self.timeout;
        self.run_until(&format!("UNSUBACK id={id}"), timeout, |e| match e {
            Event::UnsubAck(u) if u.packet_id == id => Ok(u),
            other => Err(other),
        })
        .await
    }

    /// The next application message (acknowledged as the controls say).
    pub async fn recv_message(&mut self, timeout: Duration) -> Result<Publish, ClientError> {
        self.run_until("an application message", timeout, |e| match e {
            Event::Message(p) => Ok(p),
            other => Err(other),
        })
        .await
    }

    /// The next event of any kind.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<Event, ClientError> {
        self.run_until("any event", timeout, Ok).await
    }

    /// Keep the connection serviced (acks, PINGREQ) for `duration`; events are kept for
    /// later calls. A close by the broker is an error.
    pub async fn idle(&mut self, duration: Duration) -> Result<(), ClientError> {
        const IDLE: &str = "the end of an idle period";
        match self.run_until(IDLE, duration, Err::<(), Event>).await {
            // The idle period ran out; a keep alive timeout names another wait.
            Err(ClientError::Timeout(_, what)) if what == IDLE => Ok(()),
            other => other,
        }
    }

    /// Send held acknowledgements now, in order or reversed (out of order on purpose).
    pub async fn release_held(&mut self, order: ReleaseOrder) -> Result<(), ClientError> {
        self.state.release_held(order);
        self.flush().await
    }

    /// Send the PUBRELs withheld by [`Controls::never_send_pubrel`].
    pub async fn release_pubrels(&mut self) -> Result<(), ClientError> {
        self.state.release_pubrels();
        self.flush().await
    }

    /// Send any packet as it is, in sequence with the client's own packets.
    pub async fn send_packet(&mut self, packet: Packet) -> Result<(), ClientError> {
        self.state.send_packet(packet);
        self.flush().await
    }

    /// Send DISCONNECT (normal, reason 0x00) and close the connection.
    pub async fn disconnect(&mut self) -> Result<(), ClientError> {
        self.disconnect_with(Disconnect::default()).await
    }

    /// Send the given DISCONNECT and close the connection.
    pub async fn disconnect_with(&mut self, disconnect: Disconnect) -> Result<(), ClientError> {
        self.state.disconnect(disconnect);
        let result = self.flush().await;
        self.conn.close().await;
        self.state.connection_lost();
        result
    }

    /// Close the network connection abruptly, without DISCONNECT (the will is published).
    pub fn kill(&mut self) {
        self.conn.kill();
        self.state.connection_lost();
    }

    /// Open a new connection with Clean Start 0 and resume the session: unacknowledged
    /// PUBLISH are resent with DUP and PUBREL are resent, in their original order.
    pub async fn reconnect(&mut self) -> Result<ConnAck, ClientError> {
        self.conn.kill();
        self.state.connection_lost();
        let offset = self
            .conn
            .started_at()
            .saturating_duration_since(self.started);
        let old = self.conn.take_trace();
        self.history.append(&old, offset);
        self.conn = Connection::open_url(&self.url, &self.transport).await?;
        self.conn.note("reconnect");
        self.state.options_mut().clean_start = false;
        self.handshake().await
    }

    /// Turn the trace of the current connection on or off (off for load).
    pub fn set_tracing(&mut self, enabled: bool) {
        self.conn.set_tracing(enabled);
    }

    // ---- the loop ----

    /// Write every packet the state machine has queued, in one write.
    async fn flush(&mut self) -> Result<(), ClientError> {
        let mut batch = Vec::new();
        while let Some(p) = self.state.poll_transmit() {
            batch.push(p);
        }
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(last) = batch.last() {
            self.last_sent = Some(packet_name(last));
        }
        if let Err(e) = self.conn.send_all(&batch).await {
            self.state.connection_lost();
            return Err(e);
        }
        let now = now();
        for p in &batch {
            self.state.on_sent(now, p);
        }
        Ok(())
    }

    /// Drive the connection until `pick` accepts an event or `timeout` passes. Events that
    /// `pick` declines are kept, in order, for later calls.
    async fn run_until<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(Event) -> Result<T, Event>,
    ) -> Result<T, ClientError> {
        if !self.stash.is_empty() {
            let mut kept = VecDeque::with_capacity(self.stash.len());
            while let Some(e) = self.stash.pop_front() {
                match pick(e) {
                    Ok(t) => {
                        kept.append(&mut self.stash);
                        self.stash = kept;
                        return Ok(t);
                    }
                    Err(e) => kept.push_back(e),
                }
            }
            self.stash = kept;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.flush().await?;
            while let Some(e) = self.state.poll_event() {
                match pick(e) {
                    Ok(t) => {
                        self.flush().await?;
                        return Ok(t);
                    }
                    Err(e) => self.stash.push_back(e),
                }
            }
            let timer = self
                .state
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or(deadline);
            tokio::select! {
                biased;
                r = self.conn.recv_any() => match r {
                    Ok(Received::Packet(p)) => {
                        self.last_received = Some(packet_name(&p));
                        if let Err(e) = self.state.handle_packet(now(), p) {
                            return Err(self.fail(e).await);
                        }
                    }
                    Ok(Received::Closed) => {
                        self.state.connection_lost();
                        return Err(self.closed_error(what));
                    }
                    Err(e) => {
                        self.conn.kill();
                        self.state.connection_lost();
                        return Err(e);
                    }
                },
                _ = tokio::time::sleep_until(timer), if timer < deadline => {
                    if let Err(e) = self.state.handle_timeout(now()) {
                        return Err(self.fail(e).await);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(ClientError::Timeout(timeout, what.to_string()));
                }
            }
        }
    }

    fn closed_error(&self, what: &str) -> ClientError {
        let mut text = String::new();
        if let Some(p) = &self.last_sent {
            text.push_str(&format!(" after we sent {p}"));
        }
        if let Some(p) = &self.last_received {
            text.push_str(&format!(" (last received: {p})"));
        }
        if let Some(d) =
            self.conn
                .trace()
                .iter()
                .rev()
                .find_map(|e| match (&e.event, e.direction) {
                    (TraceEvent::Packet(Packet::Disconnect(d)), Direction::Received) => Some(d),
                    _ => None,
                })
        {
            text.push_str(&format!(" with DISCONNECT reason {}", d.reason));
        }
        text.push_str(&format!(" while waiting for {what}"));
        ClientError::Closed(text)
    }

    /// A fatal state error: tell the broker (v5 DISCONNECT with a reason), close, report.
    async fn fail(&mut self, e: StateError) -> ClientError {
        if let StateError::Protocol { reason, .. } = &e {
            if self.state.version().is_v5() && self.conn.is_open() {
                let _ = self
                    .conn
                    .send(&Packet::Disconnect(Disconnect {
                        reason: *reason,
                        properties: Default::default(),
                    }))
                    .await;
            }
        }
        if !matches!(e, StateError::Usage(_)) {
            self.conn.kill();
            self.state.connection_lost();
        }
        self.state_error(e)
    }

    fn state_error(&self, e: StateError) -> ClientError {
        match e {
            StateError::Protocol { message, .. } => ClientError::Protocol(message),
            StateError::Refused(code) => ClientError::Refused(code),
            StateError::KeepAliveTimeout(d) => {
                ClientError::Timeout(d, "PINGRESP (keep alive)".to_string())
            }
            StateError::Usage(text) => ClientError::Usage(text),
        }
    }
}
