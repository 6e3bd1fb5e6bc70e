use super::*;

const SEASON: usize = 24;

fn spec(horizon: usize, threads: usize) -> ForecastSpec {
    ForecastSpec {
        horizon,
        quantiles: vec![0.1, 0.5, 0.9],
        season_steps: SEASON,
        median_seasons: 3,
        smoothing_steps: 4 * SEASON,
        bounds: vec![(0.0, 100.0), (-1e9, 1e9)],
        threads,
    }
}

fn snapshot(server: &str, a: &[f32], b: &[f32]) -> WindowSnapshot {
    let mut history = a.to_vec();
    history.extend_from_slice(b);
    WindowSnapshot {
        server: server.into(),
        profile: "generic".into(),
        last_step: a.len() as i64 - 1,
        history,
        len: a.len(),
        current: vec![*a.last().unwrap(), *b.last().unwrap()],
        current_ts: 0,
    }
}

/// Deterministic uniform noise in [-1, 1).
fn noise(seed: &mut u64) -> f32 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 33) as f64 / (1u64 << 31) as f64 * 2.0 - 1.0) as f32
}

fn wave(t: usize) -> f32 {
    50.0 + 20.0 * (t as f32 * std::f32::consts::TAU / SEASON as f32).sin()
}

#[test]
fn seasonal_naive_repeats_a_clean_season() {
    let series: Vec<f32> = (0..3 * SEASON).map(wave).collect();
    let b = series.clone();
    let model = Baseline::new(BaselineKind::SeasonalNaive, spec(2 * SEASON, 1));
    let f = model.forecast_one(&snapshot("s", &series, &b));
    assert_eq!(f.method, "seasonal_naive");
    for h in 0..2 * SEASON {
        let truth = wave(3 * SEASON + h);
        assert!((f.series(0, 1)[h] - truth).abs() < 1e-3, "step {h}");
        assert!(f.series(0, 0)[h] <= f.series(0, 1)[h] && f.series(0, 1)[h] <= f.series(0, 2)[h]);
    }
}

#[test]
fn short_history_falls_back_to_fitted_smoothing() {
    let series: Vec<f32> = (0..SEASON / 2).map(|t| 10.0 + t as f32).collect();
    let model = Baseline::new(BaselineKind::SeasonalNaive, spec(10, 1));
    let f = model.forecast_one(&snapshot("s", &series, &series));
    assert_eq!(f.method, "ets");
    let p50 = f.series(0, 1);
    // A rising series keeps rising, but the damped trend flattens.
    assert!(p50[0] > 21.0 && p50[9] > p50[0]);
    assert!(p50[9] - p50[8] < p50[1] - p50[0]);
}

#[test]
fn ets_on_a_constant_is_flat_and_tight() {
    let series = vec![42.0f32; 50];
    let mut bands = vec![vec![0.0; 5]; 3];
    assert!(ets_series(&series, 5, &[0.1, 0.5, 0.9], &mut bands));
    for band in &bands {
        for v in band {
            assert!((v - 42.0).abs() < 1e-4);
        }
    }
}

#[test]
fn bands_cover_about_eighty_percent_of_noise() {
    let mut seed = 7u64;
    let total = 4 * SEASON + SEASON;
    let series: Vec<f32> = (0..total)
        .map(|t| wave(t) + 5.0 * noise(&mut seed))
        .collect();
    let model = Baseline::new(BaselineKind::SeasonalNaive, spec(SEASON, 1));
    let mut covered = 0;
    let mut n = 0;
    // Several origins, to average out the luck of one.
    for origin in 2 * SEASON..4 * SEASON {
        let hist = &series[..origin];
        let f = model.forecast_one(&snapshot("s", hist, hist));
        for h in 0..SEASON.min(series.len() - origin) {
            let y = series[origin + h];
            n += 1;
            if f.series(0, 0)[h] <= y && y <= f.series(0, 2)[h] {
                covered += 1;
            }
        }
    }
    let coverage = covered as f64 / n as f64;
    assert!((0.65..=0.95).contains(&coverage), "coverage {coverage}");
}

#[test]
fn forecasts_are_clamped_and_gaps_tolerated() {
    let nan = f32::NAN;
    let series: Vec<f32> = (0..30)
        .map(|t| if t % 7 == 3 { nan } else { 90.0 + t as f32 })
        .collect();
    let model = Baseline::new(BaselineKind::Ets, spec(20, 1));
    let f = model.forecast_one(&snapshot("s", &series, &[nan; 30]));
    assert!(f.series(0, 2).iter().all(|v| *v <= 100.0));
    assert!(f.series(0, 1).iter().all(|v| v.is_finite()));
    assert!(
        f.series(1, 1).iter().all(|v| v.is_nan()),
        "all-NaN metric stays unknown"
    );
}

#[test]
fn batch_is_parallel_and_ordered() {
    let snaps: Vec<WindowSnapshot> = (0..37)
        .map(|i| {
            let s: Vec<f32> = (0..40).map(|t| (i * 100 + t) as f32 / 100.0).collect();
            snapshot(&format!("s{i}"), &s, &s)
        })
        .collect();
    let refs: Vec<&WindowSnapshot> = snaps.iter().collect();
    let serial = Baseline::new(BaselineKind::Ets, spec(8, 1)).forecast_batch(&refs);
    let parallel = Baseline::new(BaselineKind::Ets, spec(8, 4)).forecast_batch(&refs);
    assert_eq!(serial.len(), 37);
    assert_eq!(serial, parallel);
    assert!(serial[36].series(1, 1)[0] > serial[0].series(1, 1)[0]);
}

