//! The bench payload: publisher index, sequence number and send time in the first 20
//! bytes, padding after, so that every delivery can be traced back to one publish.

use bytes::{BufMut, Bytes, BytesMut};

/// What a subscriber reads back from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the publisher.
    pub publisher: u32,
    /// Sequence number within that publisher, from 0.
    pub seq: u64,
    /// Send time, nanoseconds since the run's clock origin.
    pub sent_ns: u64,
}

/// Header length (4 + 8 + 8 bytes).
pub const HEADER: usize = 20;

/// Build a payload of `size` bytes (at least [`HEADER`]) carrying `stamp`; `pad` is a
/// zero-filled buffer the padding is copied from.
pub fn build(stamp: Stamp, size: usize, buf: &mut BytesMut) -> Bytes {
    buf.reserve(size.max(HEADER));
    buf.put_u32(stamp.publisher);
    buf.put_u64(stamp.seq);
    buf.put_u64(stamp.sent_ns);
    if size > HEADER {
        buf.put_bytes(0, size - HEADER);
    }
    buf.split().freeze()
}

/// Read the stamp of a payload; `None` when it is too short to be a bench payload.
pub fn read(payload: &[u8]) -> Option<Stamp> {
    let h = payload.get(..HEADER)?;
    let publisher = u32::from_be_bytes(h[0..4].try_into().ok()?);
    let seq = u64::from_be_bytes(h[4..12].try_into().ok()?);
    let sent_ns = u64::from_be_bytes(h[12..20].try_into().ok()?);
    Some(Stamp {
        publisher,
        seq,
        sent_ns,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stamp_round_trips_with_padding() {
        let s = Stamp {
            publisher: 7,
            seq: 1 << 40,
            sent_ns: 123_456_789,
        };
        let mut buf = BytesMut::new();
        let p = build(s, 64, &mut buf);
        assert_eq!(p.len(), 64);
        assert_eq!(read(&p), Some(s));
        assert_eq!(read(&p[..19]), None);
    }
}
