//! [`Recent`]: the last [`Recent::CAPACITY`] records the writer wrote, for the admin status
//! page: the lines as written (redacted, chained), copied here by the writer thread after it
//! wrote them (only a batch's last [`Recent::CAPACITY`]; nothing on the request path), and
//! parsed only when the page asks. A record that was dropped (queue full) or failed to
//! write never shows.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A bounded ring of written records, oldest first. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Recent(Arc<Mutex<VecDeque<Box<[u8]>>>>);

impl Recent {
    /// How many records it keeps: a screenful on the status page. Records are at most ~70 KiB
    /// (arguments are capped at 64 KiB), so this holds at most ~3.5 MiB.
    pub const CAPACITY: usize = 50;

    /// Take the records of a written batch (oldest first), keeping the newest
    /// [`Self::CAPACITY`]. One lock per batch; records are moved, not copied.
    pub(super) fn keep(&self, written: impl ExactSizeIterator<Item = Box<[u8]>>) {
        if written.len() == 0 {
            return;
        }
        // Of a batch larger than the ring only its newest records can stay.
        let skip = written.len().saturating_sub(Self::CAPACITY);
        let Ok(mut ring) = self.0.lock() else {
            return;
        };
        for r in written.skip(skip) {
            if ring.len() == Self::CAPACITY {
                ring.pop_front();
            }
            ring.push_back(r);
        }
    }

    /// The records kept, newest first.
    /// The records, newest first, parsed (each as written, `prev` and `hash` included).
    pub fn newest_first(&self) -> Vec<serde_json::Value> {
        match self.0.lock() {
            Ok(ring) => ring
                .iter()
                .rev()
                .filter_map(|line| serde_json::from_slice(line).ok())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(range: std::ops::Range<usize>) -> impl ExactSizeIterator<Item = Box<[u8]>> {
        range.map(|n| {
            let mut line = Vec::new();
            crate::audit::AdminRecord::new(None, format!("action {n}"), Ok(()), Some(200))
                .write(&mut line);
            line.into_boxed_slice()
        })
    }

    fn actions(r: &Recent) -> Vec<String> {
        r.newest_first()
            .into_iter()
            .filter_map(|r| r["admin"]["action"].as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn keeps_the_newest_records_newest_first_and_no_more() {
        let r = Recent::default();
        r.keep(records(0..3));
        assert_eq!(actions(&r), ["action 2", "action 1", "action 0"]);
        r.keep(records(3..3 + Recent::CAPACITY + 7));
        let kept = actions(&r);
        assert_eq!(kept.len(), Recent::CAPACITY);
        assert_eq!(kept[0], format!("action {}", 2 + Recent::CAPACITY + 7));
        assert_eq!(kept[Recent::CAPACITY - 1], "action 10");
        r.keep(records(100..101));
        assert_eq!(actions(&r)[0], "action 100");
        assert_eq!(actions(&r).len(), Recent::CAPACITY);
    }
}
