//! The soak's memory verdict: resident memory must stay bounded once the run has warmed up.
//!
//! The rule: samples taken in the first quarter of the soak are warm-up (connections, buffers
//! and allocator pools grow to their working size). The first sample after that is the
//! baseline; every later sample must stay at or below `baseline x growth + 16 MiB` (the
//! slack keeps allocator noise on a small baseline from failing a run) and at or below the
//! absolute cap when one is given. A leak or an unbounded queue fails it on a long enough run.

use serde::Serialize;

use super::RssSample;

/// Fixed slack above `baseline x growth`, KiB.
pub const SLACK_KIB: u64 = 16 * 1024;

/// The memory verdict of a soak.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MemoryCheck {
    /// End of the warm-up, seconds since the start of the run.
    pub warmup_end_s: f64,
    /// First sample after warm-up, KiB.
    pub baseline_kib: u64,
    /// Largest sample after warm-up, KiB.
    pub max_kib: u64,
    /// The bound every sample after warm-up must respect, KiB.
    pub bound_kib: u64,
    /// Samples judged (after warm-up).
    pub samples: usize,
    /// True when every judged sample is within the bound.
    pub passed: bool,
}

/// Judge `samples` of a soak whose warm-up ends at `warmup_end_s`. `None` when no sample was
/// taken after warm-up (nothing to judge; a run too short for its sampling period).
pub fn check(
    samples: &[RssSample],
    warmup_end_s: f64,
    growth: f64,
    cap_mib: Option<u64>,
) -> Option<MemoryCheck> {
    let judged: Vec<&RssSample> = samples.iter().filter(|s| s.at_s >= warmup_end_s).collect();
    let baseline = judged.first()?.kib;
    let max = judged.iter().map(|s| s.kib).max().unwrap_or(baseline);
    let grown = (baseline as f64 * growth) as u64 + SLACK_KIB;
    let bound = cap_mib.map_or(grown, |cap| grown.min(cap.saturating_mul(1024)));
    Some(MemoryCheck {
        warmup_end_s,
        baseline_kib: baseline,
        max_kib: max,
        bound_kib: bound,
        samples: judged.len(),
        passed: max <= bound,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn series(kib: &[u64]) -> Vec<RssSample> {
        kib.iter()
            .enumerate()
            .map(|(i, &kib)| RssSample {
                at_s: i as f64,
                kib,
            })
            .collect()
    }

    #[test]
    fn warm_up_growth_is_ignored_and_later_growth_judged() {
        let mib = 1024;
        // Warm-up (t < 2) may grow freely; baseline 10 MiB, bound 10 x 1.5 + 16 = 31 MiB.
        let ok = series(&[mib, 50 * mib, 10 * mib, 20 * mib, 31 * mib]);
        let c = check(&ok, 2.0, 1.5, None).unwrap();
        assert_eq!(
            (c.baseline_kib, c.max_kib, c.bound_kib),
            (10 * mib, 31 * mib, 31 * mib)
        );
        assert!(c.passed);
        assert_eq!(c.samples, 3);
        let leak = series(&[mib, 10 * mib, 20 * mib, 32 * mib]);
        assert!(!check(&leak, 1.0, 1.5, None).unwrap().passed);
    }

    #[test]
    fn the_cap_tightens_the_bound() {
        let c = check(&series(&[20 * 1024, 25 * 1024]), 0.0, 1.5, Some(20)).unwrap();
        assert_eq!(c.bound_kib, 20 * 1024);
        assert!(!c.passed);
    }

    #[test]
    fn nothing_after_warm_up_is_no_verdict() {
        assert!(check(&series(&[1024]), 5.0, 1.5, None).is_none());
    }
}
