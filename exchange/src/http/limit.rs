//! Rate limits per principal, and per subject of a verification (GCRA, from the governor
//! crate that tower_governor wraps).
//!
//! Applied after authentication, inside the audited call, so a refused call is answered in
//! the exchange's error envelope with `Retry-After` and recorded like every decision.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Per-principal request budget.
#[derive(Debug)]
pub struct Limiter {
    inner: Option<DefaultKeyedRateLimiter<String>>,
}

impl Limiter {
    /// `per_second` sustained, `burst` at once; `per_second == 0`: no limit.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let inner = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self { inner }
    }

    /// `per_minute` sustained per key, `burst` at once; `per_minute == 0`: no limit.
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        let inner = NonZeroU32::new(per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        Self { inner }
    }

    /// Forgets keys whose budget is full again (their state would say nothing more), so the
    /// keys of one-off callers or subjects do not pile up.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.inner {
            l.retain_recent();
        }
    }

    /// Whether `key` (a principal, or a verification's subject) may make another call now.
    pub fn allows(&self, key: &str) -> bool {
        match &self.inner {
            None => true,
            Some(l) => l.check_key(&key.to_owned()).is_ok(),
        }
    }
}
