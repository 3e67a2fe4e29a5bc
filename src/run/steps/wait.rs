//! The `sleep` step: a plain wait, for cases about time (keep alive, expiry, will delay).

use crate::run::inbox::StepResult;
use crate::scenario::SleepStep;

/// `sleep`
pub(super) async fn sleep(s: &SleepStep) -> StepResult {
    tokio::time::sleep(s.duration().0).await;
    Ok(())
}
