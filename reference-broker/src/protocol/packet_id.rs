//! Packet identifier allocation, one copy for every party that sends PUBLISH, SUBSCRIBE or
//! UNSUBSCRIBE: the next free non-zero identifier after the last one handed out.

/// Hands out packet identifiers in order, skipping 0 and those still in use. The caller
/// keeps the record of what is in use (its in-flight table) and passes it as a predicate, so
/// the two cannot disagree.
#[derive(Debug, Clone, Default)]
pub struct PacketIds {
    last: u16,
}

impl PacketIds {
    /// An allocator whose first identifier is 1.
    pub fn new() -> PacketIds {
        PacketIds::default()
    }

    /// The next identifier for which `in_use` is false ([MQTT-2.3.1-2] non-zero;
    /// [MQTT-2.3.1-4] / [MQTT-4.3.2-1] / [MQTT-4.3.3-1] not used by an unacknowledged packet),
    /// or `None` when all 65,535 are in use.
    pub fn next(&mut self, in_use: impl Fn(u16) -> bool) -> Option<u16> {
        for _ in 0..u16::MAX {
            self.last = if self.last == u16::MAX {
                1
            } else {
                self.last + 1
            };
            if !in_use(self.last) {
                return Some(self.last);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_nonzero_unique_and_skip_those_in_use() {
        let mut ids = PacketIds::new();
        let mut used = HashSet::new();
        for _ in 0..1000 {
            let id = ids.next(|i| used.contains(&i));
            let Some(id) = id else { panic!("ran out") };
            assert_ne!(id, 0);
            assert!(used.insert(id));
        }
    }

    #[test]
    fn ids_wrap_past_65535_and_run_out() {
        let mut ids = PacketIds { last: u16::MAX - 1 };
        assert_eq!(ids.next(|_| false), Some(u16::MAX));
        assert_eq!(ids.next(|_| false), Some(1));
        let mut ids = PacketIds { last: u16::MAX - 1 };
        assert_eq!(ids.next(|i| i == u16::MAX || i == 1), Some(2));
        assert_eq!(ids.next(|_| true), None);
    }
}
