//! One task per network connection: read bytes, decode, drive the [`ServerConnection`] state
//! machine, act on its events against the shared [`Router`], write what it transmits.
//!
//! Flow control both ways: the task takes deliveries from its channel only while the state
//! machine's queue has room (so nothing is dropped for an online subscriber), and when routing
//! a message makes it wait for a slow subscriber it holds its client's next events back and
//! eventually stops reading ([`super::backpressure`]).
//!
//! [`Router`]: super::router::Router

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tracing::{debug, warn};

use crate::codec::{encode, Connect, Decoder, ReasonCode, Will};
use crate::protocol::variants::NoSubscribersAck;
use crate::protocol::{
    Accept, CloseKind, Defect, Event, InboundPublish, Message, ServerConnection,
};

use super::auth::{self, Identity, CHALLENGE_METHOD};
use super::backpressure::Held;
use super::journal::Op;
use super::router::{Online, Routed};
use super::Shared;

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Per-connection context that is not protocol state.
struct Ctx {
    shared: Arc<Shared>,
    peer: SocketAddr,
    conn_id: u64,
    username: Option<String>,
    clean_start: bool,
    attached: bool,
    tx: Option<mpsc::Sender<Routed>>,
    kick: Option<oneshot::Sender<ReasonCode>>,
    done: watch::Receiver<()>,
    overflow: Arc<AtomicBool>,
    parked: Arc<Notify>,
    /// Events held back while a slow subscriber makes this publisher wait.
    held: Held,
    /// Journal number of the last delivery taken into the session (persistence).
    taken_upto: u64,
    /// Something this client did was journalled: commit before its next acknowledgement.
    barrier: bool,
}

/// Events held beyond the server's Receive Maximum before the socket is no longer read: room
/// for QoS 0 PUBLISHes and other packets between the QoS 1/2 ones a client may send.
const HELD_SLACK: usize = 64;

