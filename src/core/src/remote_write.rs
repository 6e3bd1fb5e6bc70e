//! Prometheus remote write 1.0: a snappy (block format) compressed protobuf
//! `WriteRequest`, decoded by hand (three small messages, no code generation), and its
//! series mapped onto the catalog.
//!
//! A series is taken when its `__name__` is a catalog metric, `nordiq:<metric>` (the
//! recording-rule convention), or a key of `[remote_write] names`; the server is the
//! value of `remote_write.server_label` (port stripped). Everything else is counted and
//! ignored.

use crate::config::Config;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("the body is not snappy-compressed (block format): {0}")]
    Snappy(String),
    #[error("the body is not a protobuf WriteRequest: {0}")]
    Protobuf(#[from] ProtobufError),
}

/// Why the protobuf reader stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtobufError {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("varint longer than 10 bytes")]
    VarintTooLong,
    #[error("a length does not fit in memory")]
    LengthOverflow,
    #[error("wire type {0} is not supported")]
    WireType(u8),
    #[error("a label is not UTF-8")]
    NotUtf8,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TimeSeries {
    pub labels: Vec<(String, String)>,
    /// (value, unix ms)
    pub samples: Vec<(f64, i64)>,
}

impl TimeSeries {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decompresses and decodes a request body.
pub fn decode(body: &[u8]) -> Result<Vec<TimeSeries>, RemoteWriteError> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    Ok(decode_write_request(&raw)?)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or(ProtobufError::Truncated("varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ProtobufError::VarintTooLong)
    }

    fn bytes(&mut self) -> Result<&'a [u8], ProtobufError> {
        let len = usize::try_from(self.varint()?).map_err(|_| ProtobufError::LengthOverflow)?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.buf.len())
            .ok_or(ProtobufError::Truncated("field"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn fixed64(&mut self) -> Result<u64, ProtobufError> {
        let b = self
            .buf
            .get(self.pos..self.pos + 8)
            .ok_or(ProtobufError::Truncated("fixed64"))?;
        self.pos += 8;
        Ok(u64::from_le_bytes(
            b.try_into()
                .map_err(|_| ProtobufError::Truncated("fixed64"))?,
        ))
    }

    /// (field number, wire type)
    fn key(&mut self) -> Result<(u64, u8), ProtobufError> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    fn skip(&mut self, wire: u8) -> Result<(), ProtobufError> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.fixed64().map(|_| ()),
            2 => self.bytes().map(|_| ()),
            5 => {
                self.pos = self
                    .pos
                    .checked_add(4)
                    .filter(|p| *p <= self.buf.len())
                    .ok_or(ProtobufError::Truncated("fixed32"))?;
                Ok(())
            }
            w => Err(ProtobufError::WireType(w)),
        }
    }
}

fn text(bytes: &[u8]) -> Result<String, ProtobufError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::NotUtf8)
}

fn decode_write_request(buf: &[u8]) -> Result<Vec<TimeSeries>, ProtobufError> {
    let mut r = Reader { buf, pos: 0 };
    let mut out = Vec::new();
    while !r.done() {
        match r.key()? {
            (1, 2) => out.push(decode_series(r.bytes()?)?),
            (_, wire) => r.skip(wire)?, // metadata (3) and anything newer
        }
    }
    Ok(out)
}

