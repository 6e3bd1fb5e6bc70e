//! Ingest validation: request bodies (the original flat records, as a JSON batch or as
//! NDJSON) to validated samples, with every bad record's index, field and reason.
//!
//! Records are decoded straight into catalog-indexed arrays through a `DeserializeSeed`, so a
//! record costs one small allocation (its values) plus its server name.

use crate::config::{infer_profile, Config, UnknownMetricPolicy};
use crate::timefmt;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

/// Longest accepted server name.
pub const MAX_SERVER_NAME_LEN: usize = 128;
/// 2000-01-01T00:00:00Z: anything earlier is not a real sample.
const EARLIEST_PLAUSIBLE_MS: i64 = 946_684_800_000;
/// Marker a non-finite JSON literal is rewritten to (see [`rewrite_nonfinite_literals`]).
const NONFINITE_MARKER: &str = "\u{0}nonfinite:";

/// One validated sample: one server at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub server: String,
    /// Given by the record, else inferred from the name.
    pub profile: String,
    /// One value per catalog metric, in catalog order; NaN where the record had none.
    pub values: Vec<f32>,
}

/// Why one field of one record was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    /// 0-based position of the record in the batch (for NDJSON: line number − 1).
    pub index: usize,
    pub field: String,
    pub reason: String,
}

/// The outcome of validating one request body.
#[derive(Debug, Default)]
pub struct Validated {
    /// Good samples with their record index, in batch order.
    pub samples: Vec<(usize, Sample)>,
    pub errors: Vec<RecordError>,
    pub records: usize,
}

impl Validated {
    /// Records with at least one bad field (a record can carry several errors).
    pub fn rejected_records(&self) -> usize {
        let bad: std::collections::HashSet<usize> = self.errors.iter().map(|e| e.index).collect();
        bad.len()
    }
}

/// A body that cannot be read as records at all (as opposed to bad records inside it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    #[error("body is not JSON of the form {{\"records\": [...]}}: {0}")]
    Json(String),
    #[error("batch has {got} records, more than ingest.max_records_per_request = {max}")]
    TooManyRecords { got: usize, max: usize },
}

/// What validation needs from the config, with the catalog indexed for fast lookup and
/// profile inference cached per server name (a batch repeats its servers many times).
pub struct Validator<'a> {
    config: &'a Config,
    now_ms: i64,
    metric_index: HashMap<&'a str, usize>,
    inferred: RefCell<HashMap<String, String>>,
    max_age_days: i64,
}

impl<'a> Validator<'a> {
    pub fn new(config: &'a Config, now_ms: i64) -> Self {
        Validator {
            config,
            now_ms,
            metric_index: config
                .metrics
                .iter()
                .enumerate()
                .map(|(i, m)| (m.name.as_str(), i))
                .collect(),
            inferred: RefCell::new(HashMap::new()),
            max_age_days: config.ingest.max_age_days,
        }
    }

    /// Accepts samples up to `days` old (history imports use the buffer's retention).
    pub fn with_max_age_days(mut self, days: i64) -> Self {
        self.max_age_days = days;
        self
    }

    /// Starts a record from separately parsed fields (CSV or Parquet rows).
    pub fn record(&self) -> RecordBuilder<'_, 'a> {
        RecordBuilder {
            validator: self,
            raw: RawRecord {
                timestamp: None,
                server_name: None,
                profile: None,
                values: vec![f32::NAN; self.config.metrics.len()],
                errors: Vec::new(),
            },
        }
    }

    fn infer_profile(&self, server: &str) -> String {
        if let Some(p) = self.inferred.borrow().get(server) {
            return p.clone();
        }
        let p = infer_profile(
            &self.config.profiles,
            server,
            &self.config.ingest.default_profile,
        )
        .to_string();
        self.inferred
            .borrow_mut()
            .insert(server.to_string(), p.clone());
        p
    }

