//! The write-ahead log: numbered segment files of CRC-checked frames.
//!
//! A segment starts with a header frame (JSON: format version and the metric names its
//! samples carry), followed by sample frames. A frame is
//! `[u32 LE payload length][u32 LE CRC-32 of payload][payload]`. A sample frame's payload is
//! `u16` + the batch id (`X-NordIQ-Batch`, empty when none; format 2 on), `u32 count`, then
//! per sample: `i64 timestamp_ms`, `u16` + server name, `u8` + profile, one `f32` per metric
//! (NaN = absent). The batch id shares the samples' frame, so it is durable exactly when
//! they are: a batch retried after a crash is recognised by the log that holds it. Reading stops at the first short or corrupt frame:
//! that is the torn tail of a crash, and nothing behind it was ever acknowledged.

use crate::BufferError;
use nordiq_core::ingest::Sample;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Version 2 carries the batch id in each sample frame; version 1 segments still read.
const FORMAT_VERSION: u32 = 2;
/// A frame larger than this is corruption, not data.
const MAX_FRAME: usize = 256 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentHeader {
    pub version: u32,
    pub metrics: Vec<String>,
}

/// File name of segment `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("{seq:020}.wal")
}

/// Segment numbers present in `wal_dir`, ascending.
pub fn list_segments(wal_dir: &Path) -> Result<Vec<u64>, BufferError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(wal_dir).map_err(|e| BufferError::io(wal_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BufferError::io(wal_dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(seq) = name.strip_suffix(".wal").and_then(|s| s.parse().ok()) {
            out.push(seq);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Encodes samples (of batch `batch_id`, when the feeder named it) as one sample frame,
/// appended to `out`.
pub fn encode_samples<'a>(
    samples: impl ExactSizeIterator<Item = &'a Sample>,
    batch_id: Option<&str>,
    out: &mut Vec<u8>,
) {
    let mut payload = Vec::with_capacity(samples.len() * 96 + 6);
    let id = batch_id.unwrap_or("").as_bytes();
    let id = &id[..id.len().min(u16::MAX as usize)];
    payload.extend_from_slice(&(id.len() as u16).to_le_bytes());
    payload.extend_from_slice(id);
    payload.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    for s in samples {
        payload.extend_from_slice(&s.timestamp_ms.to_le_bytes());
        let server = &s.server.as_bytes()[..s.server.len().min(u16::MAX as usize)];
        payload.extend_from_slice(&(server.len() as u16).to_le_bytes());
        payload.extend_from_slice(server);
        let profile = &s.profile.as_bytes()[..s.profile.len().min(u8::MAX as usize)];
        payload.push(profile.len() as u8);
        payload.extend_from_slice(profile);
        for v in &s.values {
            payload.extend_from_slice(&v.to_le_bytes());
        }
    }
    frame(&payload, out);
}

/// Samples as one self-checking message (cluster mode's stream messages): the log's own
/// sample frame, length and CRC included, so the wire and the log share one codec.
pub fn encode_message<'a>(
    samples: impl ExactSizeIterator<Item = &'a Sample>,
    batch_id: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::new();
    encode_samples(samples, batch_id, &mut out);
    out
}

/// The batch id and samples of a message [`encode_message`] made for a catalog of `width`
/// metrics; `None` when the bytes are not exactly one intact frame (any input, no panic).
pub fn decode_message(data: &[u8], width: usize) -> Option<(Option<String>, Vec<Sample>)> {
    let len = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(data.get(4..8)?.try_into().ok()?);
    let payload = data.get(8..)?;
    if payload.len() != len || len > MAX_FRAME || crc32fast::hash(payload) != crc {
        return None;
    }
    decode_frame(payload, FORMAT_VERSION, width)
}

/// An open segment being appended to.
pub struct SegmentWriter {
    pub seq: u64,
    pub path: PathBuf,
    file: File,
    pub bytes: u64,
    pub opened: std::time::Instant,
}

impl SegmentWriter {
    /// Creates segment `seq` with its header, durable before it returns.
    pub fn create(
        wal_dir: &Path,
        seq: u64,
        metrics: &[String],
    ) -> Result<SegmentWriter, BufferError> {
        let path = wal_dir.join(segment_name(seq));
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| BufferError::io(&path, e))?;
        let header = serde_json::to_vec(&SegmentHeader {
            version: FORMAT_VERSION,
            metrics: metrics.to_vec(),
        })
        .map_err(|e| BufferError::Corrupt(format!("header: {e}")))?;
        let mut bytes = Vec::new();
        frame(&header, &mut bytes);
        file.write_all(&bytes)
            .map_err(|e| BufferError::io(&path, e))?;
        file.sync_all().map_err(|e| BufferError::io(&path, e))?;
        crate::layout::sync_dir(wal_dir)?;
        Ok(SegmentWriter {
            seq,
            path,
            file,
            bytes: bytes.len() as u64,
            opened: std::time::Instant::now(),
        })
    }

    /// Appends already-framed bytes (not yet durable).
    pub fn write(&mut self, framed: &[u8]) -> Result<(), BufferError> {
        self.file
            .write_all(framed)
            .map_err(|e| BufferError::io(&self.path, e))?;
        self.bytes += framed.len() as u64;
        Ok(())
    }

    /// Makes everything written so far durable.
    pub fn sync(&mut self) -> Result<(), BufferError> {
        self.file
            .sync_data()
            .map_err(|e| BufferError::io(&self.path, e))
    }
}

/// Everything a segment holds, up to its first bad frame.
pub struct SegmentContents {
    pub header: SegmentHeader,
    pub samples: Vec<Sample>,
    /// The batch ids of its sample frames, in log order.
    pub batch_ids: Vec<String>,
    /// Bytes after the last good frame (a torn tail), 0 for a clean segment.
    pub torn_bytes: u64,
}

/// Reads segment `path`. A segment whose header frame is unreadable holds nothing that
/// was ever acknowledged (the header is synced before any sample is written).
pub fn read_segment(path: &Path) -> Result<SegmentContents, BufferError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(|e| BufferError::io(path, e))?;
    parse_segment(&data, path)
}

