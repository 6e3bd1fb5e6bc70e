//! History import: CSV or Parquet files → validated samples → new Parquet files in the
//! buffer's date partitions. Rows are validated like ingest (against the buffer's
//! retention instead of ingest's age limit) and rejected rows are reported by line.
//! Idempotent: a sample whose (server, timestamp) the buffer already holds is skipped, so
//! importing the same history twice adds nothing.

use crate::layout;
use crate::parquet_io::{self, numeric_value};
use crate::BufferError;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use nordiq_core::config::Config;
use nordiq_core::ingest::{RecordError, Sample, Validated, Validator};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Rejected rows listed per report at most (all are counted).
const MAX_LISTED: usize = 1000;

/// One rejected field of one row.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRow {
    pub file: PathBuf,
    /// CSV: the line number (the header is line 1). Parquet: the 1-based row.
    pub line: usize,
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    pub files: usize,
    pub rows: usize,
    pub imported: usize,
    /// Valid rows already in the buffer (or repeated in the input): skipped.
    pub duplicates: usize,
    pub rejected_rows: usize,
    pub rejected: Vec<RejectedRow>,
    /// Source columns neither mapped nor in the catalog: ignored.
    pub ignored_columns: Vec<String>,
    pub written_files: Vec<PathBuf>,
}

/// How source columns map to the catalog: `source → metric`. Unmapped columns keep
/// their names; `timestamp`, `server_name` and `profile` are fixed.
pub type ColumnMap = HashMap<String, String>;

fn target_name<'a>(map: &'a ColumnMap, column: &'a str) -> &'a str {
    map.get(column).map(String::as_str).unwrap_or(column)
}

/// Imports `files` into the buffer at `root`.
pub fn import_files(
    root: &Path,
    config: &Config,
    files: &[PathBuf],
    map: &ColumnMap,
    now_ms: i64,
    progress: &mut dyn FnMut(&Path, usize),
) -> Result<ImportReport, BufferError> {
    let mut report = ImportReport::default();
    let mut ignored: HashSet<String> = HashSet::new();
    let mut by_day: BTreeMap<i64, Vec<Sample>> = BTreeMap::new();
    for file in files {
        let history = read_history(file, config, map, now_ms)?;
        report.files += 1;
        report.rows += history.rows;
        report.rejected_rows += history.rejected_rows;
        for r in history.rejected {
            if report.rejected.len() < MAX_LISTED {
                report.rejected.push(r);
            }
        }
        ignored.extend(history.ignored_columns);
        for s in history.samples {
            by_day
                .entry(layout::day_of(s.timestamp_ms))
                .or_default()
                .push(s);
        }
        progress(file, report.rows);
    }
    write_new_samples(root, config, by_day, now_ms, &mut report)?;
    let mut ignored: Vec<String> = ignored.into_iter().collect();
    ignored.sort();
    report.ignored_columns = ignored;
    Ok(report)
}

/// Writes already validated samples (a simulator's backfill, say) into the buffer, one
/// new file per day, skipping every (server, timestamp) the buffer already holds.
pub fn import_samples(
    root: &Path,
    config: &Config,
    samples: Vec<Sample>,
    now_ms: i64,
) -> Result<ImportReport, BufferError> {
    let mut report = ImportReport {
        rows: samples.len(),
        ..ImportReport::default()
    };
    let mut by_day: BTreeMap<i64, Vec<Sample>> = BTreeMap::new();
    for s in samples {
        by_day
            .entry(layout::day_of(s.timestamp_ms))
            .or_default()
            .push(s);
    }
    write_new_samples(root, config, by_day, now_ms, &mut report)?;
    Ok(report)
}

