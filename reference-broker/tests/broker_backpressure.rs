//! Back-pressure: a slow subscriber slows its publishers down instead of losing their QoS 1/2
//! messages, and the waiting never deadlocks (clients publishing to each other, a client
//! publishing to itself). Small limits keep the numbers exact: channel 2, queues 4, and
//! subscribers with Receive Maximum 2.
//!
//! "Stalled" is observed through packet order, not time: a PINGREQ sent after the PUBLISHes
//! is answered only once every one of them has been read, so the PUBACKs received before the
//! PINGRESP are exactly the messages the broker routed.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use reference_broker::broker::Broker;
use reference_broker::codec::*;
use support::*;

const CHANNEL: usize = 2;
const QUEUE: usize = 4;
const WINDOW: u16 = 2;
/// Most QoS 1 messages the broker can accept for a subscriber that acknowledges nothing:
/// in flight, queued in its connection, in its channel, in its overflow queue, plus the one
/// parked over the limit that makes the publisher wait.
const CAPACITY: usize = WINDOW as usize + QUEUE + CHANNEL + QUEUE + 1;
/// Messages published: well beyond the capacity.
const N: u16 = 40;
/// Bound on a whole test.
const LIMIT: Duration = Duration::from_secs(30);

async fn broker() -> Broker {
    start_with(|c| {
        c.limits.channel_capacity = CHANNEL;
        c.limits.max_queued_online = QUEUE;
    })
    .await
}

/// An MQTT 5 client that accepts at most [`WINDOW`] unacknowledged deliveries.
async fn client(addr: SocketAddr, id: &str) -> Client {
    let mut c = connect_packet(V5, id, true);
    c.properties.receive_maximum = Some(WINDOW);
    Client::connect_with(addr, c).await.0
}

fn numbered(topic: &str, qos: QoS, i: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: if qos == QoS::AtMostOnce { 0 } else { i },
        properties: Default::default(),
        payload: Bytes::from(i.to_be_bytes().to_vec()),
    }
}

fn number(p: &Publish) -> u16 {
    u16::from_be_bytes([p.payload[0], p.payload[1]])
}

/// What a client has seen so far.
#[derive(Default)]
struct Seen {
    /// PUBACK packet ids, in arrival order.
    acks: Vec<u16>,
    /// Deliveries not yet acknowledged.
    unacked: Vec<Publish>,
    /// Numbers of every delivery, in arrival order.
    delivered: Vec<u16>,
}

impl Seen {
    fn take(&mut self, p: Packet) -> bool {
        match p {
            Packet::PubAck(a) => self.acks.push(a.packet_id),
            Packet::Publish(m) => {
                self.delivered.push(number(&m));
                self.unacked.push(m);
            }
            Packet::PingResp => return true,
            other => panic!("unexpected {other:?}"),
        }
        false
    }
}

/// Send `n` numbered QoS 1 messages to `topic`, then a PINGREQ.
async fn publish_all(c: &mut Client, topic: &str, n: u16) {
    for i in 1..=n {
        c.send(Packet::Publish(numbered(topic, QoS::AtLeastOnce, i)))
            .await;
    }
    c.send(Packet::PingReq).await;
}

/// Read (acknowledging nothing) until the PINGRESP.
async fn until_pong(c: &mut Client, seen: &mut Seen) {
    while !seen.take(c.recv().await) {}
}

/// Acknowledge everything, until `deliveries` messages arrived and `acks` PUBACKs.
async fn run_to_end(c: &mut Client, seen: &mut Seen, deliveries: usize, acks: usize) {
    loop {
        for m in std::mem::take(&mut seen.unacked) {
            c.ack(&m).await;
        }
        if seen.delivered.len() >= deliveries && seen.acks.len() >= acks {
            return;
        }
        seen.take(c.recv().await);
    }
}

