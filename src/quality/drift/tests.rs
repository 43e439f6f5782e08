use super::*;

#[test]
fn wasserstein_of_shifted_samples_is_the_shift() {
    let base: Vec<(f64, u64)> = vec![(0.0, 1), (1.0, 1), (2.0, 1)];
    assert!((wasserstein(&base, &[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
    // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) = 5.0; with counts.
    let base = vec![(0.0, 2), (1.0, 2), (3.0, 2)];
    assert!((wasserstein(&base, &[5.0, 6.0, 8.0]) - 5.0).abs() < 1e-12);
    // scipy.stats.wasserstein_distance([0, 1], [0, 0, 1, 5]) = 1.0
    let base = vec![(0.0, 1), (1.0, 1)];
    assert!((wasserstein(&base, &[0.0, 0.0, 1.0, 5.0]) - 1.0).abs() < 1e-12);
}

#[test]
fn chi2_matches_scipy_contingency_without_correction() {
    // scipy.stats.chi2_contingency([[10, 20, 30], [20, 20, 20]], correction=False)
    //   -> statistic 5.333333333333333, pvalue 0.06948345122280154
    let base = vec![("a".into(), 10), ("b".into(), 20), ("c".into(), 30)];
    let cur: HashMap<String, u64> = [("a".into(), 20), ("b".into(), 20), ("c".into(), 20)].into();
    let (s, p) = chi2(&base, &cur);
    assert!((s.unwrap() - 5.333333333333333).abs() < 1e-12);
    assert!((p.unwrap() - 0.06948345122280154).abs() < 1e-12);
}

#[test]
fn a_bare_end_date_includes_its_day() {
    assert_eq!(window_end("2024-01-31").unwrap(), "2024-02-01");
    assert_eq!(
        window_end("2024-01-31T12:00:00").unwrap(),
        "2024-01-31T12:00:00"
    );
}
