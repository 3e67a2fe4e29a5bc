//! Closing a connection: hand the session back to the router (expiry, will), and the graceful
//! close that keeps reading after the broker's last packet so the peer gets to read it.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::debug;

use crate::codec::Will;
use crate::protocol::{CloseKind, Defect, Message, ServerConnection};

use crate::broker::auth::{self, Identity};
use crate::broker::Shared;

use super::{now, Ctx};

/// How long a closing connection keeps reading (and discarding) what its peer still sends.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// Whether the broker ended the connection with something to say (DISCONNECT with a reason
/// code, a refusal CONNACK), rather than the peer (its DISCONNECT, a lost network).
pub(super) fn server_closed(kind: Option<CloseKind>) -> bool {
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
pub(super) async fn drain<R: AsyncRead + Unpin>(rd: &mut R, mut buf: BytesMut) {
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

/// The connection is over: hand the session back, schedule expiry, publish or schedule the will.
pub(super) fn finish(ctx: &mut Ctx, conn: &mut ServerConnection) {
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
        .detach(&client_id, ctx.conn_id, session, expiry, &ctx.outbox);
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
