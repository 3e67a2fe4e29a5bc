//! Property tests of the codec: arbitrary valid packets of every type in MQTT 3.1, 3.1.1
//! and 5.0 round-trip through encode and decode; arbitrary and mutated bytes never make
//! the decoder panic; every strict prefix is incomplete; a stream split anywhere decodes
//! to the same packets.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use proptest::prelude::*;
use reference_broker::codec::*;

mod common;
use common::*;

fn encode_one(p: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    encode(p, v, &mut buf).unwrap();
    buf
}

/// Decode everything in `buf`, stopping at the first error or incomplete frame.
fn drain(d: &mut Decoder, buf: &mut BytesMut) -> Vec<Packet> {
    let mut out = Vec::new();
    while let Ok(Some(p)) = d.decode(buf) {
        out.push(p);
    }
    out
}

proptest! {
    #![proptest_config(config(4000))]

    #[test]
    fn encode_then_decode_is_identity((v, p) in arb_versioned_packet()) {
        let mut buf = encode_one(&p, v);
        prop_assert_eq!(buf.len(), encoded_len(&p, v));
        let got = Decoder::with_version(v, usize::MAX).decode(&mut buf);
        prop_assert_eq!(got, Ok(Some(p)));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn every_strict_prefix_is_incomplete((v, p) in arb_versioned_packet()) {
        let full = encode_one(&p, v);
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            prop_assert_eq!(Decoder::with_version(v, usize::MAX).decode(&mut part), Ok(None));
            prop_assert_eq!(part.len(), cut);
        }
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn a_stream_split_anywhere_decodes_the_same(
        (v, packets) in arb_version().prop_flat_map(|v| (Just(v), prop::collection::vec(arb_packet(v), 1..5)))
    ) {
        let mut stream = BytesMut::new();
        for p in &packets {
            encode(p, v, &mut stream).unwrap();
        }
        for split in 0..=stream.len() {
            let mut d = Decoder::with_version(v, usize::MAX);
            let mut buf = BytesMut::from(&stream[..split]);
            let mut got = drain(&mut d, &mut buf);
            buf.extend_from_slice(&stream[split..]);
            got.extend(drain(&mut d, &mut buf));
            prop_assert_eq!(&got, &packets);
            prop_assert!(buf.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(config(20000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), max in 0usize..400) {
        let mut decoders = vec![Decoder::new(max)];
        decoders.extend(VERSIONS.iter().map(|&v| Decoder::with_version(v, max)));
        for mut d in decoders {
            let mut buf = BytesMut::from(&bytes[..]);
            let before = buf.len();
            match d.decode(&mut buf) {
                Ok(None) => prop_assert_eq!(buf.len(), before),
                Ok(Some(_)) => prop_assert!(buf.len() < before),
                Err(e) => {
                    // Every error names a reason code of the error range.
                    prop_assert!(e.reason_code().0 >= 0x80);
                }
            }
        }
    }

}

proptest! {
    #![proptest_config(config(5000))]

    #[test]
    fn mutated_packets_never_panic(
        (v, p) in arb_versioned_packet(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..4),
    ) {
        let mut bytes = encode_one(&p, v).to_vec();
        for (at, byte, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => bytes[i] ^= 1 << (byte % 8),
                2 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        for mut d in [Decoder::new(usize::MAX), Decoder::with_version(v, usize::MAX)] {
            let mut buf = BytesMut::from(&bytes[..]);
            // Whatever still decodes is a valid packet: it re-encodes and decodes to itself.
            for q in drain(&mut d, &mut buf) {
                let w = d.version().unwrap_or(ProtocolVersion::V3_1_1);
                let mut again = encode_one(&q, w);
                prop_assert_eq!(Decoder::with_version(w, usize::MAX).decode(&mut again), Ok(Some(q)));
            }
        }
    }
}
