//! [`Audit`]: the bounded queue and the ONE writer thread that owns the file.
//!
//! Requests hand their [`Facts`] (or an [`AdminRecord`]) to the queue and go on; the writer
//! writes each record's line, chains it and writes records in batches (everything queued at once, up to [`BATCH`], gathered for
//! [`COLLECT`] between batches so requests never wake it one by one) with one `write`, and
//! fsyncs at least every [`SYNC_INTERVAL`] and whenever the queue runs empty: group
//! commit, so a slow disk makes batches bigger rather than the proxy slower. When the queue is full, `on_full: block` makes the request wait
//! for room (asynchronously: the worker thread serves other requests meanwhile) and `drop`
//! drops the record and counts it.
//!
//! One process writes a trail at a time: the writer holds an exclusive lock on `PATH.lock`
//! while its file is open. During an `--upgrade` the new process finds the lock taken by the
//! old one, which is still draining; its records wait in the queue until the old writer has
//! written, fsynced and let go, and then it continues the chain from the file's true last
//! record. Without the lock both would append and two records would claim the same `prev`.
//!
//! Shutdown: [`Audit::close`] queues a close marker behind every record already queued; the
//! writer writes them all, fsyncs, and exits; `close` joins it. The server calls it after
//! every runtime has stopped (so no request is still logging), and dropping the handle
//! does the same.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::chain::{last_hash, Chain, GENESIS};
use super::{AdminRecord, Facts, Recent};
use crate::config::raw::OnFull;
use crate::config::AuditConfig;
use crate::metrics::Metrics;

/// Most records taken off the queue in one batch (one `write`).
const BATCH: usize = 1024;
/// After a batch that did not fill up, the writer waits up to this long before taking the
/// next, instead of waking for every record: a wake is a futex call and a context switch on
/// the proxy's core, per request (measured: it halved governed `tools/call` throughput on
/// one core), and a batch's records are written while their code and data are in cache.
/// 20 ms at 20,000 requests/s is about 400 records a batch; 2 ms (the first setting) cost
/// the worker sharing the writer's core about 5 µs more per request (per-thread CPU under
/// load, 100,000 governed calls: writer 3.6-4.4 µs per record at 2 ms, 2.6-2.9 µs at 20 ms).
/// The wait ends early once the queue is half full ([`COLLECT_STEP`]), so a small `queue`
/// does not fill up while the writer sleeps. Records are on disk within this plus
/// [`SYNC_INTERVAL`].
const COLLECT: std::time::Duration = std::time::Duration::from_millis(20);
/// How often a collecting writer looks at the queue's length.
const COLLECT_STEP: std::time::Duration = std::time::Duration::from_millis(5);
/// Longest time between two fsyncs while records arrive (and always on close and before a
/// rotation): a crash of the machine loses at most this much of the trail; a crash of the
/// process alone loses at most the records not yet taken off the queue.
pub(super) const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);
/// How much of an existing file's end is read to find the last hash at startup: records
/// are at most ~70 KiB (arguments are capped at 64 KiB).
const TAIL: u64 = 1024 * 1024;
/// How often a writer waiting for another process's lock tries again.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(20);
/// How long a writer asked to close still waits for another process's lock before it
/// gives up on the records it holds (an old process drains for its grace period, seconds).
const LOCK_WAIT_AFTER_CLOSE: std::time::Duration = std::time::Duration::from_secs(10);

