//! [`PropertyBox`]: the property set as a packet carries it. A decoded set stays the
//! validated bytes it arrived as until someone reads it; a set built in code is allocated
//! only when a property is actually set.
//!
//! Why: [`Properties`] has a field for every MQTT 5 property (344 bytes). Held inline, it
//! made every [`super::Packet`] 840 bytes. Boxed and decoded eagerly, a PUBLISH with a
//! content type and one user property cost two allocations, three string copies and their
//! frees before anyone looked at them, which measured as most of the time spent decoding
//! an MQTT 5 PUBLISH. Now the decoder checks every rule on the property block (identifiers,
//! placement, duplicates, values, UTF-8) and keeps the block as it came (copied when short,
//! a slice of the packet when long); the first read builds the [`Properties`] from it,
//! once. An unchanged set is encoded by copying the block back out.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use bytes::Bytes;

use super::Properties;

/// The property set of one packet.
///
/// Read fields through `Deref` (`packet.properties.topic_alias`); write them through
/// `DerefMut` (`packet.properties.reason_string = Some(..)`). Build one from a
/// [`Properties`] with `.into()`. An empty set is one null pointer: every 3.1.1 packet and
/// most 5.0 ones carry nothing more.
#[derive(Clone, Default)]
pub struct PropertyBox(Option<Box<Held>>);

/// A set that is not empty, or was written.
#[derive(Clone, Default)]
struct Held {
    /// The property block as received (contents, without the Property Length), already
    /// validated, while it still says everything: the first write clears it.
    raw: Option<Block>,
    /// The structured set: built from `raw` on the first read, or by a writer.
    parsed: OnceLock<Properties>,
}

/// The bytes of a received property block. A short block (the usual: a content type, a
/// user property or two) is copied next to the set it will become, which is cheaper than
/// sharing the packet buffer (a reference count taken and released); a long one shares.
#[derive(Clone)]
enum Block {
    /// Up to [`SHORT_BLOCK`] bytes, copied.
    Short { len: u8, bytes: [u8; SHORT_BLOCK] },
    /// A slice of the packet.
    Shared(Bytes),
}

/// The longest block kept as a copy.
const SHORT_BLOCK: usize = 62;

impl Block {
    fn as_slice(&self) -> &[u8] {
        match self {
            Block::Short { len, bytes } => &bytes[..usize::from(*len)],
            Block::Shared(b) => b,
        }
    }

    /// The set the block holds; binary values share the packet buffer if the block does.
    fn parse(&self) -> Properties {
        match self {
            Block::Short { .. } => super::primitives::parse_validated_slice(self.as_slice()),
            Block::Shared(b) => super::primitives::parse_validated_properties(b),
        }
    }
}

impl Held {
    /// The structured set, built from the received block on first use.
    fn structured(&self) -> &Properties {
        self.parsed.get_or_init(|| {
            self.raw
                .as_ref()
                .map_or_else(Properties::default, Block::parse)
        })
    }
}

/// What an empty box reads as.
static EMPTY: Properties = Properties::EMPTY;

impl PropertyBox {
    /// An empty set (no allocation).
    pub const fn new() -> Self {
        PropertyBox(None)
    }

    /// A set decoded later, on first read, from a property block the decoder has already
    /// validated in full (`block` holds the contents, without the Property Length;
    /// `shared`, if given, is the same bytes as a slice of the packet buffer).
    pub(crate) fn from_validated(block: &[u8], shared: impl FnOnce() -> Option<Bytes>) -> Self {
        let raw = match u8::try_from(block.len()) {
            Ok(len) if block.len() <= SHORT_BLOCK => {
                let mut bytes = [0u8; SHORT_BLOCK];
                bytes[..block.len()].copy_from_slice(block);
                Block::Short { len, bytes }
            }
            // Only a long block takes a reference to the packet.
            _ => Block::Shared(shared().unwrap_or_else(|| Bytes::copy_from_slice(block))),
        };
        PropertyBox(Some(Box::new(Held {
            raw: Some(raw),
            parsed: OnceLock::new(),
        })))
    }

    /// The property block exactly as received, if the set came from the wire and has not
    /// been written since: the encoder copies it instead of rebuilding it.
    #[inline]
    pub(crate) fn validated_block(&self) -> Option<&[u8]> {
        self.0
            .as_ref()
            .and_then(|held| held.raw.as_ref().map(Block::as_slice))
    }

    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        match &self.0 {
            None => true,
            Some(held) => match (&held.raw, held.parsed.get()) {
                (Some(raw), _) => raw.as_slice().is_empty(),
                (None, Some(parsed)) => parsed.is_empty(),
                (None, None) => true,
            },
        }
    }

    /// The properties by value (an empty set if none were ever written).
    pub fn into_inner(mut self) -> Properties {
        std::mem::take(&mut *self)
    }
}

