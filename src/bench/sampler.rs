//! Memory sampling during a run: the broker process (`--broker-pid`), or this process when
//! the broker is in-process or a soak runs against an external broker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{system, Plan, RssSample};

/// Memory sampling: the broker process, or this process when the broker is in-process.
pub(crate) struct Sampler {
    samples: Arc<Mutex<Vec<RssSample>>>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    pid: Option<u32>,
    of: String,
}

impl Sampler {
    /// Start sampling every `--sample-every` (nothing is sampled when there is no process to
    /// watch: an external broker without `--broker-pid`, outside a soak).
    pub(crate) fn start(plan: &Plan, in_process: bool, origin: Instant) -> Sampler {
        let (stop, mut stopped) = watch::channel(false);
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (pid, of) = match (plan.args.broker_pid, in_process) {
            (Some(p), _) => (Some(p), format!("broker pid {p}")),
            (None, true) => (None, "self (in-process broker)".to_string()),
            (None, false) if plan.soak => (None, "self (the load generator)".to_string()),
            (None, false) => {
                return Sampler {
                    samples,
                    stop,
                    task: None,
                    pid: None,
                    of: "none".into(),
                }
            }
        };
        let every = plan.args.sample_every.max(Duration::from_millis(10));
        let s = samples.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.wait_for(|v| *v) => return,
                }
                if let Some(kib) = system::rss_kib(pid) {
                    if let Ok(mut v) = s.lock() {
                        v.push(RssSample {
                            at_s: origin.elapsed().as_secs_f64(),
                            kib,
                        });
                    }
                }
            }
        });
        Sampler {
            samples,
            stop,
            task: Some(task),
            pid,
            of,
        }
    }

    /// Take one sample now (also kept in the series); `None` when not sampling.
    pub(crate) fn sample_now(&self, origin: Instant) -> Option<u64> {
        self.task.as_ref()?;
        let kib = system::rss_kib(self.pid)?;
        if let Ok(mut v) = self.samples.lock() {
            v.push(RssSample {
                at_s: origin.elapsed().as_secs_f64(),
                kib,
            });
        }
        Some(kib)
    }

    /// Stop sampling; returns whose memory it was and the samples.
    pub(crate) async fn finish(mut self) -> (String, Vec<RssSample>) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        let v = self.samples.lock().map(|v| v.clone()).unwrap_or_default();
        (self.of, v)
    }
}
