use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/nordiq/nordiq.toml"))
}

fn invalid(text: &str) -> (usize, String, String) {
    match parse(text) {
        Err(ConfigError::Invalid {
            line, key, message, ..
        }) => (line, key, message),
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

#[test]
fn empty_file_gives_every_default() {
    let config = parse("").unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.metrics.len(), 14);
    assert_eq!(config.profiles.len(), 7);
    assert_eq!(config.server.listen, "127.0.0.1:8000");
    assert_eq!(config.model.encoder_steps, 288);
}

#[test]
fn contract_keys_parse() {
    let config = parse(
        r#"
[server]
listen = "0.0.0.0:9000"
[paths]
state_dir = "/tmp/x"
[auth]
api_key_file = "/tmp/key"
allow_anonymous = true
[model]
step_seconds = 60
encoder_steps = 120
horizon_steps = 480
quantiles = [0.05, 0.5, 0.95]
[[metrics]]
name = "m01"
min = 0
max = 1
"#,
    )
    .unwrap();
    assert_eq!(config.server.listen, "0.0.0.0:9000");
    assert!(config.auth.allow_anonymous);
    assert_eq!(config.metrics.len(), 1);
    assert_eq!(config.metrics[0].aggregate, Aggregate::Mean);
    assert_eq!(config.model.quantiles, vec![0.05, 0.5, 0.95]);
}

#[test]
fn unknown_key_names_line_and_key() {
    let (line, key, message) = invalid("[server]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n");
    assert_eq!(line, 3);
    assert!(key.contains("server"), "{key}");
    assert!(message.contains("listne"), "{message}");
}

#[test]
fn unknown_top_level_section_is_an_error() {
    let (line, _, message) = invalid("\n\n[servre]\nlisten = 1\n");
    assert_eq!(line, 3);
    assert!(message.contains("servre"), "{message}");
}

#[test]
fn wrong_type_names_line_and_key() {
    let (line, key, _) = invalid("[model]\nencoder_steps = 288\nstep_seconds = \"five\"\n");
    assert_eq!(line, 3);
    assert_eq!(key, "model.step_seconds");
}

#[test]
fn bad_value_names_line_and_key() {
    let (line, key, message) = invalid("[model]\n\nstep_seconds = 7\n");
    assert_eq!((line, key.as_str()), (3, "model.step_seconds"));
    assert!(message.contains("divide"), "{message}");

    let (line, key, _) = invalid("[server]\nlisten = \"nowhere\"\n");
    assert_eq!((line, key.as_str()), (2, "server.listen"));

    let (_, key, _) = invalid("[model]\nquantiles = [0.1, 0.9]\n");
    assert_eq!(key, "model.quantiles");
}

#[test]
fn each_bound_is_reported_under_its_own_key() {
    let cases = [
        (
            "[ingest]\nmax_future_seconds = -1\n",
            "ingest.max_future_seconds",
            2,
        ),
        ("[ingest]\nmax_age_days = 0\n", "ingest.max_age_days", 2),
        ("[buffer]\nroll_bytes = 10\n", "buffer.roll_bytes", 2),
        ("[buffer]\nroll_seconds = 0\n", "buffer.roll_seconds", 2),
        ("[buffer]\nexport_days = 0\n", "buffer.export_days", 2),
        (
            "[training]\ninference_unit = \"\"\n",
            "training.inference_unit",
            2,
        ),
        ("[drift]\ncoverage_high = 1.5\n", "drift.coverage_high", 2),
    ];
    for (text, want, want_line) in cases {
        let (line, key, _) = invalid(text);
        assert_eq!((key.as_str(), line), (want, want_line), "{text}");
    }
}

#[test]
fn bad_catalog_entry_names_its_index() {
    let (line, key, _) = invalid(
        "[[metrics]]\nname = \"a\"\nmin = 0\nmax = 1\n\n[[metrics]]\nname = \"b\"\nmin = 0\nmax = 10\nrisk = { ok = 5, warn = 3, crit = 8 }\n",
    );
    assert_eq!(key, "metrics[1].risk");
    assert_eq!(line, 10);
    let (_, key, message) =
        invalid("[[metrics]]\nname = \"a\"\nmin = 0\nmax = 1\n[[metrics]]\nname = \"a\"\nmin = 0\nmax = 1\n");
    assert_eq!(key, "metrics[1].name");
    assert!(message.contains("twice"));
}

#[test]
fn syntax_error_names_line() {
    let (line, _, _) = invalid("[server]\nlisten = \n");
    assert_eq!(line, 2);
}

#[test]
fn default_profile_must_exist() {
    let (_, key, _) = invalid("[ingest]\ndefault_profile = \"nope\"\n");
    assert_eq!(key, "ingest.default_profile");
}

#[test]
fn reload_keeps_restart_only_keys() {
    let old = Config::default();
    let mut new = Config::default();
    new.model.step_seconds = 60;
    new.risk.top_n = 3;
    assert_eq!(old.restart_only_differences(&new), vec!["model"]);
    let merged = old.with_restart_only_from(&new);
    assert_eq!(merged.model.step_seconds, 300);
    assert_eq!(merged.risk.top_n, 3);
}

#[test]
fn default_catalog_is_valid_and_shipped_example_parses() {
    let text = include_str!("../../../../etc/nordiq/nordiq.toml");
    let config = parse(text).unwrap();
    assert_eq!(config.metrics, default_catalog());
    // The shipped file shows every default; its one deviation is a remote-write mapping
    // that only fits the default catalog.
    let mut shipped = config.clone();
    assert_eq!(
        shipped
            .remote_write
            .names
            .get("node_load1")
            .map(String::as_str),
        Some("load_average")
    );
    shipped.remote_write.names.clear();
    let defaults = Config::default();
    for (name, a, b) in [
        (
            "server",
            format!("{:?}", shipped.server),
            format!("{:?}", defaults.server),
        ),
        (
            "sources",
            format!("{:?}", shipped.sources),
            format!("{:?}", defaults.sources),
        ),
        (
            "prometheus",
            format!("{:?}", shipped.prometheus),
            format!("{:?}", defaults.prometheus),
        ),
        (
            "remote_write",
            format!("{:?}", shipped.remote_write),
            format!("{:?}", defaults.remote_write),
        ),
        (
            "cluster",
            format!("{:?}", shipped.cluster),
            format!("{:?}", defaults.cluster),
        ),
    ] {
        assert_eq!(
            a, b,
            "etc/nordiq/nordiq.toml [{name}] differs from the defaults"
        );
    }
    assert_eq!(
        shipped, defaults,
        "etc/nordiq/nordiq.toml differs from the defaults"
    );
}

#[test]
fn cluster_settings_are_checked_under_their_own_keys() {
    let key_of = |extra: &str| {
        parse(&format!("[cluster]\nenabled = true\n{extra}"))
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    };
    assert_eq!(key_of(""), "", "the defaults with enabled = true are valid");
    for (extra, key) in [
        ("nats_urls = []", "cluster.nats_urls"),
        ("nats_urls = [\"http://x:4222\"]", "cluster.nats_urls"),
        ("node_name = \"a b\"", "cluster.node_name"),
        ("shards = 0", "cluster.shards"),
        ("replicas = 2", "cluster.replicas"),
        ("lease_seconds = 1", "cluster.lease_seconds"),
        ("retention_hours = 1", "cluster.retention_hours"),
        (
            "duplicate_window_seconds = 0",
            "cluster.duplicate_window_seconds",
        ),
        ("prefix = \"a.b\"", "cluster.prefix"),
        ("client_cert_file = \"/c.pem\"", "cluster.client_key_file"),
    ] {
        let e = key_of(extra);
        assert!(e.contains(key), "{extra}: {e}");
    }
    // Off, nothing is checked: a single node does not care.
    assert!(parse("[cluster]\nshards = 0").is_ok());
}

#[test]
fn mongodb_settings_are_checked_under_their_own_keys() {
    let section =
        |lines: &str| format!("[sources]\nkind = \"mongodb\"\n[sources.mongodb]\n{lines}");
    let cases = [
        ("", "sources.mongodb.uri"),
        ("uri = \"db1:27017\"\n", "sources.mongodb.uri"),
        (
            "uri = \"mongodb://db1\"\naddress = \"db1:27017\"\n",
            "sources.mongodb.address",
        ),
        (
            "uri = \"mongodb://db1\"\npassword_file = \"/etc/nordiq/mongodb-password\"\n",
            "sources.mongodb.username",
        ),
        (
            "uri = \"mongodb://db1\"\nauth_mechanism = \"PLAIN\"\n",
            "sources.mongodb.auth_mechanism",
        ),
        (
            "uri = \"mongodb://db1\"\nbatch_size = 0\n",
            "sources.mongodb.batch_size",
        ),
    ];
    for (lines, want) in cases {
        let (_, key, message) = invalid(&section(lines));
        assert_eq!(key, want, "{lines}: {message}");
    }
    for lines in [
        "uri = \"mongodb+srv://cluster.example.com/?tls=true\"\nusername = \"nordiq\"\n",
        "address = \"db1:27017\"\n",
        "uri = \"mongodb://a,b,c/?replicaSet=rs0\"\nauth_mechanism = \"MONGODB-X509\"\ncert_key_file = \"/etc/nordiq/client.pem\"\n",
    ] {
        parse(&section(lines)).unwrap_or_else(|e| panic!("{lines}: {e}"));
    }
}

#[test]
fn notify_settings_are_checked_under_their_own_keys() {
    let cases = [
        ("[notify]\nmin_severity = \"healthy\"\n", "notify.min_severity"),
        (
            "[notify.alertmanager]\nurls = [\"am1:9093\"]\n",
            "notify.alertmanager.urls",
        ),
        (
            "[notify.alertmanager]\nusername = \"nordiq\"\n",
            "notify.alertmanager.password_file",
        ),
        (
            "[[notify.webhook]]\nname = \"a b\"\nurl = \"https://x\"\n",
            "notify.webhook[0].name",
        ),
        (
            "[[notify.webhook]]\nname = \"a\"\nurl = \"https://x\"\n[[notify.webhook]]\nname = \"a\"\nurl = \"https://y\"\n",
            "notify.webhook[1].name",
        ),
        (
            "[[notify.webhook]]\nname = \"a\"\nurl = \"https://x\"\nkinds = [\"outage\"]\n",
            "notify.webhook[0].kinds",
        ),
    ];
    for (text, want) in cases {
        let (_, key, message) = invalid(text);
        assert_eq!(key, want, "{text}: {message}");
    }
    let ok = parse(
        "[notify]\nmin_level_seconds = 0\n[notify.alertmanager]\nurls = [\"http://am1:9093\", \"http://am2:9093\"]\n\
         [[notify.webhook]]\nname = \"pager\"\nurl = \"https://hooks.example.com/x\"\nmin_severity = \"critical\"\nservers = [\"db*\"]\n",
    )
    .unwrap();
    assert!(ok.notify.any_receiver());
    assert_eq!(
        ok.notify.webhook[0].min_severity,
        crate::risk::Level::Critical
    );
}
