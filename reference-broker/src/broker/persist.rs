//! Optional on-disk persistence (a `redb` database): persistent sessions (subscriptions,
//! session expiry, queued and in-flight QoS 1/2 messages, inbound QoS 2 state) and retained
//! messages. While the broker runs, changes go through the [`super::super::journal`] and are
//! committed before they are acknowledged; at a clean stop the whole state is rewritten
//! compactly; at start it is loaded (session snapshots plus the deliveries journalled after
//! them).
//!
//! Messages are stored as MQTT 5 PUBLISH packets encoded by the codec, so every property
//! survives; a Message Expiry Interval is stored as the time left, and the time spent stopped
//! counts against it and against the session expiry.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{split_filter, ClientEntry, Router};
use crate::codec::{
    encode, Decoder, Packet, ProtocolVersion, Publish, QoS, RetainHandling, Subscribe,
    Subscription, SubscriptionOptions,
};
use crate::protocol::session::{InflightOut, OutState};
use crate::protocol::{Delivery, Message, Session};

/// Session snapshots by client id.
pub(crate) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// Retained messages by topic.
pub(crate) const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");
/// Deliveries to persistent sessions journalled after their snapshot, by (client id, number).
pub(crate) const TRANSIT: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("transit");

/// Why the session store cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("session store {path}: {reason}")]
pub struct PersistError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct FilterRecord {
    raw: String,
    qos: u8,
    no_local: bool,
    retain_as_published: bool,
    retain_handling: u8,
    id: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DeliveryRecord {
    publish: Vec<u8>,
    qos: u8,
    retain: bool,
    subscription_ids: Vec<u32>,
    publisher: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct InflightRecord {
    publish: Vec<u8>,
    /// 1: awaiting PUBACK, 2: awaiting PUBREC, 3: awaiting PUBCOMP.
    state: u8,
}

#[derive(Debug, Serialize, Deserialize)]
struct SessionRecord {
    expiry: u32,
    /// Milliseconds since the Unix epoch when the broker saved the session.
    saved_at: u64,
    filters: Vec<FilterRecord>,
    pending: Vec<DeliveryRecord>,
    inflight: Vec<InflightRecord>,
    inbound_qos2: Vec<u16>,
    /// Journalled deliveries up to this number are in `pending` or `inflight`.
    #[serde(default)]
    upto: u64,
    /// Taken while the client was connected: the session expiry had not started.
    #[serde(default)]
    online: bool,
}

/// The on-disk store of one broker. The database is open only while it is loaded or saved,
/// so that a restarted broker can open it while tasks of the old one still wind down.
#[derive(Debug)]
pub(crate) struct SessionStore {
    path: PathBuf,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `publish` as an MQTT 5 PUBLISH packet.
fn encode_publish(publish: &Publish) -> Option<Vec<u8>> {
    let mut buf = BytesMut::new();
    encode(
        &Packet::Publish(publish.clone()),
        ProtocolVersion::V5,
        &mut buf,
    )
    .ok()?;
    Some(buf.to_vec())
}

fn decode_publish(bytes: &[u8]) -> Option<Publish> {
    let mut decoder = Decoder::new(usize::MAX);
    decoder.set_version(ProtocolVersion::V5);
    let mut buf = BytesMut::from(bytes);
    match decoder.decode(&mut buf) {
        Ok(Some(Packet::Publish(p))) => Some(p),
        _ => None,
    }
}

/// The message as a PUBLISH whose Message Expiry Interval is the time left at `now`.
fn message_publish(m: &Message, now: Instant) -> Publish {
    let mut properties = m.properties.clone();
    properties.message_expiry_interval = m.remaining_expiry(now);
    Publish {
        dup: false,
        qos: m.qos,
        retain: m.retain,
        topic: m.topic.clone(),
        // The codec needs an identifier on QoS 1/2; it is not part of the message.
        packet_id: if m.qos == QoS::AtMostOnce { 0 } else { 1 },
        properties,
        payload: m.payload.clone(),
    }
}

/// The message of a stored PUBLISH, with `elapsed` (time stopped) taken off its expiry.
fn stored_message(
    mut publish: Publish,
    publisher: Option<Arc<str>>,
    now: Instant,
    elapsed: Duration,
) -> Option<Message> {
    if let Some(secs) = publish.properties.message_expiry_interval {
        let left = u64::from(secs).checked_sub(elapsed.as_secs())?;
        publish.properties.message_expiry_interval = Some(u32::try_from(left).ok()?);
    }
    Some(Message::from_publish(now, publish, publisher))
}

fn qos_of(q: u8) -> QoS {
    QoS::from_u8(q).unwrap_or_default()
}

impl SessionStore {
    /// Opens (or creates) the database at `path`, checking that it is usable.
    pub fn open(path: &Path) -> Result<SessionStore, PersistError> {
        let store = SessionStore {
            path: path.to_path_buf(),
        };
        drop(store.db()?);
        Ok(store)
    }

    fn db(&self) -> Result<Database, PersistError> {
        Database::create(&self.path).map_err(|e| self.err(e))
    }

    fn err(&self, e: impl std::fmt::Display) -> PersistError {
        PersistError {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Replaces the stored state by the router's offline persistent sessions and retained
    /// messages.
    pub fn save(
        &self,
        router: &Router,
        now: Instant,
        wall: SystemTime,
    ) -> Result<(), PersistError> {
        let saved_at = unix_ms(wall);
        let db = self.db()?;
        let txn = db.begin_write().map_err(|e| self.err(e))?;
        {
            let _ = txn.delete_table(SESSIONS).map_err(|e| self.err(e))?;
            let _ = txn.delete_table(RETAINED).map_err(|e| self.err(e))?;
            let _ = txn.delete_table(TRANSIT).map_err(|e| self.err(e))?;
            let mut sessions = txn.open_table(SESSIONS).map_err(|e| self.err(e))?;
            for (id, entry) in &router.clients {
                let Some(session) = entry.session.as_ref() else {
                    continue;
                };
                if entry.online.is_some() || entry.expiry == 0 {
                    continue;
                }
                let record = session_record(router, id, entry, session, now, saved_at, 0);
                let json = serde_json::to_vec(&record).map_err(|e| self.err(e))?;
                sessions
                    .insert(id.as_ref(), json.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            let mut retained = txn.open_table(RETAINED).map_err(|e| self.err(e))?;
            for m in router.retained.all() {
                if m.is_expired(now) {
                    continue;
                }
                let Some(json) = retained_bytes(&m, now) else {
                    continue;
                };
                retained
                    .insert(&*m.topic, json.as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// Loads the stored sessions and retained messages into an empty router; returns the
    /// client ids with the session expiry time left, for the caller to schedule.
    pub fn load(
        &self,
        router: &mut Router,
        now: Instant,
        wall: SystemTime,
    ) -> Result<Vec<(Arc<str>, Duration)>, PersistError> {
        let db = self.db()?;
        let txn = db.begin_read().map_err(|e| self.err(e))?;
        let mut timers = Vec::new();
        let wall_ms = unix_ms(wall);
        if let Ok(table) = txn.open_table(RETAINED) {
            for row in table.iter().map_err(|e| self.err(e))? {
                let (_, value) = row.map_err(|e| self.err(e))?;
                let Ok(record) = serde_json::from_slice::<DeliveryRecord>(value.value()) else {
                    continue;
                };
                let Some(publish) = decode_publish(&record.publish) else {
                    continue;
                };
                let elapsed = Duration::ZERO;
                let publisher = record.publisher.map(Arc::from);
                if let Some(m) = stored_message(publish, publisher, now, elapsed) {
                    // [MQTT-3.3.1-5] the retained message outlives the restart.
                    router.retained.update(&Arc::new(m), usize::MAX);
                }
            }
        }
        // Deliveries journalled after the snapshots, by client, in routing order.
        let mut transit: HashMap<String, Vec<(u64, DeliveryRecord)>> = HashMap::new();
        let mut last_seq = 0;
        if let Ok(table) = txn.open_table(TRANSIT) {
            for row in table.iter().map_err(|e| self.err(e))? {
                let (key, value) = row.map_err(|e| self.err(e))?;
                let (client, seq) = key.value();
                last_seq = last_seq.max(seq);
                if let Ok(record) = serde_json::from_slice::<DeliveryRecord>(value.value()) {
                    transit
                        .entry(client.to_string())
                        .or_default()
                        .push((seq, record));
                }
            }
        }
        let Ok(table) = txn.open_table(SESSIONS) else {
            router.next_seq = last_seq + 1;
            return Ok(timers);
        };
        for row in table.iter().map_err(|e| self.err(e))? {
            let (key, value) = row.map_err(|e| self.err(e))?;
            let Ok(mut record) = serde_json::from_slice::<SessionRecord>(value.value()) else {
                tracing::warn!(client = key.value(), "unreadable stored session skipped");
                continue;
            };
            last_seq = last_seq.max(record.upto);
            let mut client_seq = record.upto;
            for (seq, d) in transit.remove(key.value()).unwrap_or_default() {
                if seq > record.upto {
                    record.pending.push(d);
                    client_seq = seq;
                }
            }
            // A session saved while its client was connected: its expiry starts now (the
            // moment of the crash is unknown; later is the safe side).
            let elapsed = if record.online {
                Duration::ZERO
            } else {
                Duration::from_millis(wall_ms.saturating_sub(record.saved_at))
            };
            let left = if record.expiry == u32::MAX {
                None
            } else {
                match Duration::from_secs(u64::from(record.expiry)).checked_sub(elapsed) {
                    Some(left) if !left.is_zero() => Some(left),
                    // [MQTT-3.1.2-23] the session expired while the broker was stopped.
                    _ => continue,
                }
            };
            let client: Arc<str> = Arc::from(key.value());
            restore_session(router, &client, record, now, elapsed);
            if let Some(entry) = router.clients.get_mut(&client) {
                entry.last_seq = client_seq;
                entry.stored = true;
            }
            if let Some(left) = left {
                timers.push((client, left));
            }
        }
        router.next_seq = last_seq + 1;
        Ok(timers)
    }
}

fn session_record(
    router: &Router,
    id: &Arc<str>,
    entry: &ClientEntry,
    session: &Session,
    now: Instant,
    saved_at: u64,
    upto: u64,
) -> SessionRecord {
    let mut filters = Vec::new();
    for raw in &entry.filters {
        let Some((key, inner)) = split_filter(raw, id) else {
            continue;
        };
        let Some(sub) = router.subs.get(&inner, &key) else {
            continue;
        };
        filters.push(FilterRecord {
            raw: raw.clone(),
            qos: sub.options.qos.as_u8(),
            no_local: sub.options.no_local,
            retain_as_published: sub.options.retain_as_published,
            retain_handling: match sub.options.retain_handling {
                RetainHandling::SendAtSubscribe => 0,
                RetainHandling::SendIfNew => 1,
                RetainHandling::DoNotSend => 2,
            },
            id: sub.id,
        });
    }
    let pending = session
        .pending
        .iter()
        .filter(|d| !d.message.is_expired(now))
        .filter_map(|d| delivery_record(d, now))
        .collect();
    let inflight = session
        .inflight
        .iter()
        .filter_map(|i| {
            Some(InflightRecord {
                publish: encode_publish(&i.publish)?,
                state: match i.state {
                    OutState::AwaitPubAck => 1,
                    OutState::AwaitPubRec => 2,
                    OutState::AwaitPubComp => 3,
                },
            })
        })
        .collect();
    SessionRecord {
        expiry: entry.expiry,
        saved_at,
        filters,
        pending,
        inflight,
        inbound_qos2: session.inbound_qos2.iter().copied().collect(),
        upto,
        online: entry.online.is_some(),
    }
}

fn delivery_record(d: &Delivery, now: Instant) -> Option<DeliveryRecord> {
    Some(DeliveryRecord {
        publish: encode_publish(&message_publish(&d.message, now))?,
        qos: d.qos.as_u8(),
        retain: d.retain,
        subscription_ids: d.subscription_ids.clone(),
        publisher: d.message.publisher.as_deref().map(str::to_string),
    })
}

/// A delivery as stored in the journal.
pub(crate) fn delivery_bytes(d: &Delivery, now: Instant) -> Option<Vec<u8>> {
    serde_json::to_vec(&delivery_record(d, now)?).ok()
}

/// A retained message as stored.
pub(crate) fn retained_bytes(m: &Message, now: Instant) -> Option<Vec<u8>> {
    let record = DeliveryRecord {
        publish: encode_publish(&message_publish(m, now))?,
        qos: m.qos.as_u8(),
        retain: true,
        subscription_ids: Vec::new(),
        publisher: m.publisher.as_deref().map(str::to_string),
    };
    serde_json::to_vec(&record).ok()
}

/// The stored form of `client`'s session `session` (held by its connection when online,
/// else by the router), covering journalled deliveries up to `upto`.
pub(crate) fn session_bytes(
    router: &Router,
    client: &Arc<str>,
    session: &Session,
    upto: u64,
) -> Option<Vec<u8>> {
    let entry = router.clients.get(client)?;
    let record = session_record(
        router,
        client,
        entry,
        session,
        Instant::now(),
        unix_ms(SystemTime::now()),
        upto,
    );
    serde_json::to_vec(&record).ok()
}

fn restore_session(
    router: &mut Router,
    client: &Arc<str>,
    record: SessionRecord,
    now: Instant,
    elapsed: Duration,
) {
    let mut session = Session::new();
    for p in record.pending {
        let Some(publish) = decode_publish(&p.publish) else {
            continue;
        };
        let Some(message) = stored_message(publish, p.publisher.map(Arc::from), now, elapsed)
        else {
            continue;
        };
        session.pending.push_back(Delivery {
            message: Arc::new(message),
            qos: qos_of(p.qos),
            retain: p.retain,
            subscription_ids: p.subscription_ids,
        });
    }
    let mut inflight = VecDeque::new();
    let mut used = HashSet::new();
    for i in record.inflight {
        let Some(publish) = decode_publish(&i.publish) else {
            continue;
        };
        let state = match i.state {
            1 => OutState::AwaitPubAck,
            2 => OutState::AwaitPubRec,
            _ => OutState::AwaitPubComp,
        };
        used.insert(publish.packet_id);
        inflight.push_back(InflightOut { publish, state });
    }
    session.inflight = inflight;
    session.used_ids = used;
    session.inbound_qos2 = record.inbound_qos2.into_iter().collect();
    router.clients.insert(
        client.clone(),
        ClientEntry {
            session: Some(Box::new(session)),
            expiry: record.expiry,
            ..ClientEntry::default()
        },
    );
    let subscriptions = record
        .filters
        .into_iter()
        .map(|f| {
            let sub = Subscription {
                filter: f.raw,
                options: SubscriptionOptions {
                    qos: qos_of(f.qos),
                    no_local: f.no_local,
                    retain_as_published: f.retain_as_published,
                    retain_handling: RetainHandling::DoNotSend,
                },
            };
            (sub, f.id, f.retain_handling)
        })
        .collect::<Vec<_>>();
    for (mut sub, id, retain_handling) in subscriptions {
        let packet = Subscribe {
            packet_id: 1,
            properties: crate::codec::Properties {
                subscription_identifiers: id.into_iter().collect(),
                ..Default::default()
            }
            .into(),
            subscriptions: vec![sub.clone()],
        };
        // Re-create the subscription as it was (no retained messages are sent: the client is
        // offline and got them when it subscribed).
        let _ = router.subscribe(client, ProtocolVersion::V5, &packet, |_| true, now);
        sub.options.retain_handling = match retain_handling {
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => RetainHandling::SendAtSubscribe,
        };
        if let Some((key, inner)) = split_filter(&sub.filter, client) {
            if let Some(entry) = router.subs.get(&inner, &key).cloned() {
                let mut entry = entry;
                entry.options.retain_handling = sub.options.retain_handling;
                router.subs.insert(&inner, key, entry);
            }
        }
    }
}
