//! Exit codes of the `mqtt-conformance` command, in one place, and how a run maps to one.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | every case passed (warnings included) or deviated as documented |
//! | 1 | a case failed, timed out or was flaky: the broker broke a MUST (`run --strict`: or a SHOULD) |
//! | 2 | usage, invalid input, nothing selected, the broker unreachable or gone, a harness or proxy error |
//! | 27 | `pub`/`sub`: `-W` ran out (as mosquitto_sub) |
//! | 130 | interrupted (Ctrl-C) |

use std::process::ExitCode;

/// Every case passed or deviated as documented.
pub const SUCCESS: u8 = 0;
/// At least one case failed, timed out or was flaky.
pub const FAILURES: u8 = 1;
/// Bad usage, invalid input, nothing selected, an unreachable or vanished broker, or an error
/// of the harness itself (a proxy that cannot be reached): nothing to say about the broker.
pub const USAGE: u8 = 2;
/// `pub`/`sub` gave up after `-W` seconds (mosquitto_sub's code for the same).
pub const TIMED_OUT: u8 = 27;
/// Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

/// How a run ended, as far as the exit code is concerned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunEnd {
    /// A case failed, timed out or was flaky.
    pub failures: bool,
    /// Some scenario files were invalid and not run.
    pub invalid_files: bool,
    /// The run was cut short by something other than the user (the broker went away).
    pub incomplete: bool,
    /// The user pressed Ctrl-C.
    pub interrupted: bool,
}

/// The exit code for a finished run: an interruption, then a cut-short or invalid run, then
/// failures decide, in that order (a run that could not finish cannot vouch for the broker).
pub fn for_run(end: RunEnd) -> ExitCode {
    ExitCode::from(if end.interrupted {
        INTERRUPTED
    } else if end.incomplete || end.invalid_files {
        USAGE
    } else if end.failures {
        FAILURES
    } else {
        SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interruption_beats_incompleteness_beats_failures() {
        let failed = RunEnd {
            failures: true,
            ..RunEnd::default()
        };
        assert_eq!(for_run(RunEnd::default()), ExitCode::from(SUCCESS));
        assert_eq!(for_run(failed), ExitCode::from(FAILURES));
        let gone = RunEnd {
            incomplete: true,
            ..failed
        };
        assert_eq!(for_run(gone), ExitCode::from(USAGE));
        let stopped = RunEnd {
            interrupted: true,
            ..gone
        };
        assert_eq!(for_run(stopped), ExitCode::from(INTERRUPTED));
    }
}
