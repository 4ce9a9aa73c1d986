//! A bounded map that forgets the least recently touched half when full.

use std::collections::HashMap;
use std::hash::Hash;

/// Two generations of entries: lookups promote to the young one; when the young one is full it
/// becomes the old one and the previous old one is dropped. O(1), bounded to `2 × capacity`.
#[derive(Debug)]
pub struct BoundedCache<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V> BoundedCache<K, V> {
    /// A cache holding at most about `2 × capacity` entries.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            young: HashMap::new(),
            old: HashMap::new(),
            capacity,
        }
    }

    /// The entry for `key`, if still remembered (kept among the recent ones).
    pub fn get(&mut self, key: &K) -> Option<&V> {
        if !self.young.contains_key(key) {
            let value = self.old.remove(key)?;
            self.insert(key.clone(), value);
        }
        self.young.get(key)
    }

    /// The entry for `key`, if still remembered, without refreshing it.
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.young.get(key).or_else(|| self.old.get(key))
    }

    /// The entry for `key`, if still remembered, to change in place (without refreshing it).
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        if self.young.contains_key(key) {
            self.young.get_mut(key)
        } else {
            self.old.get_mut(key)
        }
    }

    /// Remembers `value` for `key`.
    pub fn insert(&mut self, key: K, value: V) {
        if self.young.len() >= self.capacity && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &K) {
        self.young.remove(key);
        self.old.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::BoundedCache;

    #[test]
    fn stays_bounded_and_keeps_recent_entries() {
        let mut cache = BoundedCache::new(2);
        cache.insert(1, "a");
        cache.insert(2, "b");
        assert_eq!(cache.get(&1), Some(&"a"));
        cache.insert(3, "c");
        cache.insert(4, "d");
        cache.insert(5, "e");
        assert_eq!(cache.get(&1), None, "oldest generation dropped");
        assert_eq!(cache.get(&5), Some(&"e"));
        assert_eq!(cache.peek(&4), Some(&"d"));
        assert!(cache.young.len() + cache.old.len() <= 4);
    }
}
