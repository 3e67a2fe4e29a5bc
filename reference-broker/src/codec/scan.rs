//! Word-at-a-time byte scans for the checks the decoder makes on every string: is it plain
//! ASCII without U+0000 (property strings), and is it free of U+0000 and wildcards (topic
//! names)? A string that is takes no further check; anything else goes through the full
//! UTF-8 and topic rules, which name the rule broken.
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
const PAD: u64 = u64::from_ne_bytes([b'a'; 8]);

/// High bit set in some byte iff `w` has a zero byte (exact as to whether there is one;
/// what it marks above that byte may be wrong, which does not matter here).
#[inline]
fn has_zero_byte(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & HIGH
}

/// The high bit of every byte that `suspect` flags in some word of `raw`.
#[inline]
fn scan(raw: &[u8], suspect: impl Fn(u64) -> u64) -> u64 {
    let word = |bytes: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(bytes);
        u64::from_le_bytes(w)
    };
    if raw.len() >= 8 {
        let mut found = 0u64;
        for chunk in raw.chunks_exact(8) {
            found |= suspect(word(chunk));
        }
        // The last 0..7 bytes, read as the last whole word: it overlaps bytes already
        // seen, which an OR does not mind, and needs no padding copy (a `memcpy` call and
        // a stalled load, as measured).
        found |= suspect(word(&raw[raw.len() - 8..]));
        found & HIGH
    } else {
        // Under eight bytes: assembled into one word with shifts, padded with `b'a'`,
        // which no check flags.
        let padded = raw.iter().enumerate().fold(PAD, |w, (i, &b)| {
            (w & !(0xFF << (8 * i))) | (u64::from(b) << (8 * i))
        });
        suspect(padded) & HIGH
    }
}

/// True when every byte is ASCII other than NUL: such bytes are a valid UTF-8 Encoded
/// String ([MQTT-1.5.4-1], [MQTT-1.5.4-2]) as they stand.
#[inline]
pub(crate) fn is_ascii_without_nul(raw: &[u8]) -> bool {
    scan(raw, |w| w | has_zero_byte(w)) == 0
}

/// True when every byte is ASCII other than NUL, `+` and `#`: such bytes are a valid topic
/// name as they stand, if there is at least one. The decoder relies on this for memory
/// safety (it then skips UTF-8 decoding), so the tests check it against the byte-by-byte
/// definition.
#[inline]
pub(crate) fn is_plain_ascii(raw: &[u8]) -> bool {
    scan(raw, |w| {
        w | has_zero_byte(w) | has_zero_byte(w ^ PLUS) | has_zero_byte(w ^ HASH)
    }) == 0
}

/// True when no byte is NUL, `+` or `#`: valid UTF-8 without them is a valid topic name,
/// if it has at least one character. (Bytes of multi-byte characters are never any of the
/// three, so non-ASCII names pass too.)
#[inline]
pub(crate) fn has_no_wildcard_or_nul(raw: &[u8]) -> bool {
    scan(raw, |w| {
        has_zero_byte(w) | has_zero_byte(w ^ PLUS) | has_zero_byte(w ^ HASH)
    }) == 0
}

#[cfg(test)]
mod tests {
    use super::{has_no_wildcard_or_nul, is_ascii_without_nul, is_plain_ascii};
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
            let no_wildcard_or_nul = !raw.iter().any(|&b| b == b'+' || b == b'#' || b == 0);
            prop_assert_eq!(has_no_wildcard_or_nul(&raw), no_wildcard_or_nul);
            prop_assert_eq!(is_plain_ascii(&raw), no_wildcard_or_nul && ascii_no_nul);
        }
    }

    #[test]
    fn every_suspect_byte_is_found_at_every_position() {
        for len in 1..=24 {
            for at in 0..len {
                for suspect in [0x80, 0xC3, 0xFF] {
                    let mut raw = vec![b'a'; len];
                    raw[at] = suspect;
                    assert!(!is_ascii_without_nul(&raw), "{suspect:#x} at {at} of {len}");
                    assert!(!is_plain_ascii(&raw), "{suspect:#x} at {at} of {len}");
                    assert!(
                        has_no_wildcard_or_nul(&raw),
                        "{suspect:#x} at {at} of {len}"
                    );
                }
                for suspect in [0, b'+', b'#'] {
                    let mut raw = vec![b'a'; len];
                    raw[at] = suspect;
                    assert_eq!(is_ascii_without_nul(&raw), suspect != 0);
                    assert!(!is_plain_ascii(&raw), "{suspect} at {at} of {len}");
                    assert!(!has_no_wildcard_or_nul(&raw), "{suspect} at {at} of {len}");
                }
            }
            assert!(has_no_wildcard_or_nul(&vec![b'/'; len]));
            assert!(is_plain_ascii(&vec![0x7F; len]));
            assert!(is_ascii_without_nul(&vec![0x7F; len]));
        }
        assert!(has_no_wildcard_or_nul(b""));
    }
}
