//! MongoDB as a source, through the official driver (`mongodb` crate): any connection
//! string it takes (`mongodb://a,b,c/?replicaSet=rs0`, `mongodb+srv://…`), SCRAM or X.509
//! authentication, TLS with a CA file. Each poll runs one `find` with
//! `{timestamp: {$gte: mark, $lt: now − lag}}` sorted by timestamp and `_id`, read in
//! batches up to a limit; documents already read at the boundary instant are dropped by
//! `_id` ([`Boundary`](crate::source_mark::Boundary)).

use crate::document_fields::{catalog_fields, reading, timestamp_ms};
use crate::record::Reading;
use crate::source_error::SourceError;
use crate::source_mark::SavedBoundary;
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::error::ErrorKind;
use mongodb::options::{AuthMechanism, ClientOptions, Tls, TlsOptions};
use nordiq_core::config::{Config, FieldMap, MongodbConfig};
use nordiq_runtime::secret::read_secret;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Batches read per poll at most; the rest waits for the next poll.
const MAX_BATCHES: usize = 20;
/// The systemd credential that holds the password, preferred to `password_file`.
pub const PASSWORD_CREDENTIAL: &str = "mongodb-password";
/// How long to wait for a usable server (and for a connection) when the URI does not say:
/// the driver's own 30 s would hold a poll that long.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct MongoPull {
    cfg: MongodbConfig,
    fields: Vec<(&'static str, FieldMap)>,
    client: Option<mongodb::Client>,
    position: SavedBoundary,
}

impl MongoPull {
    pub fn new(config: &Config, now_ms: i64) -> Result<MongoPull, SourceError> {
        let cfg = config.sources.mongodb.clone();
        let fields = catalog_fields(config, &cfg.fields, "sources.mongodb.fields")?;
        let start = now_ms - cfg.start_hours as i64 * 3_600_000;
        let position = SavedBoundary::open(&config.paths.state_dir, "mongodb", start)?;
        // Files are read when the client is made; checked once here so that a missing
        // one stops the service at start instead of failing every poll.
        if !cfg.username.is_empty() {
            password(&cfg)?;
        }
        for (key, path) in [
            ("ca_file", &cfg.ca_file),
            ("cert_key_file", &cfg.cert_key_file),
        ] {
            if !path.is_empty() {
                std::fs::metadata(path).map_err(|e| {
                    SourceError::Setup(format!("sources.mongodb.{key} {path}: {e}"))
                })?;
            }
        }
        Ok(MongoPull {
            cfg,
            fields,
            client: None,
            position,
        })
    }

    pub async fn poll(
        &mut self,
        now_ms: i64,
    ) -> Result<(Vec<Reading>, Option<Value>), SourceError> {
        let client = match &self.client {
            Some(client) => client.clone(),
            None => {
                let client = connect(&self.cfg).await?;
                self.client = Some(client.clone());
                client
            }
        };
        let result = self.read(&client, now_ms).await;
        if let Err(e) = &result {
            if !e.is_transient() {
                // Made afresh next time: a rotated password or certificate is read again.
                self.client = None;
            }
        }
        result
    }

    async fn read(
        &self,
        client: &mongodb::Client,
        now_ms: i64,
    ) -> Result<(Vec<Reading>, Option<Value>), SourceError> {
        let cfg = &self.cfg;
        let until = now_ms - cfg.lag_seconds as i64 * 1000;
        let ts = cfg.timestamp_field.as_str();
        let mut at = self.position.current.clone();
        // The documents already read at the boundary instant come again first.
        let batch = cfg.batch_size + at.ids.len();
        let collection = client
            .database(&cfg.database)
            .collection::<Document>(&cfg.collection);
        let filter = doc! { ts: {
            "$gte": DateTime::from_millis(at.ts),
            "$lt": DateTime::from_millis(until),
        } };
        let mut cursor = collection
            .find(filter)
            .sort(doc! { ts: 1, "_id": 1 })
            .batch_size(u32::try_from(batch).unwrap_or(u32::MAX))
            .limit(i64::try_from(batch * MAX_BATCHES).unwrap_or(i64::MAX))
            .await
            .map_err(|e| classify(cfg, e))?;
        let mut readings = Vec::new();
        while cursor.advance().await.map_err(|e| classify(cfg, e))? {
            let document: Document = cursor.deserialize_current().map_err(|e| {
                SourceError::BadAnswer(format!(
                    "MongoDB {}.{}: a document that does not decode: {e}",
                    cfg.database, cfg.collection
                ))
            })?;
            let doc = Bson::Document(document).into_relaxed_extjson();
            let Some(t) = doc.get(ts).and_then(timestamp_ms) else {
                continue;
            };
            let id = doc.get("_id").map(Value::to_string).unwrap_or_default();
            if at.admit(t, &id) {
                if let Some(r) = reading(&doc, t, &cfg.server_field, &self.fields) {
                    readings.push(r);
                }
            }
        }
        let mark = (at != self.position.current).then(|| at.to_json());
        Ok((readings, mark))
    }