fn write_new_samples(
    root: &Path,
    config: &Config,
    by_day: BTreeMap<i64, Vec<Sample>>,
    now_ms: i64,
    report: &mut ImportReport,
) -> Result<(), BufferError> {
    let metrics: Vec<String> = config.metrics.iter().map(|m| m.name.clone()).collect();
    let stamp = format!("{now_ms}-{}", std::process::id());
    for (day, samples) in by_day {
        let mut seen: HashSet<(String, i64)> = HashSet::new();
        if let Some(p) = layout::partitions(root)?.into_iter().find(|p| p.day == day) {
            for f in &p.files {
                parquet_io::read_samples(f, &[], i64::MIN, i64::MAX, &mut |s| {
                    seen.insert((s.server, s.timestamp_ms));
                })?;
            }
        }
        let mut fresh: Vec<Sample> = Vec::with_capacity(samples.len());
        for s in samples {
            if seen.insert((s.server.clone(), s.timestamp_ms)) {
                fresh.push(s);
            } else {
                report.duplicates += 1;
            }
        }
        if fresh.is_empty() {
            continue;
        }
        report.imported += fresh.len();
        let path = layout::partition_dir(root, day).join(format!("import-{stamp}.parquet"));
        parquet_io::write_samples(&path, &metrics, &mut fresh)?;
        report.written_files.push(path);
    }
    Ok(())
}

/// One file's validated rows.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub rows: usize,
    pub samples: Vec<Sample>,
    pub rejected_rows: usize,
    /// Every rejected field (import lists the first 1,000).
    pub rejected: Vec<RejectedRow>,
    pub ignored_columns: HashSet<String>,
}

/// Reads and validates one CSV or Parquet history file (timestamps up to
/// `buffer.retention_days` old), without touching any buffer.
pub fn read_history(
    file: &Path,
    config: &Config,
    map: &ColumnMap,
    now_ms: i64,
) -> Result<History, BufferError> {
    let validator =
        Validator::new(config, now_ms).with_max_age_days(config.buffer.retention_days as i64);
    let mut validated = Validated::default();
    let mut ignored = HashSet::new();
    let lines = if is_parquet(file)? {
        read_parquet(file, &validator, config, map, &mut validated, &mut ignored)?
    } else {
        read_csv(file, &validator, config, map, &mut validated, &mut ignored)?
    };
    Ok(History {
        rows: validated.records,
        rejected_rows: validated.rejected_records(),
        rejected: validated
            .errors
            .into_iter()
            .map(
                |RecordError {
                     index,
                     field,
                     reason,
                 }| RejectedRow {
                    file: file.to_path_buf(),
                    line: lines(index),
                    field,
                    reason,
                },
            )
            .collect(),
        samples: validated.samples.into_iter().map(|(_, s)| s).collect(),
        ignored_columns: ignored,
    })
}

fn is_parquet(path: &Path) -> Result<bool, BufferError> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(|e| BufferError::io(path, e))?;
    let n = f.read(&mut magic).map_err(|e| BufferError::io(path, e))?;
    Ok(n == 4 && &magic == b"PAR1")
}

/// Reads a CSV file (header row required); returns index → line number.
fn read_csv(
    path: &Path,
    validator: &Validator,
    config: &Config,
    map: &ColumnMap,
    out: &mut Validated,
    ignored: &mut HashSet<String>,
) -> Result<fn(usize) -> usize, BufferError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .map_err(|e| BufferError::Corrupt(format!("{}: {e}", path.display())))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| BufferError::Corrupt(format!("{}: {e}", path.display())))?
        .iter()
        .map(str::to_string)
        .collect();
    let roles: Vec<Role> = headers
        .iter()
        .map(|h| role(h, config, map, ignored))
        .collect();
    for (index, row) in reader.records().enumerate() {
        let mut record = validator.record();
        match row {
            Ok(row) => {
                for (value, role) in row.iter().zip(&roles) {
                    match role {
                        Role::Timestamp => record.timestamp_text(value),
                        Role::Server => record.server(value),
                        Role::Profile => record.profile(value),
                        Role::Metric(name) => {
                            let value = value.trim();
                            if value.is_empty() {
                                record.metric(name, None);
                            } else {
                                match value.parse::<f64>() {
                                    Ok(v) => record.metric(name, Some(v)),
                                    Err(_) => {
                                        record.error(name, format!("`{value}` is not a number"))
                                    }
                                }
                            }
                        }
                        Role::Ignored => {}
                    }
                }
            }
            Err(e) => record.error("(line)", format!("unreadable CSV row: {e}")),
        }
        record.finish(index, out);
    }
    Ok(|index| index + 2)
}

