//! A model directory is complete or absent: it is built under `models/.tmp-<id>/`, every
//! file fsynced, then renamed to `models/<id>/` and the parent fsynced. A staging
//! directory dropped unfinished (an error, a signal) is removed.

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `tft_YYYYMMDD_HHMMSS` (UTC).
pub fn new_id(now_ms: i64) -> String {
    let stamp = nordiq_core::timefmt::format_ms(now_ms / 1000 * 1000);
    // 2026-11-28T00:20:00Z → 20261128_002000
    let digits: String = stamp
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(14)
        .collect();
    format!(
        "tft_{}_{}",
        &digits[..8.min(digits.len())],
        &digits[8.min(digits.len())..]
    )
}

pub struct Staging {
    models: PathBuf,
    id: String,
    tmp: PathBuf,
    done: bool,
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

impl Staging {
    pub fn create(models: &Path, id: &str) -> anyhow::Result<Staging> {
        std::fs::create_dir_all(models)
            .with_context(|| format!("creating {}", models.display()))?;
        if models.join(id).exists() {
            anyhow::bail!(
                "{} exists already; wait a second and retry",
                models.join(id).display()
            );
        }
        let tmp = models.join(format!(".tmp-{id}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        Ok(Staging {
            models: models.to_path_buf(),
            id: id.to_string(),
            tmp,
            done: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Writes metrics.json and training.json, fsyncs everything, renames into place.
    pub fn finish(
        mut self,
        metrics: &serde_json::Value,
        training: &serde_json::Value,
    ) -> anyhow::Result<PathBuf> {
        for (name, value) in [("metrics.json", metrics), ("training.json", training)] {
            let path = self.tmp.join(name);
            let mut f = std::fs::File::create(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            f.write_all(&serde_json::to_vec_pretty(value)?)?;
        }
        for name in [
            "config.json",
            "weights.safetensors",
            "metrics.json",
            "training.json",
        ] {
            let path = self.tmp.join(name);
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("{} is missing or unreadable", path.display()))?;
        }
        sync_dir(&self.tmp)?;
        let dest = self.models.join(&self.id);
        std::fs::rename(&self.tmp, &dest)
            .with_context(|| format!("renaming into {}", dest.display()))?;
        sync_dir(&self.models)?;
        self.done = true;
        Ok(dest)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_timestamps() {
        assert_eq!(new_id(1_795_824_000_000 + 3_723_000), "tft_20261128_010203");
    }

    #[test]
    fn unfinished_staging_leaves_nothing() {
        let models = std::env::temp_dir().join(format!("nordiq-models-{}", std::process::id()));
        {
            let s = Staging::create(&models, "tft_x").unwrap();
            std::fs::write(s.path().join("config.json"), "{}").unwrap();
        }
        assert_eq!(std::fs::read_dir(&models).unwrap().count(), 0);
        let s = Staging::create(&models, "tft_y").unwrap();
        for f in ["config.json", "weights.safetensors"] {
            std::fs::write(s.path().join(f), "x").unwrap();
        }
        let dir = s
            .finish(&serde_json::json!({}), &serde_json::json!({}))
            .unwrap();
        assert!(dir.join("training.json").exists());
        assert!(!models.join(".tmp-tft_y").exists());
        let _ = std::fs::remove_dir_all(&models);
    }
}
