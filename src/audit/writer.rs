//! [`Audit`]: the bounded queue and the ONE writer thread that owns the file.
//!
//! Requests hand a [`Record`] to the queue and go on; the writer serializes, chains and
//! writes records in batches (everything queued at once, up to [`BATCH`], gathered for
//! [`COLLECT`] between batches so requests never wake it one by one) with one `write`, and
//! fsyncs at least every [`SYNC_INTERVAL`] and whenever the queue runs empty: group
//! commit, so a slow disk makes batches bigger rather than the proxy slower. When the queue is full, `on_full: block` makes the request wait
//! for room (asynchronously: the worker thread serves other requests meanwhile) and `drop`
//! drops the record and counts it.
//!
//! Shutdown: [`Audit::close`] queues a close marker behind every record already queued; the
//! writer writes them all, fsyncs, and exits; `close` joins it. The server calls it after
//! every runtime has stopped (so no request is still logging), and dropping the handle
//! does the same.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::chain::{last_hash, Chain, GENESIS};
use super::{Recent, Record};
use crate::config::raw::OnFull;
use crate::config::AuditConfig;
use crate::metrics::Metrics;

/// Most records taken off the queue in one batch (one `write`).
const BATCH: usize = 1024;
/// After a batch that did not fill up, the writer waits this long before taking the next,
/// instead of waking for every record: a wake is a futex call and a context switch on the
/// proxy's core, per request (measured: it halved governed `tools/call` throughput on one
/// core). 2 ms at 25,000 requests/s is about 50 records a batch, far below `queue`.
const COLLECT: std::time::Duration = std::time::Duration::from_millis(2);
/// Longest time between two fsyncs while records arrive (and always on close and before a
/// rotation): a crash of the machine loses at most this much of the trail; a crash of the
/// process alone loses at most the records not yet taken off the queue.
pub(super) const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);
/// How much of an existing file's end is read to find the last hash at startup: records
/// are at most ~70 KiB (arguments are capped at 64 KiB).
const TAIL: u64 = 1024 * 1024;

enum Msg {
    Record(Box<Record>),
    Close,
}

