//! The write path: encode what the state machine transmits, commit what it promises first
//! (persistence), write with a timeout.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tracing::{debug, warn};

use crate::codec::encode;
use crate::protocol::ServerConnection;

use crate::broker::journal::Op;

use super::Ctx;

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

/// Encode and write everything the state machine wants to send, once what it promises is
/// committed (persistence). False on a write or commit error. A peer that stops reading
/// cannot hold the task forever: a write that makes no progress for `write_timeout_secs`
/// counts as a lost network connection.
pub(super) async fn flush<W: AsyncWrite + Unpin>(
    ctx: &mut Ctx,
    conn: &mut ServerConnection,
    out: &mut BytesMut,
    wr: &mut W,
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
    if ctx.shared.config.persistence.is_some() && !Box::pin(commit_before_write(ctx, conn)).await {
        release(out);
        return false;
    }
    let limit = Duration::from_secs(ctx.shared.config.limits.write_timeout_secs);
    let write = async { wr.write_all(out).await.is_ok() && wr.flush().await.is_ok() };
    let ok = tokio::time::timeout(limit, write)
        .await
        .unwrap_or_else(|_| {
            debug!(client = %conn.client_id(), "write timed out: peer not reading");
            false
        });
    release(out);
    ok
}

/// Output buffers up to this size are freed once written; larger ones are kept for the next
/// burst.
const KEEP_OUT: usize = 4096;

/// Empty `out` after a write. A connection that writes a packet now and then (an idle one: its
/// CONNACK, a PINGRESP) holds no buffer; one that writes in bursts (a subscriber under load)
/// keeps its buffer, instead of growing a new one by reallocation for every burst.
fn release(out: &mut BytesMut) {
    if out.capacity() <= KEEP_OUT {
        *out = BytesMut::new();
    } else {
        out.clear();
    }
}
