//! The `publish` step: PUBLISH, then (unless told not to) its QoS 1 or QoS 2 flow.

use reference_broker::codec::{encoded_len, Packet, PacketType, PubResponse, Publish, QoS};

use crate::run::context::Ctx;
use crate::run::inbox::{ack_id, ack_reason, send, StepError, StepResult};
use crate::run::interp::DEFAULT_WITHIN;
use crate::scenario::{Observation, PublishStep};

/// `publish`
pub(super) async fn publish(cx: &mut Ctx, s: &PublishStep) -> StepResult {
    let qos = s.qos.0;
    let topic = cx.env.prefix.topic(&s.topic);
    if s.retain {
        cx.retained.record(&topic);
    }
    let properties = cx.props(&s.properties);
    let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
    let version = cx.env.version;
    let c = cx.client(&s.client)?;
    let packet_id = match (qos, s.packet_id) {
        (_, Some(id)) => id,
        (QoS::AtMostOnce, None) => 0,
        _ => c.packet_id(),
    };
    let publish = Publish {
        dup: s.dup,
        qos,
        retain: s.retain,
        topic: topic.into(),
        packet_id,
        properties: properties.into(),
        payload: s.payload_bytes(),
    };
    let packet = Packet::Publish(publish);
    // [MQTT-3.2.2-15] a client must not send a packet above the broker's announced Maximum
    // Packet Size: the case then has nothing to judge on this broker.
    let limit = c.effective.and_then(|e| e.maximum_packet_size);
    let size = encoded_len(&packet, version.protocol());
    if let Some(max) = limit.filter(|m| usize::try_from(*m).is_ok_and(|m| size > m)) {
        return Err(StepError::not_applicable(format!(
            "this PUBLISH is {size} bytes and the CONNACK announces Maximum Packet Size {max}: \
             the client must not send it (MQTT-3.2.2-15)"
        )));
    }
    send(c, &packet).await?;
    if qos == QoS::AtMostOnce || !s.await_ack {
        return Ok(());
    }
    let first = if qos == QoS::AtLeastOnce {
        PacketType::PubAck
    } else {
        PacketType::PubRec
    };
    let ack = cx
        .wait_for(&s.client, within, |p| {
            p.packet_type() == first && ack_id(p) == Some(packet_id)
        })
        .await?;
    let reason = ack_reason(&ack);
    if let Some(expected) = s.expect.reason {
        if reason != expected.0 {
            return Err(StepError::diff(
                format!("{first:?} reason differs"),
                format!("{:?}", expected.0),
                format!("{reason:?}"),
            )
            .kind(Observation::WrongReasonCode));
        }
    }
    if qos == QoS::ExactlyOnce && reason.is_success() {
        // [MQTT-4.3.3-1] the sender answers PUBREC with PUBREL and waits for PUBCOMP.
        send(
            cx.client(&s.client)?,
            &Packet::PubRel(PubResponse {
                packet_id,
                ..Default::default()
            }),
        )
        .await?;
        cx.wait_for(
            &s.client,
            within,
            |p| matches!(p, Packet::PubComp(r) if r.packet_id == packet_id),
        )
        .await?;
    }
    Ok(())
}
