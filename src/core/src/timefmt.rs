//! Timestamps: parsing what feeders send, formatting what the API answers. Internally a
//! timestamp is milliseconds since the Unix epoch (UTC).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Numbers at or above this are taken as milliseconds, below as seconds. 1e11 s is the
/// year 5138, 1e11 ms is 1973: no real feeder is ambiguous around it.
const MILLIS_THRESHOLD: f64 = 1e11;

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimestampError {
    #[error(
        "not an RFC 3339 timestamp (like 2026-11-27T10:00:00Z) nor unix seconds or milliseconds"
    )]
    Unparseable,
    #[error("not a finite number")]
    NotFinite,
}

/// Parses an RFC 3339 string into unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, TimestampError> {
    let dt = OffsetDateTime::parse(s.trim(), &Rfc3339).map_err(|_| TimestampError::Unparseable)?;
    Ok((dt.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Interprets a number as unix seconds or milliseconds (see [`MILLIS_THRESHOLD`]).
pub fn number_to_ms(n: f64) -> Result<i64, TimestampError> {
    if !n.is_finite() {
        return Err(TimestampError::NotFinite);
    }
    if n.abs() >= 1e15 {
        return Err(TimestampError::Unparseable);
    }
    Ok(if n.abs() >= MILLIS_THRESHOLD {
        n.round() as i64
    } else {
        (n * 1000.0).round() as i64
    })
}

/// Formats unix milliseconds as RFC 3339 UTC (`2026-11-27T10:00:00Z`, with millis when set).
pub fn format_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|dt| dt.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_three_forms_to_the_same_instant() {
        let ms = 1_795_000_000_000i64;
        let rfc = format_ms(ms);
        assert_eq!(parse_rfc3339_ms(&rfc).unwrap(), ms);
        assert_eq!(number_to_ms(1_795_000_000.0).unwrap(), ms);
        assert_eq!(number_to_ms(1_795_000_000_000.0).unwrap(), ms);
        assert_eq!(
            parse_rfc3339_ms("2026-11-27T10:00:00+01:00").unwrap(),
            parse_rfc3339_ms("2026-11-27T09:00:00Z").unwrap()
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_rfc3339_ms("yesterday").is_err());
        assert!(parse_rfc3339_ms("2026-13-01T00:00:00Z").is_err());
        assert!(number_to_ms(f64::NAN).is_err());
        assert!(number_to_ms(1e300).is_err());
    }
}
