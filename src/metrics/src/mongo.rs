//! MongoDB as a source, over the wire protocol itself (OP_MSG, opcode 2013): `hello`,
//! then `find` with `{timestamp: {$gte: mark, $lt: now − lag}}` sorted by timestamp and
//! `_id`, batched, continued with `getMore`. Documents already read at the boundary
//! instant are dropped by `_id` ([`Boundary`]). No authentication or TLS (see
//! docs/metrics.md).

use crate::bson::{decode_document, encode_ordered};
use crate::document_fields::{catalog_fields, reading, timestamp_ms};
use crate::record::Reading;
use crate::source_error::SourceError;
use crate::source_mark::SavedBoundary;
use nordiq_core::config::{Config, FieldMap, MongodbConfig};
use serde_json::{json, Map, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const OP_MSG: i32 = 2013;
/// Batches read per poll at most.
const MAX_BATCHES: usize = 20;
/// Replies above this are refused (MongoDB's own maximum message size is 48 MB).
const MAX_MESSAGE: usize = 48 << 20;

pub struct Connection {
    stream: TcpStream,
    next_id: i32,
}

impl Connection {
    /// Connects and says `hello`; refuses a server that does not answer `ok: 1`.
    pub async fn open(address: &str) -> Result<Connection, SourceError> {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(address))
            .await
            .map_err(|_| {
                SourceError::Unreachable(format!("connecting to MongoDB at {address} timed out"))
            })?
            .map_err(|e| {
                SourceError::Unreachable(format!("cannot reach MongoDB at {address}: {e}"))
            })?;
        let mut c = Connection { stream, next_id: 1 };
        let hello = c.command(json!([["hello", 1], ["$db", "admin"]])).await?;
        if hello
            .get("maxWireVersion")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            < 6
        {
            return Err(SourceError::BadAnswer(format!(
                "{address} speaks no OP_MSG (maxWireVersion < 6): MongoDB 3.6 or newer is needed"
            )));
        }
        Ok(c)
    }

    /// Runs one command, given as `[[name, value], …]` (the command name first, as
    /// MongoDB requires); an answer without `ok: 1` is an error with the server's message.
    pub async fn command(&mut self, doc: Value) -> Result<Map<String, Value>, SourceError> {
        let setup = |m: String| SourceError::Setup(format!("a MongoDB command: {m}"));
        let body = encode_ordered(
            doc.as_array()
                .ok_or_else(|| setup("a command is a list of [key, value]".into()))?,
        )
        .map_err(|e| setup(e.to_string()))?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let len = 16 + 4 + 1 + body.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as i32).to_le_bytes());
        msg.extend_from_slice(&id.to_le_bytes());
        msg.extend_from_slice(&0i32.to_le_bytes());
        msg.extend_from_slice(&OP_MSG.to_le_bytes());
        msg.extend_from_slice(&0u32.to_le_bytes()); // flagBits
        msg.push(0); // section kind 0: the body
        msg.extend_from_slice(&body);
        let io = |e: std::io::Error| SourceError::Unreachable(format!("MongoDB connection: {e}"));
        let bad = |m: String| SourceError::BadAnswer(format!("MongoDB reply: {m}"));
        let work = async {
            self.stream.write_all(&msg).await.map_err(io)?;
            let mut header = [0u8; 16];
            self.stream.read_exact(&mut header).await.map_err(io)?;
            let total = i32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let opcode = i32::from_le_bytes([header[12], header[13], header[14], header[15]]);
            let Ok(total) = usize::try_from(total) else {
                return Err(bad("negative message length".into()));
            };
            if !(21..=MAX_MESSAGE).contains(&total) || opcode != OP_MSG {
                return Err(bad(format!(
                    "unexpected reply (opcode {opcode}, {total} bytes)"
                )));
            }
            let mut rest = vec![0u8; total - 16];
            self.stream.read_exact(&mut rest).await.map_err(io)?;
            Ok(rest)
        };
        let rest = tokio::time::timeout(Duration::from_secs(60), work)
            .await
            .map_err(|_| SourceError::Unreachable("MongoDB did not answer within 60 s".into()))??;
        // flagBits (4), then sections; the body is the kind-0 section.
        let mut at = 4;
        while at < rest.len() {
            let kind = rest[at];
            at += 1;
            let (doc, used) = decode_document(&rest[at..]).map_err(|e| bad(e.to_string()))?;
            if kind == 0 {
                if doc.get("ok").and_then(Value::as_f64) != Some(1.0) {
                    return Err(SourceError::BadAnswer(format!(
                        "MongoDB refused `{}`: {}",
                        doc.keys().next().map(String::as_str).unwrap_or("?"),
                        doc.get("errmsg")
                            .and_then(Value::as_str)
                            .unwrap_or("(no message)")
                    )));
                }
                return Ok(doc);
            }
            at += used;
        }
        Err(bad("a reply without a body section".into()))
    }
}

