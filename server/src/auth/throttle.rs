//! Failed-login throttling, per account and per client address: after `limit` failures inside
//! `window`, further attempts are refused (without checking the password) until the oldest
//! failure leaves the window. A success clears the account's count, not the address's.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per account inside the window.
const ACCOUNT_LIMIT: usize = 5;
/// Failures allowed per address inside the window (several accounts may share one address).
const ADDRESS_LIMIT: usize = 20;
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked keys, stale ones are pruned (bounds memory under a spray attack).
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

impl LoginThrottle {
    /// `Err(wait)` when the account or the address must wait before trying again.
    pub fn check(&self, email: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("throttle lock");
        let mut wait = blocked_for(&mut failures, &Key::Account(email.to_owned()), ACCOUNT_LIMIT, now);
        if let Some(address) = address {
            wait = wait.max(blocked_for(&mut failures, &Key::Address(address), ADDRESS_LIMIT, now));
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    pub fn record_failure(&self, email: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("throttle lock");
        if failures.len() > PRUNE_ABOVE {
            failures.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let keys = std::iter::once(Key::Account(email.to_owned())).chain(address.map(Key::Address));
        for key in keys {
            failures.entry(key).or_default().push_back(now);
        }
    }

    pub fn record_success(&self, email: &str) {
        let mut failures = self.failures.lock().expect("throttle lock");
        failures.remove(&Key::Account(email.to_owned()));
    }
}

/// Drops failures older than the window; how long until `key` may try again.
fn blocked_for(failures: &mut HashMap<Key, VecDeque<Instant>>, key: &Key, limit: usize, now: Instant) -> Duration {
    let Some(times) = failures.get_mut(key) else {
        return Duration::ZERO;
    };
    while times.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
        times.pop_front();
    }
    if times.len() < limit {
        return Duration::ZERO;
    }
    // Free again when enough of the oldest failures have aged out.
    let oldest_that_must_expire = times[times.len() - limit];
    WINDOW
        .saturating_sub(now.duration_since(oldest_that_must_expire))
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_blocked_after_its_limit_and_freed_by_success() {
        let throttle = LoginThrottle::default();
        for _ in 0..ACCOUNT_LIMIT {
            assert!(throttle.check("a@x.io", None).is_ok());
            throttle.record_failure("a@x.io", None);
        }
        let wait = throttle.check("a@x.io", None).unwrap_err();
        assert!(wait > Duration::from_secs(14 * 60) && wait <= WINDOW);
        assert!(
            throttle.check("b@x.io", None).is_ok(),
            "other accounts are not affected"
        );
        throttle.record_success("a@x.io");
        assert!(throttle.check("a@x.io", None).is_ok());
    }

    #[test]
    fn an_address_is_blocked_across_accounts() {
        let throttle = LoginThrottle::default();
        let address: IpAddr = "10.0.0.7".parse().unwrap();
        for n in 0..ADDRESS_LIMIT {
            throttle.record_failure(&format!("user{n}@x.io"), Some(address));
        }
        assert!(throttle.check("fresh@x.io", Some(address)).is_err());
        assert!(throttle.check("fresh@x.io", Some("10.0.0.8".parse().unwrap())).is_ok());
    }
}
