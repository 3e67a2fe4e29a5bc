//! An independent oracle: the `mqttbytes` 0.6 codec (rumqtt) reads what we write and we
//! read what it writes, for MQTT 3.1.1 and 5.0.
//!
//! For each arbitrary packet: our bytes -> mqttbytes reads them -> mqttbytes writes them
//! -> we read those bytes back to the same packet. Under 3.1.1 the two encodings must be
//! byte-identical. Under 5.0 mqttbytes writes properties in its own order, so the check is
//! that we decode its bytes to the same packet and re-encode them to our exact bytes.
//!
//! Packets mqttbytes 0.6 cannot represent are left out (see `mqttbytes_can_carry`).
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use mqttbytes::{v4, v5};
use proptest::prelude::*;
use reference_broker::codec::*;

mod common;
use common::*;

/// mqttbytes 0.6 limits: no AUTH; a password is a `String`; empty user names and passwords
/// are dropped; a v5 DISCONNECT needs properties; one subscription identifier per PUBLISH.
fn mqttbytes_can_carry(p: &Packet, v: ProtocolVersion) -> bool {
    match p {
        Packet::Auth(_) => false,
        Packet::Connect(c) => {
            // A password is a String, and empty user names / passwords are dropped.
            c.password
                .as_ref()
                .is_none_or(|pw| !pw.is_empty() && std::str::from_utf8(pw).is_ok())
                && c.username.as_ref().is_none_or(|u| !u.is_empty())
        }
        // A v5 DISCONNECT of remaining length 0 or 1 (legal, section 3.14.2.1) is refused by
        // mqttbytes (PayloadRequired / InsufficientBytes): only test it with properties.
        Packet::Disconnect(d) => !v.is_v5() || !d.properties.is_empty(),
        Packet::Publish(p) => p.properties.subscription_identifiers.len() <= 1,
        _ => true,
    }
}

fn ours(p: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    encode(p, v, &mut buf).unwrap();
    buf
}

fn write_v4(p: &v4::Packet) -> BytesMut {
    let mut b = BytesMut::new();
    let r = match p {
        v4::Packet::Connect(x) => x.write(&mut b),
        v4::Packet::ConnAck(x) => x.write(&mut b),
        v4::Packet::Publish(x) => x.write(&mut b),
        v4::Packet::PubAck(x) => x.write(&mut b),
        v4::Packet::PubRec(x) => x.write(&mut b),
        v4::Packet::PubRel(x) => x.write(&mut b),
        v4::Packet::PubComp(x) => x.write(&mut b),
        v4::Packet::Subscribe(x) => x.write(&mut b),
        v4::Packet::SubAck(x) => x.write(&mut b),
        v4::Packet::Unsubscribe(x) => x.write(&mut b),
        v4::Packet::UnsubAck(x) => x.write(&mut b),
        v4::Packet::PingReq => v4::PingReq.write(&mut b),
        v4::Packet::PingResp => v4::PingResp.write(&mut b),
        v4::Packet::Disconnect => v4::Disconnect.write(&mut b),
    };
    r.unwrap();
    b
}

fn write_v5(p: &v5::Packet) -> BytesMut {
    let mut b = BytesMut::new();
    let r = match p {
        v5::Packet::Connect(x) => x.write(&mut b),
        v5::Packet::ConnAck(x) => x.write(&mut b),
        v5::Packet::Publish(x) => x.write(&mut b),
        v5::Packet::PubAck(x) => x.write(&mut b),
        v5::Packet::PubRec(x) => x.write(&mut b),
        v5::Packet::PubRel(x) => x.write(&mut b),
        v5::Packet::PubComp(x) => x.write(&mut b),
        v5::Packet::Subscribe(x) => x.write(&mut b),
        v5::Packet::SubAck(x) => x.write(&mut b),
        v5::Packet::Unsubscribe(x) => x.write(&mut b),
        v5::Packet::UnsubAck(x) => x.write(&mut b),
        v5::Packet::PingReq => v5::PingReq.write(&mut b),
        v5::Packet::PingResp => v5::PingResp.write(&mut b),
        v5::Packet::Disconnect(x) => x.write(&mut b),
    };
    r.unwrap();
    b
}