/// Serve one connection until it closes.
pub(crate) async fn serve<S>(
    shared: Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let limits = Arc::clone(&shared.limits);
    let mut conn = ServerConnection::new(now(), Arc::clone(&limits));
    let mut decoder = Decoder::new(limits.max_packet_size as usize);
    let (tx, mut rx) = mpsc::channel(shared.config.limits.channel_capacity);
    let (kick_tx, mut kick_rx) = oneshot::channel::<ReasonCode>();
    let (done_tx, done_rx) = watch::channel(());
    let conn_id = shared.next_conn_id();
    let parked = Arc::new(Notify::new());
    let mut ctx = Ctx {
        shared: Arc::clone(&shared),
        peer,
        conn_id,
        username: None,
        clean_start: true,
        attached: false,
        tx: Some(tx),
        kick: Some(kick_tx),
        done: done_rx,
        overflow: Arc::new(AtomicBool::new(false)),
        parked: Arc::clone(&parked),
        held: Held::new(usize::from(limits.receive_maximum) + HELD_SLACK),
        taken_upto: 0,
        barrier: false,
    };
    let write_timeout = Duration::from_secs(shared.config.limits.write_timeout_secs);
    // Small to start: an idle connection holds little; the buffers grow under load.
    let mut inbuf = BytesMut::with_capacity(256);
    let mut outbuf = BytesMut::new();
    loop {
        if !flush(&mut ctx, &mut conn, &mut outbuf, &mut wr, write_timeout).await {
            conn.close_silently(CloseKind::NetworkLost);
        }
        if conn.is_closed() {
            break;
        }
        let deadline = conn.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        // Deliveries are taken only while the state machine can queue them.
        let room = ctx.attached && conn.queue_room() > 0;
        let reading = !ctx.held.is_full();
        let waiting = ctx.held.is_waiting();
        // Biased: what the client sent is handled before new deliveries, so a DISCONNECT
        // already received wins over a message routed meanwhile (which then stays queued in
        // the session instead of being sent to a departing client). Deliveries still get
        // their turn after every read.
        tokio::select! {
            biased;
            read = rd.read_buf(&mut inbuf), if reading => match read {
                Ok(0) | Err(_) => conn.close_silently(CloseKind::NetworkLost),
                Ok(_) => {
                    read_packets(&mut ctx, &mut conn, &mut decoder, &mut inbuf).await;
                    if ctx.attached && !conn.is_closed() {
                        deliver_batch(&mut ctx, &mut conn, &mut rx);
                    }
                }
            },
            Ok(reason) = &mut kick_rx, if ctx.attached => {
                debug!(peer = %peer, client = %conn.client_id(), "session taken over");
                // Packets the client sent before the new connection (an acknowledgement just
                // before a reconnect) are still handled, so the session handed over is current.
                while !conn.is_closed() && !ctx.held.is_full() {
                    match rd.read_buf(&mut inbuf).now_or_never() {
                        Some(Ok(n)) if n > 0 => {
                            read_packets(&mut ctx, &mut conn, &mut decoder, &mut inbuf).await;
                        }
                        _ => break,
                    }
                }
                conn.close(reason, CloseKind::TakenOver);
            }
            () = ctx.held.ready(), if waiting => {
                resume(&mut ctx, &mut conn, &mut decoder, &mut inbuf).await;
                if ctx.attached && !conn.is_closed() {
                    deliver_batch(&mut ctx, &mut conn, &mut rx);
                }
            }
            () = sleep => {
                let t = now();
                if !reading {
                    // Not reading is our doing: the client is not silent.
                    conn.hold_keep_alive(t);
                }
                conn.handle_timeout(t);
            }
            _ = shutdown.changed() => conn.close(ReasonCode::SERVER_SHUTTING_DOWN, CloseKind::ServerClosed),
            Some((seq, d)) = rx.recv(), if room => {
                ctx.taken(seq);
                conn.deliver(now(), d);
                deliver_batch(&mut ctx, &mut conn, &mut rx);
            }
            () = parked.notified(), if room => deliver_batch(&mut ctx, &mut conn, &mut rx),
        }
    }
    // Held events are routed without waiting: the connection is gone, and a QoS 2 PUBLISH
    // already recorded in the session must not be lost.
    let held: Vec<Event> = ctx.held.drain().collect();
    for event in held {
        if let Event::Publish(p) = event {
            route(&mut ctx, &conn, p);
        }
    }
    let _ = flush(&mut ctx, &mut conn, &mut outbuf, &mut wr, write_timeout).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
    finish(&mut ctx, &mut conn, &mut rx);
    drop(done_tx);
    drop(rx);
    drop(outbuf);
    if server_closed(conn.close_kind()) {
        drain(&mut rd, inbuf).await;
    }
}

/// How long a closing connection keeps reading (and discarding) what its peer still sends.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// Whether the broker ended the connection with something to say (DISCONNECT with a reason
/// code, a refusal CONNACK), rather than the peer (its DISCONNECT, a lost network).
fn server_closed(kind: Option<CloseKind>) -> bool {
    !matches!(
        kind,
        None | Some(
            CloseKind::NormalDisconnect | CloseKind::DisconnectWithWill | CloseKind::NetworkLost
        )
    )
}

