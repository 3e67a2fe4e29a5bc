//! Subscription steps: `subscribe` (SUBSCRIBE and its SUBACK) and `unsubscribe` (UNSUBSCRIBE
//! and its UNSUBACK).

use reference_broker::codec::{Packet, ReasonCode, Subscribe, UnsubAck, Unsubscribe};

use crate::run::context::Ctx;
use crate::run::inbox::{send, StepError, StepResult};
use crate::run::interp::DEFAULT_WITHIN;
use crate::run::matcher::suback_code;
use crate::scenario::{
    FilterSpec, Observation, SubackExpect, SubackRule, SubscribeStep, UnsubscribeStep, Version,
};

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
    let ack = cx
        .wait_for(
            &s.client,
            within,
            |p| matches!(p, Packet::SubAck(a) if a.packet_id == packet_id),
        )
        .await?;
    let Packet::SubAck(ack) = ack else {
        return Err(StepError::new("internal: not a SUBACK"));
    };
    let received: Vec<ReasonCode> = ack.reason_codes.clone();
    match &s.expect {
        Some(SubackExpect::Codes(codes)) => {
            let expected: Vec<ReasonCode> =
                codes.iter().map(|c| suback_code(c.0, version)).collect();
            // A server "might grant a lower" QoS than requested (section 3.8.4, both
            // versions): a case pinning the requested QoS has nothing to judge then.
            if let Some(why) = lower_grant(&expected, &received, &s.filters) {
                return Err(StepError::not_applicable(why));
            }
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
        Some(SubackExpect::Rule(SubackRule::AtMost)) => {
            let requested: Vec<u8> = s.filters.iter().map(|f| f.qos.0.as_u8()).collect();
            if !at_most_holds(&requested, &received, version) {
                return Err(StepError::diff(
                    "SUBACK codes break the rule: one per filter, in order, each a QoS at most \
                     the one requested or a failure",
                    format!("at most {requested:?}, in order (or failure codes)"),
                    codes_text(&received),
                )
                .kind(Observation::WrongReasonCode));
            }
            if received.iter().all(|c| !c.is_success()) {
                return Err(StepError::not_applicable(format!(
                    "the broker refused every filter of the SUBSCRIBE ({}), which a server may \
                     do: nothing to judge",
                    codes_text(&received)
                )));
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
    // A lower grant where the case expects a delivery from this client above it (and not
    // through `granted`): the case needs the QoS it requested.
    let needed = cx.expected_qos.get(&s.client).copied().unwrap_or(0);
    if let Some((f, code)) = s
        .filters
        .iter()
        .zip(&received)
        .find(|(f, c)| c.is_success() && c.0 < f.qos.0.as_u8() && c.0 < needed)
    {
        return Err(StepError::not_applicable(format!(
            "the broker granted QoS {} to {} where {} was requested (a server may grant less, \
             section 3.8.4), and the case expects a delivery at QoS {needed}: nothing to judge",
            code.0,
            f.filter,
            f.qos.0.as_u8()
        )));
    }
    for (f, code) in s.filters.iter().zip(&received) {
        if let Some(name) = &f.save_granted {
            cx.granted.insert(name.clone(), *code);
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
    let ack = cx
        .wait_for(
            &s.client,
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

/// Why the case cannot judge a SUBACK that differs from `expected` only by granting lower
/// QoS levels, each still a success: the case pinned the QoS it requested, which the
/// specification does not require. None when it differs otherwise (or not at all).
fn lower_grant(
    expected: &[ReasonCode],
    received: &[ReasonCode],
    filters: &[FilterSpec],
) -> Option<String> {
    if expected.len() != received.len() || expected == received {
        return None;
    }
    let only_lower = expected
        .iter()
        .zip(received)
        .all(|(e, r)| e == r || (e.is_success() && r.is_success() && r.0 < e.0));
    if !only_lower {
        return None;
    }
    let (f, (e, r)) = filters
        .iter()
        .zip(expected.iter().zip(received))
        .find(|(_, (e, r))| e != r)?;
    Some(format!(
        "the broker granted QoS {} to {} where the case expects {} (a server may grant less, \
         section 3.8.4): nothing to judge",
        r.0, f.filter, e.0
    ))
}

/// Whether `received` answers filters requesting `requested` as the specification allows: one
/// code per filter, in order ([MQTT-3.9.3-1]), each a granted QoS no higher than requested
/// (3.1.1 and 5, section 3.8.4: "might grant a lower" QoS) or a failure code ([MQTT-3.8.4-7];
/// 3.1.1 [MQTT-3.8.4-5]).
/// In 3.1.1 the only failure code is 0x80 ([MQTT-3.9.3-2]).
fn at_most_holds(requested: &[u8], received: &[ReasonCode], version: Version) -> bool {
    let allowed = |code: &ReasonCode, asked: u8| match version {
        _ if code.is_success() => code.0 <= asked,
        Version::V311 => code.0 == 0x80,
        Version::V5 => true,
    };
    received.len() == requested.len()
        && received
            .iter()
            .zip(requested)
            .all(|(code, &asked)| allowed(code, asked))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn codes(c: &[u8]) -> Vec<ReasonCode> {
        c.iter().copied().map(ReasonCode).collect()
    }

    #[test]
    fn at_most_accepts_a_lower_grant_or_a_failure_in_order() {
        let v5 = Version::V5;
        assert!(at_most_holds(&[2, 0, 1], &codes(&[2, 0, 1]), v5));
        assert!(at_most_holds(&[2, 0, 1], &codes(&[1, 0, 0]), v5));
        assert!(at_most_holds(&[2, 0, 1], &codes(&[0x80, 0, 0x97]), v5));
        assert!(at_most_holds(
            &[2, 0, 1],
            &codes(&[0x80, 0, 1]),
            Version::V311
        ));
        assert!(!at_most_holds(
            &[2, 0, 1],
            &codes(&[0x97, 0, 1]),
            Version::V311
        ));
    }

    #[test]
    fn only_a_lower_success_makes_exact_codes_not_applicable() {
        let filters: Vec<FilterSpec> = ["a", "b"]
            .iter()
            .map(|f| serde_saphyr::from_str(&format!("{{filter: {f}, qos: 2}}")).unwrap())
            .collect();
        assert!(lower_grant(&codes(&[2, 1]), &codes(&[2, 0]), &filters).is_some());
        assert!(lower_grant(&codes(&[2, 1]), &codes(&[2, 1]), &filters).is_none());
        assert!(lower_grant(&codes(&[1, 1]), &codes(&[2, 1]), &filters).is_none());
        assert!(lower_grant(&codes(&[1, 1]), &codes(&[0x80, 1]), &filters).is_none());
        assert!(lower_grant(&codes(&[1, 1]), &codes(&[0]), &filters).is_none());
    }

    #[test]
    fn at_most_refuses_a_higher_grant_a_reorder_or_a_missing_code() {
        for v in [Version::V311, Version::V5] {
            assert!(!at_most_holds(&[2, 0, 1], &codes(&[1, 0, 2]), v));
            assert!(!at_most_holds(&[2, 0, 1], &codes(&[2, 1, 1]), v));
            assert!(!at_most_holds(&[2, 0, 1], &codes(&[2, 0]), v));
            assert!(!at_most_holds(&[2, 0, 1], &codes(&[2, 0, 1, 0]), v));
        }
    }
}