fn decode_ours(bytes: &[u8], v: ProtocolVersion) -> Result<Option<Packet>, DecodeError> {
    Decoder::with_version(v, usize::MAX).decode(&mut BytesMut::from(bytes))
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn v311_byte_exact_both_ways(p in arb_packet(ProtocolVersion::V3_1_1)) {
        let v = ProtocolVersion::V3_1_1;
        prop_assume!(mqttbytes_can_carry(&p, v));
        let mine = ours(&p, v);
        let theirs = v4::read(&mut mine.clone(), usize::MAX);
        prop_assert!(theirs.is_ok(), "mqttbytes rejects {:?}: {:?}", p, theirs);
        let back = write_v4(&theirs.unwrap());
        prop_assert_eq!(&back[..], &mine[..], "{:?}", p);
        prop_assert_eq!(decode_ours(&back, v), Ok(Some(p)));
    }

    #[test]
    fn v5_same_packet_both_ways(p in arb_packet(ProtocolVersion::V5)) {
        let v = ProtocolVersion::V5;
        prop_assume!(mqttbytes_can_carry(&p, v));
        let mine = ours(&p, v);
        let theirs = v5::read(&mut mine.clone(), usize::MAX);
        prop_assert!(theirs.is_ok(), "mqttbytes rejects {:?}: {:?}", p, theirs);
        let back = write_v5(&theirs.unwrap());
        let decoded = decode_ours(&back, v);
        prop_assert_eq!(&decoded, &Ok(Some(p.clone())), "their bytes {:02X?}", &back[..]);
        prop_assert_eq!(&ours(&p, v)[..], &mine[..]);
    }
}

#[test]
fn their_constructors_decode_to_the_same_packet_v4() {
    let mut c = v4::Connect::new("client");
    c.keep_alive = 30;
    c.set_login("user", "pass");
    c.last_will = Some(v4::LastWill::new(
        "will/t",
        "bye",
        mqttbytes::QoS::AtLeastOnce,
        true,
    ));
    let mut b = BytesMut::new();
    c.write(&mut b).unwrap();
    let got = decode_ours(&b, ProtocolVersion::V3_1_1).unwrap().unwrap();
    let Packet::Connect(got_c) = &got else {
        panic!("{got:?}")
    };
    assert_eq!(got_c.client_id, "client");
    assert_eq!(got_c.username.as_deref(), Some("user"));
    assert_eq!(got_c.password.as_deref(), Some(&b"pass"[..]));
    let w = got_c.will.as_ref().unwrap();
    assert_eq!(
        (w.topic.as_str(), &w.payload[..], w.qos, w.retain),
        ("will/t", &b"bye"[..], QoS::AtLeastOnce, true)
    );
    assert_eq!(&ours(&got, ProtocolVersion::V3_1_1)[..], &b[..]);

    let mut p = v4::Publish::from_bytes(
        "a/b",
        mqttbytes::QoS::ExactlyOnce,
        Bytes::from_static(b"payload"),
    );
    p.pkid = 42;
    p.retain = true;
    let mut b = BytesMut::new();
    p.write(&mut b).unwrap();
    let got = decode_ours(&b, ProtocolVersion::V3_1_1).unwrap().unwrap();
    assert_eq!(
        got,
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: true,
            topic: "a/b".into(),
            packet_id: 42,
            properties: Default::default(),
            payload: Bytes::from_static(b"payload"),
        })
    );
    assert_eq!(&ours(&got, ProtocolVersion::V3_1_1)[..], &b[..]);
}

#[test]
fn their_constructors_decode_to_the_same_packet_v5() {
    let mut p =
        v5::Publish::from_bytes("a/b", mqttbytes::QoS::AtLeastOnce, Bytes::from_static(b"x"));
    p.pkid = 7;
    p.properties = Some(v5::PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(9),
        topic_alias: Some(2),
        response_topic: Some("r".into()),
        correlation_data: Some(Bytes::from_static(b"c")),
        user_properties: vec![("k".into(), "v".into())],
        subscription_identifiers: vec![5],
        content_type: Some("t".into()),
    });
    let mut b = BytesMut::new();
    p.write(&mut b).unwrap();
    let got = decode_ours(&b, ProtocolVersion::V5).unwrap().unwrap();
    let Packet::Publish(g) = &got else {
        panic!("{got:?}")
    };
    assert_eq!(g.packet_id, 7);
    assert_eq!(g.properties.topic_alias, Some(2));
    assert_eq!(g.properties.subscription_identifiers, vec![5]);
    assert_eq!(g.properties.user_properties, vec![("k".into(), "v".into())]);
    assert_eq!(g.properties.content_type.as_deref(), Some("t"));
    // Re-read by mqttbytes, our encoding is the same packet for them too.
    let again = v5::read(&mut ours(&got, ProtocolVersion::V5), usize::MAX).unwrap();
    assert_eq!(again, v5::Packet::Publish(p));
}
