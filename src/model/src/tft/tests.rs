use super::train::{split_origins, train, TrainOptions};
use super::*;
use crate::backtest::Grid;
use crate::Forecaster;
use std::sync::atomic::AtomicBool;

/// libtorch's random generator is global (seeding, initialisation, dropout): tests that
/// build or train models take turns, or a parallel test changes another's draws.
static TORCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn torch_turn() -> std::sync::MutexGuard<'static, ()> {
    TORCH.lock().unwrap_or_else(|p| p.into_inner())
}

fn model(seed: u64) -> TftModel {
    tch::set_num_threads(1);
    TftModel::new(TftShape::for_test(2, 24, 6), Device::Cpu, seed)
}

/// Two series on an hourly grid: a daily wave and a flat noisy line.
fn grids(days: usize) -> Vec<Grid> {
    let len = days * 24;
    let mut x = 7u64;
    (0..2)
        .map(|g| {
            let mut values = Vec::with_capacity(2 * len);
            for m in 0..2 {
                for t in 0..len {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let noise = ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0;
                    let v = if m == 0 {
                        50.0 + 20.0 * ((t % 24) as f32 / 24.0 * std::f32::consts::TAU).sin() + noise
                    } else {
                        30.0 + g as f32 * 5.0 + noise
                    };
                    values.push(v);
                }
            }
            Grid {
                server: format!("s{g}"),
                profile: if g == 0 {
                    "generic".into()
                } else {
                    "web_api".into()
                },
                start_step: 500_000,
                len,
                values,
            }
        })
        .collect()
}

#[test]
fn forward_shapes_weights_and_causal_attention() {
    let _turn = torch_turn();
    let m = model(1);
    let g = grids(3);
    let prepared = train::prepare_origin(&m, &g, train::Origin { grid: 0, t: 40 });
    let batch = m.batch(&[&prepared, &prepared]);
    let out = tch::no_grad(|| m.net.forward_explained(&batch));
    assert_eq!(out.quantiles.size(), vec![2, 6, 2, 3]);
    // The fused attention kernel (forecasts, training) computes what the explicit one does:
    // with a head that reads the network (an untrained one is zero), the outputs agree.
    tch::no_grad(|| {
        let mut head = m.vs.variables()["head.weight"].shallow_clone();
        let size = head.size();
        head.copy_(&Tensor::randn(size.as_slice(), (Kind::Float, Device::Cpu)));
    });
    let out = tch::no_grad(|| m.net.forward_explained(&batch));
    let fused = tch::no_grad(|| m.net.forward(&batch, false));
    assert!(fused.attention.is_none());
    let gap = (&fused.quantiles - &out.quantiles)
        .abs()
        .max()
        .double_value(&[]);
    assert!(gap < 1e-5, "fused and explicit attention differ by {gap}");
    assert_eq!(
        out.encoder_weights.size(),
        vec![2, 24, 2 + features::TIME_FEATURES as i64]
    );
    let sums = out.encoder_weights.sum_dim_intlist(-1, false, Kind::Float);
    assert!(
        (sums - 1.0).abs().max().double_value(&[]) < 1e-5,
        "selection weights are a softmax"
    );
    assert_eq!(out.static_weights.size(), vec![2, 1 + 2 * 2]);
    let static_sums = out.static_weights.sum_dim_intlist(-1, false, Kind::Float);
    assert!((static_sums - 1.0).abs().max().double_value(&[]) < 1e-5);
    let attention = out
        .attention
        .expect("forward_explained returns the attention");
    assert_eq!(attention.size(), vec![2, 6, 30]);
    // Decoder step 0 (position 24) must not see positions 25..30.
    let future_attention = attention
        .select(1, 0)
        .narrow(1, 25, 5)
        .abs()
        .max()
        .double_value(&[]);
    assert_eq!(future_attention, 0.0, "attention is causal");
    let step5 = attention
        .select(1, 5)
        .sum_dim_intlist(-1, false, Kind::Float);
    assert!((step5 - 1.0).abs().max().double_value(&[]) < 1e-5);
}

/// The small trainings of these tests: `epochs` over 96 windows a time.
fn small_training(epochs: usize) -> TrainOptions {
    TrainOptions {
        epochs,
        batch_size: 16,
        max_windows: 96,
        stride: 3,
        patience: 10,
        learning_rate: 3e-3,
        ..TrainOptions::default()
    }
}

