//! Sessions in the router: which connection serves a client, take-over, attaching a new
//! connection to its session, handing the session back when the connection ends, expiry.

use std::sync::Arc;

use crate::broker::journal::Op;
use crate::broker::outbox::Outbox;
use crate::codec::ReasonCode;
use crate::protocol::{Defect, Session};

use super::{persist, split_filter, Online, Routed, Router};

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

impl Router {
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
            Some(session) => (*session, true, upto),
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
            entry.session = Some(Box::new(session));
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

    pub(super) fn remove_client(&mut self, client_id: &Arc<str>) {
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
}
