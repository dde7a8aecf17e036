//! The rate limit: `frame_limit` frames per `frame_window_ms` window (100 per 2 s: 50 a second with bursts of 100)
//! per user, over all its connections together (a user cannot multiply it by opening more), counted where every
//! function sees the same count (DynamoDB), by the frame's arrival time.

use super::App;
use crate::{ids::UserId, ports::FrameCounter};
use tracing::warn;

impl<S: FrameCounter, P, Q> App<S, P, Q> {
    /// Whether a frame of `user` that arrived at `at_ms` may be processed. A counter that cannot be reached
    /// admits the frame: the frame's own work then meets the same outage and answers `unavailable`.
    pub async fn admit(&self, user: &UserId, at_ms: i64) -> bool {
        let (limit, window_ms) = (self.settings.frame_limit, self.settings.frame_window_ms.max(1));
        if limit == 0 {
            return true;
        }
        let window = at_ms.div_euclid(window_ms);
        // Kept a minute past the window's end: TTL deletes lazily anyway, and nothing reads old windows.
        let expires_at = ((window + 1) * window_ms) / 1000 + 60;
        match self.store.count_frame(user, window, expires_at).await {
            Ok(n) => n <= limit,
            Err(e) => {
                warn!(error = %e, "could not count a frame; admitting it");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{TestApp, user};

    fn app(limit: u64) -> TestApp {
        TestApp::builder()
            .settings(|s| {
                s.frame_limit = limit;
                s.frame_window_ms = 2000;
            })
            .build()
    }

    #[tokio::test]
    async fn a_user_gets_its_limit_per_window_and_a_fresh_window_serves_again() {
        let app = app(3);
        let (c, other) = (user("alice"), user("bob"));
        let mut admitted = Vec::new();
        for i in 0..5 {
            admitted.push(app.admit(&c, 10_000 + i).await);
        }
        assert_eq!(admitted, [true, true, true, false, false]);
        assert!(app.admit(&other, 10_000).await, "another user has its own count");
        assert!(app.admit(&c, 12_000).await, "the next window starts afresh");
    }

    #[tokio::test]
    async fn no_limit_and_an_unreachable_counter_admit() {
        let unlimited = app(0);
        let c = user("alice");
        for _ in 0..10 {
            assert!(unlimited.admit(&c, 0).await);
        }
        let broken = app(1);
        broken.store.faults.fail_next("count_frame", 2);
        assert!(broken.admit(&c, 0).await);
        assert!(broken.admit(&c, 0).await);
    }
}