/// Graceful close: the write side is already shut down (our last packet and FIN are queued).
/// Closing a socket with unread input makes the kernel send a reset, which can destroy that
/// last packet before the peer reads it; so read and discard the peer's input until it closes
/// too, for at most [`DRAIN_LIMIT`]. The session is already handed back: this holds only the
/// socket.
async fn drain<R: AsyncRead + Unpin>(rd: &mut R, mut buf: BytesMut) {
    let until_eof = async {
        loop {
            buf.clear();
            if buf.capacity() < 4096 {
                buf.reserve(4096);
            }
            match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_LIMIT, until_eof).await;
}

/// Hand the state machine the deliveries already waiting in the channel (at most 64), as
/// many as it can queue; once the channel is empty, also those the router parked in the
/// overflow queue while it was full.
fn deliver_batch(ctx: &mut Ctx, conn: &mut ServerConnection, rx: &mut mpsc::Receiver<Routed>) {
    let t = now();
    for _ in 0..64 {
        if conn.queue_room() == 0 {
            return;
        }
        match rx.try_recv() {
            Ok((seq, d)) => {
                ctx.taken(seq);
                conn.deliver(t, d);
            }
            Err(_) => break,
        }
    }
    let room = conn.queue_room();
    if room > 0 && rx.is_empty() && ctx.overflow.load(Ordering::Acquire) {
        let parked = ctx
            .shared
            .router()
            .take_overflow(conn.client_id(), ctx.conn_id, room);
        for (seq, d) in parked {
            ctx.taken(seq);
            conn.deliver(t, d);
        }
    }
}

impl Ctx {
    /// A delivery with journal number `seq` (0: none) is now in the session.
    fn taken(&mut self, seq: u64) {
        self.taken_upto = self.taken_upto.max(seq);
    }
}

/// Longest wait for the journal before an acknowledgement; beyond it the connection is
/// treated as lost (nothing unacknowledged is lost: the client sends it again).
const COMMIT_LIMIT: Duration = Duration::from_secs(30);

/// With persistence: commit what the next write promises before it is written (the state of
/// a persistent session, with its subscriptions and QoS 2 state; or what routing a message
/// for this client journalled). False if the commit failed: nothing may be acknowledged.
async fn commit_before_write(ctx: &mut Ctx, conn: &ServerConnection) -> bool {
    let persistent = ctx.attached && conn.session_expiry() != 0;
    if !persistent && !ctx.barrier {
        return true;
    }
    let (journal, op) = {
        let mut router = ctx.shared.router();
        let Some(journal) = router.journal.clone() else {
            return true;
        };
        let op = persistent
            .then(|| {
                router.snapshot(
                    conn.client_id(),
                    ctx.conn_id,
                    conn.session(),
                    ctx.taken_upto,
                )
            })
            .flatten();
        (journal, op.unwrap_or(Op::Barrier))
    };
    ctx.barrier = false;
    let done = journal.commit(op);
    let ok = matches!(tokio::time::timeout(COMMIT_LIMIT, done).await, Ok(Ok(())));
    if !ok {
        warn!(client = %conn.client_id(), "persistence commit failed: not acknowledged");
    }
    ok
}

/// A wait for slow subscribers is over: handle the held events in order until one makes the
/// connection wait again, then decode what is still buffered.
async fn resume(
    ctx: &mut Ctx,
    conn: &mut ServerConnection,
    decoder: &mut Decoder,
    inbuf: &mut BytesMut,
) {
    while let Some(event) = ctx.held.next_ready() {
        if conn.is_closed() {
            return;
        }
        handle_event(ctx, conn, event).await;
    }
    if !ctx.held.is_holding() {
        read_packets(ctx, conn, decoder, inbuf).await;
    }
}

/// Encode and write everything the state machine wants to send, once what it promises is
/// committed (persistence). False on a write or commit error. A peer that stops reading
/// cannot hold the task forever: a write that makes no progress for `limit` counts as a lost
/// network connection.
async fn flush<W: AsyncWrite + Unpin>(
    ctx: &mut Ctx,
    conn: &mut ServerConnection,
    out: &mut BytesMut,
    wr: &mut W,
    limit: Duration,
) -> bool {
    let version = conn.version();
    while let Some(packet) = conn.poll_transmit() {
        if let Err(e) = encode(&packet, version, out) {
            warn!(error = %e, "cannot encode outgoing packet");
        }
    }
    if out.is_empty() {
        return true;
    }
    if !commit_before_write(ctx, conn).await {
        out.clear();
        return false;
    }
    let write = async { wr.write_all(out).await.is_ok() && wr.flush().await.is_ok() };
    let ok = tokio::time::timeout(limit, write)
        .await
        .unwrap_or_else(|_| {
            debug!(client = %conn.client_id(), "write timed out: peer not reading");
            false
        });
    out.clear();
    ok
}

async fn read_packets(
    ctx: &mut Ctx,
    conn: &mut ServerConnection,
    decoder: &mut Decoder,
    inbuf: &mut BytesMut,
) {
    // Once full, the rest stays in `inbuf` until the held events are handled.
    while !conn.is_closed() && !ctx.held.is_full() {
        let before = inbuf.len();
        let frame = frame_len(inbuf);
        match decoder.decode(inbuf) {
            Ok(Some(packet)) => {
                conn.handle_packet(now(), packet);
                handle_events(ctx, conn).await;
            }
            Ok(None) => break,
            Err(e) => {
                warn!(peer = %ctx.peer, error = %e, "closing connection after malformed packet");
                conn.decode_error(&e);
                // Still open only under a deliberate tolerating defect: skip the rest of
                // the packet (the decoder may have consumed part of it), or stop reading.
                let left = frame.and_then(|n| n.checked_sub(before - inbuf.len()));
                match left {
                    Some(n) if !conn.is_closed() && inbuf.len() >= n => inbuf.advance(n),
                    _ => break,
                }
            }
        }
    }
}

/// The size of the packet at the front of `buf` (fixed header included), when its remaining
/// length is complete and well formed.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let mut remaining = 0usize;
    for (i, &b) in buf.iter().enumerate().skip(1).take(4) {
        remaining |= usize::from(b & 0x7F) << (7 * (i - 1));
        if b & 0x80 == 0 {
            return Some(1 + i + remaining);
        }
    }
    None
}