/// The audit trail's handle. Off (every call a no-op) without an `audit` section.
#[derive(Debug, Default)]
pub struct Audit {
    inner: Option<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Msg>,
    on_full: OnFull,
    metrics: Metrics,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The last records written (the status page's panel).
    recent: Recent,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("on_full", &self.on_full)
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// Open the sinks (the file is created if missing, and its chain continued) and start the
    /// writer. Errors name `audit.path`.
    pub fn open(config: &AuditConfig, metrics: Metrics) -> anyhow::Result<Audit> {
        let file = match &config.path {
            Some(path) => Some(
                FileSink::open(path, config.max_file_bytes, config.max_files)
                    .map_err(|e| anyhow::anyhow!("audit.path {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let prev = file
            .as_ref()
            .and_then(|f| f.last_hash.clone())
            .unwrap_or_else(|| GENESIS.to_string());
        let sinks = Sinks {
            file,
            stdout: config.stdout,
        };
        let (tx, rx) = mpsc::channel(config.queue);
        let m = metrics.clone();
        let recent = Recent::default();
        let kept = recent.clone();
        let writer = std::thread::Builder::new()
            .name("audit writer".into())
            .spawn(move || write_loop(rx, sinks, Chain::starting_at(prev), m, kept))
            .map_err(|e| anyhow::anyhow!("audit: cannot start the writer thread: {e}"))?;
        Ok(Audit {
            inner: Some(Inner {
                tx,
                on_full: config.on_full,
                metrics,
                writer: Mutex::new(Some(writer)),
                recent,
            }),
        })
    }

    /// Whether records are written at all (build them only then).
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The last records written, newest first, at most [`Recent::CAPACITY`] (none when off).
    pub fn recent(&self) -> Vec<Record> {
        self.inner
            .as_ref()
            .map_or_else(Vec::new, |i| i.recent.newest_first())
    }

    /// Queue `record`. On a full queue, waits for room (`block`) or drops and counts it
    /// (`drop`). After [`Audit::close`], records are dropped and counted.
    pub async fn submit(&self, record: Record) {
        let Some(inner) = &self.inner else { return };
        let msg = Msg::Record(Box::new(record));
        let sent = match inner.on_full {
            OnFull::Drop => match inner.tx.try_send(msg) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => Err("queue_full"),
                Err(mpsc::error::TrySendError::Closed(_)) => Err("closed"),
            },
            OnFull::Block => inner.tx.send(msg).await.map_err(|_| "closed"),
        };
        match sent {
            Ok(()) => {
                inner.metrics.audit_record_queued();
                inner
                    .metrics
                    .audit_queue_depth(inner.tx.max_capacity() - inner.tx.capacity());
            }
            Err(reason) => inner.metrics.audit_dropped(reason),
        }
    }

    /// Write everything queued, fsync, and stop the writer. Idempotent; safe to call from
    /// any thread, inside a runtime or not.
    pub fn close(&self) {
        let Some(inner) = &self.inner else { return };
        let Ok(mut writer) = inner.writer.lock() else {
            return;
        };
        let Some(handle) = writer.take() else { return };
        // Not `blocking_send`: it panics inside a runtime. The writer keeps draining, so
        // room appears; it can only be gone if it panicked.
        loop {
            match inner.tx.try_send(Msg::Close) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Full(_)) if !handle.is_finished() => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(_) => break,
            }
        }
        if handle.join().is_err() {
            log::error!("audit: the writer thread panicked; records queued since may be lost");
        }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_loop(
    mut rx: mpsc::Receiver<Msg>,
    mut sinks: Sinks,
    mut chain: Chain,
    metrics: Metrics,
    recent: Recent,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut written: Vec<Box<Record>> = Vec::with_capacity(BATCH);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut json = Vec::with_capacity(4096);
    let mut synced = std::time::Instant::now();
    loop {
        // Sync what the last batch wrote when the interval is up, or now if nothing else is
        // waiting (an idle trail is always on disk).
        if rx.is_empty() || synced.elapsed() >= SYNC_INTERVAL {
            sinks.sync();
            synced = std::time::Instant::now();
        }
        let Some(first) = rx.blocking_recv() else {
            // Every sender is gone: nothing more can arrive.
            sinks.sync();
            return;
        };
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut closing = false;
        let mut lost = 0;
        for msg in batch.drain(..) {
            match msg {
                Msg::Record(r) => {
                    json.clear();
                    if let Err(e) = serde_json::to_writer(&mut json, &*r) {
                        log::error!("audit: cannot serialize a record: {e}");
                        metrics.audit_dropped("write_error");
                        continue;
                    }
                    buf.clear();
                    chain.seal(&json, &mut buf);
                    if let Err(e) = sinks.write(&buf) {
                        lost += 1;
                        log::error!("audit: cannot write a record: {e}");
                    } else {
                        written.push(r);
                    }
                }
                Msg::Close => closing = true,
            }
        }
        if let Err(e) = sinks.flush() {
            log::error!("audit: cannot flush: {e}");
        }
        for _ in 0..lost {
            metrics.audit_dropped("write_error");
        }
        recent.keep(written.drain(..));
        metrics.audit_queue_depth(rx.len());
        if closing {
            // Anything queued after the close marker came from a request that outlived the
            // runtimes' shutdown (none should); write it too rather than lose it.
            while let Ok(Msg::Record(r)) = rx.try_recv() {
                json.clear();
                if serde_json::to_writer(&mut json, &*r).is_ok() {
                    buf.clear();
                    chain.seal(&json, &mut buf);
                    let _ = sinks.write(&buf);
                }
            }
            rx.close();
            let _ = sinks.flush();
            sinks.sync();
            return;
        }
        if rx.len() < BATCH {
            // Let a batch gather rather than wake per record (see COLLECT).
            std::thread::sleep(COLLECT);
        }
    }
}

/// Where sealed lines go.
struct Sinks {
    file: Option<FileSink>,
    stdout: bool,
}

impl Sinks {
    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.stdout {
            std::io::stdout().lock().write_all(line)?;
        }
        if let Some(f) = &mut self.file {
            f.write(line)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.stdout {
            std::io::stdout().lock().flush()?;
        }
        if let Some(f) = &mut self.file {
            f.flush()?;
        }
        Ok(())
    }

    fn sync(&mut self) {
        if let Some(f) = &mut self.file {
            if let Err(e) = f.file.sync_data() {
                log::error!("audit: fsync {}: {e}", f.path.display());
            }
        }
    }
}

/// The JSON Lines file and its rotation.
struct FileSink {
    path: PathBuf,
    file: File,
    /// Bytes in the file, including `pending`.
    size: u64,
    /// Lines not yet written (one `write` per batch).
    pending: Vec<u8>,
    max_bytes: u64,
    max_files: u32,
    /// The hash of the file's last record at open (the chain continues from it).
    last_hash: Option<String>,
}

impl FileSink {
    fn open(path: &Path, max_bytes: u64, max_files: u32) -> std::io::Result<FileSink> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        let size = file.metadata()?.len();
        let mut last_hash = tail_hash(&mut file, size)?;
        if last_hash.is_none() && size == 0 {
            // A fresh file after a rotation done by a previous run: continue from `.1`.
            let rotated = rotated_name(path, 1);
            if let Ok(mut f) = File::open(&rotated) {
                let len = f.metadata()?.len();
                last_hash = tail_hash(&mut f, len)?;
            }
        }
        Ok(FileSink {
            path: path.to_path_buf(),
            file,
            size,
            pending: Vec::with_capacity(256 * 1024),
            max_bytes,
            max_files,
            last_hash,
        })
    }

    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.pending.extend_from_slice(line);
        self.size += line.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let r = self.file.write_all(&self.pending);
            self.pending.clear();
            r?;
        }
        Ok(())
    }

    /// `PATH.{n-1}` -> `PATH.n` ... `PATH` -> `PATH.1`, dropping what falls past
    /// `max_files`; then a fresh `PATH`. The chain simply continues in it.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.flush()?;
        self.file.sync_data()?;
        for i in (1..self.max_files).rev() {
            let from = rotated_name(&self.path, i);
            if from.exists() {
                std::fs::rename(&from, rotated_name(&self.path, i + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated_name(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)?;
        // The renames are durable only once the directory is synced.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.size = 0;
        Ok(())
    }
}

/// `PATH.n`.
fn rotated_name(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The last valid record hash in the last [`TAIL`] bytes of `file`.
fn tail_hash(file: &mut File, size: u64) -> std::io::Result<Option<String>> {
    if size == 0 {
        return Ok(None);
    }
    let start = size.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start))?;
    let mut text = Vec::with_capacity((size - start) as usize);
    file.take(TAIL).read_to_end(&mut text)?;
    Ok(last_hash(&text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Redaction;

    fn config(dir: &Path, max_file_bytes: u64) -> AuditConfig {
        AuditConfig {
            path: Some(dir.join("audit.jsonl")),
            stdout: false,
            max_file_bytes,
            max_files: 3,
            queue: 4,
            on_full: OnFull::Block,
            redact: Redaction::default(),
        }
    }

    fn record(n: usize) -> Record {
        Record::admin(None, format!("action {n}"), Ok(()), Some(200))
    }

    #[tokio::test]
    async fn close_writes_everything_and_the_chain_spans_rotations_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new().unwrap();
        let audit = Audit::open(&config(dir.path(), 4096), metrics.clone()).unwrap();
        for n in 0..40 {
            audit.submit(record(n)).await;
        }
        audit.close();
        audit.close();
        // The status page's ring holds the newest written records, newest first.
        let recent = audit.recent();
        assert_eq!(recent.len(), crate::audit::Recent::CAPACITY.min(40));
        assert_eq!(
            recent[0].admin.as_ref().map(|a| a.action.as_str()),
            Some("action 39")
        );
        // Restart: the chain continues from the file's last record.
        let audit = Audit::open(&config(dir.path(), 4096), metrics).unwrap();
        for n in 40..50 {
            audit.submit(record(n)).await;
        }
        drop(audit);
        let path = dir.path().join("audit.jsonl");
        let mut files: Vec<PathBuf> = (1..=3)
            .rev()
            .map(|i| rotated_name(&path, i))
            .filter(|p| p.exists())
            .collect();
        files.push(path);
        assert!(files.len() >= 3, "rotated: {files:?}");
        let v = super::super::verify(&files).unwrap_or_else(|b| panic!("{b}"));
        // Retention (3 rotated files) dropped the oldest records; the rest chain up to
        // the last one written.
        let last = std::fs::read_to_string(files.last().unwrap()).unwrap();
        assert!(last
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("action 49"));
        assert!(v.records >= 10 && v.records < 50, "{v:?}");
    }

    #[tokio::test]
    async fn a_full_queue_in_drop_mode_counts_what_it_drops() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new().unwrap();
        let mut c = config(dir.path(), 1 << 20);
        c.on_full = OnFull::Drop;
        c.queue = 1;
        let audit = Audit::open(&c, metrics.clone()).unwrap();
        for n in 0..200 {
            audit.submit(record(n)).await;
        }
        audit.close();
        // After close nothing is written, and it is counted.
        audit.submit(record(999)).await;
        let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        let written = text.lines().count();
        let rendered = String::from_utf8(metrics.render()).unwrap();
        let dropped: f64 = rendered
            .lines()
            .filter(|l| l.starts_with("mcp_gateway_audit_dropped_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(written + dropped as usize, 201, "{rendered}");
        assert!(!text.contains("action 999"));
    }
}
