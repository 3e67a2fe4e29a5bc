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

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::{oneshot, watch};

use crate::codec::{ReasonCode, SubscriptionOptions};
use crate::protocol::{Delivery, ServerLimits, Session};
use crate::topic::{SharedFilter, SubscriptionTree};

use super::journal::{Journal, Op};
use super::outbox::Outbox;
use super::retained::RetainedStore;

#[path = "persist.rs"]
pub(crate) mod persist;
mod routing;
mod sessions;
mod subscriptions;

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
    /// The session while no connection holds it; boxed: most entries are online clients.
    session: Option<Box<Session>>,
    /// The client's filters (a B-tree: half the inline size of a hash set, and one entry
    /// per client is kept for every connection).
    filters: BTreeSet<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry per client, online or not, in a table sized for the next power of two: an
    /// offline session is boxed and the filters are a B-tree, so an online client's entry
    /// stays small (368 bytes with the session inline).
    #[test]
    fn a_client_entry_stays_small() {
        let size = std::mem::size_of::<ClientEntry>();
        assert!(size <= 128, "ClientEntry is {size} bytes");
    }
}