async fn handle_events(ctx: &mut Ctx, conn: &mut ServerConnection) {
    while let Some(event) = conn.poll_event() {
        if ctx.held.is_holding() {
            // Waiting for a slow subscriber: keep the client's order, route nothing new.
            ctx.held.hold(event);
        } else {
            handle_event(ctx, conn, event).await;
        }
    }
}

async fn handle_event(ctx: &mut Ctx, conn: &mut ServerConnection, event: Event) {
    match event {
        Event::Connect(c) => on_connect(ctx, conn, c).await,
        Event::ReAuthenticate => conn.auth_challenge(nonce(ctx)),
        Event::AuthResponse { challenge, data } => {
            let secret = ctx.shared.config.challenge_auth.as_ref().map(|c| &c.secret);
            let expected = secret.map(|s| auth::challenge_response(&challenge, s));
            let ok = expected.is_some_and(|e| data.as_deref() == Some(e.as_bytes()));
            if let Some(c) = conn.auth_verdict(ok) {
                finish_connect(ctx, conn, c).await;
            }
        }
        Event::Publish(p) => on_publish(ctx, conn, p),
        Event::Subscribe(s) => {
            let client = conn.client_id().clone();
            let who = Identity {
                client_id: &client,
                username: ctx.username.as_deref(),
            };
            let config = &ctx.shared.config;
            let result = ctx.shared.router().subscribe(
                &client,
                conn.version(),
                &s,
                |f| auth::may_subscribe(config, who, f),
                now(),
            );
            match result {
                Ok(r) => {
                    let id = if ctx.shared.limits.defects.has(Defect::SubackWrongPacketId) {
                        s.packet_id % u16::MAX + 1
                    } else {
                        s.packet_id
                    };
                    conn.subscribe_done(id, r.codes);
                    let t = now();
                    for d in r.retained {
                        conn.deliver(t, d);
                    }
                }
                Err(code) => conn.close(code, CloseKind::ProtocolError),
            }
        }
        Event::Unsubscribe(u) => {
            let client = conn.client_id().clone();
            let codes = ctx.shared.router().unsubscribe(&client, &u);
            conn.unsubscribed(&u.filters);
            if ctx.shared.limits.defects.has(Defect::UnsubackMissing) {
                return;
            }
            conn.unsubscribe_done(u.packet_id, codes);
        }
    }
}

async fn on_connect(ctx: &mut Ctx, conn: &mut ServerConnection, c: Box<Connect>) {
    let shared = Arc::clone(&ctx.shared);
    let limits = &shared.limits;
    // [MQTT-3.2.2-12] / [MQTT-3.2.2-13] (5) a will the server cannot honour.
    // 3.1.1 has neither: its wills are accepted whatever the MQTT 5 limits say.
    if let Some(w) = c.will.as_ref().filter(|_| c.protocol.is_v5()) {
        if w.qos > limits.maximum_qos {
            conn.reject(ReasonCode::QOS_NOT_SUPPORTED);
            return;
        }
        if w.retain && !limits.retain_available {
            conn.reject(ReasonCode::RETAIN_NOT_SUPPORTED);
            return;
        }
    }
    if shared.router().online_count() >= shared.config.limits.max_connections {
        conn.reject(ReasonCode::SERVER_BUSY);
        return;
    }
    if let Some(method) = &c.properties.authentication_method {
        if c.protocol.is_v5() {
            match &shared.config.challenge_auth {
                // [MQTT-4.12.0-2] continue with AUTH 0x18 and a fresh nonce.
                Some(_) if method == CHALLENGE_METHOD => conn.auth_challenge(nonce(ctx)),
                _ if shared.limits.defects.has(Defect::UnknownAuthMethodAccepted) => {
                    return finish_connect(ctx, conn, c).await;
                }
                // [MQTT-4.12.0-1] unsupported method: CONNACK 0x8C and close.
                _ => conn.reject(ReasonCode::BAD_AUTHENTICATION_METHOD),
            }
            return;
        }
    }
    if let Err(code) =
        auth::authenticate(&shared.config, c.username.as_deref(), c.password.as_deref())
    {
        debug!(peer = %ctx.peer, ?code, "authentication failed");
        conn.reject(code);
        return;
    }
    finish_connect(ctx, conn, c).await;
}

