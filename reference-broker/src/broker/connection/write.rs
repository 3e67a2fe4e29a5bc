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
/// cannot hold the task forever: a write that makes no progress for `limit` counts as a lost
/// network connection.
pub(super) async fn flush<W: AsyncWrite + Unpin>(
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
    if ctx.shared.config.persistence.is_some() && !Box::pin(commit_before_write(ctx, conn)).await {
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
