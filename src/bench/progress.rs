//! The live progress line on stderr (indicatif): messages sent and received so far and the
//! current rates. Hidden when stderr is not a terminal or when asked.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A spinner line refreshed by [`Progress::update`].
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    last: Option<(Instant, u64, u64)>,
}

impl Progress {
    /// Await `work`, refreshing the line every 100 ms under `phase` with the counts
    /// (sent, received, connections) that `counts` reads at that moment.
    pub async fn during<T>(
        &mut self,
        phase: &str,
        work: impl std::future::Future<Output = T>,
        counts: impl Fn() -> (u64, u64, usize),
    ) -> T {
        tokio::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                r = &mut work => return r,
                _ = tick.tick() => {
                    let (sent, received, connections) = counts();
                    self.update(phase, sent, received, connections);
                }
            }
        }
    }

    /// A progress line; `visible = false` draws nothing.
    pub fn new(visible: bool) -> Progress {
        let bar = if visible {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4))
        } else {
            ProgressBar::hidden()
        };
        let style = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress { bar, last: None }
    }

    /// Show the phase (connecting, publishing, draining).
    pub fn phase(&self, text: impl Into<String>) {
        self.bar.set_message(text.into());
    }

    /// Refresh with the running totals.
    pub fn update(&mut self, phase: &str, sent: u64, received: u64, connections: usize) {
        let now = Instant::now();
        let (send_rate, recv_rate) = match self.last {
            Some((t, s, r)) if now > t => {
                let dt = (now - t).as_secs_f64();
                (
                    (sent - s.min(sent)) as f64 / dt,
                    (received - r.min(received)) as f64 / dt,
                )
            }
            _ => (0.0, 0.0),
        };
        if self
            .last
            .is_none_or(|(t, _, _)| now - t >= Duration::from_millis(500))
        {
            self.last = Some((now, sent, received));
            self.bar.set_message(format!(
                "{phase}: {connections} conns, sent {sent} ({send_rate:.0}/s), received {received} ({recv_rate:.0}/s)"
            ));
        }
    }

    /// Remove the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
