//! Parquet files of samples: one row per sample (timestamp UTC ms, server_name, profile,
//! one nullable Float32 column per metric), rows sorted by server then time, zstd, strings
//! dictionary-encoded, floats BYTE_STREAM_SPLIT. Each file carries its own stats (rows,
//! time range, rows per server) in the footer's key-value metadata, so stats never scan
//! data. Files appear complete or not at all.

use crate::layout::sync_dir;
use crate::BufferError;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{
    Array, ArrayRef, Float32Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use nordiq_core::ingest::Sample;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub const STATS_KEY: &str = "nordiq.stats";
const ROWS_PER_GROUP: usize = 1 << 20;
const READ_BATCH: usize = 64 * 1024;

/// What a file holds, from its footer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileStats {
    pub rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub per_server: BTreeMap<String, u64>,
}

pub fn schema(metrics: &[String]) -> SchemaRef {
    let mut fields = vec![
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("server_name", DataType::Utf8, false),
        Field::new("profile", DataType::Utf8, false),
    ];
    fields.extend(
        metrics
            .iter()
            .map(|m| Field::new(m, DataType::Float32, true)),
    );
    Arc::new(Schema::new(fields))
}

fn properties(metrics: &[String]) -> Result<WriterProperties, BufferError> {
    let level = ZstdLevel::try_new(3).map_err(|e| BufferError::Corrupt(e.to_string()))?;
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(ROWS_PER_GROUP));
    for m in metrics {
        // Splitting float bytes into streams lets zstd find the repetition in exponents
        // and high mantissa bytes; dictionaries rarely help noisy measurements.
        let col = ColumnPath::from(m.as_str());
        b = b
            .set_column_dictionary_enabled(col.clone(), false)
            .set_column_encoding(col, Encoding::BYTE_STREAM_SPLIT);
    }
    Ok(b.build())
}

/// Writes one Parquet file of samples in chunks, atomically: a temp file in the target
/// directory until [`SampleFileWriter::finish`] fsyncs it, renames it into place and
/// fsyncs the directory. Dropped unfinished, it removes the temp file.
pub struct SampleFileWriter {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    schema: SchemaRef,
    width: usize,
    writer: Option<ArrowWriter<std::fs::File>>,
    stats: FileStats,
}

impl SampleFileWriter {
    pub fn create(path: &Path, metrics: &[String]) -> Result<Self, BufferError> {
        let dir = path
            .parent()
            .ok_or_else(|| BufferError::Corrupt(format!("{} has no directory", path.display())))?;
        std::fs::create_dir_all(dir).map_err(|e| BufferError::io(dir, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = std::fs::File::create(&tmp).map_err(|e| BufferError::io(&tmp, e))?;
        let schema = schema(metrics);
        let writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(properties(metrics)?))
            .map_err(|e| BufferError::parquet(&tmp, e))?;
        Ok(SampleFileWriter {
            path: path.to_path_buf(),
            tmp,
            schema,
            width: metrics.len(),
            writer: Some(writer),
            stats: FileStats {
                min_ts: i64::MAX,
                max_ts: i64::MIN,
                ..FileStats::default()
            },
        })
    }

    /// Writes samples in the order given.
    pub fn write(&mut self, samples: &[Sample]) -> Result<(), BufferError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(BufferError::Corrupt("write after finish".into()));
        };
        for s in samples {
            self.stats.rows += 1;
            self.stats.min_ts = self.stats.min_ts.min(s.timestamp_ms);
            self.stats.max_ts = self.stats.max_ts.max(s.timestamp_ms);
            match self.stats.per_server.get_mut(&s.server) {
                Some(n) => *n += 1,
                None => {
                    self.stats.per_server.insert(s.server.clone(), 1);
                }
            }
        }
        for chunk in samples.chunks(ROWS_PER_GROUP) {
            let batch = to_batch(&self.schema, self.width, chunk)
                .map_err(|e| BufferError::Corrupt(e.to_string()))?;
            writer
                .write(&batch)
                .map_err(|e| BufferError::parquet(&self.tmp, e))?;
        }
        Ok(())
    }

    /// Seals the file: stats into the footer, fsync, rename, fsync of the directory.
    pub fn finish(mut self) -> Result<FileStats, BufferError> {
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| BufferError::Corrupt("finished twice".into()))?;
        if self.stats.rows == 0 {
            self.stats.min_ts = 0;
            self.stats.max_ts = 0;
        }
        let stats_json =
            serde_json::to_string(&self.stats).map_err(|e| BufferError::Corrupt(e.to_string()))?;
        writer.append_key_value_metadata(KeyValue::new(STATS_KEY.to_string(), stats_json));
        let file = writer
            .into_inner()
            .map_err(|e| BufferError::parquet(&self.tmp, e))?;
        file.sync_all().map_err(|e| BufferError::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| BufferError::io(&self.path, e))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        Ok(std::mem::take(&mut self.stats))
    }
}

