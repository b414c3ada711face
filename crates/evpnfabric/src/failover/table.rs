//! The bench's report: one line per trial and a table per scenario (both
//! sides), and the count of BGP session resets that disturbed a run.
use super::{BenchOpts, Impl, Scenario, Trial};
use crate::bench::percentile;

/// Session resets between routers 2…N (trials only touch r1): `rJ:
/// Received: Cease` lines in router K's BIRD log (`logs[K-1]`), J, K ≠ 1,
/// minus the one per session that every BIRD's shutdown at the end sends.
pub fn untouched_resets(logs: &[String]) -> usize {
    let mut n = 0;
    for (k, log) in logs.iter().enumerate().skip(1) {
        let shutdown_at = log.find("Shutting down").unwrap_or(log.len());
        for (j, _) in logs.iter().enumerate().skip(1) {
            if j == k {
                continue;
            }
            let needle = format!("<RMT> r{}: Received: Cease", j + 1);
            n += log[..shutdown_at].matches(&needle).count();
        }
    }
    n
}

pub(super) fn trial_line(r: &Trial, k: usize) -> String {
    format!(
        "scenario {} {:>10} trial {k:>2}: lost v4/v6 {}/{}, gap {:.1}/{:.1} ms, dup {}, {}, {}, two-holder in window {}, in repair {}",
        r.scenario.number(),
        r.imp.to_string(),
        r.v4.lost,
        r.v6.lost,
        r.v4.gap_ms,
        r.v6.gap_ms,
        r.dups,
        if r.recovered {
            "answered at window end"
        } else {
            "NOT recovered within the window"
        },
        if r.moved { "moved" } else { "not moved" },
        ms_list(&r.two_holder_ms(true)),
        ms_list(&r.two_holder_ms(false)),
    ) + &match r.moved_after_repair {
        0 => String::new(),
        n => format!(", moved by evpnr {n}x after the repair began"),
    }
}

fn ms_list(v: &[f64]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(|m| format!("{m:.1} ms"))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The table of scenario `sc`: one row per implementation.
pub fn table(results: &[Trial], sc: Scenario, o: &BenchOpts) -> String {
    let mut s = format!(
        "scenario {}: window {} ms, keepalived advert_int {}.{:02} s\n\
         | impl | what | n | lost p50/p99/max | gap ms p50/p99/max | dup | answered at window end | moved | two-holder in window: trials / longest ms | in repair: trials / longest ms |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        sc.number(),
        o.window.as_millis(),
        o.advert_cs / 100,
        o.advert_cs % 100,
    );
    for &imp in &o.impls {
        if sc == Scenario::MgmtPartition && imp == Impl::Keepalived {
            s.push_str(&format!(
                "| {imp} | no counterpart | – | n/a | n/a | n/a | n/a | n/a | n/a | n/a |\n"
            ));
            continue;
        }
        let rs: Vec<&Trial> = results
            .iter()
            .filter(|r| r.scenario == sc && r.imp == imp)
            .collect();
        if rs.is_empty() {
            continue;
        }
        let lost: Vec<f64> = rs
            .iter()
            .flat_map(|r| [r.v4.lost as f64, r.v6.lost as f64])
            .collect();
        let gap: Vec<f64> = rs.iter().flat_map(|r| [r.v4.gap_ms, r.v6.gap_ms]).collect();
        let three = |v: &[f64], p: usize| {
            format!(
                "{:.p$} / {:.p$} / {:.p$}",
                percentile(v, 50.0),
                percentile(v, 99.0),
                percentile(v, 100.0)
            )
        };
        let two = |in_window: bool| {
            let with = rs
                .iter()
                .filter(|r| !r.two_holder_ms(in_window).is_empty())
                .count();
            let longest = rs
                .iter()
                .flat_map(|r| r.two_holder_ms(in_window))
                .fold(0.0, f64::max);
            format!("{with} / {longest:.1}")
        };
        s.push_str(&format!(
            "| {imp} | {} | {} | {} | {} | {} | {} of {} | {} of {} | {} | {} |\n",
            sc.describe(imp),
            rs.len(),
            three(&lost, 0),
            three(&gap, 1),
            rs.iter().map(|r| r.dups).sum::<usize>(),
            rs.iter().filter(|r| r.recovered).count(),
            rs.len(),
            rs.iter().filter(|r| r.moved).count(),
            rs.len(),
            two(true),
            two(false),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{failover::parse_impls, holders::Span, prober::WindowStats};

    #[test]
    fn resets_between_untouched_routers() {
        let logs = [
            // r1's own log and sessions do not count
            "x <RMT> r2: Received: Cease\n".to_string(),
            "a <RMT> r1: Received: Cease\nb <RMT> r3: Received: Cease\nc <RMT> r3: Received: Cease\n"
                .to_string(),
            "d <RMT> r2: Received: Cease\ne <INFO> Shutting down\nf <RMT> r2: Received: Cease\n"
                .to_string(),
        ];
        assert_eq!(
            untouched_resets(&logs),
            3,
            "two at r2 from r3, one at r3 from r2 before its shutdown"
        );
        assert_eq!(untouched_resets(&[]), 0);
    }

    #[test]
    fn parse_impls_and_scenarios() {
        assert_eq!(parse_impls("both"), Ok(vec![Impl::Evpn, Impl::Keepalived]));
        assert_eq!(parse_impls("keepalived"), Ok(vec![Impl::Keepalived]));
        assert!(parse_impls("vrrp").is_err());
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_number(s.number()), Ok(s));
        }
        assert!(Scenario::from_number(6).is_err(), "6 is the VPP lab's");
    }

    #[test]
    fn table_reports_both_sides_and_na() {
        let w = WindowStats {
            lost: 3,
            sent: 10,
            gap_ms: 4.0,
        };
        let t = |imp, two: Vec<Span>| Trial {
            imp,
            scenario: Scenario::MgmtPartition,
            v4: w,
            v6: w,
            dups: 1,
            recovered: true,
            moved: false,
            r2_held: false,
            two_holder: two,
            window_end: 2000,
            moved_after_repair: 0,
        };
        let o = BenchOpts {
            impls: vec![Impl::Evpn, Impl::Keepalived],
            scenarios: vec![Scenario::MgmtPartition],
            trials: 2,
            window: Duration::from_millis(1000),
            advert_cs: 1,
            evpn_auto: true,
        };
        let s = table(
            &[t(Impl::Evpn, vec![]), t(Impl::Evpn, vec![(500, 2500)])],
            Scenario::MgmtPartition,
            &o,
        );
        assert!(s.contains("| evpn | management partition between evpnr and the primary | 2 | 3 / 3 / 3 | 4.0 / 4.0 / 4.0 | 2 | 2 of 2 | 0 of 2 | 1 / 1.5 | 1 / 0.5 |"), "{s}");
        assert!(s.contains("| keepalived | no counterpart |"), "{s}");
        assert!(s.contains("advert_int 0.01 s"), "{s}");
    }
}