enum Role {
    Timestamp,
    Server,
    Profile,
    Metric(String),
    Ignored,
}

fn role(column: &str, config: &Config, map: &ColumnMap, ignored: &mut HashSet<String>) -> Role {
    match column {
        "timestamp" => Role::Timestamp,
        "server_name" => Role::Server,
        "profile" => Role::Profile,
        other => {
            let target = target_name(map, other);
            if config.metric_index(target).is_some() {
                Role::Metric(target.to_string())
            } else {
                ignored.insert(other.to_string());
                Role::Ignored
            }
        }
    }
}

/// Reads a Parquet file written by NordIQ, pandas/pyarrow, DuckDB or Spark.
fn read_parquet(
    path: &Path,
    validator: &Validator,
    config: &Config,
    map: &ColumnMap,
    out: &mut Validated,
    ignored: &mut HashSet<String>,
) -> Result<fn(usize) -> usize, BufferError> {
    let file = std::fs::File::open(path).map_err(|e| BufferError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| BufferError::parquet(path, e))?
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| BufferError::parquet(path, e))?;
    let mut index = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| BufferError::parquet(path, e))?;
        import_batch(&batch, validator, config, map, out, ignored, &mut index);
    }
    Ok(|index| index + 1)
}

fn text(col: &dyn Array, row: usize) -> Option<String> {
    if col.is_null(row) {
        return None;
    }
    match col.data_type() {
        DataType::Utf8 => Some(col.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Some(col.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Some(col.as_string_view().value(row).to_string()),
        _ => None,
    }
}

fn timestamp_ms(col: &dyn Array, row: usize) -> Option<Result<i64, String>> {
    if col.is_null(row) {
        return None;
    }
    Some(match col.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            Ok(col.as_primitive::<TimestampSecondType>().value(row) * 1000)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Ok(col.as_primitive::<TimestampMillisecondType>().value(row))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Ok(col.as_primitive::<TimestampMicrosecondType>().value(row) / 1000)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            Ok(col.as_primitive::<TimestampNanosecondType>().value(row) / 1_000_000)
        }
        _ => match (numeric_value(col, row), text(col, row)) {
            (Some(n), _) => nordiq_core::timefmt::number_to_ms(n).map_err(|e| e.to_string()),
            (None, Some(t)) => {
                nordiq_core::timefmt::parse_rfc3339_ms(&t).map_err(|e| format!("`{t}`: {e}"))
            }
            _ => Err(format!(
                "unsupported timestamp column type {}",
                col.data_type()
            )),
        },
    })
}

fn import_batch(
    batch: &RecordBatch,
    validator: &Validator,
    config: &Config,
    map: &ColumnMap,
    out: &mut Validated,
    ignored: &mut HashSet<String>,
    index: &mut usize,
) {
    let schema = batch.schema();
    let roles: Vec<Role> = schema
        .fields()
        .iter()
        .map(|f| role(f.name(), config, map, ignored))
        .collect();
    for row in 0..batch.num_rows() {
        let mut record = validator.record();
        for (col, role) in batch.columns().iter().zip(&roles) {
            let col = col.as_ref();
            match role {
                Role::Timestamp => match timestamp_ms(col, row) {
                    Some(Ok(ms)) => record.timestamp_ms(ms),
                    Some(Err(reason)) => record.error("timestamp", reason),
                    None => {}
                },
                Role::Server => match text(col, row) {
                    Some(s) => record.server(&s),
                    None => record.error("server_name", "missing or not a string".into()),
                },
                Role::Profile => record.profile(&text(col, row).unwrap_or_default()),
                Role::Metric(name) => match (col.is_null(row), numeric_value(col, row)) {
                    (true, _) => record.metric(name, None),
                    (false, Some(v)) => record.metric(name, Some(v)),
                    (false, None) => record.error(
                        name,
                        format!("column type {} is not numeric", col.data_type()),
                    ),
                },
                Role::Ignored => {}
            }
        }
        record.finish(*index, out);
        *index += 1;
    }
}
