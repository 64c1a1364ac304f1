//! Failed-login limits per account and per remote address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys remembered; past this, expired entries are dropped, then the oldest.
const MAX_KEYS: usize = 100_000;

/// Counts failed logins in a sliding window. Both limits come from config.
pub struct AuthLimiter {
    per_account: u32,
    per_ip: u32,
    window: Duration,
    state: Mutex<HashMap<Key, (u32, Instant)>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Ip(IpAddr),
}

impl AuthLimiter {
    pub fn new(per_account: u32, per_ip: u32, window: Duration) -> Self {
        AuthLimiter {
            per_account,
            per_ip,
            window,
            state: Mutex::new(HashMap::new()),
        }
    }

    fn over(&self, key: &Key, limit: u32) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.get(key) {
            Some((n, since)) => *n >= limit && since.elapsed() < self.window,
            None => false,
        }
    }

    /// Whether this address may try to log in now.
    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        !self.over(&Key::Ip(ip), self.per_ip)
    }

    /// Whether this account may be tried now (`account` is `user@domain`).
    pub fn account_allowed(&self, account: &str) -> bool {
        !self.over(&Key::Account(account.to_owned()), self.per_account)
    }

    pub fn record_failure(&self, ip: IpAddr, account: Option<&str>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.len() >= MAX_KEYS {
            let window = self.window;
            state.retain(|_, (_, since)| since.elapsed() < window);
            if state.len() >= MAX_KEYS
                && let Some(oldest) = state
                    .iter()
                    .min_by_key(|(_, (_, t))| *t)
                    .map(|(k, _)| k.clone())
            {
                state.remove(&oldest);
            }
        }
        let now = Instant::now();
        let mut bump = |k: Key| {
            let e = state.entry(k).or_insert((0, now));
            if e.1.elapsed() >= self.window {
                *e = (0, now);
            }
            e.0 += 1;
        };
        bump(Key::Ip(ip));
        if let Some(a) = account {
            bump(Key::Account(a.to_owned()));
        }
    }

    /// A successful login clears the account's count (not the address's: many users share a NAT).
    pub fn record_success(&self, account: &str) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Key::Account(account.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_account_and_ip() {
        let l = AuthLimiter::new(2, 3, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let other: IpAddr = "127.0.0.2".parse().expect("ip");
        assert!(l.account_allowed("a@x") && l.ip_allowed(ip));
        l.record_failure(ip, Some("a@x"));
        l.record_failure(ip, Some("a@x"));
        assert!(!l.account_allowed("a@x"));
        assert!(l.ip_allowed(ip));
        l.record_failure(ip, Some("b@x"));
        assert!(!l.ip_allowed(ip));
        assert!(l.ip_allowed(other));
        l.record_success("a@x");
        assert!(l.account_allowed("a@x"));
    }

    #[test]
    fn window_expires() {
        let l = AuthLimiter::new(1, 100, Duration::from_millis(0));
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        l.record_failure(ip, Some("a@x"));
        assert!(l.account_allowed("a@x"));
    }
}
