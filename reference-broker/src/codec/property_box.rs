//! [`PropertyBox`]: the property set as a packet carries it. A decoded set stays the
//! validated bytes it arrived as until someone reads it; a set built in code is allocated
//! only when a property is actually set.
//!
//! Why: [`Properties`] has a field for every MQTT 5 property (344 bytes). Held inline, it
//! made every [`super::Packet`] 840 bytes. Boxed and decoded eagerly, a PUBLISH with a
//! content type and one user property cost two allocations, three string copies and their
//! frees before anyone looked at them, which measured as most of the time spent decoding
//! an MQTT 5 PUBLISH. Now the decoder checks every rule on the property block (identifiers,
//! placement, duplicates, values, UTF-8) and keeps the block as a slice of the packet it
//! came in; the first read builds the [`Properties`] from it, once. An unchanged set is
//! encoded by copying the block back out.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use bytes::Bytes;

use super::Properties;

/// The property set of one packet.
///
/// Read fields through `Deref` (`packet.properties.topic_alias`); write them through
/// `DerefMut` (`packet.properties.reason_string = Some(..)`). Build one from a
/// [`Properties`] with `.into()`.
#[derive(Clone, Default)]
pub struct PropertyBox {
    /// The property block as received (contents, without the Property Length), already
    /// validated, while it still says everything: the first write clears it.
    raw: Option<Bytes>,
    /// The structured set: built from `raw` on the first read, or by a writer.
    parsed: OnceLock<Box<Properties>>,
}

/// What an empty box reads as.
static EMPTY: Properties = Properties::EMPTY;

impl PropertyBox {
    /// An empty set (no allocation).
    pub const fn new() -> Self {
        PropertyBox {
            raw: None,
            parsed: OnceLock::new(),
        }
    }

    /// A set decoded later, on first read, from a property block the decoder has already
    /// validated in full (`raw` holds the contents, without the Property Length).
    pub(crate) fn from_validated(raw: Bytes) -> Self {
        PropertyBox {
            raw: Some(raw),
            parsed: OnceLock::new(),
        }
    }

    /// The property block exactly as received, if the set came from the wire and has not
    /// been written since: the encoder copies it instead of rebuilding it.
    pub(crate) fn validated_block(&self) -> Option<&[u8]> {
        self.raw.as_deref()
    }

    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        match (&self.raw, self.parsed.get()) {
            (Some(raw), _) => raw.is_empty(),
            (None, Some(parsed)) => parsed.is_empty(),
            (None, None) => true,
        }
    }

    /// The properties by value (an empty set if none were ever written).
    pub fn into_inner(mut self) -> Properties {
        self.materialize();
        self.parsed.take().map(|b| *b).unwrap_or_default()
    }

    /// Make sure `parsed` holds the set, building it from `raw` if needed.
    fn materialize(&self) -> &Properties {
        match (&self.raw, self.parsed.get()) {
            (_, Some(parsed)) => parsed,
            (Some(raw), None) => self
                .parsed
                .get_or_init(|| Box::new(super::primitives::parse_validated_properties(raw))),
            (None, None) => &EMPTY,
        }
    }
}

impl Deref for PropertyBox {
    type Target = Properties;

    #[inline]
    fn deref(&self) -> &Properties {
        self.materialize()
    }
}

impl DerefMut for PropertyBox {
    fn deref_mut(&mut self) -> &mut Properties {
        if self.parsed.get().is_none() {
            let built = match &self.raw {
                Some(raw) => super::primitives::parse_validated_properties(raw),
                None => Properties::default(),
            };
            self.parsed = OnceLock::from(Box::new(built));
        }
        // From here the structured set is the truth: the received block may no longer say
        // the same.
        self.raw = None;
        match self.parsed.get_mut() {
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
            PropertyBox {
                raw: None,
                parsed: OnceLock::from(Box::new(p)),
            }
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
        assert!(p.parsed.get().is_none());
        p.topic_alias = Some(3);
        assert!(p.parsed.get().is_some());
        assert_eq!(p.topic_alias, Some(3));
    }

    #[test]
    fn empty_sets_compare_equal_however_stored() {
        let mut allocated = PropertyBox::new();
        allocated.reason_string = None;
        assert!(allocated.parsed.get().is_some());
        assert_eq!(allocated, PropertyBox::new());
        assert!(PropertyBox::from(Properties::default())
            .parsed
            .get()
            .is_none());
        assert!(allocated.is_empty());
        assert!(PropertyBox::from_validated(Bytes::new()).is_empty());
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
    fn received() -> PropertyBox {
        PropertyBox::from_validated(Bytes::from_static(&[
            0x03, 0x00, 0x03, b'a', b'/', b'b', 0x23, 0x00, 0x07,
        ]))
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
