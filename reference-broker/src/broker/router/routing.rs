//! Routing one message: the retained store, the matching subscriptions (overlaps, shared
//! groups), and where each copy goes: the connection's outbox, the overflow queue with
//! back-pressure, or the offline session's queue, journalled first for persistent sessions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::broker::backpressure::Wait;
use crate::broker::journal::Op;
use crate::codec::QoS;
use crate::protocol::variants::{Overlap, SharedDistribution};
use crate::protocol::{Defect, Defects, Delivery, Message};
use crate::topic::too_deep;

use super::{persist, ClientEntry, Router, SubEntry, SubKey};

/// A member of a shared group matching a message: client, granted QoS, subscription id.
type SharedMember = (Arc<str>, QoS, Option<u32>);

/// One subscription of a client matching a message.
#[derive(Debug, Clone, Copy)]
struct Match {
    qos: QoS,
    retain: bool,
    id: Option<u32>,
}

/// One copy of a message for a client: granted QoS, RETAIN, subscription identifiers.
#[derive(Debug)]
struct OneCopy {
    qos: QoS,
    retain: bool,
    ids: Vec<u32>,
}

/// The copies a client gets of a message matching `matches` (in tree order), by the overlap
/// variant: one at the highest QoS with every identifier ([MQTT-3.3.5-1] / [MQTT-3.3.4-2],
/// [MQTT-3.3.4-4]), or one per subscription ([MQTT-3.3.4-5]).
fn copies(overlap: Overlap, d: Defects, matches: Vec<Match>) -> Vec<OneCopy> {
    let single = |qos: QoS| OneCopy {
        qos,
        retain: matches.iter().any(|m| m.retain),
        ids: if d.has(Defect::SubscriptionIdOneDropped) {
            matches.iter().find_map(|m| m.id).into_iter().collect()
        } else {
            matches.iter().filter_map(|m| m.id).collect()
        },
    };
    let max = matches
        .iter()
        .map(|m| m.qos)
        .max()
        .unwrap_or(QoS::AtMostOnce);
    if d.has(Defect::OverlapQosFromLastSubscription) {
        return vec![single(matches.last().map_or(max, |m| m.qos))];
    }
    if d.has(Defect::OverlapQosFromFirstSubscription) {
        return vec![single(matches.first().map_or(max, |m| m.qos))];
    }
    let mut each: Vec<OneCopy> = matches
        .iter()
        .map(|m| OneCopy {
            qos: m.qos,
            retain: m.retain,
            ids: m.id.into_iter().collect(),
        })
        .collect();
    match overlap {
        _ if matches.len() < 2 => vec![single(max)],
        Overlap::Single => vec![single(max)],
        Overlap::PerSubscriptionMaxFirst => {
            each.sort_by_key(|c| std::cmp::Reverse(c.qos));
            each
        }
        Overlap::PerSubscriptionMaxLast => {
            each.sort_by_key(|c| c.qos);
            each
        }
    }
}

/// Outcome of routing one message ([`Router::publish`]).
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// Clients and shared groups the message went to.
    pub recipients: usize,
    /// Slow subscribers the publisher must wait for before routing its next message.
    pub wait: Wait,
    /// Something was journalled: the publisher's acknowledgement waits for the commit.
    pub durable: bool,
    /// The journal changes of this message, for [`Router::journal_group`].
    pub ops: Vec<Op>,
}

