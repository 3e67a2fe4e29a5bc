//! One handler per step kind, one file per family of steps; [`dispatch`] sends each step of
//! the typed plan to its handler.

mod connection;
mod expectation;
mod faults;
mod publication;
mod raw;
mod subscription;
mod wait;

use super::context::Ctx;
use super::inbox::StepResult;
use crate::scenario::Step;

/// Run `step` on the case state `cx`.
pub(super) async fn dispatch(cx: &mut Ctx, step: &Step) -> StepResult {
    match step {
        Step::Connect(s) => connection::connect(cx, s).await,
        Step::Disconnect(s) => connection::disconnect(cx, s).await,
        Step::Drop(s) => connection::drop_connection(cx, s),
        Step::Subscribe(s) => subscription::subscribe(cx, s).await,
        Step::Unsubscribe(s) => subscription::unsubscribe(cx, s).await,
        Step::Publish(s) => publication::publish(cx, s).await,
        Step::Expect(s) => expectation::expect(cx, s).await,
        Step::ExpectOneOf(s) => expectation::expect_one_of(cx, s).await,
        Step::ExpectNothing(s) => expectation::expect_nothing(cx, s).await,
        Step::ExpectClose(s) => expectation::expect_close(cx, s).await,
        Step::Send(s) => raw::send_packet(cx, s).await,
        Step::SendRaw(s) => raw::send_raw(cx, s).await,
        Step::Sleep(s) => wait::sleep(cx, s).await,
        Step::RestartBroker(_) => faults::restart_broker(cx).await,
        Step::Cut(_)
        | Step::Down(_)
        | Step::Blackhole(_)
        | Step::Latency(_)
        | Step::Bandwidth(_)
        | Step::Slicer(_)
        | Step::LimitData(_)
        | Step::SlowClose(_)
        | Step::ResetPeer(_)
        | Step::Heal(_) => faults::fault(cx, step).await,
    }
}
