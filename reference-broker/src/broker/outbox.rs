//! The deliveries the router hands one connection: a bounded queue that holds no memory while
//! it is empty, and the one signal that wakes the connection for them.
//!
//! Why not a tokio mpsc channel: a channel allocates its first block of 32 slots and its
//! cache-padded state up front (about 2 KiB), which every connection paid for, idle or not.
//! Here an idle connection holds an empty `VecDeque` (no allocation); the queue grows under
//! load, and the connection takes it whole, so its memory goes back after each burst.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use super::router::Routed;

/// One connection's inbound queue of deliveries, filled by the router under its lock and
/// emptied by the connection task.
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: Mutex<VecDeque<Routed>>,
    /// Deliveries held at most; beyond it the router parks them in its overflow queue.
    capacity: usize,
    /// Woken when a delivery is queued here or parked in the router's overflow queue.
    wake: Notify,
    /// Set while the router's overflow queue holds deliveries for this connection.
    overflow: AtomicBool,
}

impl Outbox {
    /// An empty outbox for up to `capacity` deliveries (at least one).
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            wake: Notify::new(),
            overflow: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Routed>> {
        // Nothing panics while holding it; a poisoned queue is still a valid queue.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a delivery and wake the connection; gives it back when the outbox is full.
    pub fn push(&self, routed: Routed) -> Result<(), Routed> {
        {
            let mut queue = self.lock();
            if queue.len() >= self.capacity {
                return Err(routed);
            }
            queue.push_back(routed);
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Up to `max` deliveries, oldest first. When that is all of them the queue is handed over
    /// whole, so the outbox keeps no buffer; if some are left, the connection is woken again.
    pub fn take(&self, max: usize) -> VecDeque<Routed> {
        let mut queue = self.lock();
        if queue.len() <= max {
            return std::mem::take(&mut *queue);
        }
        let taken = queue.drain(..max).collect();
        drop(queue);
        self.wake.notify_one();
        taken
    }

    /// True when no delivery is queued.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Resolves once something was queued or parked since the last wake-up was taken (a wake-up
    /// sent while nobody waits is kept for the next wait).
    pub fn woken(&self) -> Notified<'_> {
        self.wake.notified()
    }

    /// Wake the connection: deliveries were parked in the router's overflow queue.
    pub fn parked(&self) {
        self.overflow.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// The router's overflow queue for this connection is empty again.
    pub fn overflow_empty(&self) {
        self.overflow.store(false, Ordering::Release);
    }

    /// True while the router's overflow queue may hold deliveries for this connection.
    pub fn has_overflow(&self) -> bool {
        self.overflow.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::codec::QoS;
    use crate::protocol::{Delivery, Message};
    use futures::FutureExt;
    use std::sync::Arc;

    fn routed(seq: u64) -> Routed {
        let publish = crate::codec::Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "t".into(),
            packet_id: 0,
            properties: Default::default(),
            payload: bytes::Bytes::new(),
        };
        let message = Arc::new(Message::from_publish(
            std::time::Instant::now(),
            publish,
            None,
        ));
        let delivery = Delivery {
            message,
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: Vec::new(),
        };
        (seq, delivery)
    }

    #[test]
    fn bounded_in_order_and_empty_after_a_full_take() {
        let outbox = Outbox::new(2);
        assert!(outbox.push(routed(1)).is_ok());
        assert!(outbox.push(routed(2)).is_ok());
        assert_eq!(outbox.push(routed(3)).map_err(|r| r.0), Err(3));
        let taken: Vec<u64> = outbox.take(10).into_iter().map(|r| r.0).collect();
        assert_eq!(taken, [1, 2]);
        assert!(outbox.is_empty());
        assert_eq!(outbox.lock().capacity(), 0, "no buffer kept once emptied");
    }

    #[test]
    fn a_wake_up_before_the_wait_is_kept_and_a_partial_take_wakes_again() {
        let outbox = Outbox::new(8);
        outbox.push(routed(1)).unwrap();
        outbox.push(routed(2)).unwrap();
        assert!(outbox.woken().now_or_never().is_some(), "push woke");
        assert!(outbox.woken().now_or_never().is_none(), "one wake-up only");
        assert_eq!(outbox.take(1).len(), 1);
        assert!(
            outbox.woken().now_or_never().is_some(),
            "one left: woken again"
        );
        assert_eq!(outbox.take(1).len(), 1);
        assert!(outbox.woken().now_or_never().is_none());
    }

    #[test]
    fn parked_sets_the_overflow_flag_and_wakes() {
        let outbox = Outbox::new(1);
        assert!(!outbox.has_overflow());
        outbox.parked();
        assert!(outbox.has_overflow());
        assert!(outbox.woken().now_or_never().is_some());
        outbox.overflow_empty();
        assert!(!outbox.has_overflow());
    }
}
