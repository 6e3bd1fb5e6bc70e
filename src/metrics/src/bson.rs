//! Just enough BSON for MongoDB commands and their replies, to and from JSON values:
//! strings, doubles, 32/64-bit integers, booleans, null, documents, arrays, dates and
//! ObjectIds. Extended-JSON markers carry the types JSON lacks: `{"$date": ms}` is a
//! date, `{"$numberLong": "n"}` an int64 (cursor ids must be), `{"$oid": hex}` an
//! ObjectId, and `{"$ordered": [[key, value], …]}` a document whose keys keep that order
//! (JSON objects here sort their keys; MongoDB wants the command name first and a sort
//! specification in its own order). Other BSON types in a reply decode to null.

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("BSON: {0}")]
pub struct BsonError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, BsonError> {
    Err(BsonError(m.into()))
}

/// A document from `[[key, value], …]`, keys in that order.
pub fn encode_ordered(pairs: &[Value]) -> Result<Vec<u8>, BsonError> {
    let mut out = vec![0u8; 4];
    for pair in pairs {
        let (Some(key), Some(value)) = (pair[0].as_str(), pair.get(1)) else {
            return err("an $ordered entry is not [key, value]");
        };
        encode_element(&mut out, key, value)?;
    }
    out.push(0);
    let len = out.len() as i32;
    out[..4].copy_from_slice(&len.to_le_bytes());
    Ok(out)
}

pub fn encode_document(doc: &Map<String, Value>) -> Result<Vec<u8>, BsonError> {
    let mut out = vec![0u8; 4];
    for (key, value) in doc {
        encode_element(&mut out, key, value)?;
    }
    out.push(0);
    let len = out.len() as i32;
    out[..4].copy_from_slice(&len.to_le_bytes());
    Ok(out)
}

fn cstring(out: &mut Vec<u8>, s: &str) -> Result<(), BsonError> {
    if s.contains('\0') {
        return err(format!("key `{s}` holds a NUL"));
    }
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

fn encode_element(out: &mut Vec<u8>, key: &str, value: &Value) -> Result<(), BsonError> {
    let head = |out: &mut Vec<u8>, kind: u8| {
        out.push(kind);
        cstring(out, key)
    };
    match value {
        Value::Null => head(out, 0x0A)?,
        Value::Bool(b) => {
            head(out, 0x08)?;
            out.push(u8::from(*b));
        }
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if let Ok(small) = i32::try_from(i) {
                    head(out, 0x10)?;
                    out.extend_from_slice(&small.to_le_bytes());
                } else {
                    head(out, 0x12)?;
                    out.extend_from_slice(&i.to_le_bytes());
                }
            } else {
                head(out, 0x01)?;
                out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_le_bytes());
            }
        }
        Value::String(s) => {
            head(out, 0x02)?;
            out.extend_from_slice(&((s.len() + 1) as i32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        Value::Array(items) => {
            head(out, 0x04)?;
            let doc: Map<String, Value> = items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v.clone()))
                .collect();
            out.extend(encode_document(&doc)?);
        }
        Value::Object(o) => {
            if let (1, Some(ms)) = (o.len(), o.get("$date").and_then(Value::as_i64)) {
                head(out, 0x09)?;
                out.extend_from_slice(&ms.to_le_bytes());
            } else if let (1, Some(n)) = (o.len(), o.get("$numberLong").and_then(Value::as_str)) {
                let n: i64 = n
                    .parse()
                    .map_err(|_| BsonError(format!("$numberLong `{n}`")))?;
                head(out, 0x12)?;
                out.extend_from_slice(&n.to_le_bytes());
            } else if let (1, Some(pairs)) = (o.len(), o.get("$ordered").and_then(Value::as_array))
            {
                head(out, 0x03)?;
                out.extend(encode_ordered(pairs)?);
            } else if let (1, Some(hex)) = (o.len(), o.get("$oid").and_then(Value::as_str)) {
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .filter_map(|i| {
                        hex.get(i..i + 2)
                            .and_then(|b| u8::from_str_radix(b, 16).ok())
                    })
                    .collect();
                if bytes.len() != 12 {
                    return err(format!("$oid `{hex}` is not 24 hex digits"));
                }
                head(out, 0x07)?;
                out.extend(bytes);
            } else {
                head(out, 0x03)?;
                out.extend(encode_document(o)?);
            }
        }
    }
    Ok(())
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BsonError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return err("truncated");
        };
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn i32(&mut self) -> Result<i32, BsonError> {
        Ok(i32::from_le_bytes(
            self.take(4)?
                .try_into()
                .map_err(|_| BsonError("i32".into()))?,
        ))
    }

    fn i64(&mut self) -> Result<i64, BsonError> {
        Ok(i64::from_le_bytes(
            self.take(8)?
                .try_into()
                .map_err(|_| BsonError("i64".into()))?,
        ))
    }

    fn cstring(&mut self) -> Result<String, BsonError> {
        let rest = &self.buf[self.pos.min(self.buf.len())..];
        let Some(nul) = rest.iter().position(|b| *b == 0) else {
            return err("unterminated key");
        };
        let s = String::from_utf8_lossy(&rest[..nul]).into_owned();
        self.pos += nul + 1;
        Ok(s)
    }
}