/// A fresh challenge for enhanced authentication.
fn nonce(ctx: &Ctx) -> Bytes {
    Bytes::from(format!("{:016x}-{}", rand_u64(), ctx.conn_id))
}

async fn finish_connect(ctx: &mut Ctx, conn: &mut ServerConnection, c: Box<Connect>) {
    let shared = Arc::clone(&ctx.shared);
    let mut assigned = None;
    let client_id: Arc<str> = if c.client_id.is_empty() {
        let id = shared.router().assign_client_id();
        if c.protocol.is_v5() && !shared.limits.defects.has(Defect::AssignedClientIdMissing) {
            assigned = Some(id.clone());
        }
        Arc::from(id.as_str())
    } else {
        Arc::from(c.client_id.as_str())
    };
    ctx.username = c.username.clone();
    ctx.clean_start = c.clean_start;
    // [MQTT-3.1.4-3] take over an existing connection with the same client id.
    let mut took_over = false;
    for _ in 0..3 {
        let waiting = shared.router().take_over(&client_id);
        let Some(mut done) = waiting else { break };
        took_over = true;
        let _ = tokio::time::timeout(Duration::from_secs(5), done.changed()).await;
    }
    let (Some(tx), Some(kick)) = (ctx.tx.take(), ctx.kick.take()) else {
        conn.protocol_error();
        return;
    };
    let online = Online {
        conn_id: ctx.conn_id,
        tx,
        kick: Some(kick),
        done: ctx.done.clone(),
        overflow: Arc::clone(&ctx.overflow),
        parked: Arc::clone(&ctx.parked),
        room: watch::Sender::new(()),
    };
    let (session, mut session_present, upto) = shared.router().attach(
        client_id.clone(),
        online,
        c.clean_start,
        conn.session_expiry(),
    );
    ctx.taken_upto = upto;
    if took_over
        && shared
            .limits
            .defects
            .has(Defect::SessionPresentWrongAfterTakeover)
    {
        session_present = false;
    }
    ctx.attached = true;
    debug!(peer = %ctx.peer, client = %client_id, session_present, "client connected");
    conn.accept(
        now(),
        Accept {
            session,
            session_present,
            assigned_client_id: assigned,
            response_information: shared
                .config
                .response_information
                .as_ref()
                .filter(|_| c.properties.request_response_information == Some(1))
                .map(|prefix| format!("{prefix}{client_id}")),
            auth: None,
        },
    );
    if c.client_id.is_empty() && !c.protocol.is_v5() {
        conn.set_client_id(client_id);
    }
}

fn on_publish(ctx: &mut Ctx, conn: &mut ServerConnection, p: InboundPublish) {
    let client = conn.client_id().clone();
    let who = Identity {
        client_id: &client,
        username: ctx.username.as_deref(),
    };
    let v5 = conn.version().is_v5();
    if !auth::may_publish(&ctx.shared.config, who, &p.message.topic) {
        debug!(client = %client, topic = %p.message.topic, "publish not authorised");
        // 3.1.1: dropped but acknowledged; 5: acknowledged with 0x87.
        conn.publish_done(p.packet_id, p.qos, ReasonCode::NOT_AUTHORIZED);
        return;
    }
    if crate::topic::too_deep(&p.message.topic) {
        debug!(client = %client, "topic name has too many levels");
        conn.publish_done(p.packet_id, p.qos, ReasonCode::TOPIC_NAME_INVALID);
        return;
    }
    let packet_id = p.packet_id;
    let qos = p.qos;
    let recipients = route(ctx, conn, p);
    let zero_is_success =
        ctx.shared.limits.variants.no_subscribers_ack == NoSubscribersAck::Success;
    let reason = if recipients == 0 && v5 && !zero_is_success {
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    } else {
        ReasonCode::SUCCESS
    };
    // Acknowledged at once: the broker holds the message now (parked if need be). What waits
    // is the next one.
    conn.publish_done(packet_id, qos, reason);
}

