//! Steps that send what the scenario spells out: `send` (one packet exactly as described)
//! and `send_raw` (bytes), opening the transport first when the client has none.

use std::collections::BTreeMap;

use reference_broker::codec::{
    Auth, Disconnect, Packet, PubResponse, Publish, QoS, ReasonCode, Subscribe, Unsubscribe,
};

use super::connection::connect_packet;
use crate::run::context::Ctx;
use crate::run::inbox::{limit_packet_size, open, send, StepError, StepResult};
use crate::scenario::{ClientPacket, SendRawStep, SendStep, Version};

/// `send`
pub(super) async fn send_packet(cx: &mut Ctx, s: &SendStep) -> StepResult {
    let packet = build(cx, s)?;
    if let Packet::Publish(p) = &packet {
        if p.retain {
            cx.retained.record(&p.topic);
        }
    }
    let url = cx.url_for(&s.client);
    let transport = cx.env.transport.clone();
    let version = cx.env.version;
    let c = cx.client(&s.client)?;
    if c.conn.is_none() {
        // A CONNECT (or anything) sent by hand opens the transport first.
        open(c, &url, &transport).await?;
        if let Some(conn) = c.conn.as_mut() {
            conn.set_version(version.protocol());
        }
    }
    if let Packet::Connect(connect) = &packet {
        if let Some(conn) = c.conn.as_mut() {
            conn.set_version(connect.protocol);
        }
        if version == Version::V5 {
            // [MQTT-3.1.2-24] as in `connect`: larger packets fail the case.
            limit_packet_size(c, connect.properties.maximum_packet_size);
        }
    }
    send(c, &packet).await
}

/// `send_raw`
pub(super) async fn send_raw(cx: &mut Ctx, s: &SendRawStep) -> StepResult {
    let prefix = cx.env.prefix.clone();
    let ids: BTreeMap<String, String> = cx
        .clients
        .iter()
        .map(|(n, c)| (n.clone(), c.id.clone()))
        .collect();
    // The target's credentials (profile or URL) go into `${connect_flags:..}` and
    // `${credentials}`, so that raw CONNECTs pass a broker that requires them.
    let credentials = cx.env.credentials.clone();
    let bytes = s
        .hex
        .expand_with(
            &|t| prefix.topic(t),
            &|c| ids.get(c).cloned(),
            credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
        )
        .map_err(|e| StepError::new(e.to_string()))?;
    let url = cx.url_for(&s.client);
    let transport = cx.env.transport.clone();
    let version = cx.env.version;
    let c = cx.client(&s.client)?;
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
    conn.send_raw(&bytes).await.map_err(|e| {
        StepError::new(format!("sending raw bytes failed: {e}"))
            .kind(crate::scenario::Observation::ConnectionClosed)
    })?;
    c.sent_raw();
    Ok(())
}

/// The packet a `send` step describes (absent fields are zero or empty).
fn build(cx: &Ctx, s: &SendStep) -> Result<Packet, StepError> {
    let reason = s.reason.map_or(ReasonCode::SUCCESS, |r| r.0);
    let from = match &s.packet_id_from {
        Some(name) => Some(cx.saved_id(name)?),
        None => s.packet_id,
    };
    let packet_id = from.unwrap_or(1);
    let properties = cx.props(&s.properties);
    let response = PubResponse {
        packet_id,
        reason,
        properties: properties.clone().into(),
    };
    Ok(match s.packet {
        ClientPacket::Connect => Packet::Connect(Box::new(connect_packet(cx, &s.client, None)?)),
        ClientPacket::Publish => Packet::Publish(Publish {
            dup: s.dup,
            qos: s.qos.0,
            retain: s.retain,
            topic: match &s.topic {
                Some(t) => cx.env.prefix.topic(t).into(),
                None => "".into(),
            },
            packet_id: if s.qos.0 == QoS::AtMostOnce {
                from.unwrap_or(0)
            } else {
                packet_id
            },
            properties: properties.into(),
            payload: s.payload.0.clone(),
        }),
        ClientPacket::Puback => Packet::PubAck(response),
        ClientPacket::Pubrec => Packet::PubRec(response),
        ClientPacket::Pubrel => Packet::PubRel(response),
        ClientPacket::Pubcomp => Packet::PubComp(response),
        ClientPacket::Subscribe => Packet::Subscribe(Subscribe {
            packet_id,
            properties: properties.into(),
            subscriptions: s.filters.iter().map(|f| cx.subscription(f)).collect(),
        }),
        ClientPacket::Unsubscribe => Packet::Unsubscribe(Unsubscribe {
            packet_id,
            properties: properties.into(),
            filters: s
                .filters
                .iter()
                .map(|f| cx.env.prefix.topic(&f.filter))
                .collect(),
        }),
        ClientPacket::Pingreq => Packet::PingReq,
        ClientPacket::Disconnect => Packet::Disconnect(Disconnect {
            reason,
            properties: properties.into(),
        }),
        ClientPacket::Auth => Packet::Auth(Auth {
            reason,
            properties: properties.into(),
        }),
    })
}
