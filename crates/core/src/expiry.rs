//! Expiry policy: idle and absolute timeouts together, and when a touch is due.

use std::time::Duration;

use crate::record::Record;
use crate::time::Timestamp;

/// How long a browser session (no expiry) lives after its last access unless configured
/// otherwise: one day, as connect-redis does for sessions without `maxAge`.
pub const DEFAULT_BROWSER_IDLE: Duration = Duration::from_secs(24 * 60 * 60);

/// When sessions expire: an idle timeout (renewed by activity) and an absolute timeout (counted
/// from creation, never renewed), either or both. With neither, sessions are browser sessions:
/// no expiry is stored, and the store forgets them after its `browser_idle`.
///
/// A session's expiry is `min(last activity + idle, created + absolute)`. To avoid a write per
/// request, activity that changes nothing is recorded (a `touch`) only when less than
/// `touch_below` of the idle timeout remains.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_core::{ExpiryPolicy, Record, Timestamp};
///
/// let policy = ExpiryPolicy::new()
///     .idle(Duration::from_secs(30 * 60))
///     .absolute(Duration::from_secs(8 * 3600));
/// let now = Timestamp::from_millis(0);
/// let record = Record::new(now);
/// assert_eq!(policy.expiry_for(&record, now), Some(now + Duration::from_secs(30 * 60)));
///
/// // Seven hours and fifty minutes later, the absolute timeout caps the idle one.
/// let later = now + Duration::from_secs(7 * 3600 + 50 * 60);
/// assert_eq!(policy.expiry_for(&record, later), Some(now + Duration::from_secs(8 * 3600)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpiryPolicy {
    idle: Option<Duration>,
    absolute: Option<Duration>,
    touch_below: f64,
    browser_touch_every: Duration,
}

impl Default for ExpiryPolicy {
    /// Idle timeout one day, absolute timeout 30 days, touch when less than half the idle
    /// timeout remains.
    fn default() -> Self {
        Self {
            idle: Some(Duration::from_secs(24 * 3600)),
            absolute: Some(Duration::from_secs(30 * 24 * 3600)),
            touch_below: 0.5,
            browser_touch_every: Duration::from_secs(3600),
        }
    }
}

impl ExpiryPolicy {
    /// The default policy (see [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Browser sessions only: no idle or absolute timeout.
    pub fn browser_session() -> Self {
        Self {
            idle: None,
            absolute: None,
            ..Self::default()
        }
    }

    /// Sets the idle timeout.
    #[must_use]
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// Removes the idle timeout.
    #[must_use]
    pub fn no_idle(mut self) -> Self {
        self.idle = None;
        self
    }

    /// Sets the absolute timeout.
    #[must_use]
    pub fn absolute(mut self, absolute: Duration) -> Self {
        self.absolute = Some(absolute);
        self
    }

    /// Removes the absolute timeout.
    #[must_use]
    pub fn no_absolute(mut self) -> Self {
        self.absolute = None;
        self
    }

    /// Touch only when less than this fraction of the idle timeout remains (`0.0..=1.0`;
    /// `1.0` touches on every request, `0.0` never touches).
    #[must_use]
    pub fn touch_below(mut self, fraction: f64) -> Self {
        self.touch_below = fraction.clamp(0.0, 1.0);
        self
    }

    /// For browser sessions: touch when the last access is older than this (default 1 hour),
    /// so the store's `browser_idle` counts from recent activity.
    #[must_use]
    pub fn browser_touch_every(mut self, every: Duration) -> Self {
        self.browser_touch_every = every;
        self
    }