/// Route an inbound message; if a subscriber is over its limit, hold this connection's next
/// events until it has room. Returns the number of recipients.
fn route(ctx: &mut Ctx, conn: &ServerConnection, p: InboundPublish) -> usize {
    let client = conn.client_id();
    let mut router = ctx.shared.router();
    let mut published = router.publish(Arc::new(p.message));
    if !published.ops.is_empty() {
        // The publisher's QoS 2 state goes with what its message changed.
        let me = (ctx.attached && conn.session_expiry() != 0)
            .then(|| router.snapshot(client, ctx.conn_id, conn.session(), ctx.taken_upto))
            .flatten();
        router.journal_group(std::mem::take(&mut published.ops), me);
    }
    drop(router);
    ctx.barrier |= published.durable;
    if !published.wait.is_empty() {
        debug!(client = %client, "a subscriber is over its limit: publisher waits");
    }
    ctx.held.wait_for(published.wait);
    published.recipients
}

/// The connection is over: hand the session back, schedule expiry, publish or schedule the will.
fn finish(ctx: &mut Ctx, conn: &mut ServerConnection, rx: &mut mpsc::Receiver<Routed>) {
    if !ctx.attached {
        return;
    }
    let shared = Arc::clone(&ctx.shared);
    let client_id = conn.client_id().clone();
    let expiry = conn.session_expiry();
    let will = conn.take_will();
    let session = conn.take_session();
    let generation = shared
        .router()
        .detach(&client_id, ctx.conn_id, session, expiry, rx);
    shared.departed.notify_waiters();
    debug!(peer = %ctx.peer, client = %client_id, kind = ?conn.close_kind(), "client disconnected");
    if expiry != 0 && expiry != u32::MAX {
        let client_id = client_id.clone();
        shared.after(Duration::from_secs(u64::from(expiry)), move |s| {
            s.router().expire(&client_id, generation);
        });
    }
    let Some(will) = will else { return };
    let d = shared.limits.defects;
    let mut delay = will.properties.will_delay_interval.unwrap_or(0);
    if !d.has(Defect::WillDelayPastSessionEnd) {
        delay = delay.min(expiry);
    }
    if d.has(Defect::WillDelayIgnored) {
        delay = 0;
    }
    if delay == 0 {
        publish_will(&shared, &client_id, ctx.username.as_deref(), will);
    } else {
        // [MQTT-3.1.3-9] (5) published after the delay unless the session is resumed first.
        let username = ctx.username.clone();
        shared.after(Duration::from_secs(u64::from(delay)), move |s| {
            if s.router().will_due(&client_id, generation) || d.has(Defect::WillDespiteReconnect) {
                publish_will(s, &client_id, username.as_deref(), will);
            }
        });
    }
}

fn publish_will(shared: &Shared, client_id: &Arc<str>, username: Option<&str>, will: Will) {
    let who = Identity {
        client_id,
        username,
    };
    if !auth::may_publish(&shared.config, who, &will.topic) {
        return;
    }
    let mut properties = will.properties;
    properties.will_delay_interval = None;
    // [MQTT-3.1.3-10] (5) the will's User Properties keep their order.
    if shared
        .limits
        .defects
        .has(Defect::WillUserPropertyOrderChanged)
    {
        properties.user_properties.reverse();
    }
    let publish = crate::codec::Publish {
        dup: false,
        qos: will.qos,
        retain: will.retain && !shared.limits.defects.has(Defect::WillRetainIgnored),
        topic: will.topic.into(),
        packet_id: 0,
        properties,
        payload: will.payload,
    };
    // [MQTT-3.1.2-8] the will is published when the connection ends without DISCONNECT.
    let msg = Message::from_publish(now(), publish, Some(client_id.clone()));
    let mut router = shared.router();
    let published = router.publish(Arc::new(msg));
    router.journal_group(published.ops, None);
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}
