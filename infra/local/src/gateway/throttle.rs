//! Token buckets: the stage's route throttling, and the account's limits on new connections and on
//! `@connections` calls.

/// The stage's route throttling (`DefaultRouteSettings.ThrottlingRateLimit/BurstLimit`): a token bucket shared by
/// every connection, as API Gateway applies it per stage. Frames over it get API Gateway's `Too Many Requests`
/// answer and never reach a function.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u64) -> Self {
        let burst = burst.max(1) as f64;
        Self {
            rate: rate.max(0.0),
            burst,
            tokens: burst,
            last: tokio::time::Instant::now(),
        }
    }

    /// `rate` a second with a burst of one second's worth, behind a lock (the account-level limits).
    pub fn per_second(rate: f64) -> std::sync::Mutex<Self> {
        std::sync::Mutex::new(Self::new(rate, rate.ceil() as u64))
    }

    /// Takes a token at `now` if there is one.
    pub fn take(&mut self, now: tokio::time::Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TokenBucket;
    use std::time::Duration;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = tokio::time::Instant::now();
        let mut b = TokenBucket::new(10.0, 5);
        b.last = start;
        let taken = (0..20).filter(|_| b.take(start)).count();
        assert_eq!(taken, 5, "the burst, then nothing at the same instant");
        // 0.5 s at 10/s refills 5 tokens, never more than the burst.
        assert_eq!(
            (0..20).filter(|_| b.take(start + Duration::from_millis(500))).count(),
            5
        );
        assert_eq!((0..20).filter(|_| b.take(start + Duration::from_secs(60))).count(), 5);
        assert!(!b.take(start + Duration::from_secs(60)));
        assert!(b.take(start + Duration::from_millis(60_100)));
    }
}
