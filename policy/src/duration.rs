//! Durations as written in policies: `30s`, `10m`, `1h`, `2d`, or sums like `1h30m`.

use std::time::Duration;

/// Parses a policy duration; zero is refused (a grant or a request that never lives is a
/// mistake).
pub fn parse(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "'{s}' is not a duration: write a number and a unit (s, m, h, d), e.g. 10m or 1h30m"
        )
    };
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit_char = rest[digits..].chars().next().ok_or_else(bad)?;
        let unit = match unit_char {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("'{s}' is too long"))?;
        rest = &rest[digits + unit_char.len_utf8()..];
    }
    if total == 0 {
        return Err(format!("'{s}' is zero: write a duration longer than 0"));
    }
    Ok(Duration::from_secs(total))
}

/// Writes a duration the way policies do: `1h30m`, `10m`, `45s`.
pub fn format(d: Duration) -> String {
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out += &format!("{}{unit}", secs / size);
            secs %= size;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_sums() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn formats_back() {
        for s in ["30s", "10m", "1h30m", "2d", "1d1h1m1s"] {
            assert_eq!(format(parse(s).expect("valid")), s);
        }
    }

    #[test]
    fn refused() {
        for s in [
            "",
            "10",
            "m",
            "10x",
            "1.5h",
            "-1m",
            "0s",
            "10 m",
            "99999999999999999999d",
            "10é",
        ] {
            assert!(parse(s).is_err(), "{s}");
        }
    }
}