fn one_to(n: u16) -> Vec<u16> {
    (1..=n).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_slows_the_publisher_and_loses_nothing() {
    let test = async {
        let broker = broker().await;
        let addr = broker.tcp_addr().unwrap();
        let mut slow = client(addr, "slow").await;
        slow.subscribe("bp", QoS::AtLeastOnce).await;
        // From here "slow" does not read its socket until the publisher is stalled.
        let mut fast = client(addr, "fast").await;
        publish_all(&mut fast, "bp", N).await;
        let mut pub_seen = Seen::default();
        until_pong(&mut fast, &mut pub_seen).await;
        let acked = pub_seen.acks.len();
        // Channel and overflow fill even before the slow connection takes anything.
        assert!(
            (CHANNEL + QUEUE + 1..=CAPACITY).contains(&acked),
            "{acked} PUBACKs while the subscriber is stalled"
        );
        assert_eq!(pub_seen.acks, one_to(acked as u16), "in order");
        let stats = broker.stats();
        assert!(stats.waits >= 1, "{stats:?}");
        assert_eq!(stats.dropped_full, 0);

        let mut sub_seen = Seen::default();
        tokio::join!(
            run_to_end(&mut slow, &mut sub_seen, N.into(), 0),
            run_to_end(&mut fast, &mut pub_seen, 0, N.into()),
        );
        assert_eq!(sub_seen.delivered, one_to(N), "each once, in order");
        assert_eq!(pub_seen.acks, one_to(N));
        slow.expect_nothing().await;
        let stats = broker.stats();
        assert_eq!((stats.dropped_full, stats.dropped_offline), (0, 0));
        broker.shutdown().await;
    };
    tokio::time::timeout(LIMIT, test).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_publishing_to_each_other_while_stalled_do_not_deadlock() {
    let test = async {
        let broker = broker().await;
        let addr = broker.tcp_addr().unwrap();
        let mut a = client(addr, "a").await;
        a.subscribe("to/a", QoS::AtLeastOnce).await;
        let mut b = client(addr, "b").await;
        b.subscribe("to/b", QoS::AtLeastOnce).await;
        publish_all(&mut a, "to/b", N).await;
        publish_all(&mut b, "to/a", N).await;
        // Neither acknowledges a delivery: both publishers end up waiting for the other,
        // and both connections still answer the PINGREQ behind their held PUBLISHes.
        let (mut sa, mut sb) = (Seen::default(), Seen::default());
        until_pong(&mut a, &mut sa).await;
        until_pong(&mut b, &mut sb).await;
        assert!(sa.acks.len() <= CAPACITY && sb.acks.len() <= CAPACITY);
        assert!(broker.stats().waits >= 2, "{:?}", broker.stats());
        // Now both acknowledge: the acknowledgements behind the held PUBLISHes get through.
        tokio::join!(
            run_to_end(&mut a, &mut sa, N.into(), N.into()),
            run_to_end(&mut b, &mut sb, N.into(), N.into()),
        );
        assert_eq!((sa.delivered, sb.delivered), (one_to(N), one_to(N)));
        assert_eq!((sa.acks, sb.acks), (one_to(N), one_to(N)));
        assert_eq!(broker.stats().dropped_full, 0);
        broker.shutdown().await;
    };
    tokio::time::timeout(LIMIT, test).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_subscribed_to_its_own_topic_does_not_deadlock() {
    let test = async {
        let broker = broker().await;
        let addr = broker.tcp_addr().unwrap();
        let mut me = client(addr, "me").await;
        me.subscribe("echo", QoS::AtLeastOnce).await;
        publish_all(&mut me, "echo", N).await;
        let mut seen = Seen::default();
        until_pong(&mut me, &mut seen).await;
        assert!(seen.acks.len() <= CAPACITY, "{} acked", seen.acks.len());
        assert!(broker.stats().waits >= 1);
        run_to_end(&mut me, &mut seen, N.into(), N.into()).await;
        assert_eq!(seen.delivered, one_to(N));
        assert_eq!(seen.acks, one_to(N));
        broker.shutdown().await;
    };
    tokio::time::timeout(LIMIT, test).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos0_beyond_the_limit_is_dropped_and_counted_never_waited_for() {
    let test = async {
        let broker = broker().await;
        let addr = broker.tcp_addr().unwrap();
        let mut slow = client(addr, "slow0").await;
        slow.subscribe("mix", QoS::AtLeastOnce).await;
        let mut p = client(addr, "p0").await;
        // Two QoS 1 messages fill the subscriber's window and a third waits in its queue:
        // the QoS 0 messages queue behind it.
        for i in 1..=3 {
            p.send(Packet::Publish(numbered("mix", QoS::AtLeastOnce, i)))
                .await;
        }
        const M: u16 = 30;
        for i in 4..4 + M {
            p.send(Packet::Publish(numbered("mix", QoS::AtMostOnce, i)))
                .await;
        }
        p.send(Packet::PingReq).await;
        let mut seen = Seen::default();
        until_pong(&mut p, &mut seen).await;
        assert_eq!(seen.acks, vec![1, 2, 3]);
        let stats = broker.stats();
        assert_eq!(stats.waits, 0, "QoS 0 never makes a publisher wait");
        // At most queue (behind message 3) + channel + overflow fit; the rest is dropped.
        let kept = usize::from(M) - stats.dropped_full as usize;
        assert!(kept < QUEUE + CHANNEL + QUEUE, "{stats:?}");
        // A last QoS 1 message marks the end of the stream.
        p.send(Packet::Publish(numbered("mix", QoS::AtLeastOnce, 100)))
            .await;
        let mut sub = Seen::default();
        while sub.delivered.last() != Some(&100) {
            let next = sub.delivered.len() + 1;
            run_to_end(&mut slow, &mut sub, next, 0).await;
        }
        assert_eq!(sub.delivered[..3], [1, 2, 3]);
        let zeros = &sub.delivered[3..sub.delivered.len() - 1];
        assert_eq!(
            zeros.len(),
            kept,
            "every QoS 0 message is delivered or counted"
        );
        assert!(zeros.windows(2).all(|w| w[0] < w[1]), "in order: {zeros:?}");
        broker.shutdown().await;
    };
    tokio::time::timeout(LIMIT, test).await.unwrap();
}

/// A publisher whose held events fill up is no longer read; its keep alive must not expire
/// for that (paused time: an hour passes at once, in-memory pipes).
#[tokio::test(start_paused = true)]
async fn a_publisher_held_back_is_not_closed_by_keep_alive() {
    let broker = start_with(|c| {
        c.listeners.clear();
        c.limits.channel_capacity = CHANNEL;
        c.limits.max_queued_online = QUEUE;
        // Held events: Receive Maximum (1) + 64 before the broker stops reading.
        c.limits.receive_maximum = 1;
    })
    .await;
    let mut s = connect_packet(V5, "s", true);
    s.properties.receive_maximum = Some(1);
    let mut s = Client::pipe(&broker, V5).handshake(s).await.0;
    s.subscribe("held", QoS::AtLeastOnce).await;
    let mut p = connect_packet(V5, "p", true);
    p.keep_alive = 10;
    let mut p = Client::pipe(&broker, V5).handshake(p).await.0;
    // QoS 1 messages until the publisher waits, then QoS 0 ones to fill its held events.
    // Each is acknowledged only once routed: at most one unacknowledged QoS 1 at a time.
    let mut routed = 0u16;
    for i in 1..=20 {
        p.send(Packet::Publish(numbered("held", QoS::AtLeastOnce, i)))
            .await;
        match tokio::time::timeout(Duration::from_secs(1), p.recv()).await {
            Ok(Packet::PubAck(a)) if a.packet_id == i => routed = i,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => break,
        }
    }
    assert!(routed < 20, "the publisher was made to wait");
    for i in 200..300 {
        p.send(Packet::Publish(numbered("held", QoS::AtMostOnce, i)))
            .await;
    }
    // An hour of virtual time: far beyond 1.5 x keep alive.
    p.expect_nothing_within(Duration::from_secs(3600)).await;
    // The subscriber catches up; the publisher's last QoS 1 message is acknowledged.
    let mut seen = Seen::default();
    let want = usize::from(routed) + 1;
    run_to_end(&mut s, &mut seen, want, 0).await;
    match p.recv().await {
        Packet::PubAck(a) => assert_eq!(a.packet_id, routed + 1),
        other => panic!("expected PUBACK, got {other:?}"),
    }
    broker.shutdown().await;
}
