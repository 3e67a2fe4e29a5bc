//! Write-ahead of the durable state (`persistence = "path"`): every change that an
//! acknowledgement will promise (a message queued for a persistent session, a retained
//! message, a session snapshot with its subscriptions and QoS 2 state) is sent here in order,
//! and a connection writes the acknowledgement only once the change is committed.
//!
//! Group commit: one writer thread takes every change waiting in its queue, writes them all in
//! one redb transaction (fsync on commit) and then wakes everyone who waits for any of them.
//! While it commits, the next batch accumulates, so the number of fsyncs per second stays
//! bounded whatever the number of connections.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use redb::{Database, ReadableTable};
use tokio::sync::oneshot;

use super::router::persist::{PersistError, RETAINED, SESSIONS, TRANSIT};

/// One change of the durable state, already serialised.
#[derive(Debug)]
pub(crate) enum Op {
    /// The whole state of one persistent session; its queued deliveries up to `upto` are in
    /// it, so journal entries up to there are removed.
    Session {
        client: Arc<str>,
        upto: u64,
        record: Vec<u8>,
    },
    /// A delivery routed to a persistent session (queued offline, or on its way to the
    /// connection), number `seq` of the broker.
    Transit {
        client: Arc<str>,
        seq: u64,
        record: Vec<u8>,
    },
    /// The session ended: forget it and its deliveries.
    Forget { client: Arc<str> },
    /// A retained message stored (`Some`) or deleted (`None`).
    Retain {
        topic: Arc<str>,
        record: Option<Vec<u8>>,
    },
    /// Nothing: a caller waits for everything sent before it.
    Barrier,
    /// Several changes that only make sense together (always in one transaction).
    Group(Vec<Op>),
}

struct Request {
    op: Op,
    done: Option<oneshot::Sender<()>>,
}

/// The sending side of the journal; cheap to clone. Sends never block (the queue is
/// unbounded, drained by the writer far faster than one message per fsync).
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    tx: std_mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.op.fmt(f)
    }
}

/// The writer thread; [`Writer::close`] waits for every change sent before to be committed.
#[derive(Debug)]
pub(crate) struct Writer {
    thread: Option<JoinHandle<()>>,
}

impl Journal {
    /// Open the database at `path` and start the writer thread.
    pub fn start(path: &Path) -> Result<(Journal, Writer), PersistError> {
        let err = |e: &dyn std::fmt::Display| PersistError {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let db = Database::create(path).map_err(|e| err(&e))?;
        let (tx, rx) = std_mpsc::channel();
        let path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("persistence".into())
            .spawn(move || write_loop(&db, &path, &rx))
            .map_err(|e| err(&e))?;
        Ok((
            Journal { tx },
            Writer {
                thread: Some(thread),
            },
        ))
    }

    /// Queue `op`; it is committed with the next batch.
    pub fn send(&self, op: Op) {
        let _ = self.tx.send(Request { op, done: None });
    }

    /// Queue `op`; the receiver resolves once it (and everything sent before) is committed,
    /// or fails if the journal is closed or the commit failed.
    pub fn commit(&self, op: Op) -> oneshot::Receiver<()> {
        let (done, rx) = oneshot::channel();
        let _ = self.tx.send(Request {
            op,
            done: Some(done),
        });
        rx
    }
}

impl Writer {
    /// Wait until the thread has committed everything and closed the database (every
    /// [`Journal`] must be dropped first, or this waits for them).
    pub fn close(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(db: &Database, path: &Path, rx: &std_mpsc::Receiver<Request>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        match apply(db, batch.iter().map(|r| &r.op)) {
            Ok(()) => {
                for r in batch {
                    if let Some(done) = r.done {
                        let _ = done.send(());
                    }
                }
            }
            // Waiters see their sender dropped: the acknowledgement is not sent.
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "persistence commit failed")
            }
        }
    }
}

fn apply<'a>(db: &Database, ops: impl Iterator<Item = &'a Op>) -> Result<(), Box<redb::Error>> {
    let txn = db.begin_write().map_err(boxed)?;
    {
        let mut tables = Tables {
            sessions: txn.open_table(SESSIONS).map_err(boxed)?,
            transit: txn.open_table(TRANSIT).map_err(boxed)?,
            retained: txn.open_table(RETAINED).map_err(boxed)?,
        };
        for op in ops {
            tables.apply(op)?;
        }
    }
    txn.commit().map_err(boxed)?;
    Ok(())
}

struct Tables<'t> {
    sessions: redb::Table<'t, &'static str, &'static [u8]>,
    transit: redb::Table<'t, (&'static str, u64), &'static [u8]>,
    retained: redb::Table<'t, &'static str, &'static [u8]>,
}

impl Tables<'_> {
    fn apply(&mut self, op: &Op) -> Result<(), Box<redb::Error>> {
        match op {
            Op::Session {
                client,
                upto,
                record,
            } => {
                self.sessions
                    .insert(&**client, record.as_slice())
                    .map_err(boxed)?;
                remove_transit(&mut self.transit, client, *upto)?;
            }
            Op::Transit {
                client,
                seq,
                record,
            } => {
                self.transit
                    .insert((&**client, *seq), record.as_slice())
                    .map_err(boxed)?;
            }
            Op::Forget { client } => {
                self.sessions.remove(&**client).map_err(boxed)?;
                remove_transit(&mut self.transit, client, u64::MAX)?;
            }
            Op::Retain { topic, record } => match record {
                Some(r) => {
                    self.retained
                        .insert(&**topic, r.as_slice())
                        .map_err(boxed)?;
                }
                None => {
                    self.retained.remove(&**topic).map_err(boxed)?;
                }
            },
            Op::Barrier => {}
            Op::Group(ops) => {
                for op in ops {
                    self.apply(op)?;
                }
            }
        }
        Ok(())
    }
}

/// Remove the journal entries of `client` numbered up to `upto`.
fn remove_transit(
    transit: &mut redb::Table<'_, (&'static str, u64), &'static [u8]>,
    client: &str,
    upto: u64,
) -> Result<(), Box<redb::Error>> {
    let keys: Vec<u64> = transit
        .range((client, 0)..=(client, upto))
        .map_err(boxed)?
        .map(|row| row.map(|(k, _)| k.value().1))
        .collect::<Result<_, redb::StorageError>>()
        .map_err(boxed)?;
    for seq in keys {
        transit.remove((client, seq)).map_err(boxed)?;
    }
    Ok(())
}

fn boxed(e: impl Into<redb::Error>) -> Box<redb::Error> {
    Box::new(e.into())
}
