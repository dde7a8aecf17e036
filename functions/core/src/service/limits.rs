//! The rate limit: `frame_limit` frames per `frame_window_ms` window (100 per 2 s: 50 a second with bursts of 100)
//! per user, over all its connections together (a user cannot multiply it by opening more), counted where every
//! function sees the same count (DynamoDB), by the frame's arrival time.
//!
//! Acks and group reads pay by progress: they are counted after their work, and only when it moved nothing. What
//! an ack can move is bounded by the messages others sent to the user, each already counted against its sender,
//! and a mark moves forward only; so a user can make at most as many uncounted frames as it was sent messages,
//! while a flood of acks that move nothing (repeats, ids not its own) is counted and refused as before. That takes
//! the counter's write off every delivered message (one of a one-on-one message's write units).
//!
//! Once an instance has seen a user's count pass the limit, it refuses the rest of that user's frames in the
//! window without counting them: the shared count only grows within a window, so the answer could not change, and
//! a client hammering past its limit then costs no write per frame on that instance.

use super::App;
use crate::{
    config::Settings,
    error::{Failure, Rejection},
    ids::UserId,
    ports::FrameCounter,
};
use std::{collections::HashMap, sync::Mutex};
use tracing::warn;

/// The users this instance saw over their limit, with the window they were over in.
#[derive(Debug, Default)]
pub struct OverLimit(Mutex<HashMap<UserId, i64>>);

impl OverLimit {
    fn contains(&self, user: &UserId, window: i64) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(user) == Some(&window)
    }

    fn insert(&self, user: &UserId, window: i64) {
        let mut over = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Only the current window matters: forget the others, so the map holds one window's offenders at most.
        over.retain(|_, w| *w >= window);
        over.insert(user.clone(), window);
    }
}

/// The refusal of a frame over the limit.
pub fn rate_limited(settings: &Settings) -> Failure {
    Failure::Rejected(Rejection::RateLimited(format!(
        "more than {} frames in {} ms from this user; slow down and retry",
        settings.frame_limit, settings.frame_window_ms
    )))
}

impl<S, P, Q> App<S, P, Q> {
    /// The rate limit's window of a frame that arrived at `at_ms`; `None` when there is no limit.
    fn window(&self, at_ms: i64) -> Option<i64> {
        (self.settings.frame_limit > 0).then(|| at_ms.div_euclid(self.window_ms()))
    }

    fn window_ms(&self) -> i64 {
        self.settings.frame_window_ms.max(1)
    }

    /// Whether this instance already saw `user` over its limit in the window of `at_ms` (no call).
    pub fn known_over_limit(&self, user: &UserId, at_ms: i64) -> bool {
        self.window(at_ms).is_some_and(|w| self.over_limit.contains(user, w))
    }
}

impl<S: FrameCounter, P, Q> App<S, P, Q> {
    /// Whether a frame of `user` that arrived at `at_ms` may be processed. A counter that cannot be reached
    /// admits the frame: the frame's own work then meets the same outage and answers `unavailable`.
    pub async fn admit(&self, user: &UserId, at_ms: i64) -> bool {
        let Some(window) = self.window(at_ms) else {
            return true;
        };
        if self.over_limit.contains(user, window) {
            return false;
        }
        // Kept a minute past the window's end: TTL deletes lazily anyway, and nothing reads old windows.
        let expires_at = ((window + 1) * self.window_ms()) / 1000 + 60;
        match self.store.count_frame(user, window, expires_at).await {
            Ok(n) if n <= self.settings.frame_limit => true,
            Ok(_) => {
                self.over_limit.insert(user, window);
                false
            }
            Err(e) => {
                warn!(error = %e, "could not count a frame; admitting it");
                true
            }
        }
    }

    /// The count of a frame that pays by progress, after its work: none when the work `moved` something,
    /// otherwise the frame is counted as any other and refused (`rate_limited`) over the limit. Called before
    /// anything the frame sends to others, so a refused frame sends nothing.
    pub(super) async fn pay_unless_moved(&self, user: &UserId, at_ms: i64, moved: bool) -> Result<(), Failure> {
        if moved {
            Ok(())
        } else {
            self.admitted(user, at_ms).await
        }
    }

    /// [`App::admit`] as a rule's step: `rate_limited` when refused.
    pub(super) async fn admitted(&self, user: &UserId, at_ms: i64) -> Result<(), Failure> {
        if self.admit(user, at_ms).await {
            Ok(())
        } else {
            Err(rate_limited(&self.settings))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        frames::ErrorCode,
        testing::{TestApp, caller, conn, send_frame, user},
    };

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
    async fn a_user_known_over_the_limit_is_refused_without_another_count() {
        let app = app(2);
        let c = user("alice");
        for i in 0..3 {
            app.admit(&c, 10_000 + i).await;
        }
        let counted = |app: &TestApp| app.store.state.lock().unwrap().frames.get(&(c.clone(), 5)).copied();
        assert_eq!(counted(&app), Some(3));
        for i in 0..20 {
            assert!(!app.admit(&c, 10_100 + i).await);
        }
        assert_eq!(counted(&app), Some(3), "refused without a write");
        assert!(app.admit(&c, 12_000).await, "the next window counts again");
    }

    #[tokio::test]
    async fn an_ack_that_delivers_is_not_counted_and_one_that_delivers_nothing_is_refused_past_the_limit() {
        let app = TestApp::builder()
            .users(&["alice", "bob"])
            .all_friends()
            .settings(|s| {
                s.frame_limit = 2;
                s.frame_window_ms = 2000;
            })
            .build();
        app.connect(&user("alice"), &conn("a1"), 0).await.unwrap();
        let mut ids = Vec::new();
        for (i, window) in [(0, 5), (1, 6), (2, 7)] {
            let frame = send_frame(&format!("m{i}"), "bob", "hi");
            // Each in a window of its own: alice's sends are counted against her.
            let at = window * 2000;
            ids.push(
                app.send(&caller("alice", "a1"), &frame, at, at + 10_000)
                    .await
                    .unwrap()
                    .message_id,
            );
        }
        let bob = user("bob");
        let counted = |app: &TestApp| app.store.state.lock().unwrap().frames.get(&(bob.clone(), 50)).copied();
        let at = 100_000;
        for id in &ids {
            app.ack_direct(&bob, std::slice::from_ref(id), at, at).await.unwrap();
        }
        assert_eq!(
            counted(&app),
            None,
            "three acks that delivered, in a window that allows two, none counted"
        );
        let receipts = |app: &TestApp| {
            app.pusher
                .posts_to("a1")
                .iter()
                .filter(|p| p["type"] == "receipt")
                .count()
        };
        assert_eq!(receipts(&app), 3);
        // The same acks again deliver nothing: counted, and past the limit refused with no receipt sent again.
        let mut refused = 0;
        for id in &ids {
            match app.ack_direct(&bob, std::slice::from_ref(id), at + 1, at + 1).await {
                Ok(()) => {}
                Err(e) => {
                    assert_eq!(e.code(), ErrorCode::RateLimited);
                    refused += 1;
                }
            }
        }
        assert_eq!((counted(&app), refused), (Some(3), 1));
        assert_eq!(receipts(&app), 5, "a receipt again for each ack within the limit only");
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
