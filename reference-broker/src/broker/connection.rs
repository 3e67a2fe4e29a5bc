//! One task per network connection: read bytes, decode, drive the [`ServerConnection`] state
//! machine, act on its events against the shared [`Router`], write what it transmits.
//!
//! Flow control both ways: the task takes deliveries from its channel only while the state
//! machine's queue has room (so nothing is dropped for an online subscriber), and when routing
//! a message makes it wait for a slow subscriber it holds its client's next events back and
//! eventually stops reading ([`super::backpressure`]).
//!
//! [`Router`]: super::router::Router

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use futures::future::OptionFuture;
use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, watch};
use tokio::time::Sleep;
use tracing::{debug, warn};

use crate::codec::{Decoder, ReasonCode};
use crate::protocol::variants::NoSubscribersAck;
use crate::protocol::{CloseKind, Defect, Event, InboundPublish, ServerConnection};

use super::auth::{self, Identity};
use super::backpressure::Held;
use super::outbox::Outbox;
use super::Shared;

mod close;
mod connect;
mod read;
mod write;

use close::{drain, finish, server_closed};
use connect::{finish_connect, nonce, on_connect};
use read::{read_some, release_if_empty};
use write::flush;

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
    /// Deliveries routed to this connection (shared with the router once attached).
    outbox: Arc<Outbox>,
    kick: Option<oneshot::Sender<ReasonCode>>,
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
///
/// A plain function around an `async move` block: the state is built here and moved into the
/// block once, where an `async fn` would keep its arguments twice (as arguments and as
/// locals). Every idle connection pays for the task's size.
pub(crate) fn serve<S>(
    shared: Arc<Shared>,
    mut io: S,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let limits = &shared.limits;
    let mut conn = ServerConnection::new(now(), Arc::clone(limits));
    let mut decoder = Decoder::new(limits.max_packet_size as usize);
    let held = Held::new(usize::from(limits.receive_maximum) + HELD_SLACK);
    let outbox = Arc::new(Outbox::new(shared.config.limits.channel_capacity));
    let (kick_tx, mut kick_rx) = oneshot::channel::<ReasonCode>();
    let conn_id = shared.next_conn_id();
    let mut ctx = Ctx {
        shared,
        peer,
        conn_id,
        username: None,
        clean_start: true,
        attached: false,
        outbox,
        kick: Some(kick_tx),
        held,
        taken_upto: 0,
        barrier: false,
    };
    // Hold memory only while bytes wait in them, or (`outbuf`) after bursts: an idle
    // connection holds none. One stream for both directions (no split): reads and writes
    // take turns here.
    let mut inbuf = BytesMut::new();
    let mut outbuf = BytesMut::new();
    // Allocated while the state machine has a deadline, and reset in place.
    let mut timer: Option<Pin<Box<Sleep>>> = None;
    async move {
        loop {
            if !flush(&mut ctx, &mut conn, &mut outbuf, &mut io).await {
                conn.close_silently(CloseKind::NetworkLost);
            }
            if conn.is_closed() {
                break;
            }
            arm(&mut timer, conn.poll_timeout());
            // Deliveries are taken only while the state machine can queue them.
            let room = ctx.attached && conn.queue_room() > 0;
            let reading = !ctx.held.is_full();
            let waiting = ctx.held.is_waiting();
            // Only while a publisher waits for slow subscribers (boxed: rare).
            let resumed: OptionFuture<_> = waiting.then(|| Box::pin(ctx.held.ready())).into();
            // Biased: what the client sent is handled before new deliveries, so a DISCONNECT
            // already received wins over a message routed meanwhile (which then stays queued
            // in the session instead of being sent to a departing client). Deliveries still
            // get their turn after every read.
            tokio::select! {
                biased;
                read = read_some(&mut io, &mut inbuf), if reading => match read {
                    Ok(0) | Err(_) => conn.close_silently(CloseKind::NetworkLost),
                    Ok(_) => {
                        read_packets(&mut ctx, &mut conn, &mut decoder, &mut inbuf).await;
                        if ctx.attached && !conn.is_closed() {
                            deliver_batch(&mut ctx, &mut conn);
                        }
                    }
                },
                Ok(reason) = &mut kick_rx, if ctx.attached => {
                    debug!(peer = %ctx.peer, client = %conn.client_id(), "session taken over");
                    // Packets the client sent before the new connection (an acknowledgement
                    // just before a reconnect) are still handled, so the session handed over
                    // is current.
                    while !conn.is_closed() && !ctx.held.is_full() {
                        match read_some(&mut io, &mut inbuf).now_or_never() {
                            Some(Ok(n)) if n > 0 => {
                                read_packets(&mut ctx, &mut conn, &mut decoder, &mut inbuf).await;
                            }
                            _ => break,
                        }
                    }
                    conn.close(reason, CloseKind::TakenOver);
                }
                Some(()) = resumed, if waiting => {
                    resume(&mut ctx, &mut conn, &mut decoder, &mut inbuf).await;
                    if ctx.attached && !conn.is_closed() {
                        deliver_batch(&mut ctx, &mut conn);
                    }
                }
                () = expired(&mut timer) => {
                    let t = now();
                    if !reading {
                        // Not reading is our doing: the client is not silent.
                        conn.hold_keep_alive(t);
                    }
                    conn.handle_timeout(t);
                }
                _ = shutdown.changed() => conn.close(ReasonCode::SERVER_SHUTTING_DOWN, CloseKind::ServerClosed),
                () = ctx.outbox.woken(), if room => deliver_batch(&mut ctx, &mut conn),
            }
        }
        drop(timer);
        // Held events are routed without waiting: the connection is gone, and a QoS 2 PUBLISH
        // already recorded in the session must not be lost.
        let held: Vec<Event> = ctx.held.drain().collect();
        for event in held {
            if let Event::Publish(p) = event {
                route(&mut ctx, &conn, p);
            }
        }
        let _ = flush(&mut ctx, &mut conn, &mut outbuf, &mut io).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
        finish(&mut ctx, &mut conn);
        if server_closed(conn.close_kind()) {
            // Boxed, like the other once-per-connection steps: a connection task's future is
            // as large as its largest step, and that size is paid by every idle connection.
            Box::pin(drain(&mut io, inbuf)).await;
        }
    }
}