impl Router {
    /// Route one message: update the retained store if it is retained, then deliver one copy to
    /// each matching client and to one member of each matching shared group. Returns the
    /// number of recipients and the slow subscribers the publisher must now wait for.
    pub fn publish(&mut self, msg: Arc<Message>) -> Published {
        let mut out = Published::default();
        if too_deep(&msg.topic) {
            return out;
        }
        let d = self.limits.defects;
        let keep_old = (d.has(Defect::RetainedNotReplaced) && self.retained.contains(&msg.topic))
            || (d.has(Defect::RetainedEmptyNotDeleted) && msg.payload.is_empty());
        // Retain Available 0 refuses retained PUBLISH and wills from MQTT 5 clients; those that
        // reach the store come from 3.1.1 clients, which must be served ([MQTT-3.3.1-5]).
        // [MQTT-3.3.1-12] (3.1.1) / [MQTT-3.3.1-8] (5) RETAIN 0 leaves the retained message.
        let retain = msg.retain || d.has(Defect::NonRetainedReplacesRetained);
        if retain && !keep_old {
            if !self.retained.update(&msg, self.max_retained) {
                tracing::warn!(topic = %msg.topic, "retained store full, message not retained");
            } else if let Some(j) = &self.journal {
                let record = if msg.payload.is_empty() {
                    None
                } else {
                    persist::retained_bytes(&msg, Instant::now())
                };
                let _ = j;
                out.ops.push(Op::Retain {
                    topic: Arc::from(&*msg.topic),
                    record,
                });
                out.durable = true;
            }
        }
        let mut direct: HashMap<Arc<str>, Vec<Match>> = HashMap::new();
        let mut groups: HashMap<(Arc<str>, Arc<str>), Vec<SharedMember>> = HashMap::new();
        let parent_only = |e: &SubEntry| e.filter.strip_suffix("/#") == Some(&*msg.topic);
        let matched = d.topic_for_matching(&msg.topic);
        self.subs.for_each_match(&matched, |key, e| match key {
            _ if d.has(Defect::HashNotMatchingParent) && parent_only(e) => {}
            SubKey::Client(c) => {
                // [MQTT-3.8.3-3] No Local: not back to the publishing connection.
                if e.options.no_local
                    && msg.publisher.as_ref() == Some(c)
                    && !d.has(Defect::NoLocalIgnored)
                {
                    return;
                }
                direct.entry(c.clone()).or_default().push(Match {
                    qos: e.options.qos,
                    // [MQTT-3.3.1-12] / [MQTT-3.3.1-13] Retain As Published.
                    retain: (e.options.retain_as_published
                        || d.has(Defect::RetainFlagKeptOnLiveMessages))
                        && !d.has(Defect::RetainAsPublishedIgnored)
                        && msg.retain,
                    id: e.id,
                });
            }
            SubKey::Shared(g, c) => groups
                .entry((g.clone(), e.filter.clone()))
                .or_default()
                .push((c.clone(), e.options.qos, e.id)),
        });
        out.recipients = direct.len() + groups.len();
        for (client, matches) in direct {
            for m in copies(self.limits.variants.overlap, d, matches) {
                let delivery = Delivery {
                    message: Arc::clone(&msg),
                    // [MQTT-3.8.4-8] min(published QoS, granted QoS).
                    qos: if d.has(Defect::DeliveredAboveGrantedQos) {
                        msg.qos
                    } else {
                        msg.qos.min(m.qos)
                    },
                    retain: m.retain,
                    subscription_ids: m.ids,
                };
                self.dispatch(&client, delivery, &mut out);
            }
        }
        let mut groups: Vec<_> = groups.into_values().collect();
        groups.sort_by(|a, b| a[0].0.cmp(&b[0].0));
        for mut members in groups {
            members.sort_by(|a, b| a.0.cmp(&b.0));
            let online: Vec<_> = members
                .iter()
                .filter(|m| self.is_online(&m.0))
                .cloned()
                .collect();
            let pool = if online.is_empty() { members } else { online };
            // One member, preferring connected ones ([MQTT-4.8.2-3] its granted QoS).
            let chosen = match self.limits.variants.shared_distribution {
                _ if d.has(Defect::SharedDeliversToAll) => pool,
                SharedDistribution::RoundRobin => {
                    let i = self.shared_rr % pool.len();
                    self.shared_rr = self.shared_rr.wrapping_add(1);
                    vec![pool[i].clone()]
                }
                SharedDistribution::StickyFirst => pool.into_iter().take(1).collect(),
                SharedDistribution::StickyLast => pool.into_iter().last().into_iter().collect(),
            };
            for (client, granted, id) in chosen {
                let delivery = Delivery {
                    message: Arc::clone(&msg),
                    qos: if d.has(Defect::SharedGrantedQosIgnored) {
                        msg.qos
                    } else {
                        msg.qos.min(granted)
                    },
                    retain: false,
                    subscription_ids: id.into_iter().collect(),
                };
                self.dispatch(&client, delivery, &mut out);
            }
        }
        out
    }

    /// Hand `delivery` to `client`'s connection, park it, or queue it in the offline session;
    /// adds to `out.wait` when the client is an online subscriber over its limit. A QoS 1/2
    /// delivery to a persistent session is journalled first (`out.durable`).
    fn dispatch(&mut self, client: &Arc<str>, delivery: Delivery, out: &mut Published) {
        let Some(entry) = self.clients.get_mut(client) else {
            return;
        };
        let journal = self
            .journal
            .as_ref()
            .filter(|_| entry.expiry != 0 && delivery.qos != QoS::AtMostOnce);
        let record = journal.and_then(|_| persist::delivery_bytes(&delivery, Instant::now()));
        let mut seq = 0;
        let journal_it = |entry: &mut ClientEntry, next_seq: &mut u64| {
            if let (Some(_), Some(record)) = (journal, record) {
                seq = *next_seq;
                *next_seq += 1;
                entry.last_seq = seq;
                entry.stored = true;
                out.ops.push(Op::Transit {
                    client: client.clone(),
                    seq,
                    record,
                });
                out.durable = true;
            }
        };
        if entry.online.is_some() {
            journal_it(entry, &mut self.next_seq);
            let Some(online) = &mut entry.online else {
                return;
            };
            // Once something is parked, later deliveries queue behind it to keep the order.
            let routed = if entry.overflow.is_empty() {
                match online.outbox.push((seq, delivery)) {
                    Ok(()) => return,
                    Err(r) => r,
                }
            } else {
                (seq, delivery)
            };
            let full = entry.overflow.len() >= self.limits.max_queued_online;
            if full && routed.1.qos == QoS::AtMostOnce {
                self.stats.dropped_full += 1;
                // Counted in stats; a log line per dropped message would cost more than the
                // delivery itself under overload.
                tracing::debug!(client = %client, "delivery queue full, QoS 0 message dropped");
                return;
            }
            if full {
                // Never drop QoS 1/2 for an online client: park it over the limit and make
                // the publisher wait for room (its connection stops routing meanwhile).
                let room = online.room.get_or_insert_with(|| watch::Sender::new(()));
                out.wait.push(room.subscribe());
                self.stats.waits += 1;
            }
            entry.overflow.push_back(routed);
            online.outbox.parked();
            self.stats.parked += 1;
        } else if let Some(session) = entry
            .session
            .as_mut()
            .filter(|_| !self.limits.defects.has(Defect::SessionNotStoredOffline))
        {
            if session.enqueue(
                delivery,
                self.limits.max_queued_messages,
                self.limits.queue_qos0,
            ) {
                journal_it(entry, &mut self.next_seq);
            } else {
                self.stats.dropped_offline += 1;
            }
        }
    }
}
