//! Human-readable durations in config files and on the command line:
//! `250ms`, `5s`, `2m`, `1h`, `1m30s`. A bare number is refused so the unit
//! is never guessed. One grammar for every program (evpnd and evpnr configs,
//! evpnc flags).
use std::{fmt, str::FromStr, time::Duration};

/// A [`Duration`] that (de)serialises as a human-readable string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty duration (use e.g. 250ms, 5s, 2m)".into());
        }
        if t == "0" {
            return Ok(HumanDuration(Duration::ZERO));
        }
        let mut total = Duration::ZERO;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(format!(
                    "{s:?} is not a duration (use e.g. 250ms, 5s, 2m, 1h)"
                ));
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("{s:?}: number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let d = match unit {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n.saturating_mul(60)),
                "h" => Duration::from_secs(n.saturating_mul(3600)),
                "" => return Err(format!("{s:?} has no unit (use ms, s, m or h)")),
                u => return Err(format!("{s:?} has unknown unit {u:?} (use ms, s, m or h)")),
            };
            total = total.saturating_add(d);
        }
        Ok(HumanDuration(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            f.write_str("0s")
        } else if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

crate::serde_as_string!(HumanDuration);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        let p = |s: &str| s.parse::<HumanDuration>().map(|d| d.0);
        assert_eq!(p("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(p("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(p("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(p("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(p("0").unwrap(), Duration::ZERO);
        assert!(p("5").is_err());
        assert!(p("5x").is_err());
        assert!(p("").is_err());
        assert!(p("s").is_err());
        assert_eq!(
            HumanDuration(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
        assert_eq!(HumanDuration(Duration::from_secs(5)).to_string(), "5s");
    }
}
