//! Expectation steps: `expect`, `expect_one_of`, `expect_nothing` and `expect_close`, each
//! judged against the packets a client received.

use std::collections::VecDeque;
use std::time::Duration;

use reference_broker::codec::{Packet, PacketType, QoS, ReasonCode};
use tokio::time::Instant;

use crate::run::context::Ctx;
use crate::run::inbox::{ack_id, StepError, StepResult};
use crate::run::interp::DEFAULT_WITHIN;
use crate::run::matcher;
use crate::run::prefix::Prefixer;
use crate::run::trace;
use crate::scenario::{
    ExpectCloseStep, ExpectNothingStep, ExpectOneOfStep, ExpectStep, Observation, Qos, Version,
};

/// `expect`
pub(super) async fn expect(cx: &mut Ctx, s: &ExpectStep) -> StepResult {
    let Some(resolved) = resolve_saved(cx, s)? else {
        // The filter named by `granted` was refused: no subscription, no delivery to judge.
        return Ok(());
    };
    let s = &resolved;
    let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
    let kind = s.packet.0;
    let version = cx.env.version;
    let prefix = cx.env.prefix.clone();
    let packet = match cx
        .wait_for(&s.client, within, |p| p.packet_type() == kind)
        .await
    {
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
            cx.saved.insert(name.clone(), id);
        }
        return Ok(());
    }
    // Only the reason code differs: the kind deviations and SHOULD-level steps speak of.
    let observed = if diffs
        .iter()
        .all(|d| d.field == "reason" || d.field == "codes")
    {
        Observation::WrongReasonCode
    } else {
        Observation::PacketDiffers
    };
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
    )
    .kind(observed))
}

/// `expect_one_of`
pub(super) async fn expect_one_of(cx: &mut Ctx, s: &ExpectOneOfStep) -> StepResult {
    let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
    let deadline = Instant::now() + within;
    let version = cx.env.version;
    let prefix = cx.env.prefix.clone();
    let alternatives = s
        .alternatives
        .iter()
        .map(|alt| {
            alt.iter()
                .filter_map(|e| resolve_saved(cx, e).transpose())
                .collect()
        })
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
        cx.client(name)?;
    }
    loop {
        for alt in &alternatives {
            if let Some(mut claims) = claim(cx, alt, version, &prefix) {
                // Remove from the back so the indices stay valid.
                claims.sort_by(|a, b| b.cmp(a));
                for (name, index) in claims {
                    if let Some(c) = cx.clients.get_mut(&name) {
                        c.inbox.remove(index);
                    }
                }
                return Ok(());
            }
        }
        if let Some(name) = s
            .or_close
            .iter()
            .find(|n| cx.clients.get(*n).is_some_and(|c| c.closed))
        {
            // The broker chose to close this connection: that is the accepted reaction.
            if let Some(c) = cx.clients.get_mut(name) {
                c.retire();
            }
            return Ok(());
        }
        let now = Instant::now();
        let all_closed = names
            .iter()
            .all(|n| cx.clients.get(n).is_none_or(|c| c.closed));
        if now >= deadline || all_closed {
            let pending: Vec<String> = names
                .iter()
                .filter_map(|n| cx.clients.get(n).map(|c| (n, c)))
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
            let observed = if !pending.is_empty() {
                Observation::PacketDiffers
            } else if all_closed {
                Observation::ConnectionClosed
            } else {
                Observation::MissingPacket
            };
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
            )
            .kind(observed));
        }
        // Poll each client in turn for a short slice: packets of other kinds stay queued.
        let slice = (deadline - now).min(Duration::from_millis(10));
        for name in &names {
            if !cx.client(name)?.closed {
                cx.recv(name, slice).await?;
            }
        }
    }
}

/// `expect_nothing`
pub(super) async fn expect_nothing(cx: &mut Ctx, s: &ExpectNothingStep) -> StepResult {
    let kind = s.packet.map(|k| k.0);
    let version = cx.env.version;
    let reason = s.reason.map(|r| r.0);
    let c = cx.client(&s.client)?;
    let wanted = |p: &Packet| {
        kind.is_none_or(|k| p.packet_type() == k) && reason.is_none_or(|r| reason_of(p, r, version))
    };
    if let Some(p) = c.inbox.iter().find(|p| wanted(p)) {
        return Err(
            StepError::diff("a packet arrived", "nothing".into(), trace::redacted(p))
                .kind(Observation::UnexpectedPacket),
        );
    }
    let deadline = Instant::now() + s.duration.0;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        if cx.client(&s.client)?.closed {
            // No packet can arrive any more; a following expect_close observes the close.
            return Ok(());
        }
        cx.recv(&s.client, deadline - now).await?;
        let c = cx.client(&s.client)?;
        if let Some(p) = c.inbox.iter().find(|p| wanted(p)) {
            return Err(
                StepError::diff("a packet arrived", "nothing".into(), trace::redacted(p))
                    .kind(Observation::UnexpectedPacket),
            );
        }
    }
}

/// Whether `p` carries the reason code `r`, for `expect_nothing`'s `reason` (a 3.1.1 CONNACK
/// is compared by its return code, as `expect` does).
fn reason_of(p: &Packet, r: ReasonCode, version: Version) -> bool {
    match p {
        Packet::ConnAck(c) => c.code == matcher::connack_code(r, version),
        Packet::Disconnect(d) => d.reason == r,
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            a.reason == r
        }
        _ => false,
    }
}

