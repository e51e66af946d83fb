//! [`Recent`]: the last [`Recent::CAPACITY`] records the writer wrote, for the admin status
//! page. They are the trail's own records (redacted when the writer built them), moved
//! here by the writer thread after it wrote them: no copy, no work on the request path, and
//! a record that was dropped (queue full) or failed to write never shows.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::Record;

/// A bounded ring of written records, oldest first. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Recent(Arc<Mutex<VecDeque<Record>>>);

impl Recent {
    /// How many records it keeps: a screenful on the status page. Records are at most ~70 KiB
    /// (arguments are capped at 64 KiB), so this holds at most ~3.5 MiB.
    pub const CAPACITY: usize = 50;

    /// Take the records of a written batch (oldest first), keeping the newest
    /// [`Self::CAPACITY`]. One lock per batch; records are moved, not copied.
    pub(super) fn keep(&self, written: impl ExactSizeIterator<Item = Record>) {
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
    pub fn newest_first(&self) -> Vec<Record> {
        match self.0.lock() {
            Ok(ring) => ring.iter().rev().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(range: std::ops::Range<usize>) -> impl ExactSizeIterator<Item = Record> {
        range.map(|n| Record::admin(None, format!("action {n}"), Ok(()), Some(200)))
    }

    fn actions(r: &Recent) -> Vec<String> {
        r.newest_first()
            .into_iter()
            .filter_map(|r| r.admin.map(|a| a.action))
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