/// Trains `m` on `g` (the encoder 24 steps, the horizon 6); returns the validation origins,
/// the summary and the epochs' reports.
fn train_small(
    m: &mut TftModel,
    g: &[Grid],
    options: &TrainOptions,
) -> (
    Vec<train::Origin>,
    train::TrainSummary,
    Vec<train::EpochReport>,
) {
    let (tr, val) = split_origins(g, 24, 6, &|grid| grid.len, options);
    let mut reports = Vec::new();
    let summary = train(
        m,
        g,
        &tr,
        &val,
        options,
        &AtomicBool::new(false),
        &mut |r| reports.push(r.clone()),
    )
    .unwrap();
    (val, summary, reports)
}

#[test]
fn training_lowers_validation_loss_and_is_reproducible() {
    let _turn = torch_turn();
    let g = grids(12);
    let options = small_training(6);
    let run = || {
        let mut m = model(3);
        let (_, val) = split_origins(&g, 24, 6, &|grid| grid.len, &options);
        let before = train::evaluate(&m, &g, &val, 32);
        let (_, summary, reports) = train_small(&mut m, &g, &options);
        (m, before, summary, reports)
    };
    let (m, before, summary, reports) = run();
    assert_eq!(reports.len(), 6);
    assert!(
        summary.best_validation_loss < before * 0.7,
        "before {before}, after {}",
        summary.best_validation_loss
    );
    assert!(
        summary.train_windows > 100 && summary.validation_windows > 5,
        "{summary:?}"
    );
    // The same seed gives the same weights, hence the same forecasts.
    let (m2, _, summary2, _) = run();
    assert_eq!(summary.best_validation_loss, summary2.best_validation_loss);
    let p = train::prepare_origin(&m, &g, train::Origin { grid: 1, t: 200 });
    assert_eq!(m.forecast(&[&p]), m2.forecast(&[&p]));
}

/// A `metrics.json` whose anomaly calibration sets the model's threshold to 1.5 under the
/// default `[anomaly]` settings.
fn write_calibration(dir: &std::path::Path) {
    let record = r#"{"threshold": 1.5, "baseline": "baseline:auto", "configured_threshold": 1.0,
        "horizon_steps": 1, "smoothing_steps": 1, "metrics_needed": 3, "decisions": 900,
        "merge_gap_steps": 12, "baseline_events": 20, "model_events": 20, "model_events_at_configured": 35}"#;
    std::fs::write(
        dir.join("metrics.json"),
        format!(r#"{{"mase": 0.7, "anomaly_calibration": {record}}}"#),
    )
    .unwrap();
}

#[test]
fn save_load_round_trip_and_forecasts_are_ordered_and_clamped() {
    let _turn = torch_turn();
    let m = model(5);
    let dir = nordiq_testkit::TempDir::new("tft");
    m.save(&dir).unwrap();
    let loaded = TftModel::load(&dir, Device::Cpu).unwrap();
    assert_eq!(loaded.shape, m.shape);
    let g = grids(3);
    let p = train::prepare_origin(&m, &g, train::Origin { grid: 0, t: 30 });
    let a = m.forecast(&[&p]);
    assert_eq!(a, loaded.forecast(&[&p]));
    for metric in 0..2 {
        for h in 0..6 {
            let (lo, mid, hi) = (
                a[0].series(metric, 0)[h],
                a[0].series(metric, 1)[h],
                a[0].series(metric, 2)[h],
            );
            assert!(lo <= mid && mid <= hi, "quantiles never cross");
            assert!((0.0..=100.0).contains(&lo) && (0.0..=100.0).contains(&hi));
        }
    }
    // A config whose catalog differs is refused.
    let config = nordiq_core::config::Config::default();
    assert!(loaded.shape.compatible_with(&config).is_err());
    // The trainer's anomaly calibration comes with the model; none is none, a broken
    // one refuses the model.
    let forecaster = TftForecaster::load(&dir, "t", 1, false).unwrap();
    assert!(forecaster.anomaly_calibration().is_none());
    let anomaly = nordiq_core::config::AnomalyConfig::default();
    assert_eq!(forecaster.anomaly_threshold(&anomaly), anomaly.threshold);
    write_calibration(&dir);
    let forecaster = TftForecaster::load(&dir, "t", 1, false).unwrap();
    assert_eq!(forecaster.anomaly_threshold(&anomaly), 1.5);
    std::fs::write(
        dir.join("metrics.json"),
        r#"{"anomaly_calibration": {"threshold": "high"}}"#,
    )
    .unwrap();
    let refused = TftForecaster::load(&dir, "t", 1, false)
        .err()
        .expect("refused");
    assert!(
        refused.to_string().contains("anomaly_calibration"),
        "{refused}"
    );
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    assert!(TftModel::load(&dir, Device::Cpu).is_err());
}

