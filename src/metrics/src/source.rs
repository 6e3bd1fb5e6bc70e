//! The sources `nordiq-metrics` can read, behind one interface: readings at a wall-clock
//! instant, and a line for `STATUS=`.

use crate::elastic::ElasticPull;
use crate::host::HostReader;
use crate::mongo::MongoPull;
use crate::prometheus_sources::{NodeScraper, QueryRange};
use crate::record::Reading;
use crate::scenario::Scenario;
use crate::sim::{Fleet, State, METRICS};
use crate::source_error::SourceError;
use serde::Serialize;
use std::collections::BTreeMap;

/// The simulated fleet on a clock that may run faster than the wall's.
pub struct SimSource {
    pub fleet: Fleet,
    pub seed: u64,
    pub speed: f64,
    origin_wall_ms: i64,
    origin_sim_ms: i64,
}

impl SimSource {
    /// A fleet whose simulated time is the wall clock's from `start_ms` until
    /// [`go_live`](Self::go_live) (history is simulated at real speed).
    pub fn new(servers: usize, seed: u64, speed: f64, start_ms: i64) -> SimSource {
        SimSource {
            fleet: Fleet::new(servers, seed, start_ms),
            seed,
            speed,
            origin_wall_ms: start_ms,
            origin_sim_ms: start_ms,
        }
    }

    /// From `now_ms` on, simulated time runs `speed` times faster than the wall's.
    pub fn go_live(&mut self, now_ms: i64) {
        self.origin_sim_ms = self.sim_ms(now_ms);
        self.origin_wall_ms = now_ms;
    }

    pub fn sim_ms(&self, wall_ms: i64) -> i64 {
        self.origin_sim_ms + ((wall_ms - self.origin_wall_ms) as f64 * self.speed) as i64
    }

    /// Every online server's readings, stamped with the wall time.
    pub fn readings(&mut self, wall_ms: i64) -> Vec<Reading> {
        let sim = self.sim_ms(wall_ms);
        let values = self.fleet.advance(sim);
        self.fleet
            .servers
            .iter()
            .zip(values)
            .filter_map(|(s, v)| {
                v.map(|v| Reading {
                    timestamp_ms: wall_ms,
                    server: s.name.clone(),
                    profile: s.profile.to_string(),
                    values: METRICS.iter().copied().zip(v).collect(),
                })
            })
            .collect()
    }

    pub fn set_scenario(&mut self, scenario: Scenario, wall_ms: i64) {
        let sim = self.sim_ms(wall_ms);
        self.fleet.set_scenario(scenario, sim);
    }

    pub fn status(&self, wall_ms: i64) -> ScenarioStatus {
        let state = self.fleet.scenario();
        let mut states: BTreeMap<&'static str, usize> =
            State::ALL.iter().map(|s| (s.name(), 0)).collect();
        for s in &self.fleet.servers {
            *states.entry(s.state.name()).or_default() += 1;
        }
        ScenarioStatus {
            scenario: state.scenario.name(),
            progress: state.progress(self.sim_ms(wall_ms)),
            ramp_seconds: state.scenario.ramp_seconds(),
            affected_servers: self
                .fleet
                .affected()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            servers: self.fleet.servers.len(),
            problem_children: self
                .fleet
                .servers
                .iter()
                .filter(|s| s.problem_child)
                .map(|s| s.name.clone())
                .collect(),
            states,
            seed: self.seed,
            speed: self.speed,
        }
    }
}

/// `GET /scenario/status`.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioStatus {
    pub scenario: &'static str,
    /// 0 – 1: how far the ramp has come (in simulated time).
    pub progress: f64,
    pub ramp_seconds: f64,
    pub affected_servers: Vec<String>,
    pub servers: usize,
    pub problem_children: Vec<String>,
    /// Servers per operating state.
    pub states: BTreeMap<&'static str, usize>,
    pub seed: u64,
    pub speed: f64,
}

pub enum Source {
    Simulator(std::sync::Arc<std::sync::Mutex<SimSource>>),
    Host(Box<HostReader>),
    NodeExporter(NodeScraper),
    Prometheus(Box<QueryRange>),
    Elasticsearch(Box<ElasticPull>),
    Mongodb(Box<MongoPull>),
}

/// What one poll gave.
#[derive(Debug, Default)]
pub struct Poll {
    pub readings: Vec<Reading>,
    /// The high-water mark to commit once the readings are delivered or spooled.
    pub mark: Option<serde_json::Value>,
    /// What went wrong (readings may still have come from the parts that worked).
    pub error: Option<SourceError>,
}

impl Source {
    pub fn name(&self) -> &'static str {
        match self {
            Source::Simulator(_) => "simulator",
            Source::Host(_) => "host",
            Source::NodeExporter(_) => "node_exporter",
            Source::Prometheus(_) => "prometheus",
            Source::Elasticsearch(_) => "elasticsearch",
            Source::Mongodb(_) => "mongodb",
        }
    }

    pub async fn poll(&mut self, wall_ms: i64) -> Poll {
        match self {
            Source::Simulator(sim) => Poll {
                readings: sim
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .readings(wall_ms),
                ..Poll::default()
            },
            Source::Host(host) => match host.read(wall_ms) {
                Ok(r) => Poll {
                    readings: vec![r],
                    ..Poll::default()
                },
                Err(e) => Poll {
                    error: Some(SourceError::Unreachable(e.to_string())),
                    ..Poll::default()
                },
            },
            Source::NodeExporter(scraper) => {
                let (readings, error) = scraper.scrape(wall_ms).await;
                Poll {
                    readings,
                    mark: None,
                    error,
                }
            }
            Source::Prometheus(pull) => match pull.poll(wall_ms).await {
                Ok((readings, mark)) => Poll {
                    readings,
                    mark: mark.map(serde_json::Value::from),
                    error: None,
                },
                Err(e) => Poll {
                    error: Some(e),
                    ..Poll::default()
                },
            },
            Source::Elasticsearch(pull) => marked(pull.poll(wall_ms).await),
            Source::Mongodb(pull) => marked(pull.poll(wall_ms).await),
        }
    }

    /// Saves the mark of a poll whose readings are safe.
    pub fn commit(&mut self, mark: &serde_json::Value) -> Result<(), SourceError> {
        match self {
            Source::Prometheus(pull) => pull.commit(mark.as_i64().unwrap_or_default()),
            Source::Elasticsearch(pull) => pull.commit(mark),
            Source::Mongodb(pull) => pull.commit(mark),
            _ => Ok(()),
        }
    }
}

fn marked(result: Result<(Vec<Reading>, Option<serde_json::Value>), SourceError>) -> Poll {
    match result {
        Ok((readings, mark)) => Poll {
            readings,
            mark,
            error: None,
        },
        Err(e) => Poll {
            error: Some(e),
            ..Poll::default()
        },
    }
}
