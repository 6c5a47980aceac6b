//! Per-key caps (API.md §10): concurrent authenticated requests (`max_inflight_per_key`,
//! SSE GETs excluded) and open event streams (`max_sse_connections_per_key`; a watch stream
//! counts for its session's creator). Only with auth on. A slot is freed when its guard drops,
//! whatever ended the request or stream.

use crate::error::ApiError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct KeyCaps {
    inflight: Counter,
    streams: Counter,
}

#[derive(Default, Clone)]
struct Counter(Arc<Mutex<HashMap<[u8; 32], u64>>>);

/// Holds one slot of one key; frees it on drop.
pub struct Slot {
    counter: Counter,
    key: [u8; 32],
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.counter.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

impl Counter {
    fn take(&self, key: [u8; 32], max: u64, cap: &'static str) -> Result<Slot, ApiError> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key).or_insert(0);
        if max > 0 && *n >= max {
            return Err(ApiError::throttled(
                cap,
                "this API key has too many requests or streams open",
            ));
        }
        *n += 1;
        Ok(Slot {
            counter: self.clone(),
            key,
        })
    }
}

impl KeyCaps {
    /// A request slot for `key` (`max_inflight_per_key`, 0 = no cap).
    pub fn request(&self, key: [u8; 32], max: u64) -> Result<Slot, ApiError> {
        self.inflight.take(key, max, "max_inflight_per_key")
    }

    /// A stream slot for `key` (`max_sse_connections_per_key`, 0 = no cap).
    pub fn stream(&self, key: [u8; 32], max: u64) -> Result<Slot, ApiError> {
        self.streams.take(key, max, "max_sse_connections_per_key")
    }
}
