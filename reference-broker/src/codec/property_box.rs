//! [`PropertyBox`]: the property set as a packet carries it, allocated only when a property
//! is actually set.
//!
//! Why: [`Properties`] has a field for every MQTT 5 property (344 bytes). Held inline, it
//! made every [`super::Packet`] 840 bytes, and decoding a PUBLISH wrote and moved that much
//! for packets that nearly always carry no properties at all (every 3.1.1 packet, most 5.0
//! ones). A box that stays empty until written keeps a packet small and costs one
//! allocation only for packets that do carry properties.

use std::fmt;
use std::ops::{Deref, DerefMut};

use super::Properties;

/// The property set of one packet: reads see an empty [`Properties`] until something is
/// written; the first mutable access allocates.
///
/// Read fields through `Deref` (`packet.properties.topic_alias`); write them through
/// `DerefMut` (`packet.properties.reason_string = Some(..)`), which allocates the set if it
/// was empty. Build one from a [`Properties`] with `.into()`.
#[derive(Clone, Default)]
pub struct PropertyBox(Option<Box<Properties>>);

/// What an empty box reads as.
static EMPTY: Properties = Properties::EMPTY;

impl PropertyBox {
    /// An empty set (no allocation).
    pub const fn new() -> Self {
        PropertyBox(None)
    }

    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(Properties::is_empty)
    }

    /// The properties by value (an empty set if none were ever written).
    pub fn into_inner(self) -> Properties {
        self.0.map(|b| *b).unwrap_or_default()
    }
}

impl Deref for PropertyBox {
    type Target = Properties;

    #[inline]
    fn deref(&self) -> &Properties {
        self.0.as_deref().unwrap_or(&EMPTY)
    }
}

impl DerefMut for PropertyBox {
    #[inline]
    fn deref_mut(&mut self) -> &mut Properties {
        self.0.get_or_insert_with(Box::default)
    }
}

impl From<Properties> for PropertyBox {
    /// An empty set stays unallocated.
    fn from(p: Properties) -> Self {
        if p.is_empty() {
            PropertyBox(None)
        } else {
            PropertyBox(Some(Box::new(p)))
        }
    }
}

impl From<PropertyBox> for Properties {
    fn from(p: PropertyBox) -> Self {
        p.into_inner()
    }
}

impl PartialEq for PropertyBox {
    /// Equal when the properties are: an allocated but empty set equals an unallocated one.
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
        assert_eq!(PropertyBox::from(Properties::default()).0, None);
        assert!(allocated.is_empty());
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
}
