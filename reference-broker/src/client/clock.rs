//! The client shell's one clock: tokio's. The state machine takes time as an input; the shell
//! reads it here, so that tokio's paused time (tests with `start_paused`) drives keep alive,
//! delayed acknowledgements and trace timestamps alike.

use std::time::Instant;

/// Now, on tokio's clock (paused and advanced in tests), as a `std` instant for the state
/// machine.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