#[test]
fn an_untrained_network_forecasts_the_seasonal_median() {
    let _turn = torch_turn();
    let mut shape = TftShape::for_test(2, 24, 6);
    shape.seasons = 3;
    let m = TftModel::new(shape, Device::Cpu, 5);
    let g = grids(4);
    // The last 3 days of server 0, as a snapshot.
    let len = 72;
    let mut history = Vec::new();
    for metric in 0..2 {
        let series = &g[0].values[metric * g[0].len..(metric + 1) * g[0].len];
        history.extend_from_slice(&series[series.len() - len..]);
    }
    let snapshot = WindowSnapshot {
        server: "s0".into(),
        profile: "generic".into(),
        last_step: g[0].start_step + g[0].len as i64 - 1,
        history,
        len,
        current: vec![0.0; 2],
        current_ts: 0,
    };
    let f = m.forecast(&[&m.prepare_snapshot(&snapshot)]).remove(0);
    for metric in 0..2 {
        let series = snapshot.series(metric);
        for h in 0..6 {
            let expected =
                crate::baseline::seasonal_median_at(series, series.len(), h + 1, 24, 3).unwrap();
            for q in 0..3 {
                let got = f.series(metric, q)[h];
                assert!(
                    (got - expected).abs() < 1e-3,
                    "metric {metric} step {h} quantile {q}: {got} vs {expected}"
                );
            }
        }
    }
}

