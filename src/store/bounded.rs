//! [`BoundedMap`]: the one bounded, expiring map behind every per-replica table.
//!
//! Before it, eight tables each hand-rolled their bound with one of six rules (refuse after
//! pruning; prune then clear; prune then drop an arbitrary entry; drop an arbitrary entry;
//! clear; stop caching). Here there is one rule:
//!
//! **When a new key arrives at a full map, every expired entry goes first; if none had
//! expired, the entry closest to expiry goes (ties: the oldest insert).** An expired entry
//! always has the earliest expiry, so this is one ordering, kept in a `BTreeMap` beside the
//! `HashMap`: lookups are one hash probe, inserts and evictions O(log n), and a purge of `k`
//! expired entries costs O(k log n), paid once per entry (amortised O(log n) an insert).
//! [`BoundedMap::try_insert`] is the same minus the last step: it refuses rather than evict
//! a live entry (the session revocation table, where forgetting would fail open).
//!
//! Entries that never expire (a cache that lives as long as its owner) take `u64::MAX` and
//! `now` 0: ties break by insert order, so such a map keeps the newest `capacity` entries.
//!
//! Expired entries are not removed by lookups (a lookup takes no write work); they stop being
//! returned at once and leave at the next insert into a full map.
//!
//! One `Mutex`, not shards: the critical section is a hash probe (about 30 ns, see
//! `benches/hot_paths.rs` `bounded_map`), and sharding would split the capacity, so a shard
//! could refuse while the table as a whole had room.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A map of at most `capacity` entries, each with an expiry of type `T` (seconds since the
/// epoch, an `Instant`, ...). An entry is live while `now < expires`.
pub struct BoundedMap<K, V, T = u64> {
    inner: Mutex<Inner<K, V, T>>,
    capacity: usize,
}

struct Inner<K, V, T> {
    entries: HashMap<K, Slot<V, T>>,
    /// (expiry, insert sequence) -> key: the eviction order.
    order: BTreeMap<(T, u64), K>,
    next_seq: u64,
}

struct Slot<V, T> {
    value: V,
    expires: T,
    seq: u64,
}

/// [`BoundedMap::try_insert`] found the map full of live entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    pub capacity: usize,
}

impl<K, V, T> std::fmt::Debug for BoundedMap<K, V, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys and values may be credentials: only the sizes.
        f.debug_struct("BoundedMap")
            .field("len", &self.lock().entries.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<K, V, T> BoundedMap<K, V, T> {
    /// The map, also after a panic elsewhere poisoned the lock: every operation below leaves
    /// both indexes consistent before it can call out, so the data is sound (and a revocation
    /// table answering "not revoked" because of a poisoned lock would fail open).
    fn lock(&self) -> MutexGuard<'_, Inner<K, V, T>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Entries held (expired ones included until an insert purges them).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl<K, V, T> BoundedMap<K, V, T>
where
    K: Eq + Hash + Clone,
    T: Ord + Copy,
{
    /// An empty map holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        BoundedMap {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: BTreeMap::new(),
                next_seq: 0,
            }),
            capacity: capacity.max(1),
        }
    }

    /// `f` of the live value under `key`; `None` if absent or expired.
    pub fn read<Q, R>(&self, key: &Q, now: T, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = self.lock();
        let slot = inner.entries.get(key)?;
        (slot.expires > now).then(|| f(&slot.value))
    }

    /// A copy of the live value under `key`.
    pub fn get<Q>(&self, key: &Q, now: T) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.read(key, now, V::clone)
    }

    /// Whether `key` is held, live or expired (expired entries stay until purged).
    pub fn holds<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().entries.contains_key(key)
    }

    /// Store `value` under `key` until `expires`, replacing what was there. A new key in a
    /// full map evicts by the module's rule.
    pub fn insert(&self, key: K, value: V, expires: T, now: T) {
        let mut inner = self.lock();
        if !inner.entries.contains_key(&key) && inner.entries.len() >= self.capacity {
            inner.purge_expired(now);
            if inner.entries.len() >= self.capacity {
                inner.evict_first();
            }
        }
        inner.put(key, value, expires);
    }

    /// Store `value` under `key` only when no live entry is there (checked and stored under
    /// one lock, so two callers cannot both succeed); `true` when stored. A full map evicts
    /// as [`Self::insert`] does.
    pub fn insert_new(&self, key: K, value: V, expires: T, now: T) -> bool {
        let mut inner = self.lock();
        if let Some(slot) = inner.entries.get(&key) {
            if slot.expires > now {
                return false;
            }
            inner.take(&key);
        }
        if inner.entries.len() >= self.capacity {
            inner.purge_expired(now);
            if inner.entries.len() >= self.capacity {
                inner.evict_first();
            }
        }
        inner.put(key, value, expires);
        true
    }

    /// Like [`Self::insert`], but a new key in a map full of live entries is refused (nothing
    /// is evicted, the map is unchanged). Replacing a held key needs no room.
    pub fn try_insert(&self, key: K, value: V, expires: T, now: T) -> Result<(), Full> {
        let mut inner = self.lock();
        if !inner.entries.contains_key(&key) && inner.entries.len() >= self.capacity {
            inner.purge_expired(now);
            if inner.entries.len() >= self.capacity {
                return Err(Full {
                    capacity: self.capacity,
                });
            }
        }
        inner.put(key, value, expires);
        Ok(())
    }

    /// Change the live value under `key` in place with `f`, or, if there is none, insert
    /// `make()` (evicting as [`Self::insert`] does) and change that. The expiry becomes
    /// `expires` either way.
    pub fn upsert<R>(
        &self,
        key: K,
        expires: T,
        now: T,
        make: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> R {
        let mut guard = self.lock();
        let inner = &mut *guard;
        // A live entry is changed in place: one hash lookup, and the expiry index moves only
        // when the expiry does (the quota step upserts its counter on every call).
        if let Some(slot) = inner.entries.get_mut(&key) {
            if slot.expires > now {
                let r = f(&mut slot.value);
                if slot.expires != expires {
                    let old = (slot.expires, slot.seq);
                    slot.expires = expires;
                    inner.order.remove(&old);
                    inner.order.insert((expires, old.1), key);
                }
                return r;
            }
        }
        // Absent or expired: a new value (an expired one is dropped first).
        inner.take(&key);
        if inner.entries.len() >= self.capacity {
            inner.purge_expired(now);
            if inner.entries.len() >= self.capacity {
                inner.evict_first();
            }
        }
        let mut value = make();
        let r = f(&mut value);
        inner.put(key, value, expires);
        r
    }

    /// Change the live value under `key` in place; `None` if absent or expired.
    pub fn update<Q, R>(&self, key: &Q, now: T, f: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut inner = self.lock();
        let slot = inner.entries.get_mut(key)?;
        (slot.expires > now).then(|| f(&mut slot.value))
    }

    /// Drop every expired entry now, rather than at the next insert into a full map (a
    /// value that holds something, such as a per-principal place, gives it back).
    pub fn purge(&self, now: T) {
        self.lock().purge_expired(now);
    }

    /// Remove `key`, returning its value (live or expired).
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().take(key)
    }
}

