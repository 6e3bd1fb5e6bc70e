//! The model store: `state_dir/models/<id>/` directories, `current` and `previous`
//! symlinks. A model directory is complete or absent (built under `.tmp-<id>/`, fsynced,
//! renamed); `current` is swapped with `rename(2)` of a fresh symlink over it, so a reader
//! resolves either the old model or the new one, never nothing.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Files a model directory must hold to be served.
pub const MODEL_FILES: [&str; 4] = [
    "config.json",
    "weights.safetensors",
    "metrics.json",
    "training.json",
];

/// What went wrong in the model store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("no model `{id}` in {dir} (see `nordiqctl models`)")]
    Unknown { id: String, dir: String },
    #[error("{dir} is not a complete model directory: {missing} is missing")]
    Incomplete { dir: String, missing: String },
    #[error("`{0}` is not a model id (expected a directory name like tft_20261128_010203)")]
    BadId(String),
    #[error("nothing to roll back to: {0} has no `previous` model")]
    NoPrevious(String),
    #[error("{0} exists already; pick another id")]
    Exists(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `tft_YYYYMMDD_HHMMSS` (UTC) for a model finished at `now_ms`.
pub fn new_id(now_ms: i64) -> String {
    let stamp = nordiq_core::timefmt::format_ms(now_ms / 1000 * 1000);
    // 2026-11-28T00:20:00Z → 20261128 and 002000
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    format!("tft_{}_{}", &digits[..8], &digits[8..14])
}

/// One model directory as `nordiqctl models` and `GET /admin/models` list it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelEntry {
    pub id: String,
    pub path: String,
    /// When training finished (from training.json), else the directory's mtime.
    pub created: Option<String>,
    pub current: bool,
    pub previous: bool,
    /// Every file of [`MODEL_FILES`] is present.
    pub complete: bool,
    /// Held-out MASE against seasonal naive (metrics.json).
    pub mase: Option<f64>,
    pub coverage: Option<f64>,
    pub validation_pinball: Option<f64>,
}

/// Reads the headline figures a trainer wrote to `metrics.json`.
pub fn headline(dir: &Path) -> (Option<f64>, Option<f64>, Option<f64>) {
    let Ok(text) = std::fs::read(dir.join("metrics.json")) else {
        return (None, None, None);
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return (None, None, None);
    };
    (
        v["mase"].as_f64(),
        v["tft"]["coverage"].as_f64(),
        v["validation_pinball"].as_f64(),
    )
}