#[test]
fn seasonal_median_ignores_one_odd_day() {
    // Three clean days, except that the last day had a spike at hour 5.
    let mut series: Vec<f32> = (0..3 * SEASON).map(wave).collect();
    series[2 * SEASON + 5] += 20.0;
    let b = series.clone();
    let median = Baseline::new(BaselineKind::SeasonalMedian, spec(SEASON, 1));
    let naive = Baseline::new(BaselineKind::SeasonalNaive, spec(SEASON, 1));
    let m = median.forecast_one(&snapshot("s", &series, &b));
    let n = naive.forecast_one(&snapshot("s", &series, &b));
    assert_eq!(m.method, "seasonal_median");
    assert_eq!(median.id(), "baseline:seasonal_median");
    // Hour 5 of the next day is step 6 ahead.
    let truth = wave(3 * SEASON + 5);
    assert!(
        (m.series(0, 1)[5] - truth).abs() < 1e-3,
        "{}",
        m.series(0, 1)[5]
    );
    assert!(
        (n.series(0, 1)[5] - truth - 20.0).abs() < 1e-3,
        "naive repeats the spike"
    );
    for h in 0..SEASON {
        assert!(m.series(0, 0)[h] <= m.series(0, 1)[h] && m.series(0, 1)[h] <= m.series(0, 2)[h]);
    }
    // With one season of history (more only for the later steps, where both are the same
    // clean wave) it is seasonal naive.
    let short: Vec<f32> = series[SEASON + SEASON / 2..].to_vec();
    let one = median.forecast_one(&snapshot("s", &short, &short));
    let naive_one = naive.forecast_one(&snapshot("s", &short, &short));
    for (a, b) in one.series(0, 1).iter().zip(naive_one.series(0, 1)) {
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    }
}

#[test]
fn weekly_naive_needs_a_week_and_auto_picks_what_fits_the_server() {
    // Day 3 of every week differs (a weekly batch job): the weekly naive repeats it.
    let weekly = |t: usize| wave(t) + if (t / SEASON) % 7 == 3 { 30.0 } else { 0.0 };
    let series: Vec<f32> = (0..10 * SEASON + 3).map(weekly).collect();
    let week = Baseline::new(BaselineKind::SeasonalNaiveWeek, spec(SEASON, 1));
    // History ends 3 steps into day 10; the week before the forecast ends in day 3.
    let hist = &series[..10 * SEASON];
    let f = week.forecast_one(&snapshot("s", hist, hist));
    assert_eq!(f.method, "seasonal_naive_week");
    for h in 0..SEASON {
        assert!(
            (f.series(0, 1)[h] - weekly(10 * SEASON + h)).abs() < 1e-3,
            "step {h}"
        );
    }
    let short = &series[..5 * SEASON];
    assert_eq!(
        week.forecast_one(&snapshot("s", short, short)).method,
        "seasonal_naive",
        "less than a week: the daily season"
    );
    // Auto on a clean daily wave picks a seasonal rule; on a ramp, smoothing with trend.
    let auto = Baseline::new(BaselineKind::Auto, spec(SEASON, 1));
    assert_eq!(auto.id(), "baseline:auto");
    let daily: Vec<f32> = (0..5 * SEASON).map(wave).collect();
    let chosen = auto.choose(&snapshot("s", &daily, &daily));
    assert!(
        matches!(
            chosen,
            BaselineKind::SeasonalNaive
                | BaselineKind::SeasonalMedian
                | BaselineKind::SeasonalNaiveWeek
        ),
        "{chosen:?}"
    );
    let ramp: Vec<f32> = (0..5 * SEASON).map(|t| t as f32 * 0.1).collect();
    assert_eq!(auto.choose(&snapshot("s", &ramp, &ramp)), BaselineKind::Ets);
    let f = auto.forecast_one(&snapshot("s", &ramp, &ramp));
    assert_eq!(f.method, "ets");
    assert!(f.series(0, 1)[0] > ramp[ramp.len() - 1]);
    // The choice holds until a new step closes on that server.
    let mut same_step = snapshot("s", &daily, &daily);
    same_step.last_step = f_last_step(&ramp);
    assert_eq!(
        auto.forecast_one(&same_step).method,
        "ets",
        "remembered for this step"
    );
    same_step.last_step += 1;
    assert_ne!(
        auto.forecast_one(&same_step).method,
        "ets",
        "chosen again at the next step"
    );
    // Too short to judge: the seasonal median (smoothing until it has a season).
    let few = &ramp[..SEASON / 2];
    assert_eq!(
        auto.choose(&snapshot("s", few, few)),
        BaselineKind::SeasonalMedian
    );
}

/// The `last_step` that [`snapshot`] gives a series.
fn f_last_step(series: &[f32]) -> i64 {
    series.len() as i64 - 1
}