impl<K, V, T> Inner<K, V, T>
where
    K: Eq + Hash + Clone,
    T: Ord + Copy,
{
    fn put(&mut self, key: K, value: V, expires: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert((expires, seq), key.clone());
        let old = self.entries.insert(
            key,
            Slot {
                value,
                expires,
                seq,
            },
        );
        if let Some(old) = old {
            self.order.remove(&(old.expires, old.seq));
        }
    }

    fn take<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = self.entries.remove(key)?;
        self.order.remove(&(slot.expires, slot.seq));
        Some(slot.value)
    }

    /// Drop every entry with `expires <= now` (they sit at the front of `order`).
    fn purge_expired(&mut self, now: T) {
        while let Some(entry) = self.order.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.entries.remove(&key);
        }
    }

    /// Drop the entry closest to expiry (the oldest insert among equals).
    fn evict_first(&mut self) {
        if let Some((_, key)) = self.order.pop_first() {
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_new_stores_only_over_nothing_or_an_expired_entry() {
        let m: BoundedMap<u32, &str> = BoundedMap::new(2);
        assert!(m.insert_new(1, "a", 100, 10));
        assert!(!m.insert_new(1, "b", 100, 10), "a live entry stays");
        assert_eq!(m.get(&1, 10), Some("a"));
        // Expired at 100: the key is free again.
        assert!(m.insert_new(1, "c", 200, 100));
        assert_eq!(m.get(&1, 150), Some("c"));
        // Full: a new key evicts, and the bound holds.
        assert!(m.insert_new(2, "d", 300, 100));
        assert!(m.insert_new(3, "e", 300, 100));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn capacity_is_never_exceeded() {
        let m: BoundedMap<u32, u32> = BoundedMap::new(5);
        for i in 0..1_000u32 {
            // A mix of expiries, some already past.
            m.insert(i, i, u64::from(i % 7) * 10, 30);
            assert!(m.len() <= 5, "at {i}");
            let _ = m.try_insert(10_000 + i, i, 100, 30);
            assert!(m.len() <= 5, "at try {i}");
            m.upsert(20_000 + i, 100, 30, || 0, |v| *v += 1);
            assert!(m.len() <= 5, "at upsert {i}");
        }
        // Both indexes agree.
        let inner = m.lock();
        assert_eq!(inner.entries.len(), inner.order.len());
    }

    #[test]
    fn an_expired_entry_is_not_returned() {
        let m: BoundedMap<&str, u32> = BoundedMap::new(4);
        m.insert("a", 1, 100, 10);
        assert_eq!(m.get("a", 99), Some(1));
        assert_eq!(m.get("a", 100), None, "expires is exclusive");
        assert!(m.holds("a"), "held until purged");
        assert_eq!(m.update("a", 100, |v| *v = 2), None);
        assert_eq!(m.remove("a"), Some(1));
        assert!(m.is_empty());
    }

    #[test]
    fn a_full_map_drops_every_expired_entry_first() {
        let m: BoundedMap<u32, ()> = BoundedMap::new(4);
        m.insert(1, (), 50, 0);
        m.insert(2, (), 500, 0);
        m.insert(3, (), 60, 0);
        m.insert(4, (), 400, 0);
        m.insert(5, (), 500, 100);
        assert_eq!(m.len(), 3, "1 and 3 had expired");
        for k in [2, 4, 5] {
            assert!(m.holds(&k));
        }
    }

    #[test]
    fn with_nothing_expired_the_entry_closest_to_expiry_goes_then_the_oldest() {
        let m: BoundedMap<u32, ()> = BoundedMap::new(3);
        m.insert(1, (), 300, 0);
        m.insert(2, (), 200, 0);
        m.insert(3, (), 300, 0);
        m.insert(4, (), 900, 0);
        assert!(!m.holds(&2), "closest to expiry");
        m.insert(5, (), 900, 0);
        assert!(!m.holds(&1), "1 and 3 tie: the older insert goes");
        assert!(m.holds(&3) && m.holds(&4) && m.holds(&5));
    }

    #[test]
    fn replacing_a_key_needs_no_room_and_moves_its_expiry() {
        let m: BoundedMap<u32, u32> = BoundedMap::new(2);
        m.insert(1, 1, 100, 0);
        m.insert(2, 2, 200, 0);
        m.insert(1, 10, 300, 0);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&1, 0), Some(10));
        m.insert(3, 3, 400, 0);
        assert!(!m.holds(&2), "2 is now closest to expiry");
        assert_eq!(m.try_insert(1, 11, 500, 0), Ok(()), "replace while full");
    }

    #[test]
    fn try_insert_refuses_rather_than_evict_a_live_entry() {
        let m: BoundedMap<u32, ()> = BoundedMap::new(2);
        m.try_insert(1, (), 500, 10).unwrap();
        m.try_insert(2, (), 50, 10).unwrap();
        assert_eq!(m.try_insert(3, (), 500, 20), Err(Full { capacity: 2 }));
        assert!(m.holds(&1) && m.holds(&2) && !m.holds(&3));
        // Once 2 expires there is room.
        m.try_insert(3, (), 500, 50).unwrap();
        assert!(!m.holds(&2) && m.holds(&3));
    }

    #[test]
    fn upsert_changes_a_live_value_and_starts_over_on_an_expired_one() {
        let m: BoundedMap<u32, Vec<u32>> = BoundedMap::new(2);
        m.upsert(1, 100, 0, Vec::new, |v| v.push(1));
        m.upsert(1, 100, 0, Vec::new, |v| v.push(2));
        assert_eq!(m.get(&1, 0), Some(vec![1, 2]));
        m.upsert(1, 300, 100, Vec::new, |v| v.push(3));
        assert_eq!(
            m.get(&1, 100),
            Some(vec![3]),
            "the expired value is not reused"
        );
        m.upsert(2, 200, 100, Vec::new, |v| v.push(4));
        m.upsert(3, 400, 100, Vec::new, |v| v.push(5));
        assert!(!m.holds(&2), "evicted like insert");
        assert_eq!(m.update(&1, 100, |v| v.pop()), Some(Some(3)));
    }

    #[test]
    fn upsert_in_place_moves_the_expiry_index_with_the_expiry() {
        let m: BoundedMap<u32, u32> = BoundedMap::new(2);
        m.upsert(1, 100, 0, || 0, |v| *v += 1);
        m.upsert(2, 150, 0, || 0, |v| *v += 1);
        // Live: changed in place, its expiry pushed past 2's.
        m.upsert(1, 300, 50, || 0, |v| *v += 1);
        assert_eq!(m.get(&1, 120), Some(2), "kept past its first expiry");
        // Full: the entry closest to expiry is now 2, not 1.
        m.upsert(3, 400, 60, || 0, |v| *v += 1);
        assert!(!m.holds(&2));
        assert_eq!(m.get(&1, 60), Some(2));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn instants_work_as_expiries() {
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let m: BoundedMap<String, u8, Instant> = BoundedMap::new(1);
        m.insert("a".into(), 1, t0 + Duration::from_secs(5), t0);
        assert_eq!(m.get("a", t0), Some(1));
        assert_eq!(m.get("a", t0 + Duration::from_secs(5)), None);
        m.insert("b".into(), 2, t0 + Duration::from_secs(9), t0);
        assert!(!m.holds("a") && m.holds("b"));
    }

    #[test]
    fn purge_drops_exactly_the_expired_entries() {
        let m: BoundedMap<u32, ()> = BoundedMap::new(8);
        m.insert(1, (), 50, 0);
        m.insert(2, (), 100, 0);
        m.insert(3, (), 500, 0);
        m.purge(100);
        assert!(!m.holds(&1) && !m.holds(&2), "expired at or before 100");
        assert!(m.holds(&3));
        assert_eq!(m.len(), 1);
    }
}
