//! Word-at-a-time byte scans for the checks the decoder makes on every string: is it plain
//! ASCII, without U+0000 (and, for topic names, without wildcards)? A string that is
//! takes no further check; anything else goes through the full UTF-8 and topic rules,
//! which name the rule broken.
//!
//! Why hand-written: the strings are short (tens of bytes: topic names, content types, user
//! properties), too short for a SIMD crate's set-up to pay off, and the byte-by-byte
//! versions (`str::from_utf8` then `contains(&0)`, a `memchr` call) measured as the largest
//! single costs of decoding a PUBLISH. One 64-bit word holds eight bytes; `has_zero_byte`
//! finds a zero byte among them without a branch.

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
const PLUS: u64 = u64::from_ne_bytes([b'+'; 8]);
const HASH: u64 = u64::from_ne_bytes([b'#'; 8]);

/// High bit set in some byte iff `w` has a zero byte (exact as to whether there is one;
/// what it marks above that byte may be wrong, which does not matter here).
#[inline]
fn has_zero_byte(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & HIGH
}

/// OR of `suspect` over the words of `raw`; the last 0..7 bytes are padded with `b'a'`,
/// which no check flags.
#[inline]
fn scan(raw: &[u8], suspect: impl Fn(u64) -> u64) -> u64 {
    let mut words = raw.chunks_exact(8);
    let mut found = 0u64;
    for chunk in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        found |= suspect(u64::from_ne_bytes(word));
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut word = [b'a'; 8];
        word[..tail.len()].copy_from_slice(tail);
        found |= suspect(u64::from_ne_bytes(word));
    }
    found & HIGH
}

/// True when every byte is ASCII other than NUL: such bytes are a valid UTF-8 Encoded
/// String ([MQTT-1.5.4-1], [MQTT-1.5.4-2]) as they stand.
#[inline]
pub(crate) fn is_ascii_without_nul(raw: &[u8]) -> bool {
    scan(raw, |w| w | has_zero_byte(w)) == 0
}

/// True when every byte is ASCII other than NUL, `+` and `#`: such bytes are a valid topic
/// name as they stand, if there is at least one.
#[inline]
pub(crate) fn is_plain_ascii(raw: &[u8]) -> bool {
    scan(raw, |w| {
        w | has_zero_byte(w) | has_zero_byte(w ^ PLUS) | has_zero_byte(w ^ HASH)
    }) == 0
}

#[cfg(test)]
mod tests {
    use super::{is_ascii_without_nul, is_plain_ascii};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// The scans agree with the obvious byte-by-byte definitions.
        #[test]
        fn word_scans_agree_with_the_bytewise_definitions(
            // Mostly plain bytes with the suspects mixed in, at every length and position
            // (the scan has an 8-byte body and a 0..7-byte tail).
            raw in proptest::collection::vec(
                prop_oneof![
                    8 => 0x20u8..0x7F,
                    1 => Just(b'+'),
                    1 => Just(b'#'),
                    1 => Just(0u8),
                    1 => 0x80u8..=0xFF,
                ],
                0..40,
            )
        ) {
            let ascii_no_nul = raw.iter().all(|&b| b.is_ascii() && b != 0);
            prop_assert_eq!(is_ascii_without_nul(&raw), ascii_no_nul);
            let plain = ascii_no_nul && !raw.iter().any(|&b| b == b'+' || b == b'#');
            prop_assert_eq!(is_plain_ascii(&raw), plain);
        }
    }

    #[test]
    fn every_suspect_byte_is_found_at_every_position() {
        for len in 1..=24 {
            for at in 0..len {
                for suspect in [0, 0x80, 0xC3, 0xFF] {
                    let mut raw = vec![b'a'; len];
                    raw[at] = suspect;
                    assert!(!is_ascii_without_nul(&raw), "{suspect:#x} at {at} of {len}");
                    assert!(!is_plain_ascii(&raw), "{suspect:#x} at {at} of {len}");
                }
                for wildcard in [b'+', b'#'] {
                    let mut raw = vec![b'a'; len];
                    raw[at] = wildcard;
                    assert!(is_ascii_without_nul(&raw));
                    assert!(!is_plain_ascii(&raw), "{wildcard} at {at} of {len}");
                }
            }
            assert!(is_plain_ascii(&vec![b'/'; len]));
            assert!(is_ascii_without_nul(&vec![0x7F; len]));
        }
        assert!(is_plain_ascii(b""));
    }
}
