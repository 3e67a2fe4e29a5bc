//! The step interpreter: runs one case under one version, step by step (each step goes to its
//! handler in [`super::steps`]), within the case deadline, and returns the first failure with
//! every client's trace.

use std::sync::Arc;
use std::time::Duration;

use reference_broker::client::TransportOptions;
use tokio::time::Instant;

use super::cleanup::RetainedTopics;
use super::context::Ctx;
use super::inbox::{Client, StepError};
use super::link::Links;
use super::prefix::Prefixer;
use super::steps;
use super::verdict::{ClientTrace, Failure, Warning};
use crate::fault::FaultInjector;
use crate::scenario::{Level, Observation, Scenario, Step, Version};
use crate::sut::CaseBroker;

/// Default wait for an expected packet.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(2);

/// Where and how to run a case.
#[derive(Clone)]
pub struct CaseEnv {
    /// Broker URL (may carry credentials; never printed).
    pub url: String,
    /// Transport options.
    pub transport: TransportOptions,
    /// Credentials of the target, for clients that set none.
    pub credentials: Option<(String, String)>,
    /// Protocol version of this execution.
    pub version: Version,
    /// Prefixes of this execution.
    pub prefix: Prefixer,
    /// The deadline of the whole case.
    pub deadline: Instant,
    /// Creates the proxies of a case with fault steps (none: fault steps fail).
    pub faults: Option<Arc<dyn FaultInjector>>,
    /// The broker of this case alone, when the case restarts it.
    pub broker: Option<Arc<tokio::sync::Mutex<CaseBroker>>>,
}

impl std::fmt::Debug for CaseEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseEnv")
            .field("url", &crate::redact::redact_url(&self.url))
            .field("version", &self.version)
            .field("prefix", &self.prefix)
            .field("faults", &self.faults.is_some())
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

/// How a case ended when it did not pass.
#[derive(Debug)]
pub enum Outcome {
    /// A step did not hold.
    Fail(Failure),
    /// The case deadline passed.
    Timeout(Failure),
    /// The harness failed (its fault proxy): the case says nothing about the broker.
    Error(Failure),
    /// The broker refused a CONNECT that the specification lets it refuse (a step with
    /// `refusal_allowed`): the case has nothing to judge, and the run is skipped.
    NotApplicable(String),
}

/// One execution of a case: how it ended, and the SHOULD-level steps that did not hold.
#[derive(Debug)]
pub struct Attempt {
    /// Passed (every MUST held) or the first failure.
    pub result: Result<(), Outcome>,
    /// SHOULD-level steps that did not hold, in step order.
    pub warnings: Vec<Warning>,
    /// What the runner could not do around the case (clear its retained messages): said
    /// in the report, never part of the verdict.
    pub notes: Vec<String>,
}

/// The level of `step` under `version`: its own `level`, else the level its statement's text
/// implies (SHOULD without MUST), else MUST.
pub fn step_level(step: &Step, version: Version) -> Level {
    let (statement, level) = step.check();
    level.unwrap_or_else(|| {
        statement
            .and_then(|id| crate::coverage::statement(version, id))
            .map_or(Level::Must, |st| Level::of_text(&st.text))
    })
}

/// Whether a failure observed as `kind` in `step` is only a warning: the step is at SHOULD
/// level and the failure judges the broker's answer. An `expect_close` keeps its close a
/// MUST: only its DISCONNECT `reason` can be a SHOULD.
fn is_warning(step: &Step, version: Version, kind: Observation, timeout: bool) -> bool {
    if timeout || !kind.warnable() || step_level(step, version) != Level::Should {
        return false;
    }
    !matches!(step, Step::ExpectClose(_)) || kind == Observation::WrongReasonCode
}

/// The highest delivery QoS each client's `expect` and `expect_one_of` patterns pin (those
/// judged through `granted` excepted).
fn expected_qos(case: &Scenario) -> std::collections::BTreeMap<String, u8> {
    let mut out = std::collections::BTreeMap::new();
    let patterns = case.steps.iter().flat_map(|s| match s {
        Step::Expect(e) => vec![e],
        Step::ExpectOneOf(o) => o.alternatives.iter().flatten().collect(),
        _ => Vec::new(),
    });
    for e in patterns.filter(|e| e.granted.is_none()) {
        if let Some(q) = e.qos {
            let max = out.entry(e.client.clone()).or_insert(0);
            *max = (*max).max(q.0.as_u8());
        }
    }
    out
}

/// Runs one case under one version.
pub struct Interpreter<'a> {
    case: &'a Scenario,
    cx: Ctx,
    warnings: Vec<Warning>,
}

