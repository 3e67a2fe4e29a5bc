//! Run events: what the executor tells reporters, in the order things happen.

use std::time::Duration;

use super::verdict::CaseResult;
use crate::scenario::Version;

/// Something that happened during a run.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The run starts with this many planned runs.
    Started {
        /// Planned runs.
        total: usize,
        /// The target, credentials redacted.
        target: String,
    },
    /// A case execution starts.
    CaseStarted {
        /// Plan index.
        index: usize,
        /// Case name.
        case: String,
        /// Version.
        version: Version,
    },
    /// The run cannot be complete (the broker went away, Ctrl-C); sent once, before
    /// [`RunEvent::Finished`]. Reports say so, and the command exits with code 2 or 130.
    Incomplete {
        /// What happened, in one sentence.
        reason: String,
    },
    /// A case finished (in completion order, not plan order).
    CaseFinished(Box<CaseResult>),
    /// Everything finished; results in plan order.
    Finished {
        /// Every result, in plan order.
        results: Vec<CaseResult>,
        /// Wall time of the run.
        elapsed: Duration,
    },
}
