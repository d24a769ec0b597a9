//! Latency samples and their summary: count, rate, median and 99th percentile.

use std::time::Duration;

/// Round-trip times collected during one measurement.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    durations: Vec<Duration>,
}

impl Samples {
    pub fn push(&mut self, duration: Duration) {
        self.durations.push(duration);
    }

    pub fn append(&mut self, other: Samples) {
        self.durations.extend(other.durations);
    }

    pub fn len(&self) -> usize {
        self.durations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.durations.is_empty()
    }

    /// Summarises the samples taken over `elapsed` of wall-clock time.
    pub fn summary(mut self, elapsed: Duration) -> Summary {
        self.durations.sort_unstable();
        Summary {
            count: self.durations.len(),
            per_second: self.durations.len() as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
            p50: percentile(&self.durations, 50.0),
            p99: percentile(&self.durations, 99.0),
        }
    }

    /// The median, for measurements repeated a few times.
    pub fn median(self) -> Duration {
        self.summary(Duration::from_secs(1)).p50
    }
}

/// What a report shows of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// Nearest-rank percentile of sorted durations; zero when there are none.
fn percentile(sorted: &[Duration], percent: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples = Samples::default();
        for ms in (1..=100).rev() {
            samples.push(Duration::from_millis(ms));
        }
        let summary = samples.summary(Duration::from_secs(2));
        assert_eq!(summary.count, 100);
        assert_eq!(summary.per_second, 50.0);
        assert_eq!(summary.p50, Duration::from_millis(50));
        assert_eq!(summary.p99, Duration::from_millis(99));
    }

    #[test]
    fn no_samples_summarise_to_zero() {
        let summary = Samples::default().summary(Duration::from_secs(1));
        assert_eq!(
            (summary.count, summary.p50, summary.p99),
            (0, Duration::ZERO, Duration::ZERO)
        );
    }
}
