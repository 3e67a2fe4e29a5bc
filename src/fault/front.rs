//! The client-facing side of an embedded proxy: accepts clients, relays them to the noxious
//! engine, and cuts (FIN) or resets (RST) those connections on command.
//!
//! noxious keeps its sockets to itself, so the operations that act on a connection rather than on
//! its bytes (`enabled: false` closes every connection, `reset_peer` sends an RST) live here.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

/// Back-off after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// Room for commands a slow relay has not read yet.
const COMMAND_CAPACITY: usize = 256;

/// An active `reset_peer` toxic as the relays see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResetRule {
    /// The toxic's name, to cancel it.
    pub name: String,
    /// Delay before the reset, counted from installation (existing connections) or accept (new).
    pub after: Duration,
    /// Probability that a given connection is reset.
    pub toxicity: f32,
}

/// Orders sent to every relay of one proxy.
#[derive(Debug, Clone)]
enum Command {
    /// Close every connection with a FIN (the proxy was disabled or deleted).
    CloseAll,
    /// Schedule a reset on every connection.
    Reset(ResetRule),
    /// Forget a scheduled reset (its toxic was removed).
    CancelReset(String),
}

/// State shared by the proxy's control side, its accept loop and its relays.
#[derive(Debug)]
pub(crate) struct Connections {
    resets: Mutex<Vec<ResetRule>>,
    commands: broadcast::Sender<Command>,
}

impl Connections {
    /// No connections, no resets.
    pub fn new() -> Arc<Self> {
        let (commands, _) = broadcast::channel(COMMAND_CAPACITY);
        Arc::new(Self {
            resets: Mutex::new(Vec::new()),
            commands,
        })
    }

    /// Closes every relayed connection (FIN to the client).
    pub fn close_all(&self) {
        // No receiver means no connection: nothing to close.
        let _ = self.commands.send(Command::CloseAll);
    }

    /// Installs a reset: existing connections are reset `rule.after` from now, new ones
    /// `rule.after` after they are accepted.
    pub fn add_reset(&self, rule: ResetRule) {
        self.with_resets(|resets| resets.push(rule.clone()));
        let _ = self.commands.send(Command::Reset(rule));
    }

    /// Removes a reset, on existing connections too.
    pub fn remove_reset(&self, name: &str) {
        self.with_resets(|resets| resets.retain(|rule| rule.name != name));
        let _ = self.commands.send(Command::CancelReset(name.to_owned()));
    }

    fn with_resets<T>(&self, f: impl FnOnce(&mut Vec<ResetRule>) -> T) -> T {
        // A poisoned lock only means a panic elsewhere mid-push; the Vec is still valid.
        let mut guard = self
            .resets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

/// A running accept loop; dropping it stops accepting (the listener is closed).
#[derive(Debug)]
pub(crate) struct Front {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Front {
    /// Starts accepting on `listener`, relaying each client to `inner`.
    pub fn start(listener: TcpListener, inner: SocketAddr, connections: Arc<Connections>) -> Self {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, inner, connections, stopped));
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops accepting and waits until the listener is closed, so that every relay the loop
    /// started is subscribed to commands sent after this returns.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    inner: SocketAddr,
    connections: Arc<Connections>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    tracing::debug!(%peer, %inner, "proxy accepted a client");
                    let commands = connections.commands.subscribe();
                    let resets = connections.with_resets(|resets| resets.clone());
                    tokio::spawn(relay(client, inner, commands, resets));
                }
                Err(err) => {
                    tracing::warn!(%err, "proxy accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// How a relay ended.
enum Ending {
    /// Both directions finished on their own (or one failed).
    Done,
    /// Cut by the control side: drop the sockets (FIN).
    Close,
    /// Reset: SO_LINGER 0, so that closing sends an RST.
    Reset,
}

/// Resets scheduled on one connection: toxic name and deadline.
#[derive(Default)]
struct Schedule(Vec<(String, Instant)>);

impl Schedule {
    fn add(&mut self, rule: &ResetRule, from: Instant) {
        if rand::random::<f32>() < rule.toxicity {
            self.0.push((rule.name.clone(), from + rule.after));
        }
    }

    fn cancel(&mut self, name: &str) {
        self.0.retain(|(rule, _)| rule != name);
    }

    fn next(&self) -> Option<Instant> {
        self.0.iter().map(|(_, at)| *at).min()
    }
}

async fn relay(
    mut client: TcpStream,
    inner: SocketAddr,
    mut commands: broadcast::Receiver<Command>,
    resets: Vec<ResetRule>,
) {
    let accepted = Instant::now();
    let mut schedule = Schedule::default();
    for rule in &resets {
        schedule.add(rule, accepted);
    }
    let mut engine = match TcpStream::connect(inner).await {
        Ok(engine) => engine,
        Err(err) => {
            tracing::warn!(%err, %inner, "proxy engine unreachable; closing the client");
            return;
        }
    };
    // Small writes (MQTT packets) must not wait for Nagle on the extra hop.
    let _ = client.set_nodelay(true);
    let _ = engine.set_nodelay(true);

    let ending = {
        let copy = tokio::io::copy_bidirectional(&mut client, &mut engine);
        tokio::pin!(copy);
        loop {
            let next_reset = schedule.next();
            tokio::select! {
                _ = &mut copy => break Ending::Done,
                () = sleep_until_or_never(next_reset) => break Ending::Reset,
                command = commands.recv() => match command {
                    Ok(Command::CloseAll) | Err(broadcast::error::RecvError::Closed) => {
                        break Ending::Close
                    }
                    Ok(Command::Reset(rule)) => schedule.add(&rule, Instant::now()),
                    Ok(Command::CancelReset(name)) => schedule.cancel(&name),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "relay missed proxy commands");
                    }
                },
            }
        }
    };
    if matches!(ending, Ending::Reset) {
        if let Err(err) = client.set_zero_linger() {
            tracing::warn!(%err, "cannot set SO_LINGER 0; the close will be a FIN");
        }
    }
    drop(client);
    drop(engine);
}

async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