/// What the bytes of segment `path` (named in errors only) hold, as [`read_segment`]
/// reads it: any input gives contents or an error, never a panic (fuzzed).
pub fn parse_segment(data: &[u8], path: &Path) -> Result<SegmentContents, BufferError> {
    let mut frames = Frames { data, pos: 0 };
    let mut next_frame = || frames.next().map(|(_, payload)| payload);
    let header: SegmentHeader = match next_frame().and_then(|p| serde_json::from_slice(p).ok()) {
        Some(h) => h,
        None => {
            return Ok(SegmentContents {
                header: SegmentHeader {
                    version: FORMAT_VERSION,
                    metrics: Vec::new(),
                },
                samples: Vec::new(),
                batch_ids: Vec::new(),
                torn_bytes: data.len() as u64,
            })
        }
    };
    if header.version == 0 || header.version > FORMAT_VERSION {
        return Err(BufferError::Corrupt(format!(
            "{}: log format {} is newer than this build reads ({FORMAT_VERSION}); run the newer nordiq-inference",
            path.display(),
            header.version
        )));
    }
    let width = header.metrics.len();
    let mut samples = Vec::new();
    let mut batch_ids = Vec::new();
    while let Some(payload) = next_frame() {
        match decode_frame(payload, header.version, width) {
            Some((id, mut batch)) => {
                samples.append(&mut batch);
                batch_ids.extend(id);
            }
            None => {
                return Err(BufferError::Corrupt(format!(
                "{}: a frame with a valid checksum does not decode (written by another version?)",
                path.display()
            )))
            }
        }
    }
    let torn = (data.len() - frames.pos) as u64;
    Ok(SegmentContents {
        header,
        samples,
        batch_ids,
        torn_bytes: torn,
    })
}

/// The intact frames of a segment, in order: each one's bytes (length and CRC included)
/// and its payload. Stops at the first short or corrupt frame (the torn tail).
struct Frames<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Frames<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.data.get(self.pos..)?;
        let len = u32::from_le_bytes(rest.get(0..4)?.try_into().ok()?) as usize;
        let crc = u32::from_le_bytes(rest.get(4..8)?.try_into().ok()?);
        if len > MAX_FRAME {
            return None;
        }
        let whole = rest.get(..8 + len)?;
        let payload = &whole[8..];
        if crc32fast::hash(payload) != crc {
            return None;
        }
        self.pos += whole.len();
        Some((whole, payload))
    }
}

