//! The two sans-IO state machines talking to each other in memory, as quinn's `Pair` does:
//! the client's `ClientState` and the broker's `ServerConnection`, every packet encoded and
//! decoded on the way, the clock owned by the test and jumped from deadline to deadline.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reference_broker::client::{ClientState, ConnectOptions, Event as ClientEvent};
use reference_broker::codec::*;
use reference_broker::protocol::{
    Accept, Delivery, Event as ServerEvent, ServerConnection, ServerLimits,
};

struct Pair {
    now: Instant,
    version: ProtocolVersion,
    client: ClientState,
    server: ServerConnection,
    /// When false, the client's packets are lost (a silent or vanished client).
    link_up: bool,
    client_events: Vec<ClientEvent>,
}

fn wire(p: Packet, version: ProtocolVersion) -> Packet {
    let mut buf = BytesMut::new();
    encode(&p, version, &mut buf).unwrap();
    let mut d = Decoder::with_version(version, 1 << 20);
    let out = d.decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    out
}

impl Pair {
    fn new(options: ConnectOptions, version: ProtocolVersion) -> Pair {
        let now = Instant::now();
        let mut client = ClientState::new(options.version(version));
        client.connect(now);
        let server = ServerConnection::new(now, Arc::new(ServerLimits::default()));
        let mut pair = Pair {
            now,
            version,
            client,
            server,
            link_up: true,
            client_events: Vec::new(),
        };
        pair.drive();
        pair
    }

    /// Move packets both ways until both sides are quiet; the "broker" accepts every CONNECT
    /// and echoes every application message back to the client (a router of one).
    fn drive(&mut self) {
        loop {
            let mut moved = false;
            while let Some(p) = self.client.poll_transmit() {
                moved = true;
                self.client.on_sent(self.now, &p);
                if self.link_up {
                    self.server.handle_packet(self.now, wire(p, self.version));
                    self.broker_events();
                }
            }
            while let Some(p) = self.server.poll_transmit() {
                moved = true;
                self.client
                    .handle_packet(self.now, wire(p, self.version))
                    .unwrap();
            }
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
            }
            if !moved {
                break;
            }
        }
    }

    fn broker_events(&mut self) {
        while let Some(e) = self.server.poll_event() {
            match e {
                ServerEvent::Connect(_) => self.server.accept(self.now, Accept::default()),
                ServerEvent::Publish(p) => {
                    self.server
                        .publish_done(p.packet_id, p.qos, ReasonCode::SUCCESS);
                    let qos = p.qos;
                    self.server.deliver(
                        self.now,
                        Delivery {
                            message: Arc::new(p.message),
                            qos,
                            retain: false,
                            subscription_ids: vec![],
                        },
                    );
                }
                other => panic!("unexpected broker event {other:?}"),
            }
        }
    }

    /// Jump the clock to the earliest deadline of either side and fire it.
    fn jump(&mut self) {
        let next = [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        self.now = self.now.max(next);
        self.client.handle_timeout(self.now).unwrap();
        self.server.handle_timeout(self.now);
        self.drive();
    }
}

#[test]
fn keep_alive_holds_for_hours_then_silence_is_detected_at_one_and_a_half() {
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let mut pair = Pair::new(ConnectOptions::new("ka").keep_alive(10), version);
        assert!(matches!(pair.client_events[0], ClientEvent::Connected(_)));
        let start = pair.now;
        while pair.now < start + Duration::from_secs(3 * 3600) {
            pair.jump();
            assert!(
                pair.server.is_connected(),
                "{version:?} at {:?}",
                pair.now - start
            );
        }
        let pings = pair
            .client_events
            .iter()
            .filter(|e| matches!(e, ClientEvent::PingResp))
            .count();
        assert!(pings >= 3 * 360 - 1, "{pings} PINGRESP in three hours");
        // The client goes silent: the broker closes 15 s after the last packet it received.
        pair.link_up = false;
        let silent_from = pair.now;
        while !pair.server.is_closed() {
            pair.jump();
        }
        let waited = pair.now - silent_from;
        assert!(
            waited > Duration::from_secs(5) && waited <= Duration::from_secs(15),
            "{waited:?}"
        );
    }
}

#[test]
fn qos2_round_trip_is_exactly_once_both_ways() {
    let mut pair = Pair::new(ConnectOptions::new("q2"), ProtocolVersion::V5);
    let publish = Publish {
        dup: false,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "loop".into(),
        packet_id: 0,
        properties: Default::default(),
        payload: Bytes::from_static(b"once"),
    };
    let now = pair.now;
    pair.client.publish(now, publish).unwrap();
    pair.drive();
    let published = pair
        .client_events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Published { qos: QoS::ExactlyOnce, reason, .. } if reason.is_success()))
        .count();
    let received: Vec<_> = pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(published, 1);
    assert_eq!(received.len(), 1);
    assert_eq!(&received[0].payload[..], b"once");
    assert_eq!(received[0].qos, QoS::ExactlyOnce);
    // Both flows completed: nothing in flight on either side.
    assert_eq!(pair.client.in_flight(), 0);
    assert!(pair.server.session().is_idle());
}