/// Keep `timer` on the state machine's next deadline: allocated when there is one (reset in
/// place after that), freed when there is none.
fn arm(timer: &mut Option<Pin<Box<Sleep>>>, deadline: Option<Instant>) {
    let Some(deadline) = deadline.map(tokio::time::Instant::from_std) else {
        *timer = None;
        return;
    };
    match timer {
        Some(t) if t.deadline() == deadline => {}
        Some(t) => t.as_mut().reset(deadline),
        None => *timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
    }
}

/// Resolves when `timer` fires; never without one.
fn expired(timer: &mut Option<Pin<Box<Sleep>>>) -> impl Future<Output = ()> + '_ {
    poll_fn(move |cx| match timer {
        Some(t) => t.as_mut().poll(cx),
        None => Poll::Pending,
    })
}

/// Hand the state machine the deliveries already waiting in the outbox, as many as it can
/// queue; once the outbox is empty, also those the router parked in the overflow queue while
/// it was full.
fn deliver_batch(ctx: &mut Ctx, conn: &mut ServerConnection) {
    let t = now();
    let room = conn.queue_room();
    if room == 0 {
        return;
    }
    for (seq, d) in ctx.outbox.take(room) {
        ctx.taken(seq);
        conn.deliver(t, d);
    }
    let room = conn.queue_room();
    if room > 0 && ctx.outbox.has_overflow() && ctx.outbox.is_empty() {
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

/// A wait for slow subscribers is over: handle the held events in order until one makes the
/// connection wait again, then decode what is still buffered.
async fn resume(
    ctx: &mut Ctx,
    conn: &mut ServerConnection,
    decoder: &mut Decoder,
    inbuf: &mut BytesMut,
) {
    // `let .. else`, not `while let`: a `while let` keeps its scrutinee's temporary (an
    // Event) alive across the await, in every connection's task.
    loop {
        let Some(event) = ctx.held.next_ready() else {
            break;
        };
        if conn.is_closed() {
            return;
        }
        if let Some(step) = handle_event(ctx, conn, event) {
            step.await;
        }
    }
    if !ctx.held.is_holding() {
        read_packets(ctx, conn, decoder, inbuf).await;
    }
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
        // The await is outside the match: a match keeps its scrutinee (the decode result,
        // a whole Packet) alive across an await in its arms, in every connection's task.
        let packet = match decoder.decode(inbuf) {
            Ok(Some(packet)) => packet,
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
                continue;
            }
        };
        conn.handle_packet(now(), packet);
        handle_events(ctx, conn).await;
    }
    release_if_empty(inbuf);
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
    // `let .. else` for the reason given in `resume`.
    loop {
        let Some(event) = conn.poll_event() else {
            break;
        };
        if ctx.held.is_holding() {
            // Waiting for a slow subscriber: keep the client's order, route nothing new.
            ctx.held.hold(event);
        } else if let Some(step) = handle_event(ctx, conn, event) {
            step.await;
        }
    }
}

/// A step that waits (CONNECT and what follows it), boxed.
type Step<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Act on one event. Most are handled at once; CONNECT and the end of an enhanced
/// authentication may wait (a take-over, a commit) and come back as a boxed [`Step`] to await:
/// their state is allocated only while they run, not reserved in every connection's task.
fn handle_event<'a>(
    ctx: &'a mut Ctx,
    conn: &'a mut ServerConnection,
    event: Event,
) -> Option<Step<'a>> {
    match event {
        Event::Connect(c) => return Some(Box::pin(on_connect(ctx, conn, c))),
        Event::ReAuthenticate => conn.auth_challenge(nonce(ctx)),
        Event::AuthResponse { challenge, data } => {
            let secret = ctx.shared.config.challenge_auth.as_ref().map(|c| &c.secret);
            let expected = secret.map(|s| auth::challenge_response(&challenge, s));
            let ok = expected.is_some_and(|e| data.as_deref() == Some(e.as_bytes()));
            if let Some(c) = conn.auth_verdict(ok) {
                return Some(Box::pin(finish_connect(ctx, conn, c)));
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
            if !ctx.shared.limits.defects.has(Defect::UnsubackMissing) {
                conn.unsubscribe_done(u.packet_id, codes);
            }
        }
    }
    None
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