    /// The idle timeout, if any.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle
    }

    /// The absolute timeout, if any.
    pub fn absolute_timeout(&self) -> Option<Duration> {
        self.absolute
    }

    /// The expiry a session created at `record.created_at` gets when active at `now`:
    /// `min(now + idle, created + absolute)`, or `None` for a browser session.
    pub fn expiry_for(&self, record: &Record, now: Timestamp) -> Option<Timestamp> {
        let idle = self.idle.map(|d| now.saturating_add(d));
        let absolute = self.absolute.map(|d| record.created_at.saturating_add(d));
        match (idle, absolute) {
            (Some(i), Some(a)) => Some(i.min(a)),
            (i, a) => i.or(a),
        }
    }

    /// Whether the policy considers the record expired at `now`, even if the store still holds
    /// it (its absolute timeout may be shorter than when the record was written).
    pub fn is_expired(&self, record: &Record, now: Timestamp) -> bool {
        let past_absolute = self
            .absolute
            .is_some_and(|d| record.created_at.saturating_add(d) <= now);
        let past_expiry = record.expires_at.is_some_and(|t| t <= now);
        past_absolute || past_expiry
    }

    /// The expiry a write at `now` should store, or `None` to keep the stored one.
    ///
    /// A request that changes data writes anyway, but it moves the expiry by the same rule as
    /// a [`touch`](Self::needs_touch): only when less than `touch_below` of the idle timeout
    /// remains. So a busy session is not given a new expiry, and the browser a new cookie, on
    /// every request; `touch_below(1.0)` restores that. The expiry also moves when it should
    /// come sooner (a shorter timeout since it was stored) or changes kind (browser session
    /// to dated, or back).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessionbank_core::{ExpiryPolicy, Record, Timestamp};
    ///
    /// let hour = Duration::from_secs(3600);
    /// let policy = ExpiryPolicy::new().idle(10 * hour).no_absolute();
    /// let t0 = Timestamp::from_millis(0);
    /// let mut record = Record::new(t0);
    /// record.expires_at = policy.expiry_for(&record, t0);
    /// assert_eq!(policy.expiry_change(&record, t0 + hour), None); // 9 h of 10 left: keep
    /// assert_eq!(
    ///     policy.expiry_change(&record, t0 + 6 * hour),
    ///     Some(Some(t0 + 16 * hour)) // 4 h left: move
    /// );
    /// ```
    pub fn expiry_change(&self, record: &Record, now: Timestamp) -> Option<Option<Timestamp>> {
        let new = self.expiry_for(record, now);
        match (record.expires_at, new) {
            (None, None) => None,
            (Some(current), Some(next)) if next >= current && !self.needs_touch(record, now) => {
                None
            }
            _ => Some(new),
        }
    }

    /// Whether a request at `now` that changed nothing should still `touch` the session.
    pub fn needs_touch(&self, record: &Record, now: Timestamp) -> bool {
        let Some(new_expiry) = self.expiry_for(record, now) else {
            return now.duration_since(record.last_access) >= self.browser_touch_every;
        };
        let Some(current) = record.expires_at else {
            return true;
        };
        if new_expiry <= current {
            return false; // capped by the absolute timeout, or nothing to gain
        }
        match self.idle {
            Some(idle) => current.duration_since(now) < idle.mul_f64(self.touch_below),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn touch_happens_only_below_the_threshold() {
        let policy = ExpiryPolicy::new().idle(30 * MIN).no_absolute();
        let t0 = Timestamp::from_millis(1_000_000);
        let mut record = Record::new(t0);
        record.expires_at = policy.expiry_for(&record, t0);
        assert!(!policy.needs_touch(&record, t0 + 5 * MIN));
        assert!(!policy.needs_touch(&record, t0 + 14 * MIN));
        assert!(policy.needs_touch(&record, t0 + 16 * MIN));
    }

    #[test]
    fn absolute_timeout_caps_and_expires() {
        let policy = ExpiryPolicy::new().idle(30 * MIN).absolute(60 * MIN);
        let t0 = Timestamp::from_millis(0);
        let mut record = Record::new(t0);
        record.expires_at = policy.expiry_for(&record, t0 + 50 * MIN);
        assert_eq!(record.expires_at, Some(t0 + 60 * MIN));
        assert!(
            !policy.needs_touch(&record, t0 + 55 * MIN),
            "nothing to gain past the cap"
        );
        assert!(!policy.is_expired(&record, t0 + 59 * MIN));
        assert!(policy.is_expired(&record, t0 + 60 * MIN));
    }

    #[test]
    fn a_shortened_absolute_timeout_expires_old_records() {
        let t0 = Timestamp::from_millis(0);
        let mut record = Record::new(t0);
        record.expires_at = Some(t0 + 1000 * MIN);
        let policy = ExpiryPolicy::new().idle(30 * MIN).absolute(60 * MIN);
        assert!(policy.is_expired(&record, t0 + 61 * MIN));
    }

    #[test]
    fn browser_sessions_touch_hourly() {
        let policy = ExpiryPolicy::browser_session();
        let t0 = Timestamp::from_millis(0);
        let record = Record::new(t0);
        assert_eq!(policy.expiry_for(&record, t0), None);
        assert!(!policy.needs_touch(&record, t0 + 59 * MIN));
        assert!(policy.needs_touch(&record, t0 + 61 * MIN));
    }
}