enum Msg {
    Admin(Box<AdminRecord>),
    /// A request's facts: the writer builds its record.
    Request(Box<Facts>),
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
    /// Set by [`Audit::close`]: a writer still waiting for the file's lock stops waiting
    /// after [`LOCK_WAIT_AFTER_CLOSE`].
    closing: Arc<AtomicBool>,
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
        let named = |e: std::io::Error| anyhow::anyhow!("audit.path {}: {e}", path_shown(config));
        let start = match &config.path {
            Some(path) => {
                let lock = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(lock_path(path))
                    .map_err(named)?;
                match lock.try_lock() {
                    Ok(()) => Start::Ready(Some(
                        FileSink::open(path, config.max_file_bytes, config.max_files, lock)
                            .map_err(named)?,
                    )),
                    Err(std::fs::TryLockError::WouldBlock) => {
                        // Another process writes this trail (the old one, during an
                        // upgrade). Fail now if the file cannot be opened at all.
                        OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(path)
                            .map_err(named)?;
                        log::warn!(
                            "audit.path {}: another process holds {}; records queue until it \
                             lets go (an --upgrade hands the trail over this way)",
                            path.display(),
                            lock_path(path).display()
                        );
                        Start::Wait {
                            lock,
                            path: path.clone(),
                            max_bytes: config.max_file_bytes,
                            max_files: config.max_files,
                        }
                    }
                    Err(std::fs::TryLockError::Error(e)) => return Err(named(e)),
                }
            }
            None => Start::Ready(None),
        };
        let stdout = config.stdout;
        let closing = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel(config.queue);
        let m = metrics.clone();
        let recent = Recent::default();
        let kept = recent.clone();
        let flag = closing.clone();
        let writer = std::thread::Builder::new()
            .name("audit writer".into())
            .spawn(move || {
                let file = match start {
                    Start::Ready(file) => file,
                    Start::Wait {
                        lock,
                        path,
                        max_bytes,
                        max_files,
                    } => match wait_for_lock(&lock, &flag)
                        .and_then(|()| FileSink::open(&path, max_bytes, max_files, lock))
                    {
                        Ok(f) => {
                            log::info!("audit.path {}: lock taken over", path.display());
                            Some(f)
                        }
                        Err(e) => {
                            log::error!(
                                "audit.path {}: {e}; the records this process made are lost",
                                path.display()
                            );
                            None
                        }
                    },
                };
                let prev = file
                    .as_ref()
                    .and_then(|f| f.last_hash.clone())
                    .unwrap_or_else(|| GENESIS.to_string());
                let lost = file.is_none() && !stdout;
                let sinks = Sinks { file, stdout, lost };
                write_loop(rx, sinks, Chain::starting_at(prev), m, kept)
            })
            .map_err(|e| anyhow::anyhow!("audit: cannot start the writer thread: {e}"))?;
        Ok(Audit {
            inner: Some(Inner {
                tx,
                on_full: config.on_full,
                metrics,
                writer: Mutex::new(Some(writer)),
                closing,
                recent,
            }),
        })
    }

    /// Whether records are written at all (build them only then).
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The last records written, newest first, at most [`Recent::CAPACITY`] (none when off).
    pub fn recent(&self) -> Vec<serde_json::Value> {
        self.inner
            .as_ref()
            .map_or_else(Vec::new, |i| i.recent.newest_first())
    }

    /// Queue `record`. On a full queue, waits for room (`block`) or drops and counts it
    /// (`drop`). After [`Audit::close`], records are dropped and counted.
    pub async fn submit(&self, record: AdminRecord) {
        self.send(Msg::Admin(Box::new(record))).await;
    }

    /// Queue a finished request's facts; the writer thread builds the record from them
    /// (off the request's worker). Queued like [`Audit::submit`].
    pub async fn submit_request(&self, facts: Facts) {
        self.send(Msg::Request(Box::new(facts))).await;
    }

    async fn send(&self, msg: Msg) {
        let Some(inner) = &self.inner else { return };
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
        inner.closing.store(true, Ordering::Relaxed);
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
    // The batch's last lines written, for the status page (at most Recent::CAPACITY).
    let mut written: Vec<Box<[u8]>> = Vec::with_capacity(Recent::CAPACITY);
    let mut buf = Vec::with_capacity(64 * 1024);
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
        let mut wrote = 0;
        // Only the batch's last lines can stay in the status page's ring: copy only those.
        let shown_from = batch.len().saturating_sub(Recent::CAPACITY);
        for (i, msg) in batch.drain(..).enumerate() {
            buf.clear();
            match &msg {
                Msg::Admin(r) => r.write(&mut buf),
                // Written straight from the facts: no record value is built.
                Msg::Request(facts) => facts.write(&mut buf),
                Msg::Close => {
                    closing = true;
                    continue;
                }
            }
            chain.seal(&mut buf, 0);
            if let Err(e) = sinks.write(&buf) {
                lost += 1;
                log::error!("audit: cannot write a record: {e}");
            } else {
                wrote += 1;
                if i >= shown_from {
                    let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                    written.push(line.into());
                }
            }
        }
        if let Err(e) = sinks.flush() {
            // The batch's lines did not reach the file: count them as lost, and never show
            // them as written. (The next record's `prev` names the last of them, so `verify`
            // shows the gap rather than hiding it.)
            log::error!("audit: cannot flush: {e}");
            lost += wrote;
            written.clear();
        }
        for _ in 0..lost {
            metrics.audit_dropped("write_error");
        }
        recent.keep(written.drain(..));
        metrics.audit_queue_depth(rx.len());
        if closing {
            // Anything queued after the close marker came from a request that outlived the
            // runtimes' shutdown (none should); write it too rather than lose it.
            while let Ok(msg) = rx.try_recv() {
                buf.clear();
                match &msg {
                    Msg::Admin(r) => r.write(&mut buf),
                    Msg::Request(f) => f.write(&mut buf),
                    Msg::Close => continue,
                }
                chain.seal(&mut buf, 0);
                let _ = sinks.write(&buf);
            }
            rx.close();
            let _ = sinks.flush();
            sinks.sync();
            return;
        }
        // Let a batch gather rather than wake per record (see COLLECT).
        let half = (rx.max_capacity() / 2).clamp(1, BATCH);
        let until = std::time::Instant::now() + COLLECT;
        while rx.len() < half && std::time::Instant::now() < until {
            std::thread::sleep(COLLECT_STEP);
        }
    }
}

