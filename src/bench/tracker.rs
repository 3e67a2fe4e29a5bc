//! Per-subscriber delivery bookkeeping: which sequence numbers of which publisher arrived,
//! so that losses and duplicates are exact counts, not estimates.

/// Deliveries seen by one subscriber, one bitset per publisher.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    seen: Vec<Vec<u64>>,
    unique: Vec<u64>,
    duplicates: Vec<u64>,
}

impl Tracker {
    /// A tracker for `publishers` publishers.
    pub fn new(publishers: usize) -> Self {
        Tracker {
            seen: vec![Vec::new(); publishers],
            unique: vec![0; publishers],
            duplicates: vec![0; publishers],
        }
    }

    /// Record one delivery; returns false for a duplicate, `None` for an unknown publisher.
    pub fn record(&mut self, publisher: usize, seq: u64) -> Option<bool> {
        let bits = self.seen.get_mut(publisher)?;
        let word = usize::try_from(seq / 64).ok()?;
        if word >= bits.len() {
            bits.resize((word + 1).next_power_of_two(), 0);
        }
        let mask = 1u64 << (seq % 64);
        if bits[word] & mask != 0 {
            self.duplicates[publisher] += 1;
            Some(false)
        } else {
            bits[word] |= mask;
            self.unique[publisher] += 1;
            Some(true)
        }
    }

    /// Distinct messages received from `publisher`.
    pub fn unique(&self, publisher: usize) -> u64 {
        self.unique.get(publisher).copied().unwrap_or(0)
    }

    /// Duplicate deliveries from `publisher`.
    pub fn duplicates(&self, publisher: usize) -> u64 {
        self.duplicates.get(publisher).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counts_unique_and_duplicates_out_of_order() {
        let mut t = Tracker::new(2);
        for seq in [5, 0, 1000, 5, 64, 0] {
            t.record(1, seq).unwrap();
        }
        assert_eq!(t.unique(1), 4);
        assert_eq!(t.duplicates(1), 2);
        assert_eq!(t.unique(0), 0);
        assert_eq!(t.record(2, 0), None);
    }
}
