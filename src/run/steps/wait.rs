//! The `sleep` step: a plain wait, for cases about time (keep alive, expiry, will delay).

use tokio::time::Instant;

use crate::run::context::Ctx;
use crate::run::inbox::StepResult;
use crate::scenario::SleepStep;

/// `sleep`: clients that keep a keep alive the broker imposed ping while it lasts.
pub(super) async fn sleep(cx: &mut Ctx, s: &SleepStep) -> StepResult {
    let end = Instant::now() + s.duration().0;
    loop {
        cx.keep_alive().await;
        let wake = cx.next_ping().map_or(end, |due| due.min(end));
        tokio::time::sleep_until(wake).await;
        if Instant::now() >= end {
            return Ok(());
        }
    }
}
