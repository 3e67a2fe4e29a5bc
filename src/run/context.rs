//! The state the steps of one case execution share: the environment, the clients, the packet
//! identifiers saved by `expect` steps and the proxies of fault steps.

use std::collections::BTreeMap;

use reference_broker::codec::{Properties, ReasonCode, Subscription, SubscriptionOptions};

use super::cleanup::RetainedTopics;
use super::inbox::{Client, StepError};
use super::interp::CaseEnv;
use super::link::Links;
use crate::scenario::{FilterSpec, PropsSpec, Version};

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

    /// Record `text` in the trace of every client.
    pub(super) fn note_all(&mut self, text: &str) {
        for c in self.clients.values_mut() {
            c.note(text.to_string());
        }
    }
}
