//! `nordiqctl scenario [status | set NAME]`: the simulator's scenario, through its API
//! (`nordiq-metrics simulate` answers on `sources.simulator.listen`).

use crate::{failure, unreachable};
use anyhow::Context;
use nordiq_runtime::client::ApiClient;
use nordiq_runtime::exit;

#[derive(clap::Args, Debug)]
pub struct ScenarioArgs {
    #[command(subcommand)]
    command: Option<ScenarioCommand>,
    /// The simulator's URL [default: from sources.simulator.listen]
    #[arg(long, value_name = "URL", global = true)]
    simulator_url: Option<String>,
    /// Print the simulator's JSON answer.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(clap::Subcommand, Debug)]
enum ScenarioCommand {
    /// The scenario in force, its ramp, the servers it affects, servers per state (the default).
    Status,
    /// Switch the fleet to a scenario: healthy, degrading (a fifth of the servers, 30-minute
    /// ramp) or critical (two fifths, 10 minutes).
    Set { name: String },
}

pub fn run(
    args: &ScenarioArgs,
    config: &nordiq_core::config::Config,
    key: Option<String>,
) -> anyhow::Result<i32> {
    let url = args.simulator_url.clone().unwrap_or_else(|| {
        nordiq_runtime::client::base_url_for_listen(&config.sources.simulator.listen, false)
    });
    let client = ApiClient::new(&url, key);
    let runtime = crate::runtime()?;
    let answer = match &args.command {
        None | Some(ScenarioCommand::Status) => runtime.block_on(client.get("/scenario/status")),
        Some(ScenarioCommand::Set { name }) => runtime.block_on(client.post(
            &format!(
                "/scenario/set?scenario={}",
                nordiq_runtime::client::query_escape(name)
            ),
            "application/json",
            "",
        )),
    }
    .map_err(|e| {
        unreachable(e).context(format!(
            "is `nordiq-metrics simulate` running with its scenario API at {url}?"
        ))
    })?;
    if !answer.status.is_success() {
        let code = if answer.status.is_client_error() {
            exit::USAGE
        } else {
            exit::UNAVAILABLE
        };
        return Err(failure(
            code,
            format!(
                "the simulator answered {}: {}",
                answer.status,
                answer.text()
            ),
        ));
    }
    if args.json {
        println!("{}", answer.text());
        return Ok(exit::OK);
    }
    let s: serde_json::Value = answer.json().context("reading the simulator's answer")?;
    let affected = s["affected_servers"].as_array().map(Vec::len).unwrap_or(0);
    println!(
        "scenario {} — ramp {:.0} % of {:.0} min; {affected} of {} servers affected{}",
        s["scenario"].as_str().unwrap_or("?"),
        s["progress"].as_f64().unwrap_or(0.0) * 100.0,
        s["ramp_seconds"].as_f64().unwrap_or(0.0) / 60.0,
        s["servers"],
        if affected > 0 {
            format!(
                ": {}",
                s["affected_servers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        }
    );
    if let Some(states) = s["states"].as_object() {
        let parts: Vec<String> = states
            .iter()
            .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
            .map(|(state, n)| format!("{state} {n}"))
            .collect();
        println!("states   {}", parts.join(" · "));
    }
    Ok(exit::OK)
}
