//! Fuzz the streaming decoder: arbitrary bytes, under every version and with the version
//! unknown, must never panic; whatever decodes must re-encode and decode to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use reference_broker::codec::{encode, Decoder, ProtocolVersion};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the decoder's version and a maximum packet size.
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let version = match selector % 4 {
        0 => None,
        1 => Some(ProtocolVersion::V3_1),
        2 => Some(ProtocolVersion::V3_1_1),
        _ => Some(ProtocolVersion::V5),
    };
    let max = if selector & 0x80 != 0 { 64 } else { usize::MAX };
    let mut decoder = match version {
        Some(v) => Decoder::with_version(v, max),
        None => Decoder::new(max),
    };
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = decoder.decode(&mut buf) {
        let v = decoder.version().unwrap_or(ProtocolVersion::V3_1_1);
        let mut out = BytesMut::new();
        if encode(&packet, v, &mut out).is_ok() {
            let mut again = Decoder::with_version(v, usize::MAX);
            let back = again.decode(&mut out);
            assert_eq!(back, Ok(Some(packet)), "decode(encode(p)) != p");
        }
    }
});
