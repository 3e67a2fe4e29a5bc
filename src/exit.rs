//! Exit codes of the `mqtt-conformance` command, in one place.

use std::process::ExitCode;

/// Every case passed or deviated as documented.
pub const SUCCESS: u8 = 0;
/// At least one case failed, timed out or was flaky.
pub const FAILURES: u8 = 1;
/// Bad usage, invalid scenario files, or an unreachable broker.
pub const USAGE: u8 = 2;

/// The exit code for a finished run.
pub fn for_run(any_failure: bool, invalid_files: bool) -> ExitCode {
    ExitCode::from(if invalid_files {
        USAGE
    } else if any_failure {
        FAILURES
    } else {
        SUCCESS
    })
}
