//! Failed-login throttling, per account and per client address: after `limit` failures inside
//! `window`, further attempts are refused (without checking the password) until the oldest
//! failure leaves the window. A success clears the account's count, not the address's.
//!
//! Checking and counting are one step: [`LoginThrottle::reserve`] counts the attempt as a
//! failure under the lock, before the password is hashed, so concurrent guesses cannot all
//! pass the check before any of them is counted. A success takes its count back.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
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
    /// `Err(wait)` when the account or the address must wait before trying again (nothing
    /// is counted).
    pub fn check(&self, email: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        let mut failures = self.failures.lock();
        wait_for(&mut failures, email, address, Instant::now())
    }

    /// Checks and, if allowed, counts this attempt as a failure of the account and the address
    /// in one step. Dropping the reservation keeps it counted (a wrong password, or an attempt
    /// abandoned midway); [`Self::succeeded`] and [`Self::release`] take it back.
    pub fn reserve(&self, email: &str, address: Option<IpAddr>) -> Result<Reservation, Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock();
        wait_for(&mut failures, email, address, now)?;
        if failures.len() > PRUNE_ABOVE {
            failures.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let reservation = Reservation {
            email: email.to_owned(),
            address,
            at: now,
        };
        for key in reservation.keys() {
            failures.entry(key).or_default().push_back(now);
        }
        Ok(reservation)
    }

    /// The password was right: the account's failures are cleared, and the address's count of
    /// this attempt is taken back.
    pub fn succeeded(&self, reservation: Reservation) {
        let mut failures = self.failures.lock();
        failures.remove(&Key::Account(reservation.email.clone()));
        if let Some(address) = reservation.address {
            unreserve(&mut failures, &Key::Address(address), reservation.at);
        }
    }

    /// The password was not checked after all (the hashing pool was full): uncounted.
    pub fn release(&self, reservation: Reservation) {
        let mut failures = self.failures.lock();
        for key in reservation.keys() {
            unreserve(&mut failures, &key, reservation.at);
        }
    }
}

/// One attempt, counted as a failure until it is known to have succeeded.
#[derive(Debug)]
#[must_use = "dropping a reservation counts the attempt as a failure"]
pub struct Reservation {
    email: String,
    address: Option<IpAddr>,
    at: Instant,
}

impl Reservation {
    fn keys(&self) -> impl Iterator<Item = Key> + use<> {
        std::iter::once(Key::Account(self.email.clone())).chain(self.address.map(Key::Address))
    }
}

/// Removes one count made at `at` from `key`'s failures.
fn unreserve(failures: &mut HashMap<Key, VecDeque<Instant>>, key: &Key, at: Instant) {
    if let Some(times) = failures.get_mut(key) {
        if let Some(index) = times.iter().position(|t| *t == at) {
            times.remove(index);
        }
        if times.is_empty() {
            failures.remove(key);
        }
    }
}

/// `Err(wait)` when the account or the address is blocked at `now`.
fn wait_for(
    failures: &mut HashMap<Key, VecDeque<Instant>>,
    email: &str,
    address: Option<IpAddr>,
    now: Instant,
) -> Result<(), Duration> {
    let mut wait = blocked_for(failures, &Key::Account(email.to_owned()), ACCOUNT_LIMIT, now);
    if let Some(address) = address {
        wait = wait.max(blocked_for(failures, &Key::Address(address), ADDRESS_LIMIT, now));
    }
    if wait.is_zero() { Ok(()) } else { Err(wait) }
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
            drop(throttle.reserve("a@x.io", None).unwrap());
        }
        let wait = throttle.reserve("a@x.io", None).unwrap_err();
        assert!(wait > Duration::from_secs(14 * 60) && wait <= WINDOW);
        let other = throttle.reserve("b@x.io", None);
        assert!(other.is_ok(), "other accounts are not affected");
        drop(other);
        // A success clears the account's failures.
        for _ in 0..ACCOUNT_LIMIT - 2 {
            drop(throttle.reserve("b@x.io", None).unwrap());
        }
        throttle.succeeded(throttle.reserve("b@x.io", None).unwrap());
        for _ in 0..ACCOUNT_LIMIT {
            drop(throttle.reserve("b@x.io", None).unwrap());
        }
        assert!(throttle.check("b@x.io", None).is_err());
    }

    #[test]
    fn concurrent_attempts_are_counted_before_they_are_checked() {
        let throttle = LoginThrottle::default();
        let address: IpAddr = "10.0.0.9".parse().unwrap();
        // Held, not yet settled: they already count.
        let held: Vec<_> = (0..ACCOUNT_LIMIT)
            .map(|_| throttle.reserve("a@x.io", Some(address)).unwrap())
            .collect();
        assert!(throttle.reserve("a@x.io", Some(address)).is_err());
        // A release (not checked) and a success give their counts back.
        let mut held = held.into_iter();
        throttle.release(held.next().unwrap());
        let again = throttle.reserve("a@x.io", Some(address)).unwrap();
        throttle.succeeded(again);
        assert!(throttle.check("a@x.io", Some(address)).is_ok());
        drop(held);
        let failures = throttle.failures.lock();
        assert_eq!(failures[&Key::Address(address)].len(), ACCOUNT_LIMIT - 1);
    }

    #[test]
    fn an_address_is_blocked_across_accounts() {
        let throttle = LoginThrottle::default();
        let address: IpAddr = "10.0.0.7".parse().unwrap();
        for n in 0..ADDRESS_LIMIT {
            drop(throttle.reserve(&format!("user{n}@x.io"), Some(address)).unwrap());
        }
        assert!(throttle.check("fresh@x.io", Some(address)).is_err());
        assert!(throttle.check("fresh@x.io", Some("10.0.0.8".parse().unwrap())).is_ok());
    }
}
