//! Connection steps: `connect` (CONNECT and the CONNACK it must get), `disconnect` and
//! `drop`.

use bytes::Bytes;
use reference_broker::codec::{Connect, Disconnect, Packet, ReasonCode, Will};
use tokio::time::Instant;

use crate::run::context::Ctx;
use crate::run::inbox::{limit_packet_size, open, send, StepError, StepResult};
use crate::run::interp::DEFAULT_WITHIN;
use crate::run::matcher::connack_code;
use crate::run::sessions::Grant;
use crate::run::trace;
use crate::scenario::{ConnectStep, DisconnectStep, DropStep, Effective, Observation, Version};

/// The CONNECT of client `name` (target credentials when the client sets none).
pub(super) fn connect_packet(
    cx: &Ctx,
    name: &str,
    clean_start: Option<bool>,
) -> Result<Connect, StepError> {
    let c = cx
        .clients
        .get(name)
        .ok_or_else(|| StepError::new(format!("unknown client {name:?}")))?;
    let spec = &c.spec;
    let (username, password) = match (&spec.username, &spec.password, &cx.env.credentials) {
        (None, None, Some((u, p))) => (Some(u.clone()), Some(Bytes::from(p.clone()))),
        (u, p, _) => (u.clone(), p.as_ref().map(|p| p.0.clone())),
    };
    let will = spec.will.as_ref().map(|w| {
        let topic = cx.env.prefix.topic(&w.topic);
        if w.retain {
            cx.retained.record(&topic);
        }
        Will {
            topic,
            payload: w.payload.0.clone(),
            qos: w.qos.0,
            retain: w.retain,
            properties: cx.props(&w.properties).into(),
        }
    });
    Ok(Connect {
        protocol: cx.env.version.protocol(),
        clean_start: clean_start.unwrap_or(spec.clean_start),
        keep_alive: spec.keep_alive,
        client_id: c.id.clone(),
        will,
        username,
        password,
        properties: cx.props(&spec.properties).into(),
    })
}

/// The statement that lets a server refuse a CONNECT under restrictions of its own.
fn refusal_statement(version: Version) -> &'static str {
    match version {
        Version::V5 => "MQTT-3.1.4-2",
        // 3.1.1 says it in section 3.1.4 without a statement ID.
        Version::V311 => "MQTT 3.1.1 section 3.1.4: the Server MAY check further restrictions",
    }
}

/// `connect`
pub(super) async fn connect(cx: &mut Ctx, s: &ConnectStep) -> StepResult {
    let connect = connect_packet(cx, &s.client, s.clean_start)?;
    let (keep_alive, requested) = (connect.keep_alive, connect.properties.clone());
    let version = cx.env.version;
    let url = cx.url_for(&s.client);
    let transport = cx.env.transport.clone();
    let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
    let prefix = cx.env.prefix.clone();
    let c = cx.client(&s.client)?;
    c.retire();
    open(c, &url, &transport).await?;
    if version == Version::V5 {
        // [MQTT-3.1.2-24] the broker must not send packets above the client's maximum:
        // a larger one fails the case (see recv_one).
        let announced = c.spec.properties.maximum_packet_size;
        limit_packet_size(c, announced);
    }
    send(c, &Packet::Connect(Box::new(connect))).await?;
    let ack = match cx
        .wait_for(&s.client, within, |p| matches!(p, Packet::ConnAck(_)))
        .await
    {
        Err(e) if s.refusal_allowed && e.kind == Observation::ConnectionClosed => {
            return Err(StepError::not_applicable(format!(
                "the broker closed this CONNECT without a CONNACK, a refusal the specification \
                 allows ({}); the case has nothing to judge ({})",
                refusal_statement(version),
                e.message
            )))
        }
        other => other?,
    };
    let Packet::ConnAck(ack) = ack else {
        return Err(StepError::new("internal: not a CONNACK"));
    };
    let sessions = &mut cx.sessions;
    let c = cx
        .clients
        .get_mut(&s.client)
        .ok_or_else(|| StepError::new(format!("unknown client {:?}", s.client)))?;
    let refused = if c.v311_connack {
        ack.code.0 != 0
    } else {
        !ack.code.is_success()
    };
    if s.refusal_allowed && refused && s.expect.code.is_none() {
        return Err(StepError::not_applicable(format!(
            "the broker refused this CONNECT ({}), a refusal the specification allows ({}); \
             the case has nothing to judge",
            trace::connack(&ack, version != Version::V5 || c.v311_connack),
            refusal_statement(version)
        )));
    }
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
    if ack.code.is_success() {
        // A CONNACK that accepts: the session, if any, lasts as long as it grants.
        let granted = Grant {
            requested: requested.session_expiry_interval.unwrap_or(0),
            announced: ack.properties.session_expiry_interval,
            at: Instant::now(),
        };
        let missing = expected_present && !ack.session_present;
        if let Some(why) = missing
            .then(|| sessions.explains_missing(&c.id, granted.at))
            .flatten()
        {
            return Err(StepError::not_applicable(why));
        }
        sessions.granted(&c.id, granted);
    }
    if ack.session_present != expected_present {
        diffs.push(format!(
            "session_present: expected {expected_present}, received {}",
            ack.session_present
        ));
    }
    if ack.code.is_success() {
        // The connection runs with what this CONNACK announced (a case going on after a
        // SHOULD-level difference included).
        let effective = Effective::of(keep_alive, &requested, &ack.properties);
        c.connected(effective);
        // The CONNACK may override or limit what the client asked for (MQTT 5 section
        // 3.2.2.3); a case built on other values has nothing to judge here.
        if let Some(why) = diffs
            .is_empty()
            .then(|| s.assume.unmet(&effective, version))
            .flatten()
        {
            return Err(StepError::not_applicable(why));
        }
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
        let observed = if ack.code != expected_code {
            Observation::WrongReasonCode
        } else {
            Observation::PacketDiffers
        };
        return Err(StepError::diff(
            format!("CONNACK differs: {}", diffs.join("; ")),
            format!(
                "code {}, session_present {expected_present}",
                connack_text(expected_code, version)
            ),
            // A 3.1.1 return code is named by the 3.1.1 table (0x02 is "identifier rejected",
            // not the MQTT 5 "Granted QoS 2").
            trace::connack(&ack, version != Version::V5),
        )
        .kind(observed));
    }
    Ok(())
}

/// `disconnect`
pub(super) async fn disconnect(cx: &mut Ctx, s: &DisconnectStep) -> StepResult {
    let properties = cx.props(&s.properties);
    let c = cx.client(&s.client)?;
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

/// `drop`: close the TCP connection without DISCONNECT.
pub(super) fn drop_connection(cx: &mut Ctx, s: &DropStep) -> StepResult {
    let c = cx.client(&s.client)?;
    if let Some(conn) = c.conn.as_mut() {
        conn.note("dropping the connection (no DISCONNECT)");
    }
    c.retire();
    Ok(())
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
    )
    .kind(Observation::WrongReasonCode))
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
