//! Back-pressure from slow subscribers to publishers: what a publishing connection waits for
//! ([`Wait`]) and the inbound events it holds back meanwhile ([`Held`]).
//!
//! The rule: a QoS 1/2 delivery to an online subscriber is never dropped. When the
//! subscriber's channel is full and its overflow queue has reached `max_queued_online`, the
//! router parks the delivery anyway (one over the limit) and hands the publisher's connection
//! a [`Wait`] on that subscriber. Until it resolves (the subscriber's connection took the queue
//! below the limit, or went away), the publisher's connection routes nothing more: it holds
//! the application events it decodes (PUBLISH, SUBSCRIBE, UNSUBSCRIBE, AUTH) in order, and
//! stops reading its socket once [`Held`] is full, so TCP flow control slows the publisher.
//! PUBLISHes held are not acknowledged, so an MQTT 5 client also stops at its Receive Maximum.
//!
//! It keeps handling everything else as it arrives: acknowledgements of its own deliveries
//! (PUBACK, PUBREC, PUBREL, PUBCOMP), PINGREQ and DISCONNECT, timers, and writing its own
//! deliveries. Two clients publishing to each other therefore cannot deadlock: each one's
//! acknowledgements still reach its connection, which frees room for the other. A client
//! publishing to its own subscription waits on itself the same way, and its own connection
//! frees the room. Memory stays bounded: at most one delivery over the limit per waiting
//! publisher and subscriber, plus [`Held`]'s capacity per publishing connection.

use std::collections::VecDeque;

use tokio::sync::watch;

use crate::protocol::Event;

/// Slow subscribers a publishing connection waits for before it routes its next message.
/// Each receiver changes when its subscriber's overflow queue drops below the limit, and
/// closes when that subscriber's connection ends.
#[derive(Debug, Default)]
pub(crate) struct Wait {
    rooms: Vec<watch::Receiver<()>>,
}

impl Wait {
    /// True when there is nothing to wait for.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Also wait for the subscriber behind `room` (a receiver taken under the router lock, so
    /// a change after the routing decision is never missed).
    pub fn push(&mut self, room: watch::Receiver<()>) {
        self.rooms.push(room);
    }

    /// Add every subscriber of `other`.
    pub fn extend(&mut self, other: Wait) {
        self.rooms.extend(other.rooms);
    }

    /// Resolve once every subscriber has room or is gone. Cancel safe: a subscriber is
    /// forgotten only once it has signalled.
    pub async fn ready(&mut self) {
        while let Some(room) = self.rooms.last_mut() {
            // Err: the subscriber's connection ended; nothing to wait for.
            let _ = room.changed().await;
            self.rooms.pop();
        }
    }
}

/// Inbound events held back, in order, while the connection waits ([`Wait`]).
#[derive(Debug)]
pub(crate) struct Held {
    wait: Wait,
    events: VecDeque<Event>,
    capacity: usize,
}

impl Held {
    /// Hold up to `capacity` events before the socket is no longer read. Give it room for
    /// the server's Receive Maximum of QoS 1/2 PUBLISHes and then some: a client that respects
    /// Receive Maximum never fills it, so its acknowledgements are always read.
    pub fn new(capacity: usize) -> Held {
        Held {
            wait: Wait::default(),
            events: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// True while routing is suspended: waiting, or events held that must go first.
    pub fn is_holding(&self) -> bool {
        !self.wait.is_empty() || !self.events.is_empty()
    }

    /// True while waiting for a slow subscriber.
    pub fn is_waiting(&self) -> bool {
        !self.wait.is_empty()
    }

    /// True when no more events may be held: stop reading the socket.
    pub fn is_full(&self) -> bool {
        self.events.len() >= self.capacity
    }

    /// Start (or extend) waiting.
    pub fn wait_for(&mut self, wait: Wait) {
        self.wait.extend(wait);
    }

    /// Hold an event behind the ones already held.
    pub fn hold(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// The next held event, once no wait is pending.
    pub fn next_ready(&mut self) -> Option<Event> {
        if self.is_waiting() {
            return None;
        }
        self.events.pop_front()
    }

    /// Every held event, whether or not a wait is pending (the connection is closing).
    pub fn drain(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.wait = Wait::default();
        self.events.drain(..)
    }

    /// Resolve once the wait is over (see [`Wait::ready`]); cancel safe.
    pub async fn ready(&mut self) {
        self.wait.ready().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures::FutureExt;

    #[test]
    fn wait_resolves_when_every_subscriber_signals_or_leaves() {
        let (a, a_rx) = watch::channel(());
        let (b, b_rx) = watch::channel(());
        let mut held = Held::new(2);
        let mut wait = Wait::default();
        wait.push(a_rx);
        wait.push(b_rx);
        held.wait_for(wait);
        held.hold(Event::ReAuthenticate);
        assert!(held.is_holding() && held.is_waiting());
        assert!(held.next_ready().is_none(), "nothing leaves while waiting");
        assert!(held.ready().now_or_never().is_none());
        a.send_replace(());
        assert!(held.ready().now_or_never().is_none(), "b has not signalled");
        drop(b);
        assert!(held.ready().now_or_never().is_some());
        assert!(!held.is_waiting());
        assert!(held.next_ready().is_some());
        assert!(!held.is_holding());
    }

    #[test]
    fn a_signal_before_the_wait_starts_is_not_lost() {
        let (room, rx) = watch::channel(());
        let mut wait = Wait::default();
        wait.push(rx);
        room.send_replace(());
        assert!(wait.ready().now_or_never().is_some());
    }

    #[test]
    fn full_at_capacity_and_drain_empties() {
        let mut held = Held::new(1);
        assert!(!held.is_full());
        held.hold(Event::ReAuthenticate);
        assert!(held.is_full());
        assert_eq!(held.drain().count(), 1);
        assert!(!held.is_holding() && !held.is_full());
    }
}