/// How the writer starts: with its file (or none), or after another process lets go of it.
enum Start {
    Ready(Option<FileSink>),
    Wait {
        lock: File,
        path: PathBuf,
        max_bytes: u64,
        max_files: u32,
    },
}

/// `PATH.lock`: held by the one process that writes `PATH` (a sidecar, because `PATH`
/// itself is renamed by rotation).
fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

fn path_shown(config: &AuditConfig) -> String {
    config
        .path
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string())
}

/// Wait until `lock` is ours; once `closing` is set, at most [`LOCK_WAIT_AFTER_CLOSE`] more.
fn wait_for_lock(lock: &File, closing: &AtomicBool) -> std::io::Result<()> {
    let mut close_seen: Option<std::time::Instant> = None;
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        if closing.load(Ordering::Relaxed) {
            let since = *close_seen.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= LOCK_WAIT_AFTER_CLOSE {
                return Err(std::io::Error::other(
                    "another process still holds the trail's lock at shutdown",
                ));
            }
        }
        std::thread::sleep(LOCK_POLL);
    }
}

/// Where sealed lines go.
struct Sinks {
    file: Option<FileSink>,
    stdout: bool,
    /// The file could not be had (another process kept its lock): every record is lost.
    lost: bool,
}

impl Sinks {
    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.lost {
            return Err(std::io::Error::other(
                "the trail's file could not be opened",
            ));
        }
        // The file first: a failing stdout loses the record only where it is the one sink.
        if let Some(f) = &mut self.file {
            f.write(line)?;
        }
        if self.stdout {
            if let Err(e) = std::io::stdout().lock().write_all(line) {
                if self.file.is_none() {
                    return Err(e);
                }
                log::warn!("audit: cannot write to stdout: {e}");
            }
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
    /// Bytes known written (the file is cut back to this when a flush fails, so a partly
    /// written batch leaves no fragment of a line).
    durable: u64,
    /// Lines not yet written (one `write` per batch).
    pending: Vec<u8>,
    max_bytes: u64,
    max_files: u32,
    /// The hash of the file's last record at open (the chain continues from it).
    last_hash: Option<String>,
    /// The exclusive lock on `PATH.lock`, released when the sink drops (after the last
    /// fsync).
    _lock: File,
}

impl FileSink {
    fn open(path: &Path, max_bytes: u64, max_files: u32, lock: File) -> std::io::Result<FileSink> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        let mut size = file.metadata()?.len();
        if size > 0 {
            // A crash can leave the last line half written; appending to it would glue the
            // next record onto the fragment and break the chain there for good. The fragment
            // was never a record: cut it off (the chain continues from the last whole one).
            let start = size.saturating_sub(TAIL);
            file.seek(SeekFrom::Start(start))?;
            let mut tail = Vec::with_capacity((size - start) as usize);
            (&mut file).take(TAIL).read_to_end(&mut tail)?;
            if tail.last() != Some(&b'\n') {
                let keep = match tail.iter().rposition(|b| *b == b'\n') {
                    Some(i) => start + i as u64 + 1,
                    None if start == 0 => 0,
                    // No line end in the last MiB: not a trail this writer made; leave it.
                    None => size,
                };
                if keep < size {
                    log::warn!(
                        "audit.path {}: cut {} bytes of a half-written last line",
                        path.display(),
                        size - keep
                    );
                    file.set_len(keep)?;
                    size = keep;
                }
            }
        }
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
            durable: size,
            pending: Vec::with_capacity(256 * 1024),
            max_bytes,
            max_files,
            last_hash,
            _lock: lock,
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
            if let Err(e) = r {
                let _ = self.file.set_len(self.durable);
                self.size = self.durable;
                return Err(e);
            }
            self.durable = self.size;
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
        self.durable = 0;
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

