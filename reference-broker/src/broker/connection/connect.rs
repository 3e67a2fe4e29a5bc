//! CONNECT: limits, authentication (plain and enhanced), take-over of a connected client,
//! attaching the session, CONNACK.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tracing::debug;

use crate::codec::{Connect, ReasonCode};
use crate::protocol::{Accept, Defect, ServerConnection};

use crate::broker::auth::{self, CHALLENGE_METHOD};
use crate::broker::router::Online;
use crate::broker::Shared;

use super::{now, Ctx};

pub(super) async fn on_connect(ctx: &mut Ctx, conn: &mut ServerConnection, c: Box<Connect>) {
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
                    return Box::pin(finish_connect(ctx, conn, c)).await;
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
pub(super) fn nonce(ctx: &Ctx) -> Bytes {
    Bytes::from(format!("{:016x}-{}", rand_u64(), ctx.conn_id))
}

pub(super) async fn finish_connect(ctx: &mut Ctx, conn: &mut ServerConnection, c: Box<Connect>) {
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
        let Some(old) = waiting else { break };
        took_over = true;
        let gone = until_gone(&shared, &client_id, old);
        let _ = tokio::time::timeout(Duration::from_secs(5), gone).await;
    }
    let Some(kick) = ctx.kick.take() else {
        conn.protocol_error();
        return;
    };
    let online = Online {
        conn_id: ctx.conn_id,
        outbox: Arc::clone(&ctx.outbox),
        kick: Some(kick),
        room: None,
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

/// Resolve once connection `conn_id` no longer serves `client_id` (it handed its session back).
async fn until_gone(shared: &Shared, client_id: &str, conn_id: u64) {
    loop {
        let departed = shared.departed.notified();
        tokio::pin!(departed);
        // Registered before the check, so a departure in between is not missed.
        departed.as_mut().enable();
        if !shared.router().serves(client_id, conn_id) {
            return;
        }
        departed.await;
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}
