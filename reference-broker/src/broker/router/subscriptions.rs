//! Subscriptions in the router: SUBSCRIBE (with the retained messages it delivers) and
//! UNSUBSCRIBE, ACL-checked, for clients and shared groups.

use std::sync::Arc;
use std::time::Instant;

use crate::codec::reason::v3;
use crate::codec::{ProtocolVersion, QoS, ReasonCode, RetainHandling, Subscribe, Unsubscribe};
use crate::protocol::variants::{GrantedQos, UnsubackNoSubscription};
use crate::protocol::{Defect, Delivery, Message};
use crate::topic::too_deep;

use super::{split_filter, Router, SubEntry, SubKey};

/// Outcome of SUBSCRIBE.
#[derive(Debug)]
pub(crate) struct SubscribeResult {
    pub codes: Vec<ReasonCode>,
    pub retained: Vec<Delivery>,
}

impl Router {
    /// Handle SUBSCRIBE for `client`; `allowed` is the ACL check. `Err` means a protocol
    /// error that closes the connection.
    pub fn subscribe(
        &mut self,
        client: &Arc<str>,
        version: ProtocolVersion,
        sub: &Subscribe,
        allowed: impl Fn(&str) -> bool,
        now: Instant,
    ) -> Result<SubscribeResult, ReasonCode> {
        let v5 = version.is_v5();
        let fail = |code: ReasonCode| if v5 { code } else { v3::SUBACK_FAILURE };
        let id = sub.properties.subscription_identifiers.first().copied();
        if id.is_some() && !self.limits.subscription_identifiers_available {
            // MQTT 5 section 3.2.2.3.12: identifiers not supported, DISCONNECT 0xA1.
            return Err(ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED);
        }
        let mut codes = Vec::with_capacity(sub.subscriptions.len());
        let mut retained = Vec::new();
        // [MQTT-3.8.4-5] several filters are handled as a sequence of SUBSCRIBEs.
        for s in &sub.subscriptions {
            let Some((key, inner)) = split_filter(&s.filter, client) else {
                // [MQTT-4.8.2-2] malformed shared subscription filter.
                codes.push(fail(ReasonCode::TOPIC_FILTER_INVALID));
                continue;
            };
            // MQTT 5 sections 3.2.2.3.13 / 3.2.2.3.11: unsupported shared or wildcard filters.
            if matches!(key, SubKey::Shared(..)) && !self.limits.shared_subscription_available {
                codes.push(fail(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED));
                continue;
            }
            if inner.contains(['+', '#']) && !self.limits.wildcard_subscription_available {
                codes.push(fail(ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED));
                continue;
            }
            if too_deep(&inner) {
                codes.push(fail(ReasonCode::TOPIC_FILTER_INVALID));
                continue;
            }
            let shared = matches!(key, SubKey::Shared(..));
            if shared && s.options.no_local && v5 {
                // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error.
                return Err(ReasonCode::PROTOCOL_ERROR);
            }
            if !allowed(&inner) {
                codes.push(fail(ReasonCode::NOT_AUTHORIZED));
                continue;
            }
            let held = self.clients.get(client).map_or(0, |c| c.filters.len());
            if held >= self.max_subscriptions
                && self
                    .clients
                    .get(client)
                    .is_none_or(|c| !c.filters.contains(&s.filter))
            {
                codes.push(fail(ReasonCode::QUOTA_EXCEEDED));
                continue;
            }
            let mut granted = s.options.qos.min(self.limits.maximum_qos);
            if self.limits.variants.granted_qos == GrantedQos::AtMostOne {
                // 3.8.4: the server might grant less than requested.
                granted = granted.min(QoS::AtLeastOnce);
            }
            let mut options = s.options;
            options.qos = granted;
            let entry = SubEntry {
                options,
                id,
                filter: Arc::from(inner.as_str()),
            };
            // [MQTT-3.8.4-3] an identical filter replaces the existing subscription.
            let existed = self.subs.insert(&inner, key, entry.clone()).is_some();
            if existed
                && self
                    .limits
                    .defects
                    .has(Defect::SubscriptionReplaceDuplicates)
            {
                self.subs.insert(
                    &inner,
                    SubKey::Shared(Arc::from("\0dup"), client.clone()),
                    entry,
                );
            }
            if let Some(c) = self.clients.get_mut(client) {
                c.filters.insert(s.filter.clone());
            }
            // [MQTT-3.8.4-7] the code is the granted QoS.
            codes.push(ReasonCode(granted.as_u8()));
            let send_retained = !shared
                && match s.options.retain_handling {
                    // [MQTT-3.3.1-9]
                    RetainHandling::SendAtSubscribe => true,
                    // [MQTT-3.3.1-10]
                    RetainHandling::SendIfNew => {
                        !existed
                            || self
                                .limits
                                .defects
                                .has(Defect::RetainHandlingResendOnResubscribe)
                    }
                    // [MQTT-3.3.1-11]
                    RetainHandling::DoNotSend => {
                        self.limits.defects.has(Defect::RetainHandlingTwoSends)
                    }
                };
            if send_retained {
                let expired_too = self.limits.defects.has(Defect::RetainedExpiredStillSent);
                let at = if expired_too { None } else { Some(now) };
                for m in self.retained.matching(&inner, at) {
                    let m = match expired_too {
                        true => Arc::new(Message {
                            expires_at: None,
                            ..(*m).clone()
                        }),
                        false => m,
                    };
                    retained.push(Delivery {
                        qos: m.qos.min(granted),
                        // [MQTT-3.3.1-8] (3.1.1) retained messages sent on subscribe keep RETAIN 1.
                        retain: !self
                            .limits
                            .defects
                            .has(Defect::RetainedSentWithoutRetainFlag),
                        subscription_ids: id.into_iter().collect(),
                        message: m,
                    });
                }
            }
        }
        Ok(SubscribeResult { codes, retained })
    }

    /// Handle UNSUBSCRIBE; returns one code per filter (MQTT 5 UNSUBACK).
    pub fn unsubscribe(&mut self, client: &Arc<str>, unsub: &Unsubscribe) -> Vec<ReasonCode> {
        if self.limits.defects.has(Defect::UnsubscribeKeepsDelivering) {
            return vec![ReasonCode::SUCCESS; unsub.filters.len()];
        }
        let absent = match self.limits.variants.unsuback_no_subscription {
            UnsubackNoSubscription::NoSubscriptionExisted => ReasonCode::NO_SUBSCRIPTION_EXISTED,
            UnsubackNoSubscription::Success => ReasonCode::SUCCESS,
        };
        let first_only = self.limits.defects.has(Defect::UnsubscribeOnlyFirstFilter);
        unsub
            .filters
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                if first_only && i > 0 {
                    return ReasonCode::SUCCESS;
                }
                let removed = split_filter(raw, client)
                    .and_then(|(key, inner)| self.subs.remove(&inner, &key))
                    .is_some();
                if let Some(c) = self.clients.get_mut(client) {
                    c.filters.remove(raw);
                }
                if removed {
                    ReasonCode::SUCCESS
                } else {
                    absent
                }
            })
            .collect()
    }
}