    pub fn commit(&mut self, mark: &Value) -> Result<(), SourceError> {
        self.position.commit(mark)
    }
}

/// The connection string: `uri`, or the older `address` (one server, direct).
pub fn connection_string(cfg: &MongodbConfig) -> String {
    if cfg.uri.is_empty() {
        format!("mongodb://{}/?directConnection=true", cfg.address)
    } else {
        cfg.uri.clone()
    }
}

/// The servers of the connection string, without user or password (for the log).
pub fn hosts(cfg: &MongodbConfig) -> String {
    let uri = connection_string(cfg);
    let rest = uri.split_once("://").map_or(uri.as_str(), |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The driver's options: the connection string, with the config's credential, TLS files
/// and timeouts laid over it.
pub async fn client_options(cfg: &MongodbConfig) -> Result<ClientOptions, SourceError> {
    let uri = connection_string(cfg);
    let mut options = ClientOptions::parse(&uri).await.map_err(|e| {
        let setup = matches!(*e.kind, ErrorKind::InvalidArgument { .. });
        let message = format!("sources.mongodb.uri: {}", redact(&e.to_string(), cfg));
        if setup {
            SourceError::Setup(message)
        } else {
            // An SRV or TXT lookup that failed: DNS may come back.
            SourceError::Unreachable(message)
        }
    })?;
    options.app_name = Some("nordiq-metrics".into());
    options.server_selection_timeout = options.server_selection_timeout.or(Some(DEFAULT_TIMEOUT));
    options.connect_timeout = options.connect_timeout.or(Some(DEFAULT_TIMEOUT));
    let mechanism = mechanism(cfg)?;
    // The config's settings over the URI's credential; none is made for `auth_source` alone.
    if !cfg.username.is_empty() || mechanism.is_some() || options.credential.is_some() {
        let mut credential = options.credential.take().unwrap_or_default();
        if !cfg.username.is_empty() {
            credential.username = Some(cfg.username.clone());
            credential.password = Some(password(cfg)?);
        }
        if !cfg.auth_source.is_empty() {
            credential.source = Some(cfg.auth_source.clone());
        }
        if mechanism.is_some() {
            credential.mechanism = mechanism;
        }
        options.credential = Some(credential);
    }
    if cfg.tls || !cfg.ca_file.is_empty() || !cfg.cert_key_file.is_empty() {
        let mut tls = match options.tls.take() {
            Some(Tls::Enabled(tls)) => tls,
            _ => TlsOptions::default(),
        };
        if !cfg.ca_file.is_empty() {
            tls.ca_file_path = Some(PathBuf::from(&cfg.ca_file));
        }
        if !cfg.cert_key_file.is_empty() {
            tls.cert_key_file_path = Some(PathBuf::from(&cfg.cert_key_file));
        }
        options.tls = Some(Tls::Enabled(tls));
    }
    Ok(options)
}

async fn connect(cfg: &MongodbConfig) -> Result<mongodb::Client, SourceError> {
    let options = client_options(cfg).await?;
    mongodb::Client::with_options(options).map_err(|e| {
        SourceError::Setup(format!(
            "sources.mongodb: the driver refused the settings: {}",
            redact(&e.to_string(), cfg)
        ))
    })
}

fn mechanism(cfg: &MongodbConfig) -> Result<Option<AuthMechanism>, SourceError> {
    match cfg.auth_mechanism.as_str() {
        "" => Ok(None),
        name => name.parse::<AuthMechanism>().map(Some).map_err(|e| {
            SourceError::Setup(format!(
                "sources.mongodb.auth_mechanism `{name}`: {e} (use SCRAM-SHA-256, SCRAM-SHA-1 or MONGODB-X509)"
            ))
        }),
    }
}

fn password(cfg: &MongodbConfig) -> Result<String, SourceError> {
    Ok(read_secret(
        "sources.mongodb.password_file",
        PASSWORD_CREDENTIAL,
        &cfg.password_file,
    )?)
}

/// A driver error as a source error: what the network may mend is transient; refused
/// credentials, refused commands and bad settings are not. The message is the driver's
/// own, without its labels and raw server answer.
fn classify(cfg: &MongodbConfig, e: mongodb::error::Error) -> SourceError {
    let place = format!("MongoDB {}.{}", cfg.database, cfg.collection);
    let credentials = "check sources.mongodb.username, the password and auth_source";
    match *e.kind {
        ErrorKind::Authentication { message, .. } => SourceError::Setup(format!(
            "{place}: authentication failed: {} ({credentials})",
            redact(&message, cfg)
        )),
        ErrorKind::Command(c) => {
            let hint = match c.code {
                13 => format!(
                    " ({credentials}: this user may not read the collection, or none is set)"
                ),
                _ => String::new(),
            };
            SourceError::BadAnswer(format!(
                "{place}: the server refused the query: {} (code {} {}){hint}",
                c.message, c.code, c.code_name
            ))
        }
        ErrorKind::ServerSelection { message, .. } => SourceError::Unreachable(format!(
            "{place}: no usable server within the timeout: {}",
            redact(&message, cfg)
        )),
        kind @ (ErrorKind::InvalidArgument { .. } | ErrorKind::InvalidTlsConfig { .. }) => {
            SourceError::Setup(format!("{place}: {}", redact(&kind.to_string(), cfg)))
        }
        kind @ ErrorKind::BsonDeserialization(_) => {
            SourceError::BadAnswer(format!("{place}: {kind}"))
        }
        kind => SourceError::Unreachable(format!("{place}: {}", redact(&kind.to_string(), cfg))),
    }
}

/// A URI may carry `user:password@`; the password never reaches a log.
fn redact(text: &str, cfg: &MongodbConfig) -> String {
    let Some((_, rest)) = cfg.uri.split_once("://") else {
        return text.to_string();
    };
    let Some((userinfo, _)) = rest.split_once('@') else {
        return text.to_string();
    };
    match userinfo.split_once(':') {
        Some((_, secret)) if !secret.is_empty() => text.replace(secret, "***"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(uri: &str) -> MongodbConfig {
        MongodbConfig {
            uri: uri.into(),
            ..MongodbConfig::default()
        }
    }

    #[tokio::test]
    async fn the_config_is_laid_over_the_connection_string() {
        let dir = nordiq_testkit::TempDir::new("mongo-options");
        let password_file = dir.join("password");
        std::fs::write(&password_file, "s3cret\n").unwrap();
        let mut c = cfg("mongodb://a:27017,b:27017/?replicaSet=rs0");
        c.username = "reader".into();
        c.password_file = password_file.display().to_string();
        c.auth_mechanism = "SCRAM-SHA-256".into();
        c.auth_source = "metrics".into();
        c.ca_file = "/etc/ssl/mongo-ca.pem".into();
        let options = client_options(&c).await.unwrap();
        assert_eq!(options.hosts.len(), 2);
        assert_eq!(options.repl_set_name.as_deref(), Some("rs0"));
        let credential = options.credential.unwrap();
        assert_eq!(credential.username.as_deref(), Some("reader"));
        assert_eq!(credential.password.as_deref(), Some("s3cret"));
        assert_eq!(credential.source.as_deref(), Some("metrics"));
        assert_eq!(credential.mechanism, Some(AuthMechanism::ScramSha256));
        let Some(Tls::Enabled(tls)) = options.tls else {
            panic!("a CA file turns TLS on");
        };
        assert_eq!(
            tls.ca_file_path.as_deref(),
            Some(std::path::Path::new("/etc/ssl/mongo-ca.pem"))
        );
        assert_eq!(options.server_selection_timeout, Some(DEFAULT_TIMEOUT));
    }

    #[tokio::test]
    async fn the_older_address_is_one_direct_server_and_bad_settings_say_which_key() {
        let c = MongodbConfig {
            address: "db1:27017".into(),
            ..MongodbConfig::default()
        };
        let options = client_options(&c).await.unwrap();
        assert_eq!(options.direct_connection, Some(true));
        assert!(options.credential.is_none() && options.tls.is_none());

        let e = client_options(&cfg("mongodb://db1:notaport/")).await;
        assert!(matches!(e, Err(SourceError::Setup(_))), "{e:?}");
        let mut bad = cfg("mongodb://db1");
        bad.auth_mechanism = "PLAINTEXT".into();
        let e = client_options(&bad).await.unwrap_err().to_string();
        assert!(e.contains("auth_mechanism"), "{e}");
        let mut missing = cfg("mongodb://db1");
        missing.username = "reader".into();
        missing.password_file = "/nonexistent/password".into();
        let e = client_options(&missing).await.unwrap_err().to_string();
        assert!(e.contains("sources.mongodb.password_file"), "{e}");
    }

    #[test]
    fn a_password_in_the_uri_is_redacted() {
        let c = cfg("mongodb://reader:hunter2@db1/");
        assert_eq!(
            redact("auth failed for mongodb://reader:hunter2@db1/", &c),
            "auth failed for mongodb://reader:***@db1/"
        );
        assert_eq!(redact("no secret", &cfg("mongodb://db1/")), "no secret");
        assert_eq!(hosts(&c), "db1");
        assert_eq!(
            hosts(&cfg("mongodb+srv://u:p@c.example.com/?tls=true")),
            "c.example.com"
        );
    }
}
