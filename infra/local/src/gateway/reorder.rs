//! A fault on purpose: frames held for a random time on their way, so that frames sent close together overtake
//! each other, as they do on AWS when two sends run in different Lambda instances or two pushes travel on
//! different paths. Client frames are held before their route is invoked; @connections posts before they reach
//! the client (the post itself is answered at once). Off by default; `POST /_natter/reorder` with
//! `{"maxDelayMs": N}` (0 turns it off), or [`super::Gateway::reorder_frames`] in tests.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

#[derive(Debug, Default)]
pub struct Reorder {
    max_ms: AtomicU64,
}

impl Reorder {
    pub fn set(&self, max_ms: u64) {
        self.max_ms.store(max_ms, Ordering::Relaxed);
    }

    /// How long to hold the next frame: uniform in 0..=max, `None` while the fault is off.
    pub fn hold(&self) -> Option<Duration> {
        match self.max_ms.load(Ordering::Relaxed) {
            0 => None,
            max => Some(Duration::from_millis(rand::random::<u64>() % (max + 1))),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReorderRequest {
    max_delay_ms: u64,
}

pub(super) async fn set_reorder(State(gw): State<Arc<super::Gateway>>, Json(r): Json<ReorderRequest>) -> StatusCode {
    gw.reorder_frames(r.max_delay_ms);
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_only_while_on_and_never_beyond_the_maximum() {
        let r = Reorder::default();
        assert_eq!(r.hold(), None);
        r.set(50);
        assert!((0..200).all(|_| r.hold().is_some_and(|d| d <= Duration::from_millis(50))));
        let distinct: std::collections::HashSet<_> = (0..200).filter_map(|_| r.hold()).collect();
        assert!(distinct.len() > 5, "spread, so frames overtake each other");
        r.set(0);
        assert_eq!(r.hold(), None);
    }
}