impl Drop for SampleFileWriter {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Sorts `samples` by (server, time) and writes them to `path` atomically.
pub fn write_samples(
    path: &Path,
    metrics: &[String],
    samples: &mut [Sample],
) -> Result<FileStats, BufferError> {
    samples.sort_by(|a, b| {
        a.server
            .cmp(&b.server)
            .then(a.timestamp_ms.cmp(&b.timestamp_ms))
    });
    let mut writer = SampleFileWriter::create(path, metrics)?;
    writer.write(samples)?;
    writer.finish()
}

fn to_batch(
    schema: &SchemaRef,
    width: usize,
    samples: &[Sample],
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let ts =
        TimestampMillisecondArray::from(samples.iter().map(|s| s.timestamp_ms).collect::<Vec<_>>())
            .with_timezone("UTC");
    let servers = StringArray::from_iter_values(samples.iter().map(|s| s.server.as_str()));
    let profiles = StringArray::from_iter_values(samples.iter().map(|s| s.profile.as_str()));
    let mut columns: Vec<ArrayRef> = vec![Arc::new(ts), Arc::new(servers), Arc::new(profiles)];
    for m in 0..width {
        let values: Float32Array = samples
            .iter()
            .map(|s| s.values.get(m).copied().filter(|v| !v.is_nan()))
            .collect();
        columns.push(Arc::new(values));
    }
    RecordBatch::try_new(Arc::clone(schema), columns)
}

/// Reads a file's footer stats (no data pages).
pub fn read_stats(path: &Path) -> Result<FileStats, BufferError> {
    let file = std::fs::File::open(path).map_err(|e| BufferError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| BufferError::parquet(path, e))?;
    let meta = builder.metadata().file_metadata();
    let from_kv = meta
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == STATS_KEY))
        .and_then(|k| k.value.as_deref())
        .and_then(|v| serde_json::from_str::<FileStats>(v).ok());
    Ok(from_kv.unwrap_or(FileStats {
        rows: meta.num_rows() as u64,
        ..FileStats::default()
    }))
}

/// Streams the samples of `path` with `since_ms <= timestamp < until_ms` to `each`, values
/// laid out in the order of `metrics` (a metric the file lacks reads as NaN). Reads only
/// the needed columns, and skips row groups whose time range is outside the window.
pub fn read_samples(
    path: &Path,
    metrics: &[String],
    since_ms: i64,
    until_ms: i64,
    each: &mut dyn FnMut(Sample),
) -> Result<u64, BufferError> {
    let file = std::fs::File::open(path).map_err(|e| BufferError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| BufferError::parquet(path, e))?;
    let arrow_schema = Arc::clone(builder.schema());
    let wanted: Vec<&str> = ["timestamp", "server_name", "profile"]
        .into_iter()
        .chain(metrics.iter().map(String::as_str))
        .collect();
    let roots: Vec<usize> = wanted
        .iter()
        .filter_map(|n| arrow_schema.index_of(n).ok())
        .collect();
    let ts_root = arrow_schema
        .index_of("timestamp")
        .map_err(|_| BufferError::Corrupt(format!("{} has no timestamp column", path.display())))?;
    let groups: Vec<usize> = builder
        .metadata()
        .row_groups()
        .iter()
        .enumerate()
        .filter(|(_, rg)| match rg.column(ts_root).statistics() {
            Some(parquet::file::statistics::Statistics::Int64(s)) => {
                let (min, max) = (s.min_opt().copied(), s.max_opt().copied());
                !(max.is_some_and(|m| m < since_ms) || min.is_some_and(|m| m >= until_ms))
            }
            _ => true,
        })
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_row_groups(groups)
        .with_batch_size(READ_BATCH)
        .build()
        .map_err(|e| BufferError::parquet(path, e))?;
    let mut count = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| BufferError::Corrupt(format!("{}: {e}", path.display())))?;
        count += emit_batch(&batch, metrics, since_ms, until_ms, each)
            .map_err(|e| BufferError::Corrupt(format!("{}: {e}", path.display())))?;
    }
    Ok(count)
}

