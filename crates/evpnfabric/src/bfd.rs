//! BFD for the fabric's iBGP sessions (`--bfd <interval ms>x<multiplier>`).
//!
//! The iBGP sessions are multihop, so BIRD applies the `multihop` block of
//! `protocol bfd` (`show bfd sessions` lists them without an interface); the
//! `interface "eth0"` block is there for single-hop sessions and says the
//! same.

/// BFD on the iBGP sessions: transmit interval and detection multiplier
/// (detection time = interval × multiplier). Parsed from `10x3` (ms × n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bfd {
    /// Interval in ms (BIRD's `interval`, also `min rx`).
    pub interval_ms: u32,
    /// BIRD's `multiplier`.
    pub multiplier: u32,
}

impl std::str::FromStr for Bfd {
    type Err = String;
    fn from_str(s: &str) -> Result<Bfd, String> {
        let bad = || {
            format!(
                "bfd: expected <interval ms>x<multiplier> such as 10x3, got {:?}",
                s.chars().take(16).collect::<String>()
            )
        };
        let (i, m) = s.split_once('x').ok_or_else(bad)?;
        let interval_ms: u32 = i.parse().map_err(|_| bad())?;
        let multiplier: u32 = m.parse().map_err(|_| bad())?;
        if !(1..=10_000).contains(&interval_ms) || !(1..=255).contains(&multiplier) {
            return Err(bad());
        }
        Ok(Bfd {
            interval_ms,
            multiplier,
        })
    }
}

impl std::fmt::Display for Bfd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.interval_ms, self.multiplier)
    }
}

impl Bfd {
    /// Detection time in ms (interval × multiplier).
    pub fn detection_ms(&self) -> u32 {
        self.interval_ms * self.multiplier
    }

    /// BIRD's `protocol bfd` for these timers (the BGP sessions also need
    /// `bfd on;`).
    pub fn bird_protocol(&self) -> String {
        let t = format!(
            "interval {i} ms; min rx interval {i} ms; multiplier {m};",
            i = self.interval_ms,
            m = self.multiplier
        );
        format!("protocol bfd {{ interface \"eth0\" {{ {t} }}; multihop {{ {t} }}; }}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = [("10x3", 10, 3, 30), ("20x5", 20, 5, 100), ("5x3", 5, 3, 15)];
        for (s, i, m, d) in ok {
            let b: Bfd = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(
                (b.interval_ms, b.multiplier, b.detection_ms()),
                (i, m, d),
                "{s}"
            );
            assert_eq!(b.to_string(), s);
        }
        for bad in [
            "", "10", "x3", "10x", "0x3", "10x0", "10x256", "ax3", "10ms x 3", "off",
        ] {
            let e = bad.parse::<Bfd>().expect_err(bad);
            assert!(e.starts_with("bfd: expected"), "{bad}: {e}");
        }
    }

    #[test]
    fn bird_protocol_sets_both_blocks() {
        let b: Bfd = "20x5".parse().unwrap();
        assert_eq!(
            b.bird_protocol(),
            "protocol bfd { interface \"eth0\" { interval 20 ms; min rx interval 20 ms; multiplier 5; }; \
             multihop { interval 20 ms; min rx interval 20 ms; multiplier 5; }; }\n"
        );
    }
}
