//! The listening side of one proxy: accepts clients, dials the upstream for each, runs the two
//! toxic links of the connection, and cuts (FIN) or resets (RST) connections.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;

use super::link::{self, LinkEnd, ToxicList};
use super::{Stream, Toxic};

/// Back-off after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// Bound on dialing the upstream; the client is closed if it is not reached by then.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Orders sent to every connection of one proxy.
#[derive(Debug, Clone, Copy)]
enum Command {
    /// Close every connection with a FIN (the proxy was disabled or deleted).
    CloseAll,
}

/// What the control side shares with the proxy's connections: the toxics and the commands.
#[derive(Debug)]
pub(crate) struct Connections {
    toxics: watch::Sender<ToxicList>,
    commands: broadcast::Sender<Command>,
}

impl Connections {
    /// No toxics, no connections.
    pub fn new() -> Arc<Self> {
        let (toxics, _) = watch::channel(ToxicList::default());
        let (commands, _) = broadcast::channel(16);
        Arc::new(Self { toxics, commands })
    }

    /// Publishes the proxy's toxics to its existing and future connections.
    pub fn set_toxics(&self, toxics: &[Toxic]) {
        self.toxics.send_replace(Arc::new(toxics.to_vec()));
    }

    /// Closes every connection (FIN to the client and the upstream).
    pub fn close_all(&self) {
        // No receiver means no connection: nothing to close.
        let _ = self.commands.send(Command::CloseAll);
    }
}

/// A running accept loop; dropping it stops accepting (the listener is closed).
#[derive(Debug)]
pub(crate) struct Acceptor {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Starts accepting on `listener`, connecting each client to `upstream`.
    pub fn start(listener: TcpListener, upstream: String, connections: Arc<Connections>) -> Self {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, upstream, connections, stopped));
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops accepting and waits until the listener is closed, so that every connection the
    /// loop started receives commands sent after this returns.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: String,
    connections: Arc<Connections>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    tracing::debug!(%peer, %upstream, "proxy accepted a client");
                    let commands = connections.commands.subscribe();
                    let toxics = connections.toxics.subscribe();
                    tokio::spawn(relay(client, upstream.clone(), commands, toxics));
                }
                Err(err) => {
                    tracing::warn!(%err, "proxy accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Both directions finished, or one failed: close.
    Done,
    /// Cut by the control side or a toxic: close (FIN).
    Close,
    /// A `reset_peer` fired: SO_LINGER 0, so that closing sends an RST.
    Reset,
}

async fn relay(
    client: TcpStream,
    upstream: String,
    mut commands: broadcast::Receiver<Command>,
    toxics: watch::Receiver<ToxicList>,
) {
    let server =
        match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(&upstream)).await {
            Ok(Ok(server)) => server,
            Ok(Err(err)) => {
                tracing::warn!(%err, %upstream, "upstream unreachable; closing the client");
                return;
            }
            Err(_) => {
                tracing::warn!(%upstream, "upstream connect timed out; closing the client");
                return;
            }
        };
    // Small writes (MQTT packets) must not wait for Nagle.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();

    let ending = {
        let up = link::run(
            &mut client_read,
            &mut server_write,
            Stream::Upstream,
            toxics.clone(),
        );
        let down = link::run(
            &mut server_read,
            &mut client_write,
            Stream::Downstream,
            toxics,
        );
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                end = &mut up, if !up_done => match end {
                    Ok(LinkEnd::Eof) if !down_done => up_done = true,
                    other => break ending_of(other),
                },
                end = &mut down, if !down_done => match end {
                    Ok(LinkEnd::Eof) if !up_done => down_done = true,
                    other => break ending_of(other),
                },
                command = commands.recv() => match command {
                    Ok(Command::CloseAll) | Err(broadcast::error::RecvError::Closed) => {
                        break Ending::Close
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => break Ending::Close,
                },
            }
        }
    };
    // Reunited, the sockets close as a whole: a dropped write half would send a FIN first.
    let sockets = [
        client_read.reunite(client_write),
        server_read.reunite(server_write),
    ];
    if ending == Ending::Reset {
        for socket in sockets.iter().flatten() {
            if let Err(err) = socket.set_zero_linger() {
                tracing::warn!(%err, "cannot set SO_LINGER 0; the close will be a FIN");
            }
        }
    }
    tracing::debug!(?ending, %upstream, "proxied connection ended");
}

fn ending_of(end: std::io::Result<LinkEnd>) -> Ending {
    match end {
        Ok(LinkEnd::Eof) | Err(_) => Ending::Done,
        Ok(LinkEnd::Close) => Ending::Close,
        Ok(LinkEnd::Reset) => Ending::Reset,
    }
}
