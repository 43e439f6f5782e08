//! Mutual information between a continuous feature and a discrete target: the k-nearest-neighbour
//! estimator of Ross (2014), "Mutual information between discrete and continuous data sets",
//! PLoS ONE 9(2) — the estimator scikit-learn's `mutual_info_classif` uses for continuous
//! features (`_compute_mi_cd`), reproduced step for step:
//!
//! 1. The values are scaled to unit standard deviation and a tiny Gaussian jitter is added
//!    (1e-10 · max(1, mean |x|) after scaling), so that tied values do not make neighbour
//!    distances zero. scikit-learn draws the jitter from `random_state`; here it comes from a
//!    fixed seed, applied in sorted (value, class) order, so the result does not depend on the
//!    order rows arrive in.
//! 2. Rows whose class occurs once are ignored.
//! 3. For each row i of class c (N_c rows), k_i = min(3, N_c − 1) and d_i is the distance to its
//!    k_i-th nearest neighbour within class c; m_i counts the rows of *any* class at distance
//!    strictly less than d_i (scikit-learn: radius `nextafter(d_i, 0)`), the row itself included.
//! 4. I = ψ(N) + ⟨ψ(k_i)⟩ − ⟨ψ(N_c)⟩ − ⟨ψ(m_i)⟩, clipped at 0 (nats).
//!
//! In one dimension the neighbours of a point are next to it in sorted order, so instead of
//! KD-trees: one sort (O(n log n)), then per row a walk to the k-th same-class neighbour (O(k))
//! and two binary searches for m_i (O(log n)). Memory: the buffered (value, class) pairs,
//! 16 bytes a row, plus 8 bytes a row for the per-class value lists while estimating.

use crate::sample::SplitMix64;

/// Neighbours per row (scikit-learn's default `n_neighbors=3`).
pub const NEIGHBORS: usize = 3;
/// Seed of the tie-breaking jitter.
const JITTER_SEED: u64 = 42;

/// The digamma function ψ for x > 0: recurrence up to x ≥ 10, then the asymptotic series
/// (through the x⁻¹² term; absolute error about 1e-15).
pub fn digamma(mut x: f64) -> f64 {
    let mut acc = 0.0;
    while x < 10.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    let tail = f
        * (1.0 / 12.0
            - f * (1.0 / 120.0
                - f * (1.0 / 252.0 - f * (1.0 / 240.0 - f * (1.0 / 132.0 - f * 691.0 / 32760.0)))));
    acc + x.ln() - 0.5 / x - tail
}

/// The distance from `values[j]` to its k-th nearest neighbour among `values` (sorted).
fn kth_neighbour_distance(values: &[f64], j: usize, k: usize) -> f64 {
    let x = values[j];
    let (mut left, mut right) = (j, j + 1);
    let mut d = 0.0;
    for _ in 0..k {
        let l = (left > 0).then(|| x - values[left - 1]);
        let r = (right < values.len()).then(|| values[right] - x);
        match (l, r) {
            (Some(a), Some(b)) if a <= b => {
                d = a;
                left -= 1;
            }
            (Some(a), None) => {
                d = a;
                left -= 1;
            }
            (_, Some(b)) => {
                d = b;
                right += 1;
            }
            (None, None) => break,
        }
    }
    d
}

