//! Responses kept for `previous_response_id`: in memory, least recently used first out,
//! bounded both in count and in image bytes so a long CI run cannot grow without limit.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// At most this many responses are kept.
pub(crate) const MAX_RESPONSES: usize = 256;
/// At most this many bytes of images are kept (a 4K PNG is 8-20 MB).
pub(crate) const MAX_BYTES: usize = 512 * 1024 * 1024;

/// What a later request can build on.
#[derive(Debug)]
pub(crate) struct StoredResponse {
    /// The encoded image the response generated (PNG, JPEG or WebP bytes), if it made one.
    pub(crate) image: Option<Vec<u8>>,
}

impl StoredResponse {
    fn bytes(&self) -> usize {
        self.image.as_ref().map_or(0, Vec::len)
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, Arc<StoredResponse>>,
    /// Least recently used at the front.
    order: VecDeque<String>,
    bytes: usize,
}

/// The store.
#[derive(Debug, Default)]
pub(crate) struct ResponseStore {
    inner: Mutex<Inner>,
}

impl ResponseStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock means a panic mid-update elsewhere; the map is still consistent
        // enough to serve lookups.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keep `response` under `id`, evicting the least recently used until both bounds hold.
    pub(crate) fn insert(&self, id: String, response: StoredResponse) {
        let mut inner = self.lock();
        inner.bytes += response.bytes();
        if let Some(old) = inner.map.insert(id.clone(), Arc::new(response)) {
            inner.bytes -= old.bytes();
            inner.order.retain(|k| k != &id);
        }
        inner.order.push_back(id);
        while inner.order.len() > MAX_RESPONSES || (inner.bytes > MAX_BYTES && inner.order.len() > 1) {
            let Some(evicted) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.map.remove(&evicted) {
                inner.bytes -= old.bytes();
            }
        }
    }

    /// The response stored under `id`, marking it as recently used.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<StoredResponse>> {
        let mut inner = self.lock();
        let found = inner.map.get(id).cloned()?;
        inner.order.retain(|k| k != id);
        inner.order.push_back(id.to_owned());
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_goes_first() {
        let s = ResponseStore::default();
        for i in 0..MAX_RESPONSES {
            s.insert(format!("resp_{i}"), StoredResponse { image: None });
        }
        assert!(s.get("resp_0").is_some());
        s.insert("resp_new".into(), StoredResponse { image: None });
        assert!(s.get("resp_0").is_some(), "recently read, kept");
        assert!(s.get("resp_1").is_none(), "least recently used, evicted");
        assert!(s.get("resp_new").is_some());
    }

    #[test]
    fn bytes_are_bounded() {
        let s = ResponseStore::default();
        let big = || StoredResponse {
            image: Some(vec![0; MAX_BYTES / 2 + 1]),
        };
        s.insert("a".into(), big());
        s.insert("b".into(), big());
        assert!(s.get("a").is_none());
        assert!(s.get("b").is_some());
    }
}