fn decode_series(buf: &[u8]) -> Result<TimeSeries, ProtobufError> {
    let mut r = Reader { buf, pos: 0 };
    let mut ts = TimeSeries::default();
    while !r.done() {
        match r.key()? {
            (1, 2) => {
                let mut l = Reader {
                    buf: r.bytes()?,
                    pos: 0,
                };
                let (mut name, mut value) = (String::new(), String::new());
                while !l.done() {
                    match l.key()? {
                        (1, 2) => name = text(l.bytes()?)?,
                        (2, 2) => value = text(l.bytes()?)?,
                        (_, w) => l.skip(w)?,
                    }
                }
                ts.labels.push((name, value));
            }
            (2, 2) => {
                let mut s = Reader {
                    buf: r.bytes()?,
                    pos: 0,
                };
                let (mut value, mut t) = (0.0, 0i64);
                while !s.done() {
                    match s.key()? {
                        (1, 1) => value = f64::from_bits(s.fixed64()?),
                        (2, 0) => t = s.varint()? as i64,
                        (_, w) => s.skip(w)?,
                    }
                }
                ts.samples.push((value, t));
            }
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(ts)
}

/// Records for ingest: (server, unix ms) → metric values; and the series ignored.
pub struct Mapped {
    pub records: BTreeMap<(String, i64), Vec<(String, f64)>>,
    pub ignored_series: usize,
}

pub fn map_series(config: &Config, series: &[TimeSeries]) -> Mapped {
    let rw = &config.remote_write;
    let mut records: BTreeMap<(String, i64), Vec<(String, f64)>> = BTreeMap::new();
    let mut ignored = 0;
    for ts in series {
        let name = ts.label("__name__").unwrap_or_default();
        let metric = rw
            .names
            .get(name)
            .map(String::as_str)
            .or_else(|| name.strip_prefix("nordiq:"))
            .unwrap_or(name);
        let (Some(_), Some(label)) = (config.metric_index(metric), ts.label(&rw.server_label))
        else {
            ignored += 1;
            continue;
        };
        let server = match label.rsplit_once(':') {
            Some((host, port)) if rw.strip_port && port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => label,
        };
        for &(value, t) in &ts.samples {
            // Prometheus marks a vanished series with a special NaN (stale marker): skip it.
            if value.is_finite() {
                records
                    .entry((server.to_string(), t))
                    .or_default()
                    .push((metric.to_string(), value));
            }
        }
    }
    Mapped {
        records,
        ignored_series: ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn field(n: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(n << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    /// Encodes a WriteRequest the way the protobuf wire format lays it out.
    pub fn encode(series: &[TimeSeries]) -> Vec<u8> {
        let mut req = Vec::new();
        for ts in series {
            let mut s = Vec::new();
            for (k, v) in &ts.labels {
                let mut l = Vec::new();
                field(1, k.as_bytes(), &mut l);
                field(2, v.as_bytes(), &mut l);
                field(1, &l, &mut s);
            }
            for (value, t) in &ts.samples {
                let mut m = vec![1 << 3 | 1];
                m.extend_from_slice(&value.to_bits().to_le_bytes());
                varint(2 << 3, &mut m);
                varint(*t as u64, &mut m);
                field(2, &m, &mut s);
            }
            field(1, &s, &mut req);
        }
        // A metadata entry (field 3), which is skipped.
        field(3, b"\x08\x01", &mut req);
        snap::raw::Encoder::new().compress_vec(&req).unwrap()
    }

    fn series(name: &str, instance: &str, samples: &[(f64, i64)]) -> TimeSeries {
        TimeSeries {
            labels: vec![
                ("__name__".into(), name.into()),
                ("instance".into(), instance.into()),
            ],
            samples: samples.to_vec(),
        }
    }

    #[test]
    fn requests_round_trip_and_map_onto_the_catalog() {
        let input = vec![
            series(
                "nordiq:cpu_user_pct",
                "web01:9100",
                &[(12.5, 1000), (13.0, 2000)],
            ),
            series("node_load1", "web01:9100", &[(0.7, 1000)]),
            series("mem_used_pct", "db01", &[(f64::NAN, 1000), (50.0, 2000)]),
            series("go_goroutines", "web01:9100", &[(9.0, 1000)]),
        ];
        let decoded = decode(&encode(&input)).unwrap();
        assert_eq!(decoded.len(), 4);
        assert_eq!(decoded[0].samples, vec![(12.5, 1000), (13.0, 2000)]);
        assert!(decoded[2].samples[0].0.is_nan());
        let mut config = Config::default();
        config
            .remote_write
            .names
            .insert("node_load1".into(), "load_average".into());
        let mapped = map_series(&config, &decoded);
        assert_eq!(mapped.ignored_series, 1);
        assert_eq!(
            mapped.records.get(&("web01".to_string(), 1000)).unwrap(),
            &vec![
                ("cpu_user_pct".to_string(), 12.5),
                ("load_average".to_string(), 0.7)
            ]
        );
        assert_eq!(
            mapped.records.get(&("db01".to_string(), 2000)).unwrap(),
            &vec![("mem_used_pct".to_string(), 50.0)]
        );
        assert!(
            !mapped.records.contains_key(&("db01".to_string(), 1000)),
            "stale marker taken"
        );
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        assert!(matches!(
            decode(b"not snappy at all"),
            Err(RemoteWriteError::Snappy(_))
        ));
        let truncated = snap::raw::Encoder::new()
            .compress_vec(&[0x0a, 0x05, 0x0a])
            .unwrap();
        assert!(matches!(
            decode(&truncated),
            Err(RemoteWriteError::Protobuf(_))
        ));
        let bad_wire = snap::raw::Encoder::new().compress_vec(&[0x0f]).unwrap();
        assert!(decode(&bad_wire).is_err());
        // Every prefix of a valid request decodes or fails cleanly.
        let good = snap::raw::Decoder::new()
            .decompress_vec(&encode(&[series("a", "b", &[(1.0, 2)])]))
            .unwrap();
        for n in 0..good.len() {
            let _ = decode_write_request(&good[..n]);
        }
    }
}