    /// Validates a JSON body: `{"records": [...]}` (other top-level keys are ignored) or a
    /// bare array of records.
    pub fn json_batch(&self, body: &[u8]) -> Result<Validated, BodyError> {
        let mut out = Validated::default();
        let parsed = {
            let mut de = serde_json::Deserializer::from_slice(body);
            BatchSeed {
                validator: self,
                out: &mut out,
            }
            .deserialize(&mut de)
            .and_then(|_| de.end())
        };
        match parsed {
            Ok(()) => Ok(out),
            Err(e) => {
                // Python's json module writes NaN/Infinity as bare literals; give those a
                // per-record answer instead of failing the whole body.
                if let Some(rewritten) = rewrite_nonfinite_literals(body) {
                    return self.json_batch(&rewritten);
                }
                if let Some(limit) = too_many(&e) {
                    return Err(limit);
                }
                Err(BodyError::Json(e.to_string()))
            }
        }
    }

    /// Validates NDJSON: one record per line; blank lines are skipped but still counted,
    /// so `index + 1` is always the line number.
    pub fn ndjson(&self, body: &[u8]) -> Result<Validated, BodyError> {
        let mut out = Validated::default();
        let max = self.config.ingest.max_records_per_request;
        for (index, line) in body.split(|b| *b == b'\n').enumerate() {
            let line = trim_ascii(line);
            if line.is_empty() {
                continue;
            }
            out.records += 1;
            if out.records > max {
                return Err(BodyError::TooManyRecords {
                    got: out.records,
                    max,
                });
            }
            let rewritten;
            let mut line = line;
            let mut parsed = self.record_from_slice(line, index, &mut out);
            if parsed.is_err() {
                if let Some(r) = rewrite_nonfinite_literals(line) {
                    rewritten = r;
                    line = &rewritten;
                    parsed = self.record_from_slice(line, index, &mut out);
                }
            }
            if let Err(e) = parsed {
                out.errors.push(RecordError {
                    index,
                    field: "(line)".into(),
                    reason: format!("not a JSON record: {e}"),
                });
            }
        }
        Ok(out)
    }

    fn record_from_slice(
        &self,
        line: &[u8],
        index: usize,
        out: &mut Validated,
    ) -> Result<(), serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(line);
        let raw = RecordSeed { validator: self }.deserialize(&mut de)?;
        de.end()?;
        self.finish(raw, index, out);
        Ok(())
    }

    /// Turns a decoded record into a sample or errors.
    fn finish(&self, raw: RawRecord, index: usize, out: &mut Validated) {
        let mut errors = raw.errors;
        let timestamp_ms = match raw.timestamp {
            None => {
                errors.push(("timestamp".into(), "missing".into()));
                None
            }
            Some(Err(reason)) => {
                errors.push(("timestamp".into(), reason));
                None
            }
            Some(Ok(ms)) => match self.check_time(ms) {
                Ok(()) => Some(ms),
                Err(reason) => {
                    errors.push(("timestamp".into(), reason.to_string()));
                    None
                }
            },
        };
        let server = match raw.server_name {
            None => {
                errors.push(("server_name".into(), "missing".into()));
                None
            }
            Some(Err(reason)) => {
                errors.push(("server_name".into(), reason));
                None
            }
            Some(Ok(name)) => match check_server_name(&name) {
                Ok(()) => Some(name),
                Err(reason) => {
                    errors.push(("server_name".into(), reason.to_string()));
                    None
                }
            },
        };
        let profile = match raw.profile {
            Some(Ok(p)) if self.config.profiles.iter().any(|d| d.name == p) => Some(p),
            Some(Ok(p)) => {
                errors.push(("profile".into(), format!("unknown profile `{p}`")));
                None
            }
            Some(Err(reason)) => {
                errors.push(("profile".into(), reason));
                None
            }
            None => None,
        };
        if errors.is_empty() && raw.values.iter().all(|v| v.is_nan()) {
            errors.push((
                "(record)".into(),
                "carries no metric values from the catalog".into(),
            ));
        }
        if errors.is_empty() {
            if let (Some(timestamp_ms), Some(server)) = (timestamp_ms, server) {
                let profile = profile.unwrap_or_else(|| self.infer_profile(&server));
                out.samples.push((
                    index,
                    Sample {
                        timestamp_ms,
                        server,
                        profile,
                        values: raw.values,
                    },
                ));
                return;
            }
        }
        out.errors
            .extend(errors.into_iter().map(|(field, reason)| RecordError {
                index,
                field,
                reason,
            }));
    }

    fn check_time(&self, ms: i64) -> Result<(), FieldProblem> {
        let ingest = &self.config.ingest;
        let at = || timefmt::format_ms(ms);
        if ms < EARLIEST_PLAUSIBLE_MS {
            return Err(FieldProblem::Implausible(at()));
        }
        if ms > self.now_ms + ingest.max_future_seconds * 1000 {
            return Err(FieldProblem::Future(at(), ingest.max_future_seconds));
        }
        if ms < self.now_ms - self.max_age_days * 86_400_000 {
            return Err(FieldProblem::TooOld(at(), self.max_age_days));
        }
        Ok(())
    }

    fn metric_value(&self, index: usize, value: FieldValue) -> Result<f32, FieldProblem> {
        let def = &self.config.metrics[index];
        match value {
            FieldValue::Null => Ok(f32::NAN),
            FieldValue::Number(v) if !v.is_finite() => Err(FieldProblem::NotFinite(v.to_string())),
            FieldValue::NonFinite(literal) => Err(FieldProblem::NotFinite(literal.to_string())),
            FieldValue::Number(v) if v < def.min || v > def.max => {
                Err(FieldProblem::OutOfRange(v, def.min, def.max))
            }
            FieldValue::Number(v) => Ok(v as f32),
            FieldValue::Other(kind) => Err(FieldProblem::NotANumber(kind.to_string())),
        }
    }
}

