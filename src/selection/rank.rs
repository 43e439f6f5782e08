//! Average ranks, as `scipy.stats.rankdata(method='average')`: ties share the mean of the ranks
//! they span (midranks), ranks start at 1. Spearman's correlation is Pearson's on these ranks.

/// The 1-based average rank of each value. NaN sorts after every number (and NaNs tie).
/// O(n log n) time, 8 bytes per value of scratch besides the result.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && same(values[order[end]], values[order[start]]) {
            end += 1;
        }
        // Positions start..end (0-based) hold ranks start+1 ..= end; their mean:
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_the_mean_rank() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 10.0, 30.0, 10.0]),
            vec![2.0, 4.0, 2.0, 5.0, 2.0]
        );
        assert_eq!(average_ranks(&[3.0, 1.0, 2.0]), vec![3.0, 1.0, 2.0]);
        assert_eq!(average_ranks(&[0.0, -0.0, 1.0]), vec![1.5, 1.5, 3.0]);
        assert!(average_ranks(&[]).is_empty());
    }
}
