//! Latency percentiles and the display of figures (the median is `tests::bench::stats`).

use std::time::Duration;

/// p50/p90/p99/max of a set of latencies (nearest-rank: the p-th percentile is the smallest
/// sample that at least p % of the samples do not exceed, so p99 of 200 samples is the
/// third largest, a real sample and never an interpolation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Percentiles {
    pub count: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// The percentiles of `samples` (all zero when there are none).
    pub fn of(samples: &[Duration]) -> Self {
        let mut s = samples.to_vec();
        s.sort_unstable();
        let rank = |p: usize| -> Duration {
            if s.is_empty() {
                return Duration::ZERO;
            }
            // ceil(p/100 · n), 1-based.
            let k = (p * s.len()).div_ceil(100).clamp(1, s.len());
            s[k - 1]
        };
        Self {
            count: s.len(),
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max: s.last().copied().unwrap_or_default(),
        }
    }
}

/// Milliseconds with a precision that suits the value: `0.84 ms`, `12.3 ms`, `153 ms`.
pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 10.0 {
        format!("{v:.2} ms")
    } else if v < 100.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// A count with thin spaces between thousands: `23 456`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_list(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank() {
        let p = Percentiles::of(&ms_list(&(1..=200).collect::<Vec<_>>()));
        assert_eq!(p.count, 200);
        assert_eq!(p.p50, Duration::from_millis(100));
        assert_eq!(p.p90, Duration::from_millis(180));
        assert_eq!(p.p99, Duration::from_millis(198));
        assert_eq!(p.max, Duration::from_millis(200));
        let one = Percentiles::of(&ms_list(&[7]));
        assert_eq!(
            (one.p50, one.p99, one.max),
            (ms_list(&[7])[0], ms_list(&[7])[0], ms_list(&[7])[0])
        );
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
    }

    #[test]
    fn display() {
        assert_eq!(ms(Duration::from_micros(840)), "0.84 ms");
        assert_eq!(ms(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(ms(Duration::from_millis(153)), "153 ms");
        assert_eq!(thousands(23_456), "23 456");
        assert_eq!(thousands(1_000_000), "1 000 000");
        assert_eq!(thousands(999), "999");
    }
}
