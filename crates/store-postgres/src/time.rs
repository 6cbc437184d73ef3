//! Times as the driver binds them: the span PostgreSQL keeps (years 1 to 9999), and
//! `browser_idle` as milliseconds for SQL interval arithmetic.

use std::time::{Duration, SystemTime};

use sessionbank_core::{Error, ErrorKind, Operation, Result, Timestamp};

use crate::error::BACKEND;

/// The earliest time stored: 0001-01-01T00:00:00Z.
const MIN_MILLIS: i64 = -62_135_596_800_000;
/// The latest time stored: 9999-12-31T23:59:59.999Z.
const MAX_MILLIS: i64 = 253_402_300_799_999;

/// A time as the driver binds it, clamped to years 1–9999 (a deadline that saturated, say with
/// a huge `browser_idle`, becomes 9999-12-31; the driver would overflow far beyond).
pub(crate) fn st(t: Timestamp) -> SystemTime {
    Timestamp::from_millis(t.as_millis().clamp(MIN_MILLIS, MAX_MILLIS)).to_system_time()
}

/// A time as the driver reads it.
pub(crate) fn ts(t: SystemTime) -> Timestamp {
    Timestamp::from_system_time(t)
}

/// Refuses a time the caller gave outside years 1–9999, rather than storing another one.
pub(crate) fn check_times(operation: Operation, times: &[Option<Timestamp>]) -> Result<()> {
    if times
        .iter()
        .flatten()
        .all(|t| (MIN_MILLIS..=MAX_MILLIS).contains(&t.as_millis()))
    {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        operation,
        "a session time lies outside the years 1 to 9999, which the PostgreSQL store keeps",
    )
    .with_backend(BACKEND))
}

/// A `browser_idle` in milliseconds for SQL interval arithmetic, capped at 1,000 years so that
/// `now() + browser_idle` stays within PostgreSQL's range.
pub(crate) fn millis(d: Duration) -> i64 {
    const THOUSAND_YEARS: i64 = 1000 * 365 * 86_400_000;
    i64::try_from(d.as_millis())
        .unwrap_or(i64::MAX)
        .min(THOUSAND_YEARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_clamped_and_checked() {
        let far = Timestamp::from_millis(i64::MAX);
        assert_eq!(ts(st(far)).as_millis(), MAX_MILLIS);
        assert!(check_times(Operation::Set, &[None, Some(Timestamp::now())]).is_ok());
        let err = check_times(Operation::Set, &[Some(far)]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(millis(Duration::MAX), 1000 * 365 * 86_400_000);
    }
}