/// What [`drop_batches`] removed from one segment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub frames: usize,
    pub samples: usize,
}

/// Rewrites segment `path` without the sample frames whose batch id `drop` names
/// (atomically: a temporary file renamed over it, then the directory synced). The torn
/// tail, if any, goes too: it was never acknowledged. Untouched when nothing is dropped.
pub fn drop_batches(path: &Path, drop: &dyn Fn(&str) -> bool) -> Result<Dropped, BufferError> {
    let data = std::fs::read(path).map_err(|e| BufferError::io(path, e))?;
    let mut frames = Frames {
        data: &data,
        pos: 0,
    };
    let Some((header_bytes, header)) = frames.next() else {
        return Ok(Dropped::default());
    };
    let header: SegmentHeader = serde_json::from_slice(header)
        .map_err(|e| BufferError::Corrupt(format!("{}: header: {e}", path.display())))?;
    let width = header.metrics.len();
    let mut kept = header_bytes.to_vec();
    let mut dropped = Dropped::default();
    for (whole, payload) in frames.by_ref() {
        let (id, samples) = decode_frame(payload, header.version, width).ok_or_else(|| {
            BufferError::Corrupt(format!("{}: a frame does not decode", path.display()))
        })?;
        if id.as_deref().is_some_and(drop) {
            dropped.frames += 1;
            dropped.samples += samples.len();
        } else {
            kept.extend_from_slice(whole);
        }
    }
    if dropped.frames == 0 {
        return Ok(dropped);
    }
    let tmp = path.with_extension("wal.tmp");
    std::fs::write(&tmp, &kept).map_err(|e| BufferError::io(&tmp, e))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| BufferError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| BufferError::io(path, e))?;
    if let Some(dir) = path.parent() {
        crate::layout::sync_dir(dir)?;
    }
    Ok(dropped)
}

