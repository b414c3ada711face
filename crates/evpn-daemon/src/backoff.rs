//! The one retry back-off of the product: exponential from `base`, capped at
//! `cap`, with ±25 % jitter so a fleet does not retry in lock step.
use std::time::Duration;

use rand::Rng;

/// Delay before retry number `n` (0-based) with jitter `j` in -1.0..=1.0.
pub fn delay(base: Duration, cap: Duration, n: u32, j: f64) -> Duration {
    let exp = base.as_secs_f64() * 2f64.powi(n.min(30) as i32);
    Duration::from_secs_f64(exp.min(cap.as_secs_f64()) * (1.0 + 0.25 * j.clamp(-1.0, 1.0)))
}

/// [`delay`] with a random jitter.
pub fn jittered(base: Duration, cap: Duration, n: u32) -> Duration {
    delay(base, cap, n, rand::rng().random_range(-1.0..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_jitters() {
        let (b, c) = (Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(delay(b, c, 0, 0.0), b);
        assert_eq!(delay(b, c, 1, 0.0), Duration::from_secs(1));
        assert_eq!(delay(b, c, 20, 0.0), c);
        assert_eq!(delay(b, c, u32::MAX, 0.0), c);
        assert!(delay(b, c, 3, 1.0) > delay(b, c, 3, 0.0));
        assert!(delay(b, c, 3, -1.0) < delay(b, c, 3, 0.0));
        for n in 0..40 {
            let d = jittered(b, c, n);
            assert!(d >= b.mul_f64(0.75) && d <= c.mul_f64(1.25), "{n}: {d:?}");
        }
    }
}
