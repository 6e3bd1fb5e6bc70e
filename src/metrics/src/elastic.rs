//! Elasticsearch as a source: `POST /{index}/_search` for documents with `@timestamp`
//! at or after the high-water mark (and older than now − lag), sorted by time, a page at
//! a time; documents already read at the boundary instant are dropped by id
//! ([`Boundary`]), so nothing is read twice or skipped across pages and restarts. Over
//! `https://` with a CA file, authenticated by an API key or basic auth.

use crate::document_fields::{catalog_fields, reading, timestamp_ms};
use crate::record::Reading;
use crate::source_error::SourceError;
use crate::source_mark::{Boundary, SavedBoundary};
use nordiq_core::config::{Config, ElasticsearchConfig, FieldMap};
use nordiq_runtime::client::{basic_authorization, ApiClient};
use nordiq_runtime::secret::{read_secret, read_trimmed};
use nordiq_runtime::tls::ClientTls;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// The systemd credential (`LoadCredential=`) that holds the basic-auth password.
pub const PASSWORD_CREDENTIAL: &str = "elasticsearch-password";

/// Pages read per poll at most (the rest waits for the next poll).
const MAX_PAGES: usize = 20;

/// The search for one page.
pub fn search_body(cfg: &ElasticsearchConfig, from: &Boundary, until_ms: i64) -> serde_json::Value {
    let ts = &cfg.timestamp_field;
    json!({
        // Room for the documents already read at the boundary, which come back.
        "size": cfg.batch_size + from.ids.len(),
        "query": {"range": {ts: {"gte": from.ts, "lt": until_ms, "format": "epoch_millis"}}},
        "sort": [{ts: {"order": "asc"}}],
        "track_total_hits": false
    })
}

/// (id, unix ms, `_source`) of each hit, in the answer's order.
pub fn parse_hits(
    body: &[u8],
    timestamp_field: &str,
) -> Result<Vec<(String, i64, serde_json::Value)>, SourceError> {
    let bad = |m: String| SourceError::BadAnswer(format!("Elasticsearch answer: {m}"));
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    if let Some(e) = v.get("error") {
        let reason = e["reason"]
            .as_str()
            .or(e["root_cause"][0]["reason"].as_str())
            .unwrap_or("");
        return Err(SourceError::BadAnswer(format!(
            "Elasticsearch error {}: {reason}",
            e["type"].as_str().unwrap_or("?")
        )));
    }
    let hits = v["hits"]["hits"]
        .as_array()
        .ok_or_else(|| bad("no hits.hits".into()))?;
    let mut out = Vec::with_capacity(hits.len());
    for h in hits {
        let id = h["_id"]
            .as_str()
            .ok_or_else(|| bad("a hit without _id".into()))?
            .to_string();
        let source = h["_source"].clone();
        let ts = h["sort"][0]
            .as_i64()
            .or_else(|| {
                crate::document_fields::lookup(&source, timestamp_field).and_then(timestamp_ms)
            })
            .ok_or_else(|| bad(format!("hit {id} has no usable {timestamp_field}")))?;
        out.push((id, ts, source));
    }
    Ok(out)
}

pub struct ElasticPull {
    client: ApiClient,
    cfg: ElasticsearchConfig,
    fields: Vec<(&'static str, FieldMap)>,
    position: SavedBoundary,
}

impl ElasticPull {
    pub fn new(config: &Config, now_ms: i64) -> Result<ElasticPull, SourceError> {
        let cfg = config.sources.elasticsearch.clone();
        let fields = catalog_fields(config, &cfg.fields, "sources.elasticsearch.fields")?;
        let start = now_ms - cfg.start_hours as i64 * 3_600_000;
        let position = SavedBoundary::open(&config.paths.state_dir, "elasticsearch", start)?;
        let client = ApiClient::with_tls(&cfg.url, None, &ClientTls::with_ca(&cfg.ca_file))
            .map_err(|e| SourceError::Setup(format!("sources.elasticsearch.ca_file: {e}")))?
            .with_timeout(Duration::from_secs(60));
        let pull = ElasticPull {
            client,
            fields,
            position,
            cfg,
        };
        // Read per request (a rotated key or password is picked up); checked once here.
        pull.authorization()?;
        Ok(pull)
    }