/// I(X; Y) in nats for the `(value, class)` pairs (classes `0..classes`), by the k-NN
/// estimator described in the module header. Non-finite values must be removed by the caller.
/// 0 with fewer than two rows in classes that occur more than once.
pub fn mutual_info(points: &mut Vec<(f64, u32)>, classes: usize) -> f64 {
    if points.is_empty() {
        return 0.0;
    }
    points.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));

    // 1. Unit standard deviation and jitter, as scikit-learn.
    let n = points.len() as f64;
    let mean = points.iter().map(|p| p.0).sum::<f64>() / n;
    let var = points.iter().map(|p| (p.0 - mean).powi(2)).sum::<f64>() / n;
    let scale = if var > 0.0 && var.is_finite() {
        var.sqrt()
    } else {
        1.0
    };
    let mean_abs = points.iter().map(|p| (p.0 / scale).abs()).sum::<f64>() / n;
    let amplitude = 1e-10 * mean_abs.max(1.0);
    let mut rng = SplitMix64::new(JITTER_SEED);
    for p in points.iter_mut() {
        p.0 = p.0 / scale + amplitude * rng.normal();
    }
    points.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));

    // 2. Rows of classes seen once do not count.
    let mut counts = vec![0usize; classes];
    for p in points.iter() {
        counts[p.1 as usize] += 1;
    }
    points.retain(|p| counts[p.1 as usize] > 1);
    if points.len() < 2 {
        return 0.0;
    }
    let mut by_class: Vec<Vec<f64>> = counts
        .iter()
        .map(|&c| Vec::with_capacity(if c > 1 { c } else { 0 }))
        .collect();
    for p in points.iter() {
        by_class[p.1 as usize].push(p.0);
    }

    // 3. Per row: k, the k-th same-class neighbour's distance, and m.
    let mut position = vec![0usize; classes];
    let (mut psi_k, mut psi_class, mut psi_m) = (0.0, 0.0, 0.0);
    for (i, &(x, c)) in points.iter().enumerate() {
        let same = &by_class[c as usize];
        let j = position[c as usize];
        position[c as usize] += 1;
        let k = NEIGHBORS.min(same.len() - 1);
        let d = kth_neighbour_distance(same, j, k);
        let radius = if d > 0.0 { d.next_down() } else { 0.0 };
        let lo = points[..=i].partition_point(|p| x - p.0 > radius);
        let hi = i + points[i..].partition_point(|p| p.0 - x <= radius);
        psi_k += digamma(k as f64);
        psi_class += digamma(same.len() as f64);
        psi_m += digamma((hi - lo) as f64);
    }

    // 4. Ross's estimate.
    let n = points.len() as f64;
    let mi = digamma(n) + (psi_k - psi_class - psi_m) / n;
    mi.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digamma_matches_known_values() {
        let euler = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + euler).abs() < 1e-14);
        assert!((digamma(2.0) - (1.0 - euler)).abs() < 1e-14);
        assert!((digamma(100.0) - 4.600_161_852_738_087).abs() < 1e-13);
        assert!((digamma(0.5) - (-euler - 2.0 * std::f64::consts::LN_2)).abs() < 1e-13);
    }

    #[test]
    fn the_kth_neighbour_is_found_on_either_side() {
        let v = [0.0, 1.0, 1.5, 4.0, 10.0];
        assert_eq!(kth_neighbour_distance(&v, 2, 1), 0.5);
        assert_eq!(kth_neighbour_distance(&v, 2, 2), 1.5);
        assert_eq!(kth_neighbour_distance(&v, 2, 3), 2.5);
        assert_eq!(kth_neighbour_distance(&v, 0, 3), 4.0);
        assert_eq!(kth_neighbour_distance(&v, 4, 1), 6.0);
    }

    fn generated(n: usize, separation: f64) -> Vec<(f64, u32)> {
        let mut rng = SplitMix64::new(7);
        (0..n)
            .map(|_| {
                let c = rng.below(2) as u32;
                (c as f64 * separation + rng.normal(), c)
            })
            .collect()
    }

    #[test]
    fn separated_classes_have_information_and_mixed_ones_little() {
        let strong = mutual_info(&mut generated(2000, 12.0), 2);
        let weak = mutual_info(&mut generated(2000, 0.5), 2);
        let none = mutual_info(&mut generated(2000, 0.0), 2);
        // Two well separated classes of equal size: I ≈ H(Y) = ln 2.
        assert!((strong - std::f64::consts::LN_2).abs() < 0.05, "{strong}");
        assert!(weak > 0.01 && weak < 0.2, "{weak}");
        assert!(none < 0.02, "{none}");
    }

    #[test]
    fn the_estimate_does_not_depend_on_row_order() {
        let mut a = generated(500, 1.0);
        let mut b = a.clone();
        b.reverse();
        assert_eq!(mutual_info(&mut a, 2), mutual_info(&mut b, 2));
    }

    #[test]
    fn ties_and_unique_classes_are_handled() {
        // Many tied values; class 2 occurs once and is ignored.
        let mut points: Vec<(f64, u32)> =
            (0..300).map(|i| ((i % 3) as f64, (i % 2) as u32)).collect();
        points.push((5.0, 2));
        let mi = mutual_info(&mut points, 3);
        assert!(mi.is_finite() && mi >= 0.0);
        assert_eq!(mutual_info(&mut vec![(1.0, 0)], 1), 0.0);
    }
}
