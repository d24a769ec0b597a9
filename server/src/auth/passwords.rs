//! Passwords: argon2id (the crate's defaults follow OWASP's recommendation: 19 MiB, two
//! passes). Each check holds its 19 MiB for ~25 ms of CPU, so hashing runs on a bounded pool
//! ([`Hasher`]): one check per core at a time, a short queue behind them, and past the queue
//! the caller is told to come back (`429`) instead of the server taking memory without bound.
//! The async workers never compute a hash.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Shortest and longest password accepted (the upper bound caps hashing work per request).
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 1024;

/// Checked when there is no stored hash to check against (an unknown account, or one without
/// a password), so that the answer takes as long as a real check. The hash of a random
/// password nobody knows, with the default parameters (a unit test keeps them in step).
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bm90IGEgcmVhbCBzYWx0IGF0IGFsbA$qVIMQTuglp0lWg35i3vsJUn4QnSIIHs3TSFMPMLNeQo";

/// Checks a new password's length; the message is for the client.
pub fn check_new(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(format!("Field password: use at least {MIN_LEN} characters."));
    }
    if password.len() > MAX_LEN {
        return Err(format!("Field password: use at most {MAX_LEN} bytes."));
    }
    Ok(())
}

/// The PHC string to store for `password`, computed on the calling thread (blocking, ~25 ms).
pub fn hash_now(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Whether `password` matches the stored PHC string, on the calling thread (blocking). A
/// damaged hash never matches.
pub fn verify_now(password: &str, stored: &str) -> bool {
    if password.len() > MAX_LEN {
        return false;
    }
    PasswordHash::new(stored)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// The bounded hashing pool: `workers` threads of its own compute, at most `waiting` more
/// computations queue, anything beyond is refused at once with [`ApiError::Busy`]. Threads of
/// its own rather than tokio's blocking pool: each thread's allocator keeps the 19 MiB of its
/// last computation for the next, so a fixed set of threads holds at most `workers` × 19 MiB,
/// where tokio's many blocking threads could each keep their own.
#[derive(Debug)]
pub struct Hasher {
    /// Computations running or queued: `workers + waiting` permits, taken without waiting
    /// and given back when the computation ends (even if its caller went away).
    admitted: Arc<Semaphore>,
    /// The workers' queue; they stop when the pool is dropped.
    jobs: std::sync::mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

impl Default for Hasher {
    /// One worker per core, twice as many waiting.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores, 2 * cores)
    }
}

impl Hasher {
    pub fn new(workers: usize, waiting: usize) -> Self {
        let workers = workers.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(parking_lot::Mutex::new(queue));
        for n in 0..workers {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("kafka-hash-{n}"))
                .spawn(move || {
                    loop {
                        let job = queue.lock().recv();
                        let Ok(job) = job else { break };
                        // A panicking job must not take its worker with it.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password-hashing thread");
            }
        }
        Self {
            admitted: Arc::new(Semaphore::new(workers + waiting)),
            jobs,
        }
    }

    /// Runs `work` on a worker; `Busy` when the queue is full.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let admitted = self.admitted.clone().try_acquire_owned().map_err(|_| busy())?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let output = work();
            drop(admitted);
            let _ = done.send(output);
        });
        self.jobs.send(job).map_err(ApiError::internal)?;
        result.await.map_err(ApiError::internal)
    }

    /// The PHC string to store for `password`.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_now(&password)).await?.map_err(ApiError::internal)
    }

    /// Whether `password` matches `stored`; with no stored hash, a check against a dummy hash
    /// that takes as long and never matches.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        self.run(move || {
            let matched = verify_now(&password, stored.as_deref().unwrap_or(DUMMY_HASH));
            matched && stored.is_some()
        })
        .await
    }
}

fn busy() -> ApiError {
    ApiError::Busy("Too many logins at once; try again shortly.".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = hash_now("hunter2-but-longer").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify_now("hunter2-but-longer", &stored));
        assert!(!verify_now("hunter3-but-longer", &stored));
        assert!(!verify_now("hunter2-but-longer", "not a hash"));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let real_hash = hash_now("whatever it is").unwrap();
        let real = PasswordHash::new(&real_hash).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
    }

    #[tokio::test]
    async fn the_pool_refuses_past_its_queue_and_never_matches_without_a_hash() {
        let hasher = Arc::new(Hasher::new(1, 1));
        let stored = hasher.hash("long enough".into()).await.unwrap();
        assert!(hasher.verify("long enough".into(), Some(stored)).await.unwrap());
        assert!(!hasher.verify("long enough".into(), None).await.unwrap());
        // One running, one waiting: the third is refused at once.
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.verify("long enough".into(), None).await })
            })
            .collect();
        let mut busy = 0;
        for task in tasks {
            if let Err(ApiError::Busy(_)) = task.await.unwrap() {
                busy += 1;
            }
        }
        assert!(busy >= 1, "{busy} refused");
    }

    #[test]
    fn new_passwords_have_bounded_length() {
        assert!(check_new("short").is_err());
        assert!(check_new("long enough").is_ok());
        assert!(check_new(&"x".repeat(MAX_LEN + 1)).is_err());
    }
}