/// `anomaly.confirm_with_baseline` through `Serving`: for the servers the model serves,
/// each reading is the lower of the model's own and the baseline's scaled by the model's
/// calibrated threshold (1.5 here) over `anomaly.threshold`; a cold server (the baseline
/// forecasts it) is left alone, and so is everything with the option off.
#[test]
fn the_models_anomalies_are_confirmed_by_the_baseline_on_the_servers_it_serves() {
    use crate::baseline::Baseline;
    use crate::serving::Serving;
    use nordiq_core::anomaly::AnomalyBook;
    use nordiq_core::config::BaselineKind;
    let _turn = torch_turn();
    let m = model(7);
    let dir = nordiq_testkit::TempDir::new("tft-confirm");
    m.save(&dir).unwrap();
    write_calibration(&dir);
    let mut config = nordiq_core::config::Config::default();
    config.metrics.truncate(2);
    config.model.step_seconds = 3600;
    config.forecast.season_seconds = 86_400;
    let encoder = m.shape.encoder_steps;
    let tft = std::sync::Arc::new(TftForecaster::load(&dir, "t", 1, false).unwrap());
    let serving = Serving::new(Some(tft), Baseline::from_config(&config), encoder);
    let beside = Baseline::of_kind(&config, BaselineKind::LastValue);
    let mut g = grids(4);
    // A jump both forecasters miss, in both metrics of the first server.
    let len = g[0].len;
    for m in 0..2 {
        for t in 60..64 {
            g[0].values[m * len + t] += 60.0;
        }
    }
    let run = |confirming: bool| {
        let mut config = config.clone();
        config.anomaly.confirm_with_baseline = confirming;
        let (mut book, mut witness) = (AnomalyBook::default(), AnomalyBook::default());
        let mut out = Vec::new();
        for t in 40..72 {
            // Two warm servers and a cold one (the second grid's last 10 steps only).
            let mut snapshots: Vec<_> = g
                .iter()
                .map(|g| crate::backtest::snapshot(g, t + 1, 48))
                .collect();
            let mut cold = crate::backtest::snapshot(&g[1], t + 1, 10);
            cold.server = "cold".into();
            snapshots.push(cold);
            let refs: Vec<_> = snapshots.iter().collect();
            let forecasts = serving.forecast_batch(&refs);
            let mut readings = book.update_all(&config, snapshots.iter().zip(forecasts.iter()));
            serving.confirm_anomalies(&config, &beside, &mut witness, &snapshots, &mut readings);
            out.push(readings);
        }
        out
    };
    let alone = run(false);
    let confirmed = run(true);
    let mut lowered = 0;
    let mut judged = 0;
    for (a, c) in alone.iter().zip(&confirmed) {
        for s in 0..2 {
            let Some(theirs) = c[s].baseline_score else {
                // Debug text: NaN (nothing judged) compares equal there.
                assert_eq!(
                    format!("{:?}", c[s]),
                    format!("{:?}", a[s]),
                    "unconfirmed until the baseline has judged a step"
                );
                continue;
            };
            judged += 1;
            let expected = a[s].score.min(1.5 * theirs);
            assert!(
                (c[s].score - expected).abs() < 1e-9,
                "{:?} vs {:?}",
                c[s],
                a[s]
            );
            if c[s].score < a[s].score {
                lowered += 1;
            }
        }
        assert_eq!(
            format!("{:?}", c[2]),
            format!("{:?}", a[2]),
            "a cold server is the baseline's own"
        );
        assert_eq!(c[2].baseline_score, None);
        assert!(
            a.iter().all(|r| r.baseline_score.is_none()),
            "off: nothing confirmed"
        );
    }
    assert!(judged >= 50, "the baseline judged {judged} readings");
    assert!(lowered > 0, "the baseline never disagreed with the model");
    // The baseline's state follows the server's own steps: it sees the jump (steps 60–63,
    // judged by decisions 20–23), not the calm before it.
    let baseline_peak = |range: std::ops::Range<usize>| {
        confirmed[range]
            .iter()
            .filter_map(|r| r[0].baseline_score)
            .fold(0.0, f64::max)
    };
    let (calm, jump) = (baseline_peak(10..20), baseline_peak(20..24));
    assert!(jump >= 1.0 && jump > 2.0 * calm, "calm {calm}, jump {jump}");
}

