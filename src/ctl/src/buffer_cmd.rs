//! `nordiqctl buffer …` and `nordiqctl import`: work on the buffer directory itself, so
//! they run with or without the daemon (which never rewrites a file they read or write).

use crate::failure;
use anyhow::Context;
use nordiq_buffer::import::ColumnMap;
use nordiq_core::config::Config;
use nordiq_runtime::exit;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum BufferCommand {
    /// Records, files, days, disk use, records per server, readiness to train.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Write the last N days as one Parquet file (the trainer's input).
    Export {
        /// Days to export [default: buffer.export_days]
        #[arg(long)]
        days: Option<u32>,
        /// Include today's partial day.
        #[arg(long)]
        include_today: bool,
        /// Output file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// CSV (with a header row) or Parquet files: timestamp, server_name, optional profile,
    /// metric columns.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Map a source column to a catalog metric (repeatable): --map m01=cpu_user_pct
    #[arg(long = "map", value_name = "SRC=DST")]
    map: Vec<String>,
    #[arg(long)]
    json: bool,
}

fn buffer_root(config: &Config) -> PathBuf {
    config.paths.state_dir.join("buffer")
}

pub fn run_buffer(config: &Config, command: &BufferCommand) -> anyhow::Result<i32> {
    let root = buffer_root(config);
    match command {
        BufferCommand::Stats { json } => {
            let stats = nordiq_buffer::stats_of(&root, &config.buffer)
                .map_err(|e| failure(exit::IO_ERR, e.to_string()))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
                return Ok(exit::OK);
            }
            println!("buffer {}", root.display());
            println!(
                "  records      {} in {} files, {} days",
                stats.records, stats.files, stats.partitions
            );
            println!(
                "  range        {} … {}",
                stats.first_timestamp.as_deref().unwrap_or("-"),
                stats.last_timestamp.as_deref().unwrap_or("-")
            );
            println!(
                "  disk         {:.1} MB (log {:.1} MB)",
                stats.disk_bytes as f64 / 1e6,
                stats.wal_bytes as f64 / 1e6
            );
            println!(
                "  training     {} ({})",
                if stats.readiness.ready {
                    "ready"
                } else {
                    "not ready"
                },
                stats.readiness.reason
            );
            println!("  servers      {}", stats.records_per_server.len());
            for (server, n) in stats.records_per_server.iter().take(20) {
                println!("    {server:<24} {n}");
            }
            if stats.records_per_server.len() > 20 {
                println!(
                    "    … {} more (--json lists all)",
                    stats.records_per_server.len() - 20
                );
            }
            Ok(exit::OK)
        }
        BufferCommand::Export {
            days,
            include_today,
            out,
        } => {
            let days = days.unwrap_or(config.buffer.export_days);
            let metrics: Vec<String> = config.metrics.iter().map(|m| m.name.clone()).collect();
            let started = std::time::Instant::now();
            let report = nordiq_buffer::export::export(
                &root,
                &metrics,
                days,
                *include_today,
                nordiq_core::timefmt::now_ms(),
                out,
            )
            .map_err(|e| failure(exit::IO_ERR, e.to_string()))?;
            println!(
                "exported {} rows of {} servers over {} days ({} … {}) to {} ({:.1} MB) in {:.1} s",
                report.rows,
                report.servers,
                report.days,
                report.first_day.as_deref().unwrap_or("-"),
                report.last_day.as_deref().unwrap_or("-"),
                out.display(),
                report.bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            Ok(exit::OK)
        }
    }
}

pub fn parse_map(config: &Config, flags: &[String]) -> anyhow::Result<ColumnMap> {
    let mut map: ColumnMap = config.import.columns.clone().into_iter().collect();
    for flag in flags {
        let (src, dst) = flag
            .split_once('=')
            .ok_or_else(|| failure(exit::USAGE, format!("--map `{flag}`: expected SRC=DST")))?;
        if config.metric_index(dst).is_none() {
            return Err(failure(
                exit::USAGE,
                format!("--map `{flag}`: `{dst}` is not in the catalog"),
            ));
        }
        map.insert(src.to_string(), dst.to_string());
    }
    Ok(map)
}

pub fn run_import(config: &Config, args: &ImportArgs) -> anyhow::Result<i32> {
    let map = parse_map(config, &args.map)?;
    for f in &args.files {
        if !f.is_file() {
            return Err(failure(
                exit::USAGE,
                format!("{}: no such file", f.display()),
            ));
        }
    }
    let root = buffer_root(config);
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let started = std::time::Instant::now();
    let report = nordiq_buffer::import::import_files(
        &root,
        config,
        &args.files,
        &map,
        nordiq_core::timefmt::now_ms(),
        &mut |file, rows| {
            if !args.json {
                eprintln!("  read {} ({rows} rows so far)", file.display());
            }
        },
    )
    .map_err(|e| failure(exit::DATA_ERR, e.to_string()))?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "files": report.files,
                "rows": report.rows,
                "imported": report.imported,
                "duplicates": report.duplicates,
                "rejected_rows": report.rejected_rows,
                "rejected": report.rejected.iter().map(|r| serde_json::json!({
                    "file": r.file, "line": r.line, "field": r.field, "reason": r.reason,
                })).collect::<Vec<_>>(),
                "ignored_columns": report.ignored_columns,
            })
        );
    } else {
        println!(
            "imported {} of {} rows from {} files in {:.1} s ({} already in the buffer, {} rejected)",
            report.imported,
            report.rows,
            report.files,
            started.elapsed().as_secs_f64(),
            report.duplicates,
            report.rejected_rows
        );
        if !report.ignored_columns.is_empty() {
            println!(
                "ignored columns (not in the catalog; --map SRC=DST to use one): {}",
                report.ignored_columns.join(", ")
            );
        }
        for r in report.rejected.iter().take(50) {
            println!(
                "  {}:{}: {}: {}",
                r.file.display(),
                r.line,
                r.field,
                r.reason
            );
        }
        if report.rejected.len() > 50 {
            println!(
                "  … {} more rejected fields (--json lists up to 1,000)",
                report.rejected.len() - 50
            );
        }
    }
    Ok(if report.rejected_rows > 0 {
        exit::DATA_ERR
    } else {
        exit::OK
    })
}
