use super::*;

const START: i64 = 1_764_547_200_000; // 2025-12-01 00:00 UTC, a Monday

fn run(
    fleet: &mut Fleet,
    from: i64,
    hours: f64,
    step_s: i64,
    mut each: impl FnMut(i64, &[Option<[f64; 14]>]),
) {
    let mut t = from;
    while t < from + (hours * 3_600_000.0) as i64 {
        t += step_s * 1000;
        let values = fleet.advance(t);
        each(t, &values);
    }
}

#[test]
fn fleet_follows_the_original_mix_and_names() {
    assert_eq!(mix(20), [6, 5, 3, 2, 2, 1, 1]);
    for n in [1, 7, 20, 100, 1000] {
        assert_eq!(mix(n).iter().sum::<usize>(), n);
    }
    let fleet = Fleet::new(20, 1, START);
    let names: Vec<&str> = fleet.servers.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "ppweb001", "ppweb006", "ppml0001", "ppdb001", "ppcon001", "ppgen001",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(fleet.servers.iter().filter(|s| s.problem_child).count(), 2);
    let config = nordiq_core::config::Config::default();
    for s in &fleet.servers {
        // The names match the default profile patterns, so the profile is also inferred.
        let inferred = nordiq_core::config::infer_profile(&config.profiles, &s.name, "generic");
        assert_eq!(inferred, s.profile, "{}", s.name);
    }
}

#[test]
fn same_seed_same_fleet_other_seed_other_fleet() {
    let series = |seed| {
        let mut fleet = Fleet::new(10, seed, START);
        let mut out = Vec::new();
        run(&mut fleet, START, 6.0, 60, |_, v| {
            out.push(v[3].map(|x| x[0]))
        });
        out
    };
    assert_eq!(series(5), series(5));
    assert_ne!(series(5), series(6));
}

#[test]
fn values_stay_in_range_and_cpu_adds_up() {
    let mut fleet = Fleet::new(40, 3, START);
    let mut seen = 0;
    run(&mut fleet, START, 72.0, 120, |_, values| {
        for v in values.iter().flatten() {
            seen += 1;
            for m in [USER, SYS, IOWAIT, IDLE, JAVA, MEM, SWAP, DISK] {
                assert!((0.0..=100.0).contains(&v[m]), "{} = {}", METRICS[m], v[m]);
            }
            assert!((v[USER] + v[SYS] + v[IOWAIT] + v[IDLE] - 100.0).abs() < 1e-6);
            assert!(v[JAVA] <= v[USER] * 1.3 + 1e-9);
            for m in [BACK_CW, FRONT_CW] {
                assert_eq!(v[m], v[m].round());
            }
            assert!(v[NET_IN] >= 0.0 && v[LOAD] >= 0.0 && v[UPTIME] >= 0.0);
        }
    });
    assert!(seen > 40 * 2000, "{seen} samples");
}

#[test]
fn web_servers_are_busier_in_the_afternoon_than_at_night() {
    let mut fleet = Fleet::new(30, 9, START);
    let (mut day, mut night) = (Vec::new(), Vec::new());
    let webs: Vec<usize> = (0..30)
        .filter(|&i| fleet.servers[i].profile == "web_api")
        .collect();
    run(&mut fleet, START, 48.0, 300, |t, values| {
        let (hour, _) = clock(t);
        for &i in &webs {
            if let Some(v) = values[i] {
                if (13.0..15.0).contains(&hour) {
                    day.push(v[USER]);
                } else if (2.0..4.0).contains(&hour) {
                    night.push(v[USER]);
                }
            }
        }
    });
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    assert!(
        mean(&day) > 1.5 * mean(&night),
        "day {} night {}",
        mean(&day),
        mean(&night)
    );
}

#[test]
fn states_change_and_problem_children_have_more_trouble() {
    let mut fleet = Fleet::new(100, 11, START);
    let mut visited = std::collections::HashSet::new();
    let (mut trouble_problem, mut trouble_other) = (0usize, 0usize);
    let problem: Vec<bool> = fleet.servers.iter().map(|s| s.problem_child).collect();
    let mut t = START;
    for _ in 0..(7 * 24 * 12) {
        t += 300_000;
        fleet.advance(t);
        for (s, &p) in fleet.servers.iter().zip(&problem) {
            visited.insert(s.state);
            if matches!(s.state, State::HeavyLoad | State::CriticalIssue) {
                if p {
                    trouble_problem += 1;
                } else {
                    trouble_other += 1;
                }
            }
        }
    }
    assert!(visited.len() >= 6, "only {visited:?}");
    let problems = problem.iter().filter(|p| **p).count();
    let per_problem = trouble_problem as f64 / problems as f64;
    let per_other = trouble_other as f64 / (100 - problems) as f64;
    assert!(
        per_problem > 2.0 * per_other,
        "{per_problem} vs {per_other}"
    );
}

#[test]
fn a_critical_scenario_ramps_its_share_of_servers_into_trouble_and_healthy_brings_them_back() {
    let mut fleet = Fleet::new(20, 2, START);
    let t0 = START + 10 * 3_600_000;
    run(&mut fleet, START, 10.0, 60, |_, _| {});
    fleet.set_scenario(Scenario::Critical, t0);
    let affected: Vec<String> = fleet.affected().iter().map(|s| s.to_string()).collect();
    assert_eq!(affected.len(), 8);
    let index = |name: &str| fleet.servers.iter().position(|s| s.name == name).unwrap();
    let hit: Vec<usize> = affected.iter().map(|n| index(n)).collect();
    let mut last = Vec::new();
    run(&mut fleet, t0, 0.5, 30, |_, values| last = values.to_vec());
    let mean_of = |values: &[Option<[f64; 14]>], pick: &dyn Fn(usize) -> bool, m: usize| {
        let xs: Vec<f64> = values
            .iter()
            .enumerate()
            .filter(|(i, _)| pick(*i))
            .filter_map(|(_, v)| v.map(|v| v[m]))
            .collect();
        xs.iter().sum::<f64>() / xs.len().max(1) as f64
    };
    let in_hit = |i: usize| hit.contains(&i);
    let not_hit = |i: usize| !hit.contains(&i);
    assert!(
        mean_of(&last, &in_hit, MEM) > 93.0,
        "{}",
        mean_of(&last, &in_hit, MEM)
    );
    assert!(
        mean_of(&last, &in_hit, USER) > 70.0,
        "{}",
        mean_of(&last, &in_hit, USER)
    );
    assert!(
        mean_of(&last, &in_hit, IDLE) < 8.0,
        "{}",
        mean_of(&last, &in_hit, IDLE)
    );
    assert!(mean_of(&last, &not_hit, MEM) < 85.0);
    fleet.set_scenario(Scenario::Healthy, t0 + 1_800_000);
    assert!(fleet.affected().is_empty());
    run(&mut fleet, t0 + 1_800_000, 0.5, 30, |_, values| {
        last = values.to_vec()
    });
    assert!(
        mean_of(&last, &in_hit, MEM) < 90.0,
        "{}",
        mean_of(&last, &in_hit, MEM)
    );
}