/// Decodes one document (the whole of `buf`, or its first document).
pub fn decode_document(buf: &[u8]) -> Result<(Map<String, Value>, usize), BsonError> {
    let mut c = Cursor { buf, pos: 0 };
    let len = c.i32()?;
    let Ok(len) = usize::try_from(len) else {
        return err("negative length");
    };
    if len < 5 || len > buf.len() {
        return err(format!("document length {len} of {} bytes", buf.len()));
    }
    let mut c = Cursor {
        buf: &buf[..len],
        pos: 4,
    };
    let mut doc = Map::new();
    loop {
        let kind = c.take(1)?[0];
        if kind == 0 {
            break;
        }
        let key = c.cstring()?;
        let value = match kind {
            0x01 => json!(f64::from_le_bytes(
                c.take(8)?
                    .try_into()
                    .map_err(|_| BsonError("double".into()))?
            )),
            0x02 => {
                let n = c.i32()?;
                let Ok(n) = usize::try_from(n) else {
                    return err("string length");
                };
                let bytes = c.take(n)?;
                json!(String::from_utf8_lossy(&bytes[..n.saturating_sub(1)]))
            }
            0x03 | 0x04 => {
                let (inner, used) = decode_document(&c.buf[c.pos..])?;
                c.pos += used;
                if kind == 0x03 {
                    Value::Object(inner)
                } else {
                    Value::Array(inner.into_iter().map(|(_, v)| v).collect())
                }
            }
            0x07 => {
                let hex: String = c.take(12)?.iter().map(|b| format!("{b:02x}")).collect();
                json!({ "$oid": hex })
            }
            0x08 => json!(c.take(1)?[0] != 0),
            0x09 => json!({ "$date": c.i64()? }),
            0x0A => Value::Null,
            0x10 => json!(c.i32()?),
            0x11 | 0x12 => json!(c.i64()?),
            0x13 => {
                c.take(16)?;
                Value::Null
            }
            other => {
                return err(format!(
                    "element type 0x{other:02x} of `{key}` is not supported"
                ))
            }
        };
        doc.insert(key, value);
    }
    Ok((doc, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_with_their_types() {
        let doc = json!({
            "find": "metrics", "batchSize": 2, "big": 5_000_000_000i64, "x": 1.5, "ok": true, "none": null,
            "filter": {"timestamp": {"$gte": {"$date": 1_700_000_000_000i64}}},
            "cursor": {"$numberLong": "7"}, "_id": {"$oid": "0123456789abcdef01234567"}, "list": [1, "a"]
        });
        let bytes = encode_document(doc.as_object().unwrap()).unwrap();
        let (back, used) = decode_document(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(back["big"], 5_000_000_000i64);
        assert_eq!(back["cursor"], 7, "int64 decodes to a number");
        assert_eq!(
            back["filter"]["timestamp"]["$gte"]["$date"],
            1_700_000_000_000i64
        );
        assert_eq!(back["_id"]["$oid"], "0123456789abcdef01234567");
        assert_eq!(back["list"], json!([1, "a"]));
        assert_eq!(back["x"], 1.5);
        // The cursor id went out as an int64 (type 0x12), as servers require.
        let at = bytes.windows(7).position(|w| w == b"\x12cursor").unwrap();
        assert_eq!(bytes[at], 0x12);
    }

    #[test]
    fn ordered_documents_keep_their_key_order() {
        let cmd = json!([["find", "metrics"], ["sort", {"$ordered": [["timestamp", 1], ["_id", 1]]}], ["$db", "monitoring"]]);
        let bytes = encode_ordered(cmd.as_array().unwrap()).unwrap();
        let find = bytes.windows(4).position(|w| w == b"find").unwrap();
        let db = bytes.windows(3).position(|w| w == b"$db").unwrap();
        let ts = bytes.windows(9).position(|w| w == b"timestamp").unwrap();
        let id = bytes.windows(3).position(|w| w == b"_id").unwrap();
        assert!(find < db && ts < id, "keys out of order");
        let (back, _) = decode_document(&bytes).unwrap();
        assert_eq!(back["sort"]["timestamp"], 1);
    }

    #[test]
    fn broken_bytes_are_errors_not_panics() {
        let good = encode_document(json!({"a": "b", "c": {"d": 1}}).as_object().unwrap()).unwrap();
        for n in 0..good.len() {
            let _ = decode_document(&good[..n]);
        }
        assert!(decode_document(&[1, 0, 0, 0]).is_err());
        assert!(encode_document(json!({"_id": {"$oid": "zz"}}).as_object().unwrap()).is_err());
    }
}