    /// The `Authorization` header: `ApiKey …` from `api_key_file`, or `Basic …` from
    /// `username` and the password (the credential `elasticsearch-password`, else
    /// `password_file`); None when neither is set.
    fn authorization(&self) -> Result<Option<String>, SourceError> {
        if !self.cfg.api_key_file.is_empty() {
            let key = read_trimmed(
                "sources.elasticsearch.api_key_file",
                Path::new(&self.cfg.api_key_file),
            )?;
            return Ok(Some(format!("ApiKey {key}")));
        }
        if self.cfg.username.is_empty() {
            return Ok(None);
        }
        let password = read_secret(
            "sources.elasticsearch.password_file",
            PASSWORD_CREDENTIAL,
            &self.cfg.password_file,
        )?;
        Ok(Some(basic_authorization(&self.cfg.username, &password)))
    }

    /// Documents after the mark, and the mark to commit once they are delivered.
    pub async fn poll(
        &mut self,
        now_ms: i64,
    ) -> Result<(Vec<Reading>, Option<serde_json::Value>), SourceError> {
        let until = now_ms - self.cfg.lag_seconds as i64 * 1000;
        let mut at = self.position.current.clone();
        let mut readings = Vec::new();
        let auth = self.authorization()?;
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        for _ in 0..MAX_PAGES {
            let body = search_body(&self.cfg, &at, until);
            let size = self.cfg.batch_size + at.ids.len();
            let answer = self
                .client
                .send_with(
                    hyper::Method::POST,
                    &format!("/{}/_search", self.cfg.index),
                    Some("application/json"),
                    &headers,
                    body.to_string().into(),
                )
                .await?;
            if !answer.status.is_success() {
                return Err(SourceError::from_status(
                    &format!("{}/{}/_search", self.cfg.url, self.cfg.index),
                    answer.status,
                    &answer.text(),
                ));
            }
            let hits = parse_hits(&answer.body, &self.cfg.timestamp_field)?;
            let mut fresh = 0;
            for (id, ts, source) in &hits {
                if at.admit(*ts, id) {
                    fresh += 1;
                    if let Some(r) = reading(source, *ts, &self.cfg.server_field, &self.fields) {
                        readings.push(r);
                    }
                }
            }
            if hits.len() < size || fresh == 0 {
                break;
            }
        }
        let mark = (at != self.position.current).then(|| at.to_json());
        Ok((readings, mark))
    }

    pub fn commit(&mut self, mark: &serde_json::Value) -> Result<(), SourceError> {
        self.position.commit(mark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_asks_from_the_boundary_and_hits_are_read() {
        let cfg = ElasticsearchConfig::default();
        let b = Boundary {
            ts: 1000,
            ids: vec!["x".into()],
        };
        let body = search_body(&cfg, &b, 5000);
        assert_eq!(body["size"], 1001);
        assert_eq!(body["query"]["range"]["@timestamp"]["gte"], 1000);
        assert_eq!(body["query"]["range"]["@timestamp"]["lt"], 5000);
        let answer = br#"{"took":2,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},
            "hits":{"max_score":null,"hits":[{"_index":"metricbeat-8.11.0","_id":"a1","_score":null,
            "_source":{"@timestamp":"2026-11-28T00:00:00.000Z","host":{"name":"web01"}},"sort":[1795824000000]}]}}"#;
        let hits = parse_hits(answer, "@timestamp").unwrap();
        assert_eq!(hits[0].0, "a1");
        assert_eq!(hits[0].1, 1_795_824_000_000);
        let error = br#"{"error":{"root_cause":[{"type":"index_not_found_exception","reason":"no such index [x]"}],"type":"index_not_found_exception","reason":"no such index [x]"},"status":404}"#;
        assert!(parse_hits(error, "@timestamp")
            .unwrap_err()
            .to_string()
            .contains("no such index"));
    }
}