fn too_many(e: &serde_json::Error) -> Option<BodyError> {
    let msg = e.to_string();
    let rest = msg.strip_prefix("too many records: ")?;
    let (got, max) = rest.split_once('/')?;
    let max = max.split_whitespace().next()?;
    Some(BodyError::TooManyRecords {
        got: got.parse().ok()?,
        max: max.parse().ok()?,
    })
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Checks a server name: 1–128 characters of letters, digits, `.`, `_`, `-`, `:`.
pub fn check_server_name(name: &str) -> Result<(), FieldProblem> {
    if name.is_empty() {
        return Err(FieldProblem::Empty);
    }
    if name.len() > MAX_SERVER_NAME_LEN {
        return Err(FieldProblem::TooLong(MAX_SERVER_NAME_LEN));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
    {
        return Err(FieldProblem::Character(c));
    }
    Ok(())
}

/// Why one field of a record was refused (the `reason` of its [`RecordError`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldProblem {
    #[error("{0} is before 2000-01-01: not a plausible sample time")]
    Implausible(String),
    #[error("{0} is more than {1} s in the future (check the feeder's clock)")]
    Future(String, i64),
    #[error("{0} is older than {1} days (ingest.max_age_days; buffer.retention_days for imports)")]
    TooOld(String, i64),
    #[error("{0} is not finite")]
    NotFinite(String),
    #[error("{0} is outside the catalog range [{1}, {2}]")]
    OutOfRange(f64, f64, f64),
    #[error("expected a number or null, got {0}")]
    NotANumber(String),
    #[error("empty")]
    Empty,
    #[error("longer than {0} characters")]
    TooLong(usize),
    #[error("character {0:?} not allowed (letters, digits, . _ - : only)")]
    Character(char),
}

/// Rewrites bare `NaN`, `Infinity` and `-Infinity` outside strings to marker strings, so
/// the record decoder can name the field. None when there is nothing to rewrite.
pub fn rewrite_nonfinite_literals(body: &[u8]) -> Option<Vec<u8>> {
    const LITERALS: [&[u8]; 3] = [b"-Infinity", b"Infinity", b"NaN"];
    let mut out = Vec::with_capacity(body.len() + 64);
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            out.push(b);
            i += 1;
            continue;
        }
        if let Some(lit) = LITERALS.iter().find(|l| body[i..].starts_with(l)) {
            out.push(b'"');
            out.extend_from_slice(NONFINITE_MARKER.replace('\0', "\\u0000").as_bytes());
            out.extend_from_slice(lit);
            out.push(b'"');
            i += lit.len();
            changed = true;
            continue;
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

/// A record assembled field by field, validated like a JSON record by [`RecordBuilder::finish`].
pub struct RecordBuilder<'v, 'c> {
    validator: &'v Validator<'c>,
    raw: RawRecord,
}

impl RecordBuilder<'_, '_> {
    /// A timestamp as text: RFC 3339, or a number of unix seconds or milliseconds.
    pub fn timestamp_text(&mut self, text: &str) {
        let text = text.trim();
        self.raw.timestamp = Some(match text.parse::<f64>() {
            Ok(n) => timefmt::number_to_ms(n).map_err(|e| format!("{text}: {e}")),
            Err(_) => timefmt::parse_rfc3339_ms(text).map_err(|e| format!("`{text}`: {e}")),
        });
    }

    pub fn timestamp_ms(&mut self, ms: i64) {
        self.raw.timestamp = Some(Ok(ms));
    }

    pub fn server(&mut self, name: &str) {
        self.raw.server_name = Some(Ok(name.to_string()));
    }

    /// An empty profile means "infer it".
    pub fn profile(&mut self, profile: &str) {
        if !profile.is_empty() {
            self.raw.profile = Some(Ok(profile.to_string()));
        }
    }

    /// A metric value; `None` is "not measured". Unknown names follow
    /// `ingest.unknown_metrics`.
    pub fn metric(&mut self, name: &str, value: Option<f64>) {
        let v = self.validator;
        match v.metric_index.get(name).copied() {
            Some(i) => {
                let value = value.map(FieldValue::Number).unwrap_or(FieldValue::Null);
                match v.metric_value(i, value) {
                    Ok(x) => self.raw.values[i] = x,
                    Err(reason) => self.raw.errors.push((name.to_string(), reason.to_string())),
                }
            }
            None if v.config.ingest.unknown_metrics == UnknownMetricPolicy::Reject => {
                self.raw.errors.push((
                    name.to_string(),
                    "unknown metric (not in the catalog)".into(),
                ))
            }
            None => {}
        }
    }

    /// A field that could not be read at all.
    pub fn error(&mut self, field: &str, reason: String) {
        self.raw.errors.push((field.to_string(), reason));
    }

    /// Validates the record as record `index` of `out`.
    pub fn finish(self, index: usize, out: &mut Validated) {
        out.records += 1;
        self.validator.finish(self.raw, index, out);
    }
}

/// A record as decoded, before cross-field checks.
struct RawRecord {
    timestamp: Option<Result<i64, String>>,
    server_name: Option<Result<String, String>>,
    profile: Option<Result<String, String>>,
    values: Vec<f32>,
    errors: Vec<(String, String)>,
}

/// A field's JSON value, reduced to what validation distinguishes.
enum FieldValue {
    Number(f64),
    Null,
    NonFinite(String),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FieldValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_f64<E>(self, v: f64) -> Result<FieldValue, E> {
                Ok(FieldValue::Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<FieldValue, E> {
                Ok(FieldValue::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<FieldValue, E> {
                Ok(FieldValue::Number(v as f64))
            }
            fn visit_unit<E>(self) -> Result<FieldValue, E> {
                Ok(FieldValue::Null)
            }
            fn visit_none<E>(self) -> Result<FieldValue, E> {
                Ok(FieldValue::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<FieldValue, E> {
                Ok(FieldValue::Other("a boolean"))
            }
            fn visit_str<E>(self, v: &str) -> Result<FieldValue, E> {
                Ok(match v.strip_prefix(NONFINITE_MARKER) {
                    Some(lit) => FieldValue::NonFinite(lit.to_string()),
                    None => FieldValue::Other("a string"),
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<FieldValue, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FieldValue::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<FieldValue, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FieldValue::Other("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A timestamp field: a string (RFC 3339) or a number (unix s or ms).
struct TimestampValue(Result<i64, String>);

impl<'de> Deserialize<'de> for TimestampValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = FieldValueOrString::deserialize(d)?;
        Ok(TimestampValue(match v {
            FieldValueOrString::Str(s) => {
                timefmt::parse_rfc3339_ms(&s).map_err(|e| format!("`{s}`: {e}"))
            }
            FieldValueOrString::Value(FieldValue::Number(n)) => {
                timefmt::number_to_ms(n).map_err(|e| format!("{n}: {e}"))
            }
            FieldValueOrString::Value(FieldValue::NonFinite(l)) => {
                Err(format!("{l} is not finite"))
            }
            FieldValueOrString::Value(FieldValue::Null) => Err("null".into()),
            FieldValueOrString::Value(FieldValue::Other(kind)) => {
                Err(format!("expected a string or number, got {kind}"))
            }
        }))
    }
}

/// A string field (server_name, profile).
struct StringValue(Result<String, String>);

impl<'de> Deserialize<'de> for StringValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(StringValue(match FieldValueOrString::deserialize(d)? {
            FieldValueOrString::Str(s) => Ok(s.into_owned()),
            FieldValueOrString::Value(FieldValue::Null) => Err("null".into()),
            FieldValueOrString::Value(_) => Err("expected a string".into()),
        }))
    }
}

enum FieldValueOrString<'a> {
    Str(Cow<'a, str>),
    Value(FieldValue),
}

impl<'de> Deserialize<'de> for FieldValueOrString<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FieldValueOrString<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(match v.strip_prefix(NONFINITE_MARKER) {
                    Some(l) => FieldValueOrString::Value(FieldValue::NonFinite(l.into())),
                    None => FieldValueOrString::Str(Cow::Borrowed(v)),
                })
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(match v.strip_prefix(NONFINITE_MARKER) {
                    Some(l) => FieldValueOrString::Value(FieldValue::NonFinite(l.into())),
                    None => FieldValueOrString::Str(Cow::Owned(v.to_string())),
                })
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(FieldValueOrString::Value(FieldValue::Number(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(FieldValueOrString::Value(FieldValue::Number(v as f64)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(FieldValueOrString::Value(FieldValue::Number(v as f64)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(FieldValueOrString::Value(FieldValue::Null))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(FieldValueOrString::Value(FieldValue::Other("a boolean")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FieldValueOrString::Value(FieldValue::Other("an array")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FieldValueOrString::Value(FieldValue::Other("an object")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A map key, borrowed when the JSON has no escapes in it.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

struct RecordSeed<'v, 'c> {
    validator: &'v Validator<'c>,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_> {
    type Value = RawRecord;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RawRecord, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, '_> {
    type Value = RawRecord;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRecord, A::Error> {
        let v = self.validator;
        let config = v.config;
        let mut rec = RawRecord {
            timestamp: None,
            server_name: None,
            profile: None,
            values: vec![f32::NAN; config.metrics.len()],
            errors: Vec::new(),
        };
        while let Some(Key(key)) = map.next_key::<Key>()? {
            match key.as_ref() {
                "timestamp" => rec.timestamp = Some(map.next_value::<TimestampValue>()?.0),
                "server_name" => rec.server_name = Some(map.next_value::<StringValue>()?.0),
                "profile" => {
                    let p = map.next_value::<StringValue>()?.0;
                    // `"profile": null` means "infer it".
                    if !matches!(&p, Err(reason) if reason == "null") {
                        rec.profile = Some(p);
                    }
                }
                name => match v.metric_index.get(name).copied() {
                    Some(i) => {
                        let value = map.next_value::<FieldValue>()?;
                        match v.metric_value(i, value) {
                            Ok(x) => rec.values[i] = x,
                            Err(reason) => rec.errors.push((name.to_string(), reason.to_string())),
                        }
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                        if config.ingest.unknown_metrics == UnknownMetricPolicy::Reject {
                            rec.errors.push((
                                name.to_string(),
                                "unknown metric (not in the catalog; set ingest.unknown_metrics = \"ignore\" to drop such fields)".into(),
                            ));
                        }
                    }
                },
            }
        }
        Ok(rec)
    }
}

struct BatchSeed<'v, 'c, 'o> {
    validator: &'v Validator<'c>,
    out: &'o mut Validated,
}

impl<'de> DeserializeSeed<'de> for BatchSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BatchSeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with a \"records\" array, or an array of records")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(Key(key)) = map.next_key::<Key>()? {
            if key == "records" {
                seen = true;
                map.next_value_seed(RecordsSeed {
                    validator: self.validator,
                    out: &mut *self.out,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !seen {
            return Err(de::Error::missing_field("records"));
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        RecordsSeed {
            validator: self.validator,
            out: self.out,
        }
        .visit_seq(seq)
    }
}

struct RecordsSeed<'v, 'c, 'o> {
    validator: &'v Validator<'c>,
    out: &'o mut Validated,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of record objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let max = self.validator.config.ingest.max_records_per_request;
        let mut index = 0;
        loop {
            if index >= max {
                // One more element means the batch is over the limit.
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(format!(
                        "too many records: {}/{} max",
                        index + 1,
                        max
                    )));
                }
                break;
            }
            let Some(raw) = seq.next_element_seed(RecordSeed {
                validator: self.validator,
            })?
            else {
                break;
            };
            self.out.records += 1;
            self.validator.finish(raw, index, self.out);
            index += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