impl<'a> Interpreter<'a> {
    /// Prepare the clients of `case`.
    pub fn new(case: &'a Scenario, env: CaseEnv) -> Interpreter<'a> {
        let clients = case
            .clients
            .iter()
            .map(|(name, spec)| {
                let id = env.prefix.client_id(name, spec.client_id.as_deref());
                (name.clone(), Client::new(spec.clone(), id))
            })
            .collect();
        let retained = RetainedTopics::new(env.prefix.clone());
        Interpreter {
            case,
            cx: Ctx {
                env,
                clients,
                saved: Default::default(),
                granted: Default::default(),
                expected_qos: expected_qos(case),
                links: None,
                sessions: Default::default(),
                retained,
            },
            warnings: Vec::new(),
        }
    }

    /// The record of the topics this execution sends retained messages to: a handle that
    /// outlives the interpreter, so the runner clears them even after a case cut short.
    pub fn retained_topics(&self) -> RetainedTopics {
        self.cx.retained.clone()
    }

    /// Run every step that applies to this version; the first failure ends the case.
    pub async fn run(self) -> Result<(), Outcome> {
        self.execute().await.result
    }

    /// [`Interpreter::run`], with the warnings of the SHOULD-level steps that did not hold
    /// (the case goes on after each).
    pub async fn execute(mut self) -> Attempt {
        let result = match self.setup_links().await {
            Ok(()) => self.run_steps().await,
            Err(e) => Err(e),
        };
        for client in self.cx.clients.values_mut() {
            if let Some(conn) = client.conn.take() {
                conn.abort();
            }
        }
        if let Some(mut links) = self.cx.links.take() {
            links.teardown().await;
        }
        Attempt {
            result,
            warnings: self.warnings,
            notes: Vec::new(),
        }
    }

    /// A case with fault steps connects every client through its own proxy.
    async fn setup_links(&mut self) -> Result<(), Outcome> {
        let case = self.case;
        let env = &self.cx.env;
        let Some((i, step)) =
            case.steps.iter().enumerate().find(|(_, s)| {
                s.fault_client().is_some() && s.only().is_none_or(|v| v == env.version)
            })
        else {
            return Ok(());
        };
        // No proxy, or one that cannot be set up, is the harness's problem.
        let fail = |message: String| {
            Outcome::Error(Failure {
                step: Some(i + 1),
                step_text: step.keyword().to_string(),
                message,
                expected: None,
                received: None,
                traces: Vec::new(),
                kind: Some(Observation::Harness),
                statement: None,
                not_excused: None,
            })
        };
        let Some(injector) = env.faults.clone() else {
            return Err(fail(format!(
                "step {} ({}) is a network fault, but this run has no fault injector to put \
                 proxies in front of the broker (the default embedded one or --toxiproxy URL)",
                i + 1,
                step.keyword()
            )));
        };
        let proxy_prefix = env.prefix.client_id("", None);
        let links = Links::setup(
            injector,
            &env.url,
            self.cx.clients.keys().cloned(),
            &proxy_prefix,
        )
        .await
        .map_err(|e| fail(format!("cannot set up the proxies of the fault steps: {e}")))?;
        self.cx.links = Some(links);
        Ok(())
    }

    async fn run_steps(&mut self) -> Result<(), Outcome> {
        let case = self.case;
        for (i, step) in case.steps.iter().enumerate() {
            if step.only().is_some_and(|v| v != self.cx.env.version) {
                continue;
            }
            if let Some(name) = step.client() {
                if let Some(conn) = self.cx.clients.get_mut(name).and_then(|c| c.conn.as_mut()) {
                    conn.note(format!("step {} ({})", i + 1, step.keyword()));
                }
            }
            // Clients that keep an imposed keep alive ping between steps too.
            self.cx.keep_alive().await;
            let remaining = self
                .cx
                .env
                .deadline
                .saturating_duration_since(Instant::now());
            let result =
                match tokio::time::timeout(remaining, steps::dispatch(&mut self.cx, step)).await {
                    Ok(r) => r,
                    Err(_) => Err(StepError {
                        timeout: true,
                        ..StepError::new("the case ran out of time in this step")
                            .kind(Observation::Timeout)
                    }),
                };
            if let Err(e) = result {
                if let Some(reason) = e.not_applicable {
                    return Err(Outcome::NotApplicable(format!(
                        "step {} ({}): {}",
                        i + 1,
                        step.keyword(),
                        self.unprefix(&reason)
                    )));
                }
                let version = self.cx.env.version;
                if !e.harness && is_warning(step, version, e.kind, e.timeout) {
                    self.warnings.push(Warning {
                        step: i + 1,
                        step_text: step.keyword().to_string(),
                        statement: step.check().0.map(str::to_string),
                        kind: e.kind,
                        message: self.unprefix(&e.message),
                        expected: e.expected.map(|x| self.unprefix(&x)),
                        received: e.received.map(|r| self.unprefix(&r)),
                    });
                    continue;
                }
                let failure = Failure {
                    step: Some(i + 1),
                    step_text: step.keyword().to_string(),
                    message: self.unprefix(&e.message),
                    expected: e.expected.map(|x| self.unprefix(&x)),
                    received: e.received.map(|r| self.unprefix(&r)),
                    traces: self.traces(),
                    kind: Some(if e.timeout {
                        Observation::Timeout
                    } else if e.harness {
                        Observation::Harness
                    } else {
                        e.kind
                    }),
                    statement: step.check().0.map(str::to_string),
                    not_excused: None,
                };
                return Err(if e.harness {
                    Outcome::Error(failure)
                } else if e.timeout {
                    Outcome::Timeout(failure)
                } else {
                    Outcome::Fail(failure)
                });
            }
        }
        Ok(())
    }

    fn unprefix(&self, text: &str) -> String {
        let p = self.cx.env.prefix.topic_prefix();
        if p.is_empty() {
            text.to_string()
        } else {
            text.replace(p, "")
        }
    }

    fn traces(&self) -> Vec<ClientTrace> {
        self.cx
            .clients
            .iter()
            .map(|(name, c)| ClientTrace {
                client: name.clone(),
                lines: c.trace().iter().map(|l| self.unprefix(l)).collect(),
            })
            .collect()
    }
}
