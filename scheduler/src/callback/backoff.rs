//! Exponential backoff between delivery attempts (pure).

use std::time::Duration;

/// Exponential backoff: the delay after the n-th failed attempt is `base * 2^(n-1)`, at most
/// `cap`. No jitter: callbacks are retried per row at independent instants already, and a
/// deterministic schedule is easier to reason about from the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
}

impl Backoff {
    /// The service's schedule: 1 s, 2 s, 4 s, ... capped at 5 minutes.
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(300),
    };

    /// The delay before the next attempt after `attempts` failed attempts (`0` is treated like
    /// `1`).
    pub fn delay(self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1);
        let factor = 2u32.checked_pow(doublings).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::DEFAULT
    }
}

/// The delay before the next attempt after `attempts` failed attempts with the default
/// schedule ([`Backoff::DEFAULT`]): 1 s doubling up to 5 minutes.
pub fn next_delay(attempts: u32) -> Duration {
    Backoff::DEFAULT.delay(attempts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_delay_doubles_from_one_second() {
        let delays: Vec<u64> = (1..=9).map(|n| next_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256]);
        assert_eq!(next_delay(0), Duration::from_secs(1));
    }

    #[test]
    fn next_delay_is_capped_at_five_minutes_even_for_huge_counts() {
        assert_eq!(next_delay(10), Duration::from_secs(300));
        assert_eq!(next_delay(33), Duration::from_secs(300));
        assert_eq!(next_delay(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn custom_backoff_uses_its_base_and_cap() {
        let backoff = Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(35),
        };
        assert_eq!(backoff.delay(1), Duration::from_millis(10));
        assert_eq!(backoff.delay(2), Duration::from_millis(20));
        assert_eq!(backoff.delay(3), Duration::from_millis(35));
    }
}
