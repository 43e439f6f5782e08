//! The two-sample statistics of drift checks against a stored baseline summary.

use super::*;

/// KS, PSI or Wasserstein of the current sorted sample against the baseline.
pub(super) fn numeric_test(
    method: Method,
    base: &[(f64, u64)],
    current: &[f64],
) -> (Option<f64>, Option<f64>) {
    if current.is_empty() || base.is_empty() {
        return (None, None);
    }
    let nan = current.last().is_some_and(|v| v.is_nan()) || base.iter().any(|(v, _)| v.is_nan());
    if nan {
        return (Some(f64::NAN), method.by_p_value().then_some(f64::NAN));
    }
    match method {
        Method::Wasserstein => (Some(wasserstein(base, current)), None),
        Method::Ks | Method::Psi => {
            let expanded = expand(base);
            if method == Method::Psi {
                (
                    Some(fstore_udfs::stats::psi::psi_of_sorted(&expanded, current)),
                    None,
                )
            } else {
                match fstore_udfs::stats::kolmogorov::two_sample(&expanded, current) {
                    Some(t) => (Some(t.statistic), Some(t.p_value)),
                    None => (None, None),
                }
            }
        }
        Method::Chi2 => (None, None),
    }
}

/// The exact baseline sample, sorted, expanded from its (value, count) summary.
fn expand(base: &[(f64, u64)]) -> Vec<f64> {
    let mut expanded = Vec::with_capacity(base.iter().map(|(_, c)| *c as usize).sum());
    for (v, c) in base {
        expanded.extend(std::iter::repeat_n(*v, *c as usize));
    }
    expanded
}

/// W1 = ∫ |F_base(x) − F_cur(x)| dx over the merged support (both ECDFs right-continuous).
pub(super) fn wasserstein(base: &[(f64, u64)], current: &[f64]) -> f64 {
    let nb: u64 = base.iter().map(|(_, c)| c).sum();
    let nc = current.len();
    let (mut i, mut j) = (0usize, 0usize);
    let (mut cb, mut cc) = (0u64, 0usize);
    let mut total = 0.0;
    let mut prev: Option<f64> = None;
    let mut diff = 0.0;
    while i < base.len() || j < nc {
        let x = match (base.get(i), current.get(j)) {
            (Some((b, _)), Some(c)) => b.min(*c),
            (Some((b, _)), None) => *b,
            (None, Some(c)) => *c,
            (None, None) => break,
        };
        if let Some(p) = prev {
            total += diff * (x - p);
        }
        while i < base.len() && base[i].0 <= x {
            cb += base[i].1;
            i += 1;
        }
        while j < nc && current[j] <= x {
            cc += 1;
            j += 1;
        }
        diff = (cb as f64 / nb as f64 - cc as f64 / nc as f64).abs();
        prev = Some(x);
    }
    total
}

/// chi2 of a numeric feature: the values are binned by the baseline's deciles (the bins of
/// PSI: (−∞, q1], (q1, q2], …, (q9, ∞), equal edges merged) and the bin counts compared.
/// Returns the statistic, the p-value and the number of bins.
pub(super) fn binned_chi2(
    base: &[(f64, u64)],
    current: &[f64],
) -> (Option<f64>, Option<f64>, usize) {
    if base.is_empty() || current.is_empty() {
        return (None, None, 0);
    }
    if current.last().is_some_and(|v| v.is_nan()) || base.iter().any(|(v, _)| v.is_nan()) {
        return (Some(f64::NAN), Some(f64::NAN), 0);
    }
    let expanded = expand(base);
    let edges = fstore_udfs::stats::psi::bin_edges(&expanded);
    let cb = fstore_udfs::stats::psi::bin_counts(&expanded, &edges);
    let cc = fstore_udfs::stats::psi::bin_counts(current, &edges);
    let bins = cb.len();
    let base_bins: Vec<(String, u64)> = cb
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, c)| (i.to_string(), *c as u64))
        .collect();
    let current_bins: HashMap<String, u64> = cc
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, c)| (i.to_string(), *c as u64))
        .collect();
    let (s, p) = chi2(&base_bins, &current_bins);
    (s, p, bins)
}