impl Deref for PropertyBox {
    type Target = Properties;

    #[inline]
    fn deref(&self) -> &Properties {
        match &self.0 {
            None => &EMPTY,
            Some(held) => held.structured(),
        }
    }
}

impl DerefMut for PropertyBox {
    fn deref_mut(&mut self) -> &mut Properties {
        let held = self.0.get_or_insert_with(Box::default);
        held.structured();
        // From here the structured set is the truth: the received block may no longer say
        // the same.
        held.raw = None;
        match held.parsed.get_mut() {
            Some(parsed) => parsed,
            None => unreachable!("`parsed` was filled just above"),
        }
    }
}

impl From<Properties> for PropertyBox {
    /// An empty set stays unallocated.
    fn from(p: Properties) -> Self {
        if p.is_empty() {
            PropertyBox::new()
        } else {
            PropertyBox(Some(Box::new(Held {
                raw: None,
                parsed: OnceLock::from(p),
            })))
        }
    }
}

impl From<PropertyBox> for Properties {
    fn from(p: PropertyBox) -> Self {
        p.into_inner()
    }
}

impl PartialEq for PropertyBox {
    /// Equal when the properties are, however each set is held.
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for PropertyBox {}

impl PartialEq<Properties> for PropertyBox {
    fn eq(&self, other: &Properties) -> bool {
        **self == *other
    }
}

impl fmt::Debug for PropertyBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_do_not_allocate_and_writes_do() {
        let mut p = PropertyBox::new();
        assert_eq!(p.topic_alias, None);
        assert!(p.0.is_none());
        p.topic_alias = Some(3);
        assert!(p.0.is_some());
        assert_eq!(p.topic_alias, Some(3));
    }

    #[test]
    fn empty_sets_compare_equal_however_stored() {
        let mut allocated = PropertyBox::new();
        allocated.reason_string = None;
        assert!(allocated.0.is_some());
        assert_eq!(allocated, PropertyBox::new());
        assert!(PropertyBox::from(Properties::default()).0.is_none());
        assert!(allocated.is_empty());
        assert!(PropertyBox::from_validated(&[], || None).is_empty());
    }

    #[test]
    fn round_trips_through_properties() {
        let props = Properties {
            content_type: Some("text/plain".into()),
            ..Properties::default()
        };
        let boxed = PropertyBox::from(props.clone());
        assert_eq!(boxed, props);
        assert_eq!(boxed.into_inner(), props);
    }

    /// Content Type "a/b", then Topic Alias 7, as they stand in a PUBLISH.
    const BLOCK: &[u8] = &[0x03, 0x00, 0x03, b'a', b'/', b'b', 0x23, 0x00, 0x07];

    fn received() -> PropertyBox {
        PropertyBox::from_validated(BLOCK, || None)
    }

    #[test]
    fn short_blocks_are_copied_and_long_ones_shared() {
        let short = received();
        assert!(matches!(
            short.0.as_deref().and_then(|h| h.raw.as_ref()),
            Some(Block::Short { .. })
        ));
        // A long block: a user property of 70 bytes, kept as the packet's slice.
        let mut long = vec![0x26, 0x00, 0x01, b'k', 0x00, 70];
        long.extend([b'v'; 70]);
        let shared = Bytes::from(long.clone());
        let boxed = PropertyBox::from_validated(&long, || Some(shared.clone()));
        assert!(matches!(
            boxed.0.as_deref().and_then(|h| h.raw.as_ref()),
            Some(Block::Shared(b)) if b.as_ptr() == shared.as_ptr()
        ));
        assert_eq!(boxed.user_properties[0].1.len(), 70);
        assert_eq!(boxed.validated_block(), Some(&long[..]));
    }

    #[test]
    fn a_received_block_reads_as_its_properties_and_stays_encodable_as_is() {
        let p = received();
        assert!(!p.is_empty());
        assert_eq!(p.content_type.as_deref(), Some("a/b"));
        assert_eq!(p.topic_alias, Some(7));
        // Reading does not change what is sent on.
        assert!(p.validated_block().is_some());
        assert_eq!(p.clone().into_inner().topic_alias, Some(7));
    }

    #[test]
    fn a_write_makes_the_structured_set_the_truth() {
        let mut p = received();
        p.topic_alias = None;
        assert!(p.validated_block().is_none());
        assert_eq!(p.topic_alias, None);
        assert_eq!(p.content_type.as_deref(), Some("a/b"));
        // Written before any read: the block is parsed first, so nothing else is lost.
        let mut q = received();
        q.reason_string = Some("x".into());
        assert_eq!(q.topic_alias, Some(7));
        assert!(q.validated_block().is_none());
    }
}
