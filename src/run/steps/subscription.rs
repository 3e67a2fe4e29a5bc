//! Subscription steps: `subscribe` (SUBSCRIBE and its SUBACK) and `unsubscribe` (UNSUBSCRIBE
//! and its UNSUBACK).

use reference_broker::codec::{Packet, ReasonCode, Subscribe, UnsubAck, Unsubscribe};

use crate::run::context::Ctx;
use crate::run::inbox::{send, wait_for, StepError, StepResult};
use crate::run::interp::DEFAULT_WITHIN;
use crate::run::matcher::suback_code;
use crate::scenario::{Observation, SubscribeStep, UnsubscribeStep, Version};

/// `subscribe`
pub(super) async fn subscribe(cx: &mut Ctx, s: &SubscribeStep) -> StepResult {
    let filters = s.filters.iter().map(|f| cx.subscription(f)).collect();
    let props = cx.props(&s.properties);
    let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
    let version = cx.env.version;
    let c = cx.client(&s.client)?;
    let packet_id = c.packet_id();
    send(
        c,
        &Packet::Subscribe(Subscribe {
            packet_id,
            properties: props.into(),
            subscriptions: filters,
        }),
    )
    .await?;
    let ack = wait_for(
        c,
        within,
        |p| matches!(p, Packet::SubAck(a) if a.packet_id == packet_id),
    )
    .await?;
    let Packet::SubAck(ack) = ack else {
        return Err(StepError::new("internal: not a SUBACK"));
    };
    let received: Vec<ReasonCode> = ack.reason_codes.clone();
    match &s.expect {
        Some(codes) => {
            let expected: Vec<ReasonCode> =
                codes.iter().map(|c| suback_code(c.0, version)).collect();
            // [MQTT-3.8.4-6] / [MQTT-3.9.3-1] one code per filter, in order.
            if expected != received {
                return Err(StepError::diff(
                    "SUBACK codes differ",
                    codes_text(&expected),
                    codes_text(&received),
                )
                .kind(Observation::WrongReasonCode));
            }
        }
        None => {
            if received.len() != s.filters.len() || received.iter().any(|c| !c.is_success()) {
                return Err(StepError::diff(
                    "SUBACK does not grant every filter",
                    format!("{} success codes", s.filters.len()),
                    codes_text(&received),
                )
                .kind(Observation::WrongReasonCode));
            }
        }
    }
    Ok(())
}

/// `unsubscribe`
pub(super) async fn unsubscribe(cx: &mut Ctx, s: &UnsubscribeStep) -> StepResult {
    let filters = s.filters.iter().map(|f| cx.env.prefix.topic(f)).collect();
    let props = cx.props(&s.properties);
    let within = s.within.map_or(DEFAULT_WITHIN, |d| d.0);
    let version = cx.env.version;
    let c = cx.client(&s.client)?;
    let packet_id = c.packet_id();
    send(
        c,
        &Packet::Unsubscribe(Unsubscribe {
            packet_id,
            properties: props.into(),
            filters,
        }),
    )
    .await?;
    // [MQTT-3.10.4-4] the server answers UNSUBSCRIBE with UNSUBACK.
    let ack = wait_for(
        c,
        within,
        |p| matches!(p, Packet::UnsubAck(a) if a.packet_id == packet_id),
    )
    .await?;
    if version == Version::V5 {
        let Packet::UnsubAck(UnsubAck { reason_codes, .. }) = ack else {
            return Err(StepError::new("internal: not an UNSUBACK"));
        };
        let ok = match &s.expect {
            Some(codes) => codes.iter().map(|c| c.0).collect::<Vec<_>>() == reason_codes,
            None => {
                reason_codes.len() == s.filters.len() && reason_codes.iter().all(|c| c.is_success())
            }
        };
        if !ok {
            let expected = s.expect.as_ref().map_or_else(
                || format!("{} success codes", s.filters.len()),
                |c| codes_text(&c.iter().map(|c| c.0).collect::<Vec<_>>()),
            );
            return Err(StepError::diff(
                "UNSUBACK codes differ",
                expected,
                codes_text(&reason_codes),
            )
            .kind(Observation::WrongReasonCode));
        }
    }
    Ok(())
}

/// Reason codes as a report shows them: `[0x00 (Success), 0x80 (Unspecified error)]`.
fn codes_text(codes: &[ReasonCode]) -> String {
    let shown: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    format!("[{}]", shown.join(", "))
}