/// Pearson's chi-square test of homogeneity of two category count vectors.
pub(super) fn chi2(
    base: &[(String, u64)],
    current: &HashMap<String, u64>,
) -> (Option<f64>, Option<f64>) {
    let nb: u64 = base.iter().map(|(_, c)| c).sum();
    let nc: u64 = current.values().sum();
    if nb == 0 || nc == 0 {
        return (None, None);
    }
    let mut table: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (k, c) in base {
        table.entry(k.as_str()).or_default().0 += c;
    }
    for (k, c) in current {
        table.entry(k.as_str()).or_default().1 += c;
    }
    let n = (nb + nc) as f64;
    let mut stat = 0.0;
    for (b, c) in table.values() {
        let col = (b + c) as f64;
        for (observed, row) in [(*b, nb), (*c, nc)] {
            let expected = row as f64 * col / n;
            stat += (observed as f64 - expected).powi(2) / expected;
        }
    }
    let dof = table.len().saturating_sub(1);
    if dof == 0 {
        return (Some(0.0), Some(1.0));
    }
    let p = ChiSquared::new(dof as f64)
        .map(|d| d.sf(stat))
        .unwrap_or(f64::NAN);
    (Some(stat), Some(p))
}

/// PSI of a categorical feature: each category a bin (`psi`'s definition: proportions,
/// an empty bin at 1e-4).
fn categorical_psi(base: &[(String, u64)], current: &HashMap<String, u64>) -> Option<f64> {
    let nb: u64 = base.iter().map(|(_, c)| c).sum();
    let nc: u64 = current.values().sum();
    if nb == 0 || nc == 0 {
        return None;
    }
    let mut table: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (k, c) in base {
        table.entry(k.as_str()).or_default().0 += c;
    }
    for (k, c) in current {
        table.entry(k.as_str()).or_default().1 += c;
    }
    let share = |c: u64, n: u64| if c == 0 { 1e-4 } else { c as f64 / n as f64 };
    Some(
        table
            .values()
            .map(|(b, c)| {
                let (pb, pc) = (share(*b, nb), share(*c, nc));
                (pc - pb) * (pc / pb).ln()
            })
            .sum(),
    )
}

/// The drift statistic and p-value of `method` (`ks_test`, `psi`, `chi2`, `wasserstein`)
/// for a feature's current values against its baseline: `numbers` (numeric features, in
/// any order) or `categories` (counts by category). What `check_drift` computes, for the
/// monitoring area.
pub fn drift_statistic(
    method: &str,
    reference: &Reference,
    numbers: &mut [f64],
    categories: &HashMap<String, u64>,
) -> Result<(Option<f64>, Option<f64>)> {
    let method = Method::parse(method)?;
    numbers.sort_unstable_by(f64::total_cmp);
    Ok(match (reference, method) {
        (Reference::Skipped(_), _) => (None, None),
        (Reference::Numeric(base), Method::Chi2) => {
            let (s, p, _) = binned_chi2(base, numbers);
            (s, p)
        }
        (Reference::Numeric(base), m) => numeric_test(m, base, numbers),
        (Reference::Categorical(base), Method::Psi) => (categorical_psi(base, categories), None),
        (Reference::Categorical(base), Method::Chi2) => chi2(base, categories),
        (Reference::Categorical(_), _) => (None, None),
    })
}

/// A baseline feature's reference, loaded (numeric summaries are read from the warehouse).
pub async fn load_reference(
    registry: &Registry,
    state: &SessionState,
    b: &BaselineFeature,
) -> Result<Reference> {
    Ok(match &b.sketch {
        BaselineSketch::Numeric { path, .. } => {
            let url = registry.warehouse().url_of(path);
            Reference::Numeric(read_values(state, &url).await?)
        }
        BaselineSketch::Categorical { counts } => Reference::Categorical(counts.clone()),
    })
}