fn emit_batch(
    batch: &RecordBatch,
    metrics: &[String],
    since_ms: i64,
    until_ms: i64,
    each: &mut dyn FnMut(Sample),
) -> Result<u64, String> {
    let ts = batch
        .column_by_name("timestamp")
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .ok_or("timestamp is not a millisecond timestamp")?;
    let servers = batch
        .column_by_name("server_name")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or("server_name is not a string column")?;
    let profiles = batch
        .column_by_name("profile")
        .and_then(|c| c.as_string_opt::<i32>());
    let columns: Vec<Option<&Float32Array>> = metrics
        .iter()
        .map(|m| {
            batch
                .column_by_name(m)
                .and_then(|c| c.as_primitive_opt::<Float32Type>())
        })
        .collect();
    let mut count = 0;
    for row in 0..batch.num_rows() {
        let t = ts.value(row);
        if t < since_ms || t >= until_ms {
            continue;
        }
        let values = columns
            .iter()
            .map(|c| match c {
                Some(c) if c.is_valid(row) => c.value(row),
                _ => f32::NAN,
            })
            .collect();
        each(Sample {
            timestamp_ms: t,
            server: servers.value(row).to_string(),
            profile: profiles
                .map(|p| p.value(row).to_string())
                .unwrap_or_else(|| "generic".into()),
            values,
        });
        count += 1;
    }
    Ok(count)
}

/// A column of any numeric type as f64 (for importing other tools' files).
pub fn numeric_value(col: &dyn Array, row: usize) -> Option<f64> {
    if col.is_null(row) {
        return None;
    }
    match col.data_type() {
        DataType::Float32 => Some(col.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => Some(col.as_primitive::<Float64Type>().value(row)),
        DataType::Int64 => Some(col.as_primitive::<Int64Type>().value(row) as f64),
        DataType::Int32 => Some(
            col.as_primitive::<arrow_array::types::Int32Type>()
                .value(row) as f64,
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_round_trip_with_projection_and_time_filter() {
        let dir = nordiq_testkit::TempDir::new("pq");
        let metrics = vec!["a".to_string(), "b".to_string()];
        let mut samples: Vec<Sample> = (0..1000)
            .map(|i| Sample {
                timestamp_ms: 1_000_000 + (i % 100) * 1000,
                server: format!("s{}", i / 100),
                profile: "generic".into(),
                values: vec![i as f32, if i % 2 == 0 { f32::NAN } else { 1.5 }],
            })
            .collect();
        let path = dir.join("date=2026-01-01").join("part-1.parquet");
        let stats = write_samples(&path, &metrics, &mut samples).unwrap();
        assert_eq!(stats.rows, 1000);
        assert_eq!(stats.per_server["s3"], 100);
        assert_eq!(read_stats(&path).unwrap(), stats);
        assert!(!dir
            .join("date=2026-01-01")
            .join(".part-1.parquet.tmp")
            .exists());

        let mut got = Vec::new();
        let n = read_samples(&path, &metrics, 1_010_000, 1_020_000, &mut |s| got.push(s)).unwrap();
        assert_eq!(n, 100, "10 servers × 10 timestamps in the window");
        assert!(got
            .windows(2)
            .all(|w| (&w[0].server, w[0].timestamp_ms) <= (&w[1].server, w[1].timestamp_ms)));
        let s = got
            .iter()
            .find(|s| s.server == "s2" && s.timestamp_ms == 1_011_000)
            .unwrap();
        assert_eq!(s.values[0], 211.0);
        assert_eq!(s.values[1], 1.5);

        // A metric the file lacks reads as NaN; projection of a subset works.
        let mut got = Vec::new();
        read_samples(
            &path,
            &["b".to_string(), "zz".to_string()],
            0,
            i64::MAX,
            &mut |s| got.push(s),
        )
        .unwrap();
        assert_eq!(got.len(), 1000);
        assert!(got[0].values[1].is_nan());
    }
}
