//! Fault steps: network faults on the link of a client (`cut` ... `heal`) and
//! `restart_broker`.

use crate::run::context::Ctx;
use crate::run::inbox::{StepError, StepResult};
use crate::run::link;
use crate::scenario::Step;

/// `cut`, `down`, `blackhole`, `latency`, `bandwidth`, `slicer`, `limit_data`, `slow_close`,
/// `reset_peer` and `heal`.
pub(super) async fn fault(cx: &mut Ctx, step: &Step) -> StepResult {
    let (Some(fault), Some(client)) = (link::fault_of(step), step.fault_client()) else {
        return Err(StepError::new("internal: not a fault step"));
    };
    let links = cx.links.as_ref().ok_or_else(|| {
        StepError::harness("network faults need a fault injector; this run has none")
    })?;
    // A proxy that fails is the harness's problem: the case ends as a harness error.
    let applied = links
        .apply(&fault, client)
        .await
        .map_err(|e| StepError::harness(format!("the fault proxy failed applying {fault}: {e}")))?;
    for (name, toxics) in applied {
        let installed = toxics
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let text = if installed.is_empty() {
            format!("fault: {fault}")
        } else {
            format!("fault: {fault} (toxics {installed})")
        };
        if let Some(c) = cx.clients.get_mut(&name) {
            c.note(text);
        }
    }
    Ok(())
}

/// `restart_broker`
pub(super) async fn restart_broker(cx: &mut Ctx) -> StepResult {
    let broker = cx
        .env
        .broker
        .clone()
        .ok_or_else(|| StepError::new(crate::run::CANNOT_RESTART))?;
    cx.note_all("restarting the broker");
    broker
        .lock()
        .await
        .restart()
        .await
        .map_err(|e| StepError::new(e.to_string()))?;
    cx.note_all("broker restarted");
    Ok(())
}
