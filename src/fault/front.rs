//! The client-facing side of an embedded proxy: accepts clients, relays them to the noxious
//! engine, and cuts (FIN) or resets (RST) those connections on command.
//!
//! noxious keeps its sockets to itself, so the operations that act on a connection rather than on
//! its bytes (`enabled: false` closes every connection, `reset_peer` sends an RST) live here.
//!
//! `reset_peer` follows Toxiproxy (`toxics/reset_peer.go`): the toxic waits for the next chunk on
//! its stream (or the end of that stream), drops it, waits `timeout` ms, then closes both sockets
//! with SO_LINGER 0 (RST). Unlike Toxiproxy, which sets SO_LINGER 0 only on connections opened
//! after the toxic was added (`link.go`), connections that already existed are reset too. The
//! front sits after noxious on the way down and before it on the way up, so a `reset_peer` acts
//! last on downstream data and first on upstream data, whatever the order the toxics were added.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::Stream;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

/// Back-off after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// Room for commands a slow relay has not read yet.
const COMMAND_CAPACITY: usize = 256;

/// Room for one chunk, as Toxiproxy's and noxious's 32 KiB copy buffers.
const CHUNK: usize = 32 * 1024;

/// An active `reset_peer` toxic as the relays see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResetRule {
    /// The toxic's name, to cancel it.
    pub name: String,
    /// The direction whose next chunk triggers the reset.
    pub stream: Stream,
    /// Delay between the triggering chunk and the reset.
    pub after: Duration,
    /// Probability that a given connection is armed.
    pub toxicity: f32,
}

/// Orders sent to every relay of one proxy.
#[derive(Debug, Clone)]
enum Command {
    /// Close every connection with a FIN (the proxy was disabled or deleted).
    CloseAll,
    /// Arm a reset on every connection.
    Arm(ResetRule),
    /// Disarm a reset that has not fired yet (its toxic was removed).
    Disarm(String),
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

    /// Installs a reset on existing and new connections: each is reset `rule.after` after its
    /// next chunk on `rule.stream`.
    pub fn add_reset(&self, rule: ResetRule) {
        self.with_resets(|resets| resets.push(rule.clone()));
        let _ = self.commands.send(Command::Arm(rule));
    }

    /// Removes a reset; connections where it already fired are reset all the same.
    pub fn remove_reset(&self, name: &str) {
        self.with_resets(|resets| resets.retain(|rule| rule.name != name));
        let _ = self.commands.send(Command::Disarm(name.to_owned()));
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
    /// Both directions finished on their own, or one failed.
    Done,
    /// Cut by the control side: drop the sockets (FIN).
    Close,
    /// A `reset_peer` fired: SO_LINGER 0, so that closing sends an RST.
    Reset,
}

/// How one direction ended.
enum PumpEnd {
    /// End of stream, passed on as a half-close.
    Eof,
    /// A `reset_peer` fired and its delay has passed.
    Reset,
}

/// The `reset_peer` toxics armed on one connection.
#[derive(Debug, Default)]
struct Triggers(Mutex<Vec<ResetRule>>);

impl Triggers {
    /// Arms `rule` on this connection with probability `rule.toxicity`.
    fn arm(&self, rule: &ResetRule) {
        if rand::random::<f32>() < rule.toxicity {
            self.with(|armed| armed.push(rule.clone()));
        }
    }

    fn disarm(&self, name: &str) {
        self.with(|armed| armed.retain(|rule| rule.name != name));
    }

    /// A chunk (or the end) arrived on `stream`: the delay of the reset it triggers, if any.
    fn fire(&self, stream: Stream) -> Option<Duration> {
        self.with(|armed| {
            armed
                .iter()
                .filter(|rule| rule.stream == stream)
                .map(|rule| rule.after)
                .min()
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Vec<ResetRule>) -> T) -> T {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

/// Copies one direction; a fired `reset_peer` swallows the chunk and ends it after the delay.
async fn pump(
    src: &mut OwnedReadHalf,
    dst: &mut OwnedWriteHalf,
    stream: Stream,
    triggers: &Triggers,
) -> std::io::Result<PumpEnd> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = src.read(&mut buf).await?;
        if let Some(delay) = triggers.fire(stream) {
            tokio::time::sleep(delay).await;
            return Ok(PumpEnd::Reset);
        }
        if n == 0 {
            dst.shutdown().await?;
            return Ok(PumpEnd::Eof);
        }
        dst.write_all(&buf[..n]).await?;
    }
}

async fn relay(
    client: TcpStream,
    inner: SocketAddr,
    mut commands: broadcast::Receiver<Command>,
    resets: Vec<ResetRule>,
) {
    let triggers = Triggers::default();
    for rule in &resets {
        triggers.arm(rule);
    }
    let engine = match TcpStream::connect(inner).await {
        Ok(engine) => engine,
        Err(err) => {
            tracing::warn!(%err, %inner, "proxy engine unreachable; closing the client");
            return;
        }
    };
    // Small writes (MQTT packets) must not wait for Nagle on the extra hop.
    let _ = client.set_nodelay(true);
    let _ = engine.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut engine_read, mut engine_write) = engine.into_split();

    let ending = {
        let up = pump(
            &mut client_read,
            &mut engine_write,
            Stream::Upstream,
            &triggers,
        );
        let down = pump(
            &mut engine_read,
            &mut client_write,
            Stream::Downstream,
            &triggers,
        );
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                end = &mut up, if !up_done => match end {
                    Ok(PumpEnd::Eof) if !down_done => up_done = true,
                    Ok(PumpEnd::Eof) | Err(_) => break Ending::Done,
                    Ok(PumpEnd::Reset) => break Ending::Reset,
                },
                end = &mut down, if !down_done => match end {
                    Ok(PumpEnd::Eof) if !up_done => down_done = true,
                    Ok(PumpEnd::Eof) | Err(_) => break Ending::Done,
                    Ok(PumpEnd::Reset) => break Ending::Reset,
                },
                command = commands.recv() => match command {
                    Ok(Command::CloseAll) | Err(broadcast::error::RecvError::Closed) => {
                        break Ending::Close
                    }
                    Ok(Command::Arm(rule)) => triggers.arm(&rule),
                    Ok(Command::Disarm(name)) => triggers.disarm(&name),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "relay missed proxy commands");
                    }
                },
            }
        }
    };
    // Reunited, the sockets close as a whole: a dropped write half would send a FIN first.
    let sockets = [
        client_read.reunite(client_write),
        engine_read.reunite(engine_write),
    ];
    if matches!(ending, Ending::Reset) {
        for socket in sockets.iter().flatten() {
            if let Err(err) = socket.set_zero_linger() {
                tracing::warn!(%err, "cannot set SO_LINGER 0; the close will be a FIN");
            }
        }
    }
}