pub struct MongoPull {
    cfg: MongodbConfig,
    fields: Vec<(&'static str, FieldMap)>,
    connection: Option<Connection>,
    position: SavedBoundary,
}

impl MongoPull {
    pub fn new(config: &Config, now_ms: i64) -> Result<MongoPull, SourceError> {
        let cfg = config.sources.mongodb.clone();
        let fields = catalog_fields(config, &cfg.fields, "sources.mongodb.fields")?;
        let start = now_ms - cfg.start_hours as i64 * 3_600_000;
        let position = SavedBoundary::open(&config.paths.state_dir, "mongodb", start)?;
        Ok(MongoPull {
            cfg,
            fields,
            connection: None,
            position,
        })
    }

    pub async fn poll(
        &mut self,
        now_ms: i64,
    ) -> Result<(Vec<Reading>, Option<Value>), SourceError> {
        if self.connection.is_none() {
            self.connection = Some(Connection::open(&self.cfg.address).await?);
        }
        let result = self.read(now_ms).await;
        if result.is_err() {
            // A broken connection is opened afresh next time.
            self.connection = None;
        }
        result
    }

    async fn read(&mut self, now_ms: i64) -> Result<(Vec<Reading>, Option<Value>), SourceError> {
        let cfg = &self.cfg;
        let Some(conn) = self.connection.as_mut() else {
            return Ok((Vec::new(), None));
        };
        let until = now_ms - cfg.lag_seconds as i64 * 1000;
        let ts = &cfg.timestamp_field;
        let mut at = self.position.current.clone();
        let batch = cfg.batch_size + at.ids.len();
        let reply = conn
            .command(json!([
                ["find", cfg.collection],
                ["filter", {ts: {"$gte": {"$date": at.ts}, "$lt": {"$date": until}}}],
                ["sort", {"$ordered": [[ts, 1], ["_id", 1]]}],
                ["batchSize", batch],
                ["$db", cfg.database],
            ]))
            .await?;
        let mut cursor = reply.get("cursor").cloned().unwrap_or_default();
        let mut documents = cursor["firstBatch"].as_array().cloned().unwrap_or_default();
        let mut readings = Vec::new();
        for round in 0.. {
            for doc in &documents {
                let id = doc["_id"].to_string();
                let Some(t) = doc.get(ts).and_then(timestamp_ms) else {
                    continue;
                };
                if at.admit(t, &id) {
                    if let Some(r) = reading(doc, t, &cfg.server_field, &self.fields) {
                        readings.push(r);
                    }
                }
            }
            let id = cursor["id"].as_i64().unwrap_or(0);
            if id == 0 {
                break;
            }
            if round + 1 >= MAX_BATCHES {
                // The rest waits for the next poll; free the server's cursor.
                let _ = conn
                    .command(json!([
                        ["killCursors", cfg.collection],
                        ["cursors", [{"$numberLong": id.to_string()}]],
                        ["$db", cfg.database],
                    ]))
                    .await;
                break;
            }
            let more = conn
                .command(json!([
                    ["getMore", {"$numberLong": id.to_string()}],
                    ["collection", cfg.collection],
                    ["batchSize", batch],
                    ["$db", cfg.database],
                ]))
                .await?;
            cursor = more.get("cursor").cloned().unwrap_or_default();
            documents = cursor["nextBatch"].as_array().cloned().unwrap_or_default();
        }
        let mark = (at != self.position.current).then(|| at.to_json());
        Ok((readings, mark))
    }

    pub fn commit(&mut self, mark: &Value) -> Result<(), SourceError> {
        self.position.commit(mark)
    }
}