    fn config(dir: &Path, max_file_bytes: u64) -> AuditConfig {
        AuditConfig {
            path: Some(dir.join("audit.jsonl")),
            stdout: false,
            max_file_bytes,
            max_files: 3,
            queue: 4,
            on_full: OnFull::Block,
            redact: Default::default(),
        }
    }

    fn record(n: usize) -> AdminRecord {
        AdminRecord::new(None, format!("action {n}"), Ok(()), Some(200))
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
        assert_eq!(recent[0]["admin"]["action"].as_str(), Some("action 39"));
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

    #[tokio::test]
    async fn a_second_process_waits_for_the_first_and_continues_its_chain() {
        // The upgrade hand-over: the new writer finds the lock held (flock locks are per
        // open file, so two handles in one process behave as two processes).
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new().unwrap();
        let mut c = config(dir.path(), 1 << 20);
        c.queue = 64;
        let old = Audit::open(&c, metrics.clone()).unwrap();
        for n in 0..5 {
            old.submit(record(n)).await;
        }
        let new = Audit::open(&c, metrics.clone()).unwrap();
        for n in 5..10 {
            new.submit(record(n)).await;
        }
        // The old process is still draining: it writes after the new one queued.
        for n in 10..15 {
            old.submit(record(n)).await;
        }
        drop(old);
        drop(new);
        let path = dir.path().join("audit.jsonl");
        let v = super::super::verify(std::slice::from_ref(&path)).unwrap_or_else(|b| panic!("{b}"));
        assert_eq!(v.records, 15);
        let text = std::fs::read_to_string(&path).unwrap();
        let order: Vec<usize> = text
            .lines()
            .filter_map(|l| l.split("action ").nth(1)?.split('"').next()?.parse().ok())
            .collect();
        let want: Vec<usize> = (0..5).chain(10..15).chain(5..10).collect();
        assert_eq!(order, want, "the old process's records, then the new one's");
    }

    #[tokio::test]
    async fn a_half_written_last_line_is_cut_and_the_chain_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new().unwrap();
        let c = config(dir.path(), 1 << 20);
        let audit = Audit::open(&c, metrics.clone()).unwrap();
        for n in 0..3 {
            audit.submit(record(n)).await;
        }
        drop(audit);
        // A crash in the middle of a write.
        let path = dir.path().join("audit.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"time":"2026-11-30T00:00:00.000Z","kind":"adm"#)
            .unwrap();
        drop(f);
        let audit = Audit::open(&c, metrics).unwrap();
        for n in 3..5 {
            audit.submit(record(n)).await;
        }
        drop(audit);
        let v = super::super::verify(std::slice::from_ref(&path)).unwrap_or_else(|b| panic!("{b}"));
        assert_eq!(v.records, 5);
    }
}
