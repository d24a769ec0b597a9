//! The soak in CI: mixed load against the real server for 60 s (`KAFKA_SOAK_SECS` overrides),
//! then no errors, consistent counts (checked by the clients), a clean foreign-key check
//! and bounded memory. `kafka-load --scenario soak` runs the long version.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::time::Duration;

use kafka_tests::TestServer;
use kafka_tests::load::soak::{self, SoakConfig};
use kafka_tests::load::target::{Target, rss_of};

const DEFAULT_SECS: u64 = 60;
const CLIENTS: usize = 6;
/// Growth of this test process (server and clients together) that would mean a leak: the
/// soak keeps its data bounded by starting over in new workspaces.
const MAX_RSS_GROWTH: u64 = 256 * 1024 * 1024;

fn soak_duration() -> Duration {
    let secs = std::env::var("KAFKA_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS);
    Duration::from_secs(secs)
}

// This soak found that deferred write transactions failed with 'database is locked' under
// concurrent writers; write transactions now begin IMMEDIATE on one writer connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_leaves_a_consistent_database_and_bounded_memory() {
    let server = TestServer::start().await;
    let target = Target::new(
        &server.base,
        Some(std::process::id()),
        Some(server.state.settings.database_url.clone()),
    );
    let config = SoakConfig {
        clients: CLIENTS,
        duration: soak_duration(),
    };

    let report = soak::run(&target, &config).await.expect("the soak ran");

    println!("{}", report.table());
    assert_eq!(report.error_count, 0, "errors: {:#?}", report.errors);
    assert_eq!(report.foreign_key_violations, Some(0));
    assert!(report.counts.echoes > 0 && report.counts.reverts > 0 && report.counts.deletes > 0);
    let rss = report.rss.expect("this process's RSS");
    assert!(
        rss.end.saturating_sub(rss.before) < MAX_RSS_GROWTH,
        "RSS grew from {} to {} bytes",
        rss.before,
        rss.end
    );
    assert!(rss_of(std::process::id()).is_some());
}
