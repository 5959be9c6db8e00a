//! Jittered, capped exponential back-off between re-subscription attempts.
//!
//! "Full jitter": attempt `n` (from 0) waits a uniformly random time in
//! `[0, min(max, initial × 2ⁿ)]`, so that many clients that lost the same master do not come
//! back in step (the Mesos docs recommend a random back-off bounded by a maximum).

use std::time::Duration;

/// The back-off of one connection: how long to wait before the next attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A back-off starting at `initial` (the bound of the first wait) and never above `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial: initial.min(max),
            max,
            attempt: 0,
        }
    }

    /// The bound of the next wait: `min(max, initial × 2^attempt)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The next wait (random, at most [`Backoff::ceiling`]); each call doubles the ceiling
    /// until it reaches the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        random_up_to(ceiling)
    }

    /// Starts over after a successful connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A uniformly random duration in `[0, bound]` (millisecond resolution).
pub fn random_up_to(bound: Duration) -> Duration {
    let millis = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return Duration::ZERO;
    }
    let mut bytes = [0u8; 8];
    // Without randomness (no entropy source), waiting the full bound is the safe choice.
    if getrandom::getrandom(&mut bytes).is_err() {
        return bound;
    }
    Duration::from_millis(u64::from_le_bytes(bytes) % (millis + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_up_to_the_maximum() {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(15));
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            ceilings.push(backoff.ceiling().as_millis());
            backoff.next_delay();
        }
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_millis(500));
    }

    #[test]
    fn every_wait_stays_within_its_ceiling() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..200 {
            let ceiling = backoff.ceiling();
            assert!(backoff.next_delay() <= ceiling);
        }
    }

    #[test]
    fn many_attempts_never_overflow() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(15));
        for _ in 0..100 {
            backoff.next_delay();
        }
        assert_eq!(backoff.ceiling(), Duration::from_secs(15));
        assert_eq!(random_up_to(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn waits_are_spread_not_in_step() {
        let waits: std::collections::HashSet<Duration> = (0..50)
            .map(|_| random_up_to(Duration::from_secs(10)))
            .collect();
        assert!(waits.len() > 10, "{waits:?}");
    }
}
