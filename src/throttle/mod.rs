//! Saying a repeated event at most once an interval per key, with how many
//! came in between: the rule behind every line or row that a flood could
//! otherwise multiply (unauthenticated datagrams at an RTCP port, refused
//! joins, failed handshakes, packets that do not verify at the speakers
//! port). The first event of a key is said at once; later ones are counted
//! until the interval since the last said one has passed.
//!
//! The table of keys is bounded: when it is full, the keys quiet for an
//! interval are forgotten first; if it is still full, a new key is either
//! said without being remembered (`Full::Say`: every source is heard of at
//! least once, at the cost of one line each) or only counted
//! (`Full::Quiet`: the keys already said cover it). Either way spoofed or
//! many sources cannot grow memory.
//!
//! Sans-IO: `now` comes in. Must not touch: the log, the store.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// What a new key gets when the table is full of keys heard within the
/// interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Said, not remembered.
    Say,
    /// Neither said nor remembered.
    Quiet,
}

#[derive(Debug)]
struct Seen {
    said_at: Instant,
    /// Events since the last one said.
    unsaid: u64,
}

#[derive(Debug)]
pub struct Throttle<K> {
    every: Duration,
    max_keys: usize,
    full: Full,
    keys: HashMap<K, Seen>,
}

impl<K: Hash + Eq> Throttle<K> {
    pub fn new(every: Duration, max_keys: usize, full: Full) -> Throttle<K> {
        Throttle { every, max_keys, full, keys: HashMap::new() }
    }

    /// One event of `key` at `now`: Some(n) when it is to be said, `n`
    /// being the events it speaks for (this one and those left unsaid since
    /// the last line of the key); None when it is only counted.
    pub fn hit(&mut self, now: Instant, key: K) -> Option<u64> {
        if let Some(seen) = self.keys.get_mut(&key) {
            seen.unsaid += 1;
            if now.saturating_duration_since(seen.said_at) < self.every {
                return None;
            }
            seen.said_at = now;
            return Some(std::mem::take(&mut seen.unsaid));
        }
        if self.keys.len() >= self.max_keys {
            let every = self.every;
            self.keys.retain(|_, seen| now.saturating_duration_since(seen.said_at) < every);
            if self.keys.len() >= self.max_keys {
                return (self.full == Full::Say).then_some(1);
            }
        }
        self.keys.insert(key, Seen { said_at: now, unsaid: 0 });
        Some(1)
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests;
