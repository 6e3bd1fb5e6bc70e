//! Promotion: a new model replaces the current one only if its validation loss beats the
//! current model's on the same windows by the configured margin (or `--force`), and the
//! daemon is then told to reload.

use nordiq_core::config::Config;
use nordiq_core::jobs::Promotion;

/// What is known about the current model.
pub enum Current {
    None,
    /// It could not be evaluated (unloadable, or it no longer fits the config), so it
    /// cannot serve either.
    Unusable {
        id: String,
        reason: String,
    },
    Evaluated {
        id: String,
        loss: f64,
    },
}

pub fn decide(candidate_loss: f64, current: &Current, margin: f64, force: bool) -> Promotion {
    let (current_model, current_loss) = match current {
        Current::None => (None, None),
        Current::Unusable { id, .. } => (Some(id.clone()), None),
        Current::Evaluated { id, loss } => (Some(id.clone()), Some(*loss)),
    };
    let (promoted, reason) = if !candidate_loss.is_finite() {
        (
            false,
            format!("its validation loss is {candidate_loss}; never promoted"),
        )
    } else if force {
        (true, "--force".to_string())
    } else {
        match current {
            Current::None => (true, "no model was current".to_string()),
            Current::Unusable { reason, .. } => (
                true,
                format!("the current model cannot be evaluated: {reason}"),
            ),
            Current::Evaluated { loss, .. } => {
                let bar = loss * (1.0 - margin);
                if candidate_loss < bar {
                    (
                        true,
                        format!(
                            "validation loss {candidate_loss:.5} beats the current model's {loss:.5} by {:.2} % (margin {:.2} %)",
                            (1.0 - candidate_loss / loss) * 100.0,
                            margin * 100.0
                        ),
                    )
                } else {
                    (
                        false,
                        format!(
                            "validation loss {candidate_loss:.5} does not beat the current model's {loss:.5} by the margin of {:.2} %",
                            margin * 100.0
                        ),
                    )
                }
            }
        }
    };
    Promotion {
        promoted,
        reason,
        candidate_loss,
        current_loss,
        current_model,
        margin,
    }
}

/// How the daemon learns about a promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReloadVia {
    /// `systemd` under systemd, else `api`.
    Auto,
    /// `systemctl try-reload-or-restart` of `training.inference_unit`.
    Systemd,
    /// `POST /admin/reload-model` at `server.listen` with the API key.
    Api,
    /// Nothing (the caller reloads; the daemon's process launcher does).
    None,
}

/// Tells the daemon to load the new current model; returns what happened, in words.
pub fn notify_daemon(config: &Config, via: ReloadVia) -> Result<String, String> {
    let via = match via {
        ReloadVia::Auto if nordiq_core::systemd::running_as_unit() => ReloadVia::Systemd,
        ReloadVia::Auto => ReloadVia::Api,
        other => other,
    };
    match via {
        ReloadVia::None | ReloadVia::Auto => Ok("not asked to reload the daemon".into()),
        ReloadVia::Systemd => {
            let unit = &config.training.inference_unit;
            let out = std::process::Command::new("systemctl")
                .args(["try-reload-or-restart", unit])
                .output()
                .map_err(|e| format!("running systemctl: {e}"))?;
            if out.status.success() {
                Ok(format!("{unit} reloaded"))
            } else {
                Err(format!(
                    "systemctl try-reload-or-restart {unit}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        }
        ReloadVia::Api => {
            let key = nordiq_core::auth::resolve_key(
                &nordiq_core::auth::KeyEnv::from_process(),
                &config.auth.api_key_file,
            )
            .map_err(|e| e.to_string())?
            .map(|k| k.expose().to_string());
            let base = nordiq_core::client::base_url_for_listen(&config.server.listen);
            let client = nordiq_core::client::ApiClient::new(&base, key)
                .with_timeout(std::time::Duration::from_secs(120));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let answer = runtime
                .block_on(client.post("/admin/reload-model", "application/json", ""))
                .map_err(|e| e.to_string())?;
            if answer.status == 200 {
                Ok(format!("the daemon at {base} reloaded"))
            } else {
                Err(format!(
                    "the daemon at {base} answered {}: {}",
                    answer.status,
                    answer.text()
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluated(loss: f64) -> Current {
        Current::Evaluated {
            id: "tft_old".into(),
            loss,
        }
    }

    #[test]
    fn promotes_only_a_better_model() {
        assert!(decide(0.10, &Current::None, 0.0, false).promoted);
        let better = decide(0.09, &evaluated(0.10), 0.05, false);
        assert!(better.promoted, "{}", better.reason);
        assert_eq!(better.current_loss, Some(0.10));
        assert_eq!(better.current_model.as_deref(), Some("tft_old"));
        // 4 % better is not enough with a 5 % margin; equal is never enough.
        assert!(!decide(0.096, &evaluated(0.10), 0.05, false).promoted);
        assert!(!decide(0.10, &evaluated(0.10), 0.0, false).promoted);
        assert!(decide(0.12, &evaluated(0.10), 0.0, true).promoted);
        let unusable = Current::Unusable {
            id: "tft_old".into(),
            reason: "metrics differ".into(),
        };
        assert!(decide(0.5, &unusable, 0.0, false).promoted);
        assert!(!decide(f64::NAN, &Current::None, 0.0, true).promoted);
    }
}