/// The promotion decision recorded in a model directory's `training.json`: whether it was
/// promoted and why (None when the file or the decision is missing).
pub fn promotion_of(dir: &Path) -> Option<(bool, String)> {
    let text = std::fs::read(dir.join("training.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let p = &v["promotion"];
    Some((p["promoted"].as_bool()?, p["reason"].as_str()?.to_string()))
}

/// The best baseline a model was compared with on its held-out time, and its MASE.
pub fn best_baseline_of(dir: &Path) -> Option<(String, f64)> {
    let text = std::fs::read(dir.join("metrics.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    Some((
        v["best_baseline"].as_str()?.to_string(),
        v["best_baseline_mase"].as_f64()?,
    ))
}

/// The kind of [`best_baseline_of`], where it names one of ours.
pub fn best_baseline_kind_of(dir: &Path) -> Option<nordiq_core::config::BaselineKind> {
    best_baseline_of(dir).and_then(|(id, _)| {
        id.strip_prefix("baseline:")
            .and_then(nordiq_core::config::BaselineKind::from_id)
    })
}

/// Checks that `dir` holds every model file.
pub fn check_complete(dir: &Path) -> Result<(), StoreError> {
    for name in MODEL_FILES {
        if !dir.join(name).is_file() {
            return Err(StoreError::Incomplete {
                dir: dir.display().to_string(),
                missing: name.to_string(),
            });
        }
    }
    Ok(())
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id != "current"
        && id != "previous"
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    crate::atomic_file::sync_dir(dir).map_err(io(dir))
}

/// The `models/` directory of a state dir.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

impl ModelStore {
    pub fn new(dir: impl Into<PathBuf>) -> ModelStore {
        ModelStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn link_target(&self, name: &str) -> Option<String> {
        let target = std::fs::read_link(self.dir.join(name)).ok()?;
        let id = target.file_name()?.to_string_lossy().into_owned();
        self.dir.join(&id).is_dir().then_some(id)
    }

    /// The id `current` points at, if it points at a model directory.
    pub fn current(&self) -> Option<String> {
        self.link_target("current")
    }

    /// The id that was current before the latest promotion.
    pub fn previous(&self) -> Option<String> {
        self.link_target("previous")
    }

    /// The directory of model `id`.
    pub fn path_of(&self, id: &str) -> Result<PathBuf, StoreError> {
        if !valid_id(id) {
            return Err(StoreError::BadId(id.to_string()));
        }
        let dir = self.dir.join(id);
        if !dir.is_dir() {
            return Err(StoreError::Unknown {
                id: id.to_string(),
                dir: self.dir.display().to_string(),
            });
        }
        Ok(dir)
    }

    /// Every model directory, oldest first (ids sort by time).
    pub fn list(&self) -> Result<Vec<ModelEntry>, StoreError> {
        let read = match std::fs::read_dir(&self.dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        let (current, previous) = (self.current(), self.previous());
        let mut entries = Vec::new();
        for entry in read {
            let entry = entry.map_err(io(&self.dir))?;
            let id = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            // Symlinks (current, previous) and staging directories are not models.
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !is_dir || !valid_id(&id) {
                continue;
            }
            let (mase, coverage, validation_pinball) = headline(&path);
            entries.push(ModelEntry {
                created: created_of(&path),
                current: current.as_deref() == Some(id.as_str()),
                previous: previous.as_deref() == Some(id.as_str()),
                complete: check_complete(&path).is_ok(),
                path: path.display().to_string(),
                id,
                mase,
                coverage,
                validation_pinball,
            });
        }
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(entries)
    }

    /// Points `name` at `id` atomically: a new symlink under a temporary name, renamed
    /// over the old one, then the directory fsynced.
    fn point(&self, name: &str, id: &str) -> Result<(), StoreError> {
        let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(id, &tmp).map_err(io(&tmp))?;
        let link = self.dir.join(name);
        std::fs::rename(&tmp, &link).map_err(io(&link))?;
        Ok(())
    }

    /// Makes `id` current; the model that was current becomes `previous`. The model must be
    /// complete. Returns the id that was current before.
    pub fn promote(&self, id: &str) -> Result<Option<String>, StoreError> {
        let dir = self.path_of(id)?;
        check_complete(&dir)?;
        let before = self.current();
        if let Some(old) = before.as_deref().filter(|old| *old != id) {
            self.point("previous", old)?;
        }
        self.point("current", id)?;
        sync_dir(&self.dir)?;
        Ok(before)
    }

    /// Swaps `current` and `previous`. Returns the id now current.
    pub fn rollback(&self) -> Result<String, StoreError> {
        let previous = self
            .previous()
            .ok_or_else(|| StoreError::NoPrevious(self.dir.display().to_string()))?;
        self.promote(&previous)?;
        Ok(previous)
    }
}

fn created_of(dir: &Path) -> Option<String> {
    let training = std::fs::read(dir.join("training.json"))
        .ok()
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok());
    if let Some(finished) = training
        .as_ref()
        .and_then(|t| t["finished"].as_str().map(str::to_string))
    {
        return Some(finished);
    }
    let modified = std::fs::metadata(dir).and_then(|m| m.modified()).ok()?;
    let ms = modified
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as i64;
    Some(nordiq_core::timefmt::format_ms(ms))
}

/// A model directory under construction: complete or absent. Built under
/// `models/.tmp-<id>/`; [`Staging::finish`] fsyncs every file and renames it into place; a
/// staging directory dropped unfinished (an error, a signal) is removed.
pub struct Staging {
    models: PathBuf,
    id: String,
    tmp: PathBuf,
    done: bool,
}

impl Staging {
    pub fn create(models: &Path, id: &str) -> Result<Staging, StoreError> {
        std::fs::create_dir_all(models).map_err(io(models))?;
        if !valid_id(id) {
            return Err(StoreError::BadId(id.to_string()));
        }
        let dest = models.join(id);
        if dest.exists() {
            return Err(StoreError::Exists(dest.display().to_string()));
        }
        let tmp = models.join(format!(".tmp-{id}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp).map_err(io(&tmp))?;
        Ok(Staging {
            models: models.to_path_buf(),
            id: id.to_string(),
            tmp,
            done: false,
        })
    }

    /// Stages a new model finished at `now_ms`: `tft_YYYYMMDD_HHMMSS`, or with `_2`, `_3` …
    /// appended when a model finished within the same second already (two quick retrains must
    /// not fail on a name).
    pub fn create_new(models: &Path, now_ms: i64) -> Result<Staging, StoreError> {
        let base = new_id(now_ms);
        let mut id = base.clone();
        for n in 2.. {
            if !models.join(&id).exists() {
                break;
            }
            id = format!("{base}_{n}");
        }
        Staging::create(models, &id)
    }

    pub fn path(&self) -> &Path {
        &self.tmp
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Writes metrics.json and training.json, fsyncs everything, renames into place.
    pub fn finish(
        self,
        metrics: &serde_json::Value,
        training: &serde_json::Value,
    ) -> Result<PathBuf, StoreError> {
        for (name, value) in [("metrics.json", metrics), ("training.json", training)] {
            let path = self.tmp.join(name);
            let bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
            std::fs::File::create(&path)
                .and_then(|mut f| f.write_all(&bytes))
                .map_err(io(&path))?;
        }
        self.finish_copied()
    }

    /// Renames a staging directory whose files were all written by the caller (a model
    /// copied from another node) into place, once every file is fsynced.
    pub fn finish_copied(mut self) -> Result<PathBuf, StoreError> {
        check_complete(&self.tmp)?;
        for name in MODEL_FILES {
            let path = self.tmp.join(name);
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io(&path))?;
        }
        sync_dir(&self.tmp)?;
        let dest = self.models.join(&self.id);
        std::fs::rename(&self.tmp, &dest).map_err(io(&dest))?;
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

    fn temp_models(tag: &str) -> nordiq_testkit::TempDir {
        let dir = nordiq_testkit::TempDir::new(&format!("models-{tag}"));
        dir
    }

    fn make_model(models: &Path, id: &str, mase: f64) -> PathBuf {
        let s = Staging::create(models, id).unwrap();
        for f in ["config.json", "weights.safetensors"] {
            std::fs::write(s.path().join(f), "x").unwrap();
        }
        s.finish(
            &serde_json::json!({ "mase": mase, "validation_pinball": mase / 10.0, "tft": { "coverage": 0.8 } }),
            &serde_json::json!({ "finished": "2026-11-28T01:02:03Z" }),
        )
        .unwrap()
    }

    #[test]
    fn ids_are_timestamps() {
        assert_eq!(new_id(1_795_824_000_000 + 3_723_000), "tft_20261128_010203");
    }

    #[test]
    fn models_finished_in_the_same_second_get_distinct_ids() {
        let models = temp_models("same-second");
        let at = 1_795_824_000_000 + 3_723_000;
        let mut ids = Vec::new();
        for _ in 0..3 {
            let s = Staging::create_new(&models, at).unwrap();
            ids.push(s.id().to_string());
            for f in ["config.json", "weights.safetensors"] {
                std::fs::write(s.path().join(f), "x").unwrap();
            }
            s.finish(&serde_json::json!({}), &serde_json::json!({}))
                .unwrap();
        }
        assert_eq!(
            ids,
            [
                "tft_20261128_010203",
                "tft_20261128_010203_2",
                "tft_20261128_010203_3"
            ]
        );
        // Listed oldest first: the suffix sorts after the plain id and before the next second.
        let listed: Vec<String> = ModelStore::new(models.path())
            .list()
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(listed, ids);
        assert!("tft_20261128_010203_3" < new_id(at + 1000).as_str());
    }

    #[test]
    fn unfinished_staging_leaves_nothing() {
        let models = temp_models("staging");
        {
            let s = Staging::create(&models, "tft_x").unwrap();
            std::fs::write(s.path().join("config.json"), "{}").unwrap();
        }
        assert_eq!(std::fs::read_dir(&models).unwrap().count(), 0);
        // A staging directory missing the weights cannot finish.
        let s = Staging::create(&models, "tft_y").unwrap();
        std::fs::write(s.path().join("config.json"), "{}").unwrap();
        let err = s
            .finish(&serde_json::json!({}), &serde_json::json!({}))
            .unwrap_err();
        assert!(err.to_string().contains("weights.safetensors"), "{err}");
        assert_eq!(std::fs::read_dir(&models).unwrap().count(), 0);
        let dir = make_model(&models, "tft_z", 0.9);
        assert!(dir.join("training.json").exists());
        assert!(matches!(
            Staging::create(&models, "tft_z"),
            Err(StoreError::Exists(_))
        ));
        let _ = std::fs::remove_dir_all(&models);
    }

    #[test]
    fn promote_and_rollback_swap_current_and_previous() {
        let models = temp_models("promote");
        let store = ModelStore::new(models.path());
        assert!(store.list().unwrap().is_empty());
        assert!(matches!(store.rollback(), Err(StoreError::NoPrevious(_))));
        make_model(&models, "tft_a", 0.95);
        make_model(&models, "tft_b", 0.90);
        assert_eq!(store.promote("tft_a").unwrap(), None);
        assert_eq!(store.current().as_deref(), Some("tft_a"));
        assert_eq!(store.previous(), None);
        assert_eq!(store.promote("tft_b").unwrap().as_deref(), Some("tft_a"));
        assert_eq!(store.current().as_deref(), Some("tft_b"));
        assert_eq!(store.previous().as_deref(), Some("tft_a"));
        // The links are relative, so the state dir can move.
        assert_eq!(
            std::fs::read_link(models.join("current")).unwrap(),
            PathBuf::from("tft_b")
        );
        assert_eq!(store.rollback().unwrap(), "tft_a");
        assert_eq!(store.current().as_deref(), Some("tft_a"));
        assert_eq!(store.previous().as_deref(), Some("tft_b"));
        // Promoting the current model again keeps `previous`.
        store.promote("tft_a").unwrap();
        assert_eq!(store.previous().as_deref(), Some("tft_b"));

        let list = store.list().unwrap();
        let ids: Vec<_> = list.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["tft_a", "tft_b"]);
        assert!(list[0].current && !list[0].previous && list[0].complete);
        assert!(list[1].previous && !list[1].current);
        assert_eq!(list[1].mase, Some(0.90));
        assert_eq!(list[0].coverage, Some(0.8));
        assert_eq!(list[0].created.as_deref(), Some("2026-11-28T01:02:03Z"));
        // No temporary links are left behind.
        let names: Vec<String> = std::fs::read_dir(&models)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
        let _ = std::fs::remove_dir_all(&models);
    }

    #[test]
    fn refuses_unknown_incomplete_and_odd_ids() {
        let models = temp_models("refuse");
        let store = ModelStore::new(models.path());
        make_model(&models, "tft_a", 0.95);
        std::fs::create_dir_all(models.join("tft_half")).unwrap();
        std::fs::write(models.join("tft_half/config.json"), "{}").unwrap();
        assert!(matches!(
            store.promote("tft_nope"),
            Err(StoreError::Unknown { .. })
        ));
        assert!(matches!(
            store.promote("tft_half"),
            Err(StoreError::Incomplete { .. })
        ));
        for bad in ["../etc", "current", ".tmp-x", ""] {
            assert!(
                matches!(store.promote(bad), Err(StoreError::BadId(_))),
                "{bad}"
            );
        }
        assert_eq!(store.current(), None);
        let list = store.list().unwrap();
        assert_eq!(list.len(), 2);
        assert!(!list.iter().find(|e| e.id == "tft_half").unwrap().complete);
        let _ = std::fs::remove_dir_all(&models);
    }
}
