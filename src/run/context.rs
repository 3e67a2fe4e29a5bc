//! The state the steps of one case execution share: the environment, the clients, the packet
//! identifiers saved by `expect` steps and the proxies of fault steps.

use std::collections::BTreeMap;

use std::time::Duration;

use reference_broker::codec::{Packet, Properties, ReasonCode, Subscription, SubscriptionOptions};
use tokio::time::Instant;

use super::cleanup::RetainedTopics;
use super::inbox::{recv_one, Client, StepError, StepResult};
use super::interp::CaseEnv;
use super::link::Links;
use super::sessions::Sessions;
use super::trace;
use crate::scenario::{FilterSpec, Observation, PropsSpec, Version};

/// What every step handler works on.
pub(super) struct Ctx {
    /// Where and how the case runs.
    pub(super) env: CaseEnv,
    /// The clients of the case, by name.
    pub(super) clients: BTreeMap<String, Client>,
    /// Packet identifiers saved by `expect` steps (`save_id`).
    pub(super) saved: BTreeMap<String, u16>,
    /// The SUBACK code of each filter saved by a `subscribe` (`save_granted`): a granted QoS
    /// or a failure code.
    pub(super) granted: BTreeMap<String, ReasonCode>,
    /// The highest QoS each client's `expect` steps pin for a delivery (not through
    /// `granted`): a lower grant to that client leaves the case nothing to judge.
    pub(super) expected_qos: BTreeMap<String, u8>,
    /// The proxies of a case with fault steps.
    pub(super) links: Option<Links>,
    /// The Session Expiry Interval each client identifier was last granted.
    pub(super) sessions: Sessions,
    /// The topics this execution sent retained messages to (cleared after the case).
    pub(super) retained: RetainedTopics,
}

impl Ctx {
    /// The client named `name`.
    pub(super) fn client(&mut self, name: &str) -> Result<&mut Client, StepError> {
        self.clients
            .get_mut(name)
            .ok_or_else(|| StepError::new(format!("unknown client {name:?}")))
    }

    /// The URL client `name` connects to: its proxy in a case with faults, else the broker.
    pub(super) fn url_for(&self, name: &str) -> String {
        self.links
            .as_ref()
            .and_then(|l| l.url(name))
            .map_or_else(|| self.env.url.clone(), str::to_string)
    }

    /// The properties of a packet sent under this version (none in 3.1.1).
    pub(super) fn props(&self, spec: &PropsSpec) -> Properties {
        if self.env.version == Version::V5 {
            spec.to_properties(&|t| self.env.prefix.topic(t))
        } else {
            Properties::default()
        }
    }

    /// One subscription of a SUBSCRIBE, its filter prefixed for this run.
    pub(super) fn subscription(&self, f: &FilterSpec) -> Subscription {
        Subscription {
            filter: self.env.prefix.topic(&f.filter),
            options: SubscriptionOptions {
                qos: f.qos.0,
                no_local: f.no_local,
                retain_as_published: f.retain_as_published,
                retain_handling: f.retain_handling.0,
            },
        }
    }

    /// The packet identifier an earlier `expect` saved as `name`.
    pub(super) fn saved_id(&self, name: &str) -> Result<u16, StepError> {
        self.saved.get(name).copied().ok_or_else(|| {
            StepError::new(format!(
                "no packet identifier saved as {name:?} (an earlier expect with save_id)"
            ))
        })
    }

    /// Every client that keeps a keep alive the broker imposed sends its PINGREQ if one is
    /// due (a client whose connection is gone is left for the next step to observe).
    pub(super) async fn keep_alive(&mut self) {
        for c in self.clients.values_mut() {
            let _ = c.keep_alive().await;
        }
    }

    /// Read one event of client `name` for at most `timeout`, or until a PINGREQ of any
    /// client's own is due; then send the PINGREQs that are due. Every wait of a step goes
    /// through here, so that no client falls silent longer than a keep alive the broker
    /// imposed while the case waits on another one.
    pub(super) async fn recv(&mut self, name: &str, timeout: Duration) -> StepResult {
        let timeout = match self.next_ping() {
            Some(due) => timeout.min(due.saturating_duration_since(Instant::now())),
            None => timeout,
        };
        recv_one(self.client(name)?, timeout).await?;
        self.keep_alive().await;
        Ok(())
    }

    /// The first packet in the inbox of client `name` (or arriving within `within`) that
    /// satisfies `pred`.
    pub(super) async fn wait_for(
        &mut self,
        name: &str,
        within: Duration,
        pred: impl Fn(&Packet) -> bool,
    ) -> Result<Packet, StepError> {
        let deadline = Instant::now() + within;
        loop {
            let c = self.client(name)?;
            if let Some(pos) = c.inbox.iter().position(&pred) {
                if let Some(p) = c.inbox.remove(pos) {
                    return Ok(p);
                }
            }
            if c.closed {
                return Err(StepError::diff(
                    "the broker closed the connection",
                    "a packet".into(),
                    "connection closed".into(),
                )
                .kind(Observation::ConnectionClosed));
            }
            let now = Instant::now();
            if now >= deadline {
                let pending = c.inbox.iter().map(trace::redacted).collect::<Vec<_>>();
                return Err(StepError::diff(
                    format!("nothing matching arrived within {within:?}"),
                    "a matching packet".into(),
                    if pending.is_empty() {
                        "nothing".into()
                    } else {
                        pending.join(", ")
                    },
                )
                .kind(Observation::MissingPacket));
            }
            self.recv(name, deadline - now).await?;
        }
    }

    /// When the next PINGREQ of any client's own is due.
    pub(super) fn next_ping(&self) -> Option<Instant> {
        self.clients.values().filter_map(Client::ping_due).min()
    }

    /// Record `text` in the trace of every client.
    pub(super) fn note_all(&mut self, text: &str) {
        for c in self.clients.values_mut() {
            c.note(text.to_string());
        }
    }
}
