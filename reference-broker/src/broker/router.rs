//! The broker's shared state: which clients exist (online or with an offline session), their
//! subscriptions in a trie, the retained store, and routing one message to its subscribers.
//!
//! Everything here runs under one mutex and never awaits: deliveries go to bounded
//! per-connection outboxes ([`Outbox`]), so no lock is held while a socket is written.
//! When a connection's outbox is full, deliveries are parked in its client's overflow queue
//! (order kept). Once that queue has reached `max_queued_online`:
//! - QoS 0 deliveries are dropped and counted (`dropped_full`); at most once allows it, and
//!   Mosquitto does the same.
//! - QoS 1/2 deliveries are parked all the same and the publisher is told to wait
//!   ([`Wait`] in [`Published`]): back-pressure, see [`super::backpressure`].
//!
//! Offline sessions keep a plain bounded queue: deliveries beyond `max_queued_messages` (and
//! QoS 0 unless `queue_qos0`) are dropped and counted (`dropped_offline`), which MQTT allows
//! for a client that is not connected. Deliveries accepted while the client was online are
//! kept when it goes offline, even over the limit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{oneshot, watch};

use crate::codec::reason::v3;
use crate::codec::{
    ProtocolVersion, QoS, ReasonCode, RetainHandling, Subscribe, SubscriptionOptions, Unsubscribe,
};
use crate::protocol::variants::{Overlap, SharedDistribution, UnsubackNoSubscription};
use crate::protocol::{Defect, Defects, Delivery, Message, ServerLimits, Session};
use crate::topic::{too_deep, SharedFilter, SubscriptionTree};

use super::backpressure::Wait;
use super::journal::{Journal, Op};
use super::outbox::Outbox;
use super::retained::RetainedStore;

#[path = "persist.rs"]
pub(crate) mod persist;

/// Who holds a subscription: a client, or a client as a member of a shared group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SubKey {
    Client(Arc<str>),
    Shared(Arc<str>, Arc<str>),
}

#[derive(Debug, Clone)]
struct SubEntry {
    options: SubscriptionOptions,
    id: Option<u32>,
    filter: Arc<str>,
}

/// A delivery on its way to a connection, with its journal number (0: not journalled).
pub(crate) type Routed = (u64, Delivery);

/// The handle of the connection currently serving a client.
#[derive(Debug)]
pub(crate) struct Online {
    pub conn_id: u64,
    /// Deliveries for the connection, and the signal that wakes it.
    pub outbox: Arc<Outbox>,
    pub kick: Option<oneshot::Sender<ReasonCode>>,
    /// Changed when `overflow` drops below the limit; publishers waiting for room hold
    /// receivers, which also resolve when this is dropped with the connection. Made when the
    /// first publisher has to wait: most connections never need one.
    pub room: Option<watch::Sender<()>>,
}

#[derive(Debug, Default)]
struct ClientEntry {
    online: Option<Online>,
    session: Option<Session>,
    filters: HashSet<String>,
    generation: u64,
    /// Deliveries routed while the connection's channel was full, in order; bounded by
    /// `max_queued_online` (plus one per waiting publisher).
    overflow: VecDeque<Routed>,
    /// Session Expiry Interval of the current or last connection (for persistence).
    expiry: u32,
    /// Journal number of the last delivery journalled for this client.
    last_seq: u64,
    /// The journal holds state of this client (forget it when the session ends).
    stored: bool,
}

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

