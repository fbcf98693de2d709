//! The local audit log: one append-only file per replica, written by one thread in groups,
//! each group fsync'd before any of its callers is answered.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use super::AuditError;
use super::chain::{AuditRecord, Entry};
use super::verify::{Head, check_log, parse_log};

enum Job {
    Record {
        entry: Box<Entry>,
        reply: oneshot::Sender<Result<i64, AuditError>>,
    },
    Stop,
}

/// Records one replica's decisions.
#[derive(Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<Job>,
    path: PathBuf,
    replica: String,
    /// Sealed records the lake does not hold yet, oldest first.
    unshipped: Arc<Mutex<VecDeque<AuditRecord>>>,
    /// The last durable record's sequence number and hash.
    head: Arc<Mutex<Head>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

/// Records a group commit takes at most.
const GROUP: usize = 1024;

impl AuditLog {
    /// Opens `<dir>/<replica>.log`, verifies its chain (a broken chain refuses to start),
    /// checks it is not behind what the lake holds (`lake_head`), and starts the writer.
    pub fn open(
        dir: &Path,
        replica: &str,
        fsync: bool,
        lake_head: i64,
    ) -> Result<Self, AuditError> {
        let path = dir.join(format!("{replica}.log"));
        let io = |source| AuditError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        restrict(dir).map_err(io)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let parsed = parse_log(&text);
        let head = check_log(&parsed).map_err(|broken| AuditError::Broken {
            path: path.display().to_string(),
            broken,
        })?;
        if head.seq < lake_head {
            return Err(AuditError::BehindLake {
                path: path.display().to_string(),
                local: head.seq,
                lake: lake_head,
            });
        }
        let unshipped: VecDeque<AuditRecord> = parsed
            .into_iter()
            .filter_map(|(_, r)| r)
            .filter(|r| r.seq > lake_head)
            .collect();
        let unshipped = Arc::new(Mutex::new(unshipped));
        let durable = Arc::new(Mutex::new(head.clone()));
        let (tx, rx) = mpsc::channel(4 * GROUP);
        let writer = Writer {
            path: path.clone(),
            replica: replica.to_owned(),
            fsync,
            head,
            durable: durable.clone(),
            unshipped: unshipped.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("gdx-audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io)?;
        Ok(Self {
            tx,
            path,
            replica: replica.to_owned(),
            unshipped,
            head: durable,
            writer: Mutex::new(Some(handle)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Seals and stores `entry`; returns once it is durable (or fails: then the call fails).
    /// Returns the record's sequence number once it is durable.
    pub async fn record(&self, entry: Entry) -> Result<i64, AuditError> {
        let (reply, done) = oneshot::channel();
        self.tx
            .send(Job::Record {
                entry: Box::new(entry),
                reply,
            })
            .await
            .map_err(|_| AuditError::Stopped)?;
        done.await.map_err(|_| AuditError::Stopped)?
    }

    /// The last durable record's sequence number and hash (0 and the genesis hash when
    /// there is none).
    pub fn head(&self) -> Head {
        self.head.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The sealed records the lake does not hold yet.
    pub fn unshipped(&self) -> Vec<AuditRecord> {
        self.unshipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Forgets the records up to `seq`: the lake holds them.
    pub fn shipped(&self, seq: i64) {
        let mut q = self.unshipped.lock().unwrap_or_else(|e| e.into_inner());
        while q.front().is_some_and(|r| r.seq <= seq) {
            q.pop_front();
        }
    }

    /// Stops the writer after the records already handed to it (blocking: call from a
    /// blocking context or at the end).
    pub async fn close(&self) {
        let _ = self.tx.send(Job::Stop).await;
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

/// Owner-only permissions for the audit directory.
fn restrict(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

struct Writer {
    path: PathBuf,
    replica: String,
    fsync: bool,
    head: Head,
    /// `head`, for readers outside the writer thread.
    durable: Arc<Mutex<Head>>,
    unshipped: Arc<Mutex<VecDeque<AuditRecord>>>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut stop = false;
        while !stop {
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            let mut jobs = Vec::new();
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Record { entry, reply } => jobs.push((*entry, reply)),
                    Job::Stop => stop = true,
                }
                if jobs.len() < GROUP && !stop {
                    next = rx.try_recv().ok();
                }
            }
            if !jobs.is_empty() {
                self.write_group(jobs);
            }
        }
    }

    fn write_group(&mut self, jobs: Vec<(Entry, oneshot::Sender<Result<i64, AuditError>>)>) {
        let now = Utc::now();
        let mut head = self.head.clone();
        let mut sealed = Vec::with_capacity(jobs.len());
        let mut bytes = Vec::new();
        let mut replies = Vec::with_capacity(jobs.len());
        for (entry, reply) in jobs {
            let r = AuditRecord::seal(entry, head.seq + 1, now, &self.replica, &head.hash);
            r.write_line(&mut bytes);
            head = Head {
                seq: r.seq,
                hash: r.hash.clone(),
            };
            sealed.push(r);
            replies.push(reply);
        }
        match self.append(&bytes) {
            Ok(()) => {
                *self.durable.lock().unwrap_or_else(|e| e.into_inner()) = head.clone();
                self.head = head;
                let seqs: Vec<i64> = sealed.iter().map(|r| r.seq).collect();
                self.unshipped
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(sealed);
                for (seq, reply) in seqs.into_iter().zip(replies) {
                    let _ = reply.send(Ok(seq));
                }
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, records = replies.len(), "the audit log cannot be written: the calls fail");
                for reply in replies {
                    let _ = reply.send(Err(AuditError::WriteFailed {
                        path: self.path.display().to_string(),
                    }));
                }
            }
        }
    }

    /// Appends `bytes` and makes them durable; on failure cuts the file back to where it
    /// was, so a half-written group never breaks the chain.
    fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        // Opened per group: a log file replaced or removed under a running replica is
        // noticed at the next call, not written past.
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let before = f.metadata()?.len();
        let written = f
            .write_all(bytes)
            .and_then(|()| if self.fsync { f.sync_data() } else { Ok(()) });
        if written.is_err() {
            let _ = f.set_len(before);
        }
        written
    }
}
