//! Statistics both benchmark reports use.

/// Median of `v` (mean of the middle two for an even count); 0 for no samples.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_unstable_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn middle_or_mean_of_the_middle_two() {
        let cases: [(&[f64], f64); 4] = [
            (&[3.0, 1.0, 2.0], 2.0),
            (&[4.0, 1.0, 2.0, 3.0], 2.5),
            (&[7.5], 7.5),
            (&[], 0.0),
        ];
        for (samples, expected) in cases {
            assert_eq!(median(samples), expected, "{samples:?}");
        }
    }
}
