//! The Prometheus sources, over HTTP: node_exporter endpoints scraped each interval, and a
//! Prometheus server's `query_range` pulled from a persisted high-water mark.

use crate::node::{parse_target, NodeTarget};
use crate::query_range::{default_queries, merge, next_range, parse_matrix};
use crate::record::Reading;
use crate::source_error::SourceError;
use crate::source_mark::MarkFile;
use nordiq_core::config::{Config, PrometheusSourceConfig};
use nordiq_runtime::client::{query_escape, ApiClient};
use nordiq_runtime::tls::ClientTls;
use std::time::Duration;

/// `http://host:port/path` → (`http://host:port`, `/path`).
pub fn split_url(url: &str) -> (String, String) {
    let (scheme, rest) = match url.strip_prefix("https://") {
        Some(rest) => ("https", rest),
        None => ("http", url.strip_prefix("http://").unwrap_or(url)),
    };
    match rest.find('/') {
        Some(i) => (format!("{scheme}://{}", &rest[..i]), rest[i..].to_string()),
        None => (format!("{scheme}://{rest}"), "/".into()),
    }
}

struct Target {
    server: String,
    client: ApiClient,
    path: String,
    state: NodeTarget,
}

/// node_exporter endpoints.
pub struct NodeScraper {
    targets: Vec<Target>,
    mountpoint: String,
}

impl NodeScraper {
    pub fn new(config: &PrometheusSourceConfig) -> Result<NodeScraper, SourceError> {
        let mut targets = Vec::new();
        for text in &config.targets {
            let (server, url) = parse_target(text).map_err(SourceError::Setup)?;
            let (base, path) = split_url(&url);
            let client = ApiClient::with_tls(&base, None, &ClientTls::with_ca(&config.ca_file))
                .map_err(|e| SourceError::Setup(format!("sources.prometheus.ca_file: {e}")))?;
            targets.push(Target {
                server,
                client: client.with_timeout(Duration::from_secs(10)),
                path,
                state: NodeTarget::default(),
            });
        }
        Ok(NodeScraper {
            targets,
            mountpoint: config.mountpoint.clone(),
        })
    }

    pub fn servers(&self) -> usize {
        self.targets.len()
    }

    /// One reading per target that answered; the first failure is reported beside them.
    pub async fn scrape(&mut self, now_ms: i64) -> (Vec<Reading>, Option<SourceError>) {
        let mut readings = Vec::new();
        let mut error = None;
        for t in &mut self.targets {
            let text = match t.client.get(&t.path).await {
                Ok(a) if a.status.is_success() => a.text(),
                Ok(a) => {
                    let what = format!("{}{}", t.client.base(), t.path);
                    error.get_or_insert(SourceError::from_status(&what, a.status, ""));
                    continue;
                }
                Err(e) => {
                    error.get_or_insert(SourceError::from(e));
                    continue;
                }
            };
            match crate::textformat::parse(&text) {
                Ok(samples) => {
                    readings.push(
                        t.state
                            .reading(&samples, &t.server, &self.mountpoint, now_ms),
                    )
                }
                Err(e) => {
                    error.get_or_insert(SourceError::BadAnswer(format!(
                        "{}{}: {e}",
                        t.client.base(),
                        t.path
                    )));
                }
            }
        }
        (readings, error)
    }
}

/// A Prometheus server, pulled with `query_range`.
pub struct QueryRange {
    client: ApiClient,
    queries: Vec<(&'static str, String)>,
    server_label: String,
    strip_port: bool,
    step_ms: i64,
    lag_ms: i64,
    /// The last instant read and delivered.
    mark_ms: i64,
    hwm: MarkFile,
}

/// Points per series Prometheus allows in one answer is 11,000; stay under it.
const MAX_STEPS: i64 = 10_000;

impl QueryRange {
    pub fn new(config: &Config, now_ms: i64) -> Result<QueryRange, SourceError> {
        let p = &config.sources.prometheus;
        let map = if p.queries.is_empty() {
            default_queries()
        } else {
            p.queries.clone()
        };
        let mut queries = Vec::new();
        for def in &config.metrics {
            if let Some(q) = map.get(&def.name) {
                queries.push((crate::record::static_name(&def.name), q.clone()));
            }
        }
        if queries.is_empty() {
            return Err(SourceError::Setup(
                "no query maps onto the catalog (sources.prometheus.queries)".into(),
            ));
        }
        let hwm = MarkFile::new(&config.paths.state_dir, "prometheus");
        let step_ms = p.step_seconds as i64 * 1000;
        let mark_ms = match hwm.load().map_err(|e| SourceError::Mark(e.to_string()))? {
            Some(v) => v.as_i64().ok_or_else(|| {
                SourceError::Mark(format!("{}: not a timestamp", hwm.path().display()))
            })?,
            None => now_ms - p.start_hours as i64 * 3_600_000 - step_ms,
        };
        let client = ApiClient::with_tls(&p.url, None, &ClientTls::with_ca(&p.ca_file))
            .map_err(|e| SourceError::Setup(format!("sources.prometheus.ca_file: {e}")))?;
        Ok(QueryRange {
            client: client.with_timeout(Duration::from_secs(60)),
            queries,
            server_label: p.server_label.clone(),
            strip_port: p.strip_port,
            step_ms,
            lag_ms: p.lag_seconds as i64 * 1000,
            mark_ms,
            hwm,
        })
    }

    /// Readings after the mark, and the mark to commit once they are delivered.
    pub async fn poll(&mut self, now_ms: i64) -> Result<(Vec<Reading>, Option<i64>), SourceError> {
        let Some((start, end)) =
            next_range(self.mark_ms, now_ms, self.lag_ms, self.step_ms, MAX_STEPS)
        else {
            return Ok((Vec::new(), None));
        };
        let mut per_metric = Vec::new();
        for (metric, query) in &self.queries {
            let path = format!(
                "/api/v1/query_range?query={}&start={}&end={}&step={}",
                query_escape(query),
                start as f64 / 1000.0,
                end as f64 / 1000.0,
                self.step_ms as f64 / 1000.0
            );
            let answer = self.client.get(&path).await?;
            let what = format!("{}: {metric} ({query})", self.client.base());
            if answer.status.is_server_error() || answer.status == 429 {
                return Err(SourceError::from_status(
                    &what,
                    answer.status,
                    &answer.text(),
                ));
            }
            // Prometheus explains a 4xx in the JSON body, which parse_matrix reports.
            let points = parse_matrix(&answer.body, &self.server_label, self.strip_port)
                .map_err(|e| SourceError::BadAnswer(format!("{what}: {e}")))?;
            per_metric.push((*metric, points));
        }
        Ok((merge(per_metric), Some(end)))
    }

    pub fn commit(&mut self, mark_ms: i64) -> Result<(), SourceError> {
        self.hwm
            .save(&serde_json::json!(mark_ms))
            .map_err(|e| SourceError::Mark(e.to_string()))?;
        self.mark_ms = mark_ms;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_split_into_base_and_path() {
        assert_eq!(
            super::split_url("http://h:9100/metrics"),
            ("http://h:9100".into(), "/metrics".into())
        );
        assert_eq!(
            super::split_url("http://h:9090"),
            ("http://h:9090".into(), "/".into())
        );
        assert_eq!(
            super::split_url("https://h:9100/metrics"),
            ("https://h:9100".into(), "/metrics".into())
        );
    }
}