/// A correction factor moves only its own metric's forecasts in its own horizon bucket;
/// one factor per metric (models saved before the buckets) moves every step; factors that
/// fit neither layout are no correction.
#[test]
fn correction_factors_move_their_own_metric_and_horizon_bucket() {
    let _turn = torch_turn();
    let g = grids(12);
    let mut m = model(3);
    let mut options = small_training(2);
    options.calibrate_bands = false;
    train_small(&mut m, &g, &options);
    let p = train::prepare_origin(&m, &g, train::Origin { grid: 0, t: 240 });
    let plain = m.forecast(&[&p]);
    let with = |m: &mut TftModel, scales: &[f64]| {
        m.set_correction_scales(scales);
        m.forecast(&[&p])
    };
    assert_eq!(
        with(&mut m, &[1.0; 6]),
        plain,
        "factors of 1 are no correction"
    );
    assert_eq!(with(&mut m, &[0.0; 5]), plain, "5 factors fit no layout");
    // The grid is hourly and 6 steps ahead: buckets 0-1h (step 0), 1-4h, 4-8h.
    let first_hour = with(&mut m, &[0.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    let per_metric = with(&mut m, &[0.0, 1.0]);
    for q in 0..3 {
        let (plain0, first0, all0) = (
            plain[0].series(0, q),
            first_hour[0].series(0, q),
            per_metric[0].series(0, q),
        );
        assert_ne!(first0[0], plain0[0], "quantile {q}: step 0 moves");
        assert_eq!(
            first0[1..],
            plain0[1..],
            "quantile {q}: the other buckets do not"
        );
        assert_eq!(
            first0[0], all0[0],
            "quantile {q}: to where one factor moves it"
        );
        assert!(
            all0[1..].iter().zip(&plain0[1..]).any(|(a, b)| a != b),
            "quantile {q}: one factor per metric moves every step"
        );
        assert_eq!(first_hour[0].series(1, q), plain[0].series(1, q));
        assert_eq!(per_metric[0].series(1, q), plain[0].series(1, q));
    }
}

/// Training ends with the band calibration: it cannot raise the validation loss (each
/// metric and quantile keeps the factor that scores best there, 1 included), it is saved
/// with the model and loaded back, and clearing it gives the uncalibrated forecasts.
#[test]
fn training_fits_a_band_calibration_that_is_saved_with_the_model() {
    let _turn = torch_turn();
    let g = grids(12);
    let mut m = model(3);
    let (val, summary, _) = train_small(&mut m, &g, &small_training(3));
    let calibrated = summary
        .calibrated_validation_loss
        .expect("a calibration is fitted");
    assert!(
        calibrated <= summary.best_validation_loss + 1e-9,
        "calibrated {calibrated}, uncalibrated {}",
        summary.best_validation_loss
    );
    assert!(
        (train::evaluate(&m, &g, &val, 16) - calibrated).abs() < 1e-9,
        "the model keeps the calibration it was scored with"
    );
    let scales = m.shape.band_scales.clone();
    assert_eq!(scales.len(), 2 * 3);
    assert!(
        scales.iter().skip(1).step_by(3).all(|&s| s == 1.0),
        "medians: {scales:?}"
    );
    assert!(
        scales.iter().any(|&s| s != 1.0),
        "some band is rescaled: {scales:?}"
    );
    let dir = nordiq_testkit::TempDir::new("tft-bands");
    m.save(&dir).unwrap();
    let loaded = TftModel::load(&dir, Device::Cpu).unwrap();
    assert_eq!(loaded.shape.band_scales, scales);
    // The correction calibration, fitted before the bands: one factor per metric and
    // horizon bucket (an hourly grid 6 steps ahead: 0-1h, 1-4h, 4-8h), saved.
    assert_eq!(m.shape.correction_scales.len(), 2 * 3);
    assert_eq!(loaded.shape.correction_scales, m.shape.correction_scales);
    let p = train::prepare_origin(&m, &g, train::Origin { grid: 0, t: 240 });
    let with = loaded.forecast(&[&p]);
    assert_eq!(with, m.forecast(&[&p]));
    m.set_band_scales(&[]);
    let without = m.forecast(&[&p]);
    assert_ne!(with, without, "the calibration changes the bands");
    assert_eq!(
        with[0].series(0, 1),
        without[0].series(0, 1),
        "and leaves the median"
    );
}

/// A batch shared between workers comes back in the caller's order and with the numbers
/// one worker gives (each runs libtorch on one thread; a window's forecast does not depend
/// on the windows beside it up to rounding).
#[test]
fn workers_share_a_batch_and_answer_in_order() {
    let _turn = torch_turn();
    let m = model(11);
    let dir = nordiq_testkit::TempDir::new("tft-workers");
    m.save(&dir).unwrap();
    let one = TftForecaster::load(&dir, "t", 1, false).unwrap();
    let three = TftForecaster::load(&dir, "t", 3, false).unwrap();
    assert_eq!((one.workers(), three.workers()), (1, 3));
    let g = grids(4);
    // Seven windows at different origins and servers, so every one differs.
    let snapshots: Vec<_> = (0..7)
        .map(|i| crate::backtest::snapshot(&g[i % 2], 50 + 3 * i, 48))
        .collect();
    let refs: Vec<_> = snapshots.iter().collect();
    let alone = one.forecast_batch(&refs);
    let shared = three.forecast_batch(&refs);
    assert_eq!(shared.len(), 7);
    for (i, (a, b)) in alone.iter().zip(&shared).enumerate() {
        assert_eq!(a.values.len(), b.values.len());
        for (x, y) in a.values.iter().zip(&b.values) {
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                "window {i}: {x} vs {y}"
            );
        }
        if i > 0 {
            assert_ne!(
                alone[i - 1].values,
                a.values,
                "windows {} and {i} differ",
                i - 1
            );
        }
    }
    // The workers' one thread each is theirs: the caller keeps the count it set.
    tch::set_num_threads(2);
    let _two = TftForecaster::load(&dir, "t", 2, false).unwrap();
    assert_eq!(tch::get_num_threads(), 2);
    tch::set_num_threads(1);
    // Fewer windows than workers, and none.
    assert_eq!(three.forecast_batch(&refs[..2]).len(), 2);
    assert!(three.forecast_batch(&[]).is_empty());
}