/// A Client Identifier for an empty one, in the format of the variant ([MQTT-3.1.3-6]: unique).
fn assigned_id(format: crate::protocol::variants::AssignedId, n: u64) -> String {
    use crate::protocol::variants::AssignedId;
    match format {
        AssignedId::Counter => format!("auto-{n}"),
        AssignedId::Uuid => {
            let h = format!("{n:032x}");
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        }
        AssignedId::Long => format!("assigned-client-identifier-{n:037}"),
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

/// Outcome of SUBSCRIBE.
#[derive(Debug)]
pub(crate) struct SubscribeResult {
    pub codes: Vec<ReasonCode>,
    pub retained: Vec<Delivery>,
}

/// Counters for tests and logs.
#[derive(Debug, Default, Clone, Copy)]
pub struct RouterStats {
    /// QoS 0 deliveries to an online client dropped because its channel and its overflow
    /// queue were full (QoS 1/2 deliveries are never dropped there: see `waits`).
    pub dropped_full: u64,
    /// Deliveries parked in an overflow queue because a connection's channel was full.
    pub parked: u64,
    /// QoS 1/2 deliveries parked over the overflow limit, each making its publisher wait.
    pub waits: u64,
    /// Deliveries dropped because an offline queue was full (or QoS 0 not queued).
    pub dropped_offline: u64,
}

/// Shared broker state; see the module doc.
#[derive(Debug)]
pub(crate) struct Router {
    limits: Arc<ServerLimits>,
    max_subscriptions: usize,
    max_retained: usize,
    clients: HashMap<Arc<str>, ClientEntry>,
    subs: SubscriptionTree<SubKey, SubEntry>,
    retained: RetainedStore,
    shared_rr: usize,
    assigned: u64,
    online: usize,
    pub stats: RouterStats,
    /// Where durable changes go (`persistence`), set once loading is done.
    pub journal: Option<Journal>,
    /// The next journal number.
    next_seq: u64,
}

fn split_filter(raw: &str, client: &Arc<str>) -> Option<(SubKey, String)> {
    match SharedFilter::parse(raw) {
        None => Some((SubKey::Client(client.clone()), raw.to_string())),
        Some(Ok(sf)) => Some((
            SubKey::Shared(Arc::from(sf.group), client.clone()),
            sf.filter.to_string(),
        )),
        Some(Err(())) => None,
    }
}

impl Router {
    pub fn new(limits: Arc<ServerLimits>, max_subscriptions: usize, max_retained: usize) -> Router {
        Router {
            limits,
            max_subscriptions,
            max_retained,
            clients: HashMap::new(),
            subs: SubscriptionTree::new(),
            retained: RetainedStore::default(),
            shared_rr: 0,
            assigned: 0,
            online: 0,
            stats: RouterStats::default(),
            journal: None,
            next_seq: 1,
        }
    }

    /// Number of clients connected right now.
    pub fn online_count(&self) -> usize {
        self.online
    }

    /// A client identifier not used by any session ([MQTT-3.2.2-16]).
    pub fn assign_client_id(&mut self) -> String {
        loop {
            self.assigned += 1;
            let id = assigned_id(self.limits.variants.assigned_client_id, self.assigned);
            if !self.clients.contains_key(id.as_str()) {
                return id;
            }
        }
    }

    /// If `client_id` is connected, tell that connection to go ([MQTT-3.1.4-3]) and return its
    /// id: it has handed its session back once [`Router::serves`] says so no more.
    pub fn take_over(&mut self, client_id: &str) -> Option<u64> {
        if self.limits.defects.has(Defect::TakeoverKeepsOldConnection) {
            return None;
        }
        let online = self.clients.get_mut(client_id)?.online.as_mut()?;
        if let Some(kick) = online.kick.take() {
            let _ = kick.send(ReasonCode::SESSION_TAKEN_OVER);
        }
        Some(online.conn_id)
    }

    /// True while connection `conn_id` serves `client_id`.
    pub fn serves(&self, client_id: &str, conn_id: u64) -> bool {
        self.clients
            .get(client_id)
            .and_then(|c| c.online.as_ref())
            .is_some_and(|o| o.conn_id == conn_id)
    }

    /// True while another connection still serves `client_id`.
    pub fn is_online(&self, client_id: &str) -> bool {
        self.clients
            .get(client_id)
            .is_some_and(|c| c.online.is_some())
    }

    /// Attach a new connection with Session Expiry Interval `expiry`; returns the session to
    /// resume, Session Present, and the journal number its queued deliveries reach.
    pub fn attach(
        &mut self,
        client_id: Arc<str>,
        online: Online,
        clean_start: bool,
        expiry: u32,
    ) -> (Session, bool, u64) {
        let entry = self.clients.entry(client_id.clone()).or_default();
        if clean_start && std::mem::take(&mut entry.stored) {
            if let Some(j) = &self.journal {
                j.send(Op::Forget {
                    client: client_id.clone(),
                });
            }
        }
        let entry = self.clients.entry(client_id.clone()).or_default();
        let had_session = entry.session.is_some();
        if clean_start && !self.limits.defects.has(Defect::CleanStartKeepsSession) {
            // [MQTT-3.1.2-4] (5) / [MQTT-3.1.2-6] (3.1.1): discard any existing session.
            let filters = std::mem::take(&mut entry.filters);
            entry.session = None;
            for raw in filters {
                if let Some((key, inner)) = split_filter(&raw, &client_id) {
                    self.subs.remove(&inner, &key);
                }
            }
        }
        let entry = self.clients.entry(client_id).or_default();
        entry.generation += 1;
        entry.expiry = expiry;
        if entry.online.replace(online).is_none() {
            self.online += 1;
        }
        let upto = entry.last_seq;
        match entry.session.take() {
            // [MQTT-3.1.2-5] (5) / [MQTT-3.2.2-2] (3.1.1): resume, Session Present 1.
            Some(session) => (session, true, upto),
            None if clean_start && had_session => (
                Session::new(),
                self.limits.defects.has(Defect::SessionPresentOnCleanStart),
                upto,
            ),
            None => (Session::new(), false, upto),
        }
    }

    /// The connection `conn_id` of `client_id` ended: keep its session for `expiry` seconds
    /// (0: end it now). Deliveries still in its outbox go back into the session queue.
    /// Returns the generation to pass to [`Router::expire`] / [`Router::will_due`].
    pub fn detach(
        &mut self,
        client_id: &Arc<str>,
        conn_id: u64,
        mut session: Session,
        expiry: u32,
        outbox: &Outbox,
    ) -> u64 {
        let Some(entry) = self.clients.get_mut(client_id) else {
            return 0;
        };
        if entry.online.as_ref().map(|o| o.conn_id) != Some(conn_id) {
            return 0;
        }
        entry.online = None;
        entry.expiry = expiry;
        self.online -= 1;
        entry.generation += 1;
        let generation = entry.generation;
        if expiry == 0 {
            self.remove_client(client_id);
            return generation;
        }
        // [MQTT-3.1.2-23] (5) / [MQTT-3.1.2-4] (3.1.1): keep the session state.
        let mut parked: Vec<Routed> = outbox.take(usize::MAX).into();
        if let Some(entry) = self.clients.get_mut(client_id) {
            parked.extend(entry.overflow.drain(..));
        }
        // Accepted while online: kept even over the offline limit (QoS 0 only if queued).
        for (_, d) in parked {
            if !session.enqueue(d, usize::MAX, self.limits.queue_qos0) {
                self.stats.dropped_offline += 1;
            }
        }
        // Everything journalled for the client is in the session now.
        let snapshot = self.clients.get(client_id).and_then(|entry| {
            let j = self.journal.as_ref()?;
            let record = persist::session_bytes(self, client_id, &session, entry.last_seq)?;
            Some((j.clone(), entry.last_seq, record))
        });
        if let Some(entry) = self.clients.get_mut(client_id) {
            entry.session = Some(session);
            if let Some((j, upto, record)) = snapshot {
                entry.stored = true;
                j.send(Op::Session {
                    client: client_id.clone(),
                    upto,
                    record,
                });
            }
        }
        generation
    }

    /// Up to `max` of the deliveries parked for connection `conn_id` of `client_id` while its
    /// channel was full, oldest first. Publishers waiting for room are released once the
    /// queue is below the limit again.
    pub fn take_overflow(&mut self, client_id: &str, conn_id: u64, max: usize) -> Vec<Routed> {
        let limit = self.limits.max_queued_online;
        let Some(entry) = self.clients.get_mut(client_id) else {
            return Vec::new();
        };
        let Some(online) = entry.online.as_ref().filter(|o| o.conn_id == conn_id) else {
            return Vec::new();
        };
        let before = entry.overflow.len();
        let taken: Vec<Routed> = entry.overflow.drain(..max.min(before)).collect();
        let after = entry.overflow.len();
        if after == 0 {
            online.outbox.overflow_empty();
        }
        if before >= limit && after < limit {
            if let Some(room) = &online.room {
                room.send_replace(());
            }
        }
        taken
    }

    /// Session expiry timer: end the session if it is still offline at `generation`.
    pub fn expire(&mut self, client_id: &Arc<str>, generation: u64) {
        let due = self
            .clients
            .get(client_id)
            .is_some_and(|e| e.online.is_none() && e.generation == generation);
        if due {
            self.remove_client(client_id);
        }
    }

    /// Whether a delayed will is still due: the session was not resumed since `generation`.
    pub fn will_due(&self, client_id: &str, generation: u64) -> bool {
        self.clients
            .get(client_id)
            .is_none_or(|e| e.online.is_none() && e.generation == generation)
    }

    fn remove_client(&mut self, client_id: &Arc<str>) {
        if let Some(entry) = self.clients.remove(client_id) {
            if let (true, Some(j)) = (entry.stored, &self.journal) {
                j.send(Op::Forget {
                    client: client_id.clone(),
                });
            }
            for raw in entry.filters {
                if let Some((key, inner)) = split_filter(&raw, client_id) {
                    self.subs.remove(&inner, &key);
                }
            }
        }
    }

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
            let granted = s.options.qos.min(self.limits.maximum_qos);
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
        unsub
            .filters
            .iter()
            .map(|raw| {
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
        if msg.retain && !keep_old {
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
        self.subs.for_each_match(&msg.topic, |key, e| match key {
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

    /// Journal what routing one message changed (`ops` of [`Published`]) together with
    /// `extra` (the publisher's session, holding its QoS 2 state) in one transaction: a QoS 2
    /// message is then durable for its subscribers exactly when its packet identifier is for
    /// its publisher, so a resend after a crash is neither lost nor delivered twice. Called
    /// before the router lock is released, so it precedes anything a subscriber journals.
    pub fn journal_group(&self, ops: Vec<Op>, extra: Option<Op>) {
        if let (Some(j), false) = (&self.journal, ops.is_empty()) {
            j.send(Op::Group(ops.into_iter().chain(extra).collect()));
        }
    }

    /// The stored form of the session of `client`, held by its connection, for the journal
    /// (`None` without persistence or for a session that ends with the connection).
    pub fn snapshot(
        &mut self,
        client: &Arc<str>,
        conn_id: u64,
        session: &Session,
        upto: u64,
    ) -> Option<Op> {
        self.journal.as_ref()?;
        let entry = self.clients.get(client)?;
        // Only the connection serving the client speaks for its session.
        if entry.expiry == 0 || entry.online.as_ref().map(|o| o.conn_id) != Some(conn_id) {
            return None;
        }
        let record = persist::session_bytes(self, client, session, upto)?;
        if let Some(entry) = self.clients.get_mut(client) {
            entry.stored = true;
        }
        Some(Op::Session {
            client: client.clone(),
            upto,
            record,
        })
    }

    /// Number of retained messages.
    pub fn retained_len(&self) -> usize {
        self.retained.len()
    }
}