/// One sample frame of a segment in format `version`: its batch id (if any) and samples.
/// `None` when the payload does not decode.
pub fn decode_frame(
    payload: &[u8],
    version: u32,
    width: usize,
) -> Option<(Option<String>, Vec<Sample>)> {
    let mut r = Reader {
        data: payload,
        pos: 0,
    };
    let mut batch_id = None;
    if version >= 2 {
        let n = u16::from_le_bytes(r.take(2)?.try_into().ok()?) as usize;
        let id = String::from_utf8(r.take(n)?.to_vec()).ok()?;
        batch_id = (!id.is_empty()).then_some(id);
    }
    let count = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
    let mut out = Vec::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        let ts = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let n = u16::from_le_bytes(r.take(2)?.try_into().ok()?) as usize;
        let server = String::from_utf8(r.take(n)?.to_vec()).ok()?;
        let n = r.take(1)?[0] as usize;
        let profile = String::from_utf8(r.take(n)?.to_vec()).ok()?;
        let raw = r.take(width * 4)?;
        let values = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push(Sample {
            timestamp_ms: ts,
            server,
            profile,
            values,
        });
    }
    (r.pos == payload.len()).then_some((batch_id, out))
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(i: i64) -> Sample {
        Sample {
            timestamp_ms: 1_700_000_000_000 + i,
            server: format!("srv{i}"),
            profile: "generic".into(),
            values: vec![i as f32, f32::NAN],
        }
    }

    #[test]
    fn dropping_batches_keeps_the_rest_and_the_tail_goes() {
        let dir = nordiq_testkit::TempDir::new("wal-drop");
        let metrics = vec!["cpu".to_string(), "mem".to_string()];
        let mut w = SegmentWriter::create(dir.path(), 1, &metrics).unwrap();
        for (i, id) in ["nats:1:5", "nats:1:6", "feeder-9", "nats:2:6"]
            .iter()
            .enumerate()
        {
            let mut framed = Vec::new();
            let samples: Vec<Sample> = (0..=i as i64).map(sample).collect();
            encode_samples(samples.iter(), Some(id), &mut framed);
            w.write(&framed).unwrap();
        }
        w.write(&[9, 9, 9]).unwrap(); // a torn tail
        w.sync().unwrap();
        let path = w.path.clone();
        drop(w);
        let none = drop_batches(&path, &|_| false).unwrap();
        assert_eq!(none, Dropped::default());
        assert_eq!(
            read_segment(&path).unwrap().torn_bytes,
            3,
            "untouched when nothing drops"
        );
        let d = drop_batches(&path, &|id| id == "nats:1:6" || id == "nats:2:6").unwrap();
        assert_eq!(
            d,
            Dropped {
                frames: 2,
                samples: 2 + 4
            }
        );
        let left = read_segment(&path).unwrap();
        assert_eq!(
            left.batch_ids,
            vec!["nats:1:5".to_string(), "feeder-9".to_string()]
        );
        assert_eq!(left.samples.len(), 1 + 3);
        assert_eq!(left.torn_bytes, 0);
    }

    #[test]
    fn a_message_round_trips_and_refuses_damage() {
        let samples: Vec<Sample> = (0..3).map(sample).collect();
        let msg = encode_message(samples.iter(), Some("b-7:3"));
        let (id, back) = decode_message(&msg, 2).unwrap();
        assert_eq!(id.as_deref(), Some("b-7:3"));
        assert_eq!(back.len(), 3);
        assert_eq!(back[2].server, "srv2");
        assert!(back[0].values[1].is_nan());
        let mut bent = msg.clone();
        *bent.last_mut().unwrap() ^= 1;
        assert!(decode_message(&bent, 2).is_none(), "a flipped bit passed");
        assert!(decode_message(&msg[..msg.len() - 1], 2).is_none());
        assert!(
            decode_message(&msg, 3).is_none(),
            "another catalog width passed"
        );
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let dir = nordiq_testkit::TempDir::new("wal");
        let metrics = vec!["a".to_string(), "b".to_string()];
        let mut w = SegmentWriter::create(&dir, 7, &metrics).unwrap();
        let batch: Vec<Sample> = (0..5).map(sample).collect();
        let mut framed = Vec::new();
        encode_samples(batch.iter(), Some("feeder-1/42"), &mut framed);
        w.write(&framed).unwrap();
        let mut second = Vec::new();
        encode_samples([sample(9)].iter(), None, &mut second);
        w.write(&second).unwrap();
        w.sync().unwrap();
        assert_eq!(list_segments(&dir).unwrap(), vec![7]);

        let contents = read_segment(&w.path).unwrap();
        assert_eq!(contents.header.metrics, metrics);
        assert_eq!(contents.samples.len(), 6);
        assert_eq!(contents.samples[2].server, "srv2");
        assert!(contents.samples[2].values[1].is_nan());
        assert_eq!(contents.torn_bytes, 0);
        assert_eq!(contents.batch_ids, ["feeder-1/42"]);

        // Cut the last frame in half: the first five samples survive, the rest is torn.
        let len = std::fs::metadata(&w.path).unwrap().len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&w.path)
            .unwrap();
        f.set_len(len - 10).unwrap();
        let contents = read_segment(&w.path).unwrap();
        assert_eq!(contents.samples.len(), 5);
        assert_eq!(contents.batch_ids, ["feeder-1/42"]);
        assert!(contents.torn_bytes > 0);

        // A flipped bit is caught by the checksum.
        let mut data = std::fs::read(&w.path).unwrap();
        let at = data.len() / 2; // inside the first sample frame
        data[at] ^= 0x40;
        std::fs::write(&w.path, &data).unwrap();
        assert_eq!(read_segment(&w.path).unwrap().samples.len(), 0);
    }

    #[test]
    fn format_1_segments_still_read_and_newer_ones_are_refused() {
        let dir = nordiq_testkit::TempDir::new("wal-v1");
        let write = |version: u32, name: &str| {
            let mut bytes = Vec::new();
            let header = serde_json::to_vec(&SegmentHeader {
                version,
                metrics: vec!["a".into(), "b".into()],
            })
            .unwrap();
            frame(&header, &mut bytes);
            // A format-1 sample frame: no batch id in front of the count.
            let mut v2 = Vec::new();
            encode_samples([sample(1), sample(2)].iter(), None, &mut v2);
            frame(&v2[8 + 2..], &mut bytes);
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let contents = read_segment(&write(1, "old.wal")).unwrap();
        assert_eq!(contents.samples.len(), 2);
        assert!(contents.batch_ids.is_empty());
        let err = read_segment(&write(3, "new.wal")).err().unwrap();
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
