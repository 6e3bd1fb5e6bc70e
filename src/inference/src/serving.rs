//! Which forecaster serves: the trained model at `state_dir/models/current` (when present
//! and compatible with the catalog) for warm servers, the configured baseline otherwise.

use nordiq_core::config::Config;
use nordiq_model::baseline::Baseline;
use nordiq_model::serving::Serving;
use nordiq_model::tft::TftForecaster;

/// Builds the serving forecaster; a model that cannot be used is logged and skipped, so
/// the baselines keep serving.
pub fn build(config: &Config) -> Serving {
    let baseline = Baseline::from_config(config);
    let current = config.paths.state_dir.join("models").join("current");
    let model = match std::fs::canonicalize(&current) {
        Err(_) => None,
        Ok(dir) => {
            let id = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let threads = match config.model.threads {
                0 => std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1),
                n => n,
            };
            match TftForecaster::load(&dir, &id, threads, config.model.cuda) {
                Ok(m) => match m.shape.compatible_with(config) {
                    Ok(()) => {
                        tracing::info!(model = %id, path = %dir.display(), "serving the trained model");
                        Some(m)
                    }
                    Err(reason) => {
                        tracing::error!(model = %id, %reason, "the current model does not fit this config; serving the baselines");
                        None
                    }
                },
                Err(e) => {
                    tracing::error!(model = %id, error = %e, "cannot load the current model; serving the baselines");
                    None
                }
            }
        }
    };
    Serving::new(model, baseline, config.model.encoder_steps)
}
