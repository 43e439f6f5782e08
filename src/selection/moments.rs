//! Means, variances and co-moments that merge: the numerically careful way to get a variance or
//! a Pearson correlation in one pass over batches.
//!
//! Each batch is summarised with the corrected two-pass algorithm (mean first, then centred
//! sums, with the rounding of the mean corrected), and summaries merge with Chan, Golub and
//! LeVeque's pairwise update. Nothing is ever computed as `Σx² − (Σx)²/n`, which loses every
//! digit on data with a large mean. The range of each variable is kept too, so "constant" is
//! decided exactly (min = max), not by comparing a rounded variance with zero.

use datafusion::arrow::array::{Array, Float64Array};
use datafusion::arrow::buffer::NullBuffer;

/// Count, mean, sum of squared deviations and range of one variable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    pub n: u64,
    pub mean: f64,
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Self {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

/// Whether row `i` is present (not NULL) in `nulls`.
fn present(nulls: Option<&NullBuffer>, i: usize) -> bool {
    nulls.is_none_or(|n| n.is_valid(i))
}

impl Moments {
    /// The moments of the non-NULL values of `values`.
    pub fn of(values: &Float64Array) -> Moments {
        let nulls = values.nulls();
        let v = values.values();
        let rows = (0..v.len()).filter(|&i| present(nulls, i));
        Self::of_rows(v, rows)
    }

    /// The moments of `values[i]` for the rows `i` yielded by `rows` (which is cloned to make
    /// a second pass).
    fn of_rows(values: &[f64], rows: impl Iterator<Item = usize> + Clone) -> Moments {
        let mut m = Moments::default();
        let mut sum = 0.0;
        for i in rows.clone() {
            let x = values[i];
            m.n += 1;
            sum += x;
            m.min = m.min.min(x);
            m.max = m.max.max(x);
        }
        if m.n == 0 {
            return m;
        }
        let mean = sum / m.n as f64;
        let (mut sq, mut lin) = (0.0, 0.0);
        for i in rows {
            let d = values[i] - mean;
            sq += d * d;
            lin += d;
        }
        m.mean = mean + lin / m.n as f64;
        m.m2 = (sq - lin * lin / m.n as f64).max(0.0);
        m
    }

    /// Adds another summary (Chan et al.).
    pub fn merge(&mut self, other: &Moments) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        self.mean += delta * nb / n;
        self.m2 += other.m2 + delta * delta * na * nb / n;
        self.n += other.n;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Whether every counted value is the same (also true with no values).
    pub fn is_constant(&self) -> bool {
        self.n == 0 || self.min == self.max
    }

    /// The population variance (divisor n, NumPy's `ddof=0`); None without values.
    pub fn population_variance(&self) -> Option<f64> {
        match self.n {
            0 => None,
            _ if self.is_constant() && !self.mean.is_nan() => Some(0.0),
            n => Some(self.m2 / n as f64),
        }
    }
}

/// The moments of two variables over the rows where both are present, and their co-moment
/// `Σ (x − x̄)(y − ȳ)`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CoMoments {
    pub x: Moments,
    pub y: Moments,
    pub c: f64,
}

impl CoMoments {
    /// The co-moments of the rows where both `x` and `y` are non-NULL. `known` may give the
    /// moments of `x` and `y` over all their rows: used when neither has NULLs, which saves a
    /// pass.
    pub fn of(x: &Float64Array, y: &Float64Array, known: Option<(&Moments, &Moments)>) -> Self {
        let (xv, yv) = (x.values(), y.values());
        let nulls = NullBuffer::union(x.nulls(), y.nulls());
        let (mx, my) = match (known, &nulls) {
            (Some((mx, my)), None) => (*mx, *my),
            _ => {
                let rows = (0..xv.len()).filter(|&i| present(nulls.as_ref(), i));
                (
                    Moments::of_rows(xv, rows.clone()),
                    Moments::of_rows(yv, rows),
                )
            }
        };
        if mx.n == 0 {
            return CoMoments::default();
        }
        let (mut c, mut lx, mut ly) = (0.0, 0.0, 0.0);
        for i in (0..xv.len()).filter(|&i| present(nulls.as_ref(), i)) {
            let (dx, dy) = (xv[i] - mx.mean, yv[i] - my.mean);
            c += dx * dy;
            lx += dx;
            ly += dy;
        }
        CoMoments {
            x: mx,
            y: my,
            c: c - lx * ly / mx.n as f64,
        }
    }

