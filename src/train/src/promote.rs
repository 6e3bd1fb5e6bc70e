//! Promotion: a new model replaces the current one only if its validation loss beats the
//! current model's on the same windows by the configured margin (or `--force`), and the
//! daemon is then told to reload.

use nordiq_core::config::Config;
use nordiq_core::job_record::Promotion;

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

/// The candidate's and the best baseline's MASE on the candidate's held-out time.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOut {
    pub candidate_mase: f64,
    pub best_baseline: String,
    pub best_baseline_mase: f64,
}

/// Promote only a candidate that beats the current model on validation loss **and** the
/// best baseline on held-out MASE, each by `margin` (or `force`): a model worse than a
/// median is never what the daemon serves.
pub fn decide(
    candidate_loss: f64,
    current: &Current,
    held_out: Option<&HeldOut>,
    margin: f64,
    force: bool,
) -> Promotion {
    let (current_model, current_loss) = match current {
        Current::None => (None, None),
        Current::Unusable { id, .. } => (Some(id.clone()), None),
        Current::Evaluated { id, loss } => (Some(id.clone()), Some(*loss)),
    };
    // Against the current model first, then against the best baseline.
    let versus_current: Result<String, String> = match current {
        Current::None => Ok("no model was current".to_string()),
        Current::Unusable { reason, .. } => Ok(format!("the current model cannot be evaluated: {reason}")),
        Current::Evaluated { loss, .. } if candidate_loss < loss * (1.0 - margin) => Ok(format!(
            "validation loss {candidate_loss:.5} beats the current model's {loss:.5} by {:.2} %",
            (1.0 - candidate_loss / loss) * 100.0
        )),
        Current::Evaluated { loss, .. } => Err(format!(
            "validation loss {candidate_loss:.5} does not beat the current model's {loss:.5} by the margin of {:.2} %",
            margin * 100.0
        )),
    };
    let versus_baseline: Result<String, String> = match held_out {
        None => Err("it has no held-out evaluation against the baselines".to_string()),
        Some(h) if h.candidate_mase.is_finite() && h.candidate_mase < h.best_baseline_mase * (1.0 - margin) => Ok(format!(
            "held-out MASE {:.3} beats the best baseline {} ({:.3}) by {:.1} %",
            h.candidate_mase,
            h.best_baseline,
            h.best_baseline_mase,
            (1.0 - h.candidate_mase / h.best_baseline_mase) * 100.0
        )),
        Some(h) => Err(format!(
            "held-out MASE {:.3} does not beat the best baseline {} ({:.3}) by the margin of {:.2} %; the daemon keeps serving {}",
            h.candidate_mase,
            h.best_baseline,
            h.best_baseline_mase,
            margin * 100.0,
            current_model.as_deref().unwrap_or("the baselines")
        )),
    };
    let (promoted, reason) = if !candidate_loss.is_finite() {
        (
            false,
            format!("its validation loss is {candidate_loss}; never promoted"),
        )
    } else if force {
        (true, "--force".to_string())
    } else {
        match (versus_current, versus_baseline) {
            (Ok(a), Ok(b)) => (true, format!("{a} (margin {:.2} %); {b}", margin * 100.0)),
            (Err(e), _) | (_, Err(e)) => (false, e),
        }
    };
    Promotion {
        promoted,
        reason,
        candidate_loss,
        current_loss,
        current_model,
        margin,
        candidate_mase: held_out.map(|h| h.candidate_mase),
        best_baseline: held_out.map(|h| h.best_baseline.clone()),
        best_baseline_mase: held_out.map(|h| h.best_baseline_mase),
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
        ReloadVia::Auto if nordiq_runtime::systemd::running_as_unit() => ReloadVia::Systemd,
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
            let key = nordiq_runtime::auth::resolve_key(
                &nordiq_runtime::auth::KeyEnv::from_process(),
                &config.auth.api_key_file,
            )
            .map_err(|e| e.to_string())?
            .map(|k| k.expose().to_string());
            let client = nordiq_runtime::client::for_daemon(config, None, key)
                .map_err(|e| e.to_string())?
                .with_timeout(std::time::Duration::from_secs(120));
            let base = client.base().to_string();
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

    fn held_out(candidate: f64, baseline: f64) -> HeldOut {
        HeldOut {
            candidate_mase: candidate,
            best_baseline: "baseline:seasonal_median".into(),
            best_baseline_mase: baseline,
        }
    }

    #[test]
    fn promotes_only_a_better_model() {
        let wins = held_out(0.70, 0.76);
        let wins = Some(&wins);
        assert!(decide(0.10, &Current::None, wins, 0.0, false).promoted);
        let better = decide(0.09, &evaluated(0.10), wins, 0.05, false);
        assert!(better.promoted, "{}", better.reason);
        assert_eq!(better.current_loss, Some(0.10));
        assert_eq!(better.current_model.as_deref(), Some("tft_old"));
        assert_eq!(better.best_baseline_mase, Some(0.76));
        // 4 % better is not enough with a 5 % margin; equal is never enough.
        assert!(!decide(0.096, &evaluated(0.10), wins, 0.05, false).promoted);
        assert!(!decide(0.10, &evaluated(0.10), wins, 0.0, false).promoted);
        assert!(decide(0.12, &evaluated(0.10), wins, 0.0, true).promoted);
        let unusable = Current::Unusable {
            id: "tft_old".into(),
            reason: "metrics differ".into(),
        };
        assert!(decide(0.5, &unusable, wins, 0.0, false).promoted);
        assert!(!decide(f64::NAN, &Current::None, wins, 0.0, true).promoted);
    }

    #[test]
    fn a_model_that_loses_to_the_best_baseline_is_never_promoted() {
        // First model, nothing current: before, that alone promoted it.
        let loses = held_out(0.80, 0.76);
        let p = decide(0.05, &Current::None, Some(&loses), 0.0, false);
        assert!(!p.promoted);
        assert!(
            p.reason
                .contains("does not beat the best baseline baseline:seasonal_median"),
            "{}",
            p.reason
        );
        assert!(
            p.reason.contains("keeps serving the baselines"),
            "{}",
            p.reason
        );
        // Better than the current model, worse than the baseline: the current one stays.
        let p = decide(0.05, &evaluated(0.10), Some(&loses), 0.0, false);
        assert!(!p.promoted);
        assert!(p.reason.contains("keeps serving tft_old"), "{}", p.reason);
        // Within the margin of the baseline is not enough either.
        let close = held_out(0.75, 0.76);
        assert!(!decide(0.05, &Current::None, Some(&close), 0.05, false).promoted);
        // No held-out evaluation at all: not promoted.
        assert!(!decide(0.05, &Current::None, None, 0.0, false).promoted);
        // A NaN held-out score never wins.
        let nan = held_out(f64::NAN, 0.76);
        assert!(!decide(0.05, &Current::None, Some(&nan), 0.0, false).promoted);
    }
}