/// `expect_close`
pub(super) async fn expect_close(cx: &mut Ctx, s: &ExpectCloseStep) -> StepResult {
    let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
    let version = cx.env.version;
    let allowed: Option<Vec<PacketType>> = s
        .allow_before
        .as_ref()
        .map(|l| l.iter().map(|k| k.0).collect());
    let deadline = Instant::now() + within;
    loop {
        let c = cx.client(&s.client)?;
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
            )
            .kind(Observation::ConnectionKeptOpen));
        }
        match cx.recv(&s.client, deadline - now).await {
            Err(e) if e.is_undecodable() => {
                // Bytes of any kind after the broker's own DISCONNECT break MQTT-3.14.4-1.
                if broker_disconnect(&cx.client(&s.client)?.inbox).is_some() {
                    return Err(StepError::diff(
                        "the broker sent a malformed packet after its DISCONNECT \
                         (MQTT-3.14.4-1: \"After sending a DISCONNECT packet the sender MUST NOT \
                         send any more MQTT Control Packets on that Network Connection.\")",
                        "nothing after the DISCONNECT, then the close".into(),
                        e.received.unwrap_or_default(),
                    )
                    .kind(Observation::MalformedPacket));
                }
                // The step judges the close. Bytes before it that do not decode (a SUBACK with
                // no codes answering a SUBSCRIBE with no filters, an echoed Packet Identifier
                // 0) break no statement the step cites; the trace keeps them, and a broker that
                // then keeps the connection open still fails at the deadline.
            }
            received => received?,
        }
    }
    let c = cx.client(&s.client)?;
    let disconnect = broker_disconnect(&c.inbox);
    // The connection is closed either way: a step at SHOULD level lets the case go on.
    c.retire();
    if let (Version::V5, Some(expected), Some(got)) = (version, s.reason, disconnect) {
        if expected.0 != got {
            return Err(StepError::diff(
                "DISCONNECT reason differs",
                format!("{:?}", expected.0),
                format!("{got:?}"),
            )
            .kind(Observation::WrongReasonCode));
        }
    }
    Ok(())
}

/// The reason code of the DISCONNECT the broker sent, if it sent one (an MQTT 5 broker's last
/// packet on the connection).
fn broker_disconnect(inbox: &VecDeque<Packet>) -> Option<ReasonCode> {
    inbox.iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason),
        _ => None,
    })
}

/// The packets (client, inbox index) matching every pattern of `alt`, each a distinct
/// packet; `None` when one pattern has no match yet.
fn claim(
    cx: &Ctx,
    alt: &[ExpectStep],
    version: Version,
    prefix: &Prefixer,
) -> Option<Vec<(String, usize)>> {
    let mut claims: Vec<(String, usize)> = Vec::new();
    for e in alt {
        let c = cx.clients.get(&e.client)?;
        let kind = e.packet.0;
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
/// The step with its saved names resolved: `packet_id_from` to a packet identifier,
/// `granted` to the QoS a delivery must have, the minimum of the published and the granted
/// QoS ([MQTT-3.8.4-8]; 3.1.1 [MQTT-3.8.4-6]). None when the filter named by `granted` was
/// refused (the step does not apply).
fn resolve_saved(cx: &Ctx, s: &ExpectStep) -> Result<Option<ExpectStep>, StepError> {
    let mut s = s.clone();
    if let Some(name) = &s.packet_id_from {
        s.packet_id = Some(cx.saved_id(name)?);
    }
    if let Some(name) = &s.granted {
        let code = cx.granted.get(name).copied().ok_or_else(|| {
            StepError::new(format!(
                "no granted QoS saved as {name:?} (an earlier subscribe with save_granted)"
            ))
        })?;
        let Some(granted) = QoS::from_u8(code.0).filter(|_| code.is_success()) else {
            return Ok(None);
        };
        s.qos = s.qos.map(|q| Qos(q.0.min(granted)));
    }
    Ok(Some(s))
}

/// The pattern of an `expect` step, for failure reports.
fn describe_expect(s: &ExpectStep) -> String {
    let mut parts = vec![format!("{:?}", s.packet.0).to_uppercase()];
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    };
    add("topic", s.topic.clone());
    add(
        "payload",
        s.payload.as_ref().map(|p| format!("{:?}", p.as_str())),
    );
    add(
        "payload_hex",
        s.payload_hex.as_ref().map(ToString::to_string),
    );
    add("qos", s.qos.map(|q| q.0.as_u8().to_string()));
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
        // As the scenario writes them (`{"content_type":"json"}`), not as a Rust dump.
        s.properties
            .as_ref()
            .map(|p| serde_json::to_string(p).unwrap_or_else(|_| format!("{p:?}"))),
    );
    if !s.absent.is_empty() {
        parts.push(format!("absent={:?}", s.absent));
    }
    parts.join(" ")
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
fn check_allowed_before(inbox: &VecDeque<Packet>, allowed: &[PacketType]) -> StepResult {
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
            )
            .kind(Observation::UnexpectedPacket));
        }
        after_disconnect = matches!(p, Packet::Disconnect(_));
    }
    Ok(())
}