    /// Adds another summary (Chan et al.).
    pub fn merge(&mut self, other: &CoMoments) {
        if other.x.n == 0 {
            return;
        }
        if self.x.n == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.x.n as f64, other.x.n as f64);
        let (dx, dy) = (other.x.mean - self.x.mean, other.y.mean - self.y.mean);
        self.c += other.c + dx * dy * na * nb / (na + nb);
        self.x.merge(&other.x);
        self.y.merge(&other.y);
    }

    /// Pearson's r; None when fewer than two rows were counted or either variable is
    /// constant over them. NaN in the data gives NaN.
    pub fn pearson(&self) -> Option<f64> {
        if self.x.n < 2 || self.x.is_constant() || self.y.is_constant() {
            let nan = self.x.mean.is_nan() || self.y.mean.is_nan();
            return (self.x.n > 0 && nan).then_some(f64::NAN);
        }
        let r = self.c / (self.x.m2 * self.y.m2).sqrt();
        Some(if r.is_nan() { r } else { r.clamp(-1.0, 1.0) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(v: &[Option<f64>]) -> Float64Array {
        Float64Array::from(v.to_vec())
    }

    #[test]
    fn merged_batches_give_the_moments_of_the_whole() {
        let all: Vec<f64> = (0..1000).map(|i| 1e6 + (i as f64 * 0.37).sin()).collect();
        let whole = Moments::of(&Float64Array::from(all.clone()));
        let mut merged = Moments::default();
        for chunk in all.chunks(77) {
            merged.merge(&Moments::of(&Float64Array::from(chunk.to_vec())));
        }
        assert_eq!(whole.n, merged.n);
        assert!((whole.mean - merged.mean).abs() < 1e-6);
        assert!((whole.m2 - merged.m2).abs() / whole.m2 < 1e-9);
        // A large mean does not destroy the variance.
        let direct: f64 = {
            let mean = all.iter().sum::<f64>() / 1000.0;
            all.iter().map(|x| (x - mean).powi(2)).sum()
        };
        assert!((whole.m2 - direct).abs() / direct < 1e-9);
    }

    #[test]
    fn pearson_skips_rows_where_either_is_null() {
        let x = arr(&[Some(1.0), Some(2.0), None, Some(3.0), Some(4.0)]);
        let y = arr(&[Some(2.0), Some(4.0), Some(100.0), Some(6.0), None]);
        let cm = CoMoments::of(&x, &y, None);
        assert_eq!(cm.x.n, 3);
        assert!((cm.pearson().unwrap() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn a_constant_variable_has_no_correlation() {
        let x = arr(&[Some(0.1), Some(0.1), Some(0.1)]);
        let y = arr(&[Some(1.0), Some(2.0), Some(3.0)]);
        assert_eq!(CoMoments::of(&x, &y, None).pearson(), None);
        assert_eq!(Moments::of(&x).population_variance(), Some(0.0));
    }

    #[test]
    fn merging_co_moments_matches_one_pass() {
        let x: Vec<f64> = (0..500).map(|i| (i as f64).sqrt()).collect();
        let y: Vec<f64> = (0..500)
            .map(|i| (i as f64 * 0.1).cos() + i as f64 / 100.0)
            .collect();
        let whole = CoMoments::of(
            &Float64Array::from(x.clone()),
            &Float64Array::from(y.clone()),
            None,
        );
        let mut merged = CoMoments::default();
        for (a, b) in x.chunks(64).zip(y.chunks(64)) {
            merged.merge(&CoMoments::of(
                &Float64Array::from(a.to_vec()),
                &Float64Array::from(b.to_vec()),
                None,
            ));
        }
        assert!((whole.pearson().unwrap() - merged.pearson().unwrap()).abs() < 1e-14);
    }
}
