//! The sliding state: one entity's events in time order, swept once.
//!
//! [`Sweep::advance_to`]`(t)` moves the shared upper edge past every event with time ≤ t and
//! each window's lower edge past every event with time ≤ t − w, updating the aggregates
//! incrementally (events enter and leave in time order, so every structure is FIFO):
//!
//! - counts: counters; `count(*)` is the distance between the edges;
//! - sum/mean: exact i128 for integers and decimals; Neumaier-compensated f64 for floats
//!   (NaN/±inf counted apart), rebuilt from the window's values after every ~2×(window size)
//!   updates, so rounding error never accumulates beyond one window's worth;
//! - stddev: compensated sums of (x − K)² and (x − K) with K a recent mean, rebuilt the same
//!   way (no catastrophic cancellation for large values with small spread);
//! - min/max: monotonic deques of positions (amortised O(1));
//! - count_distinct: a value → multiplicity map;
//! - last: the last non-NULL position below the upper edge, valid while ≥ the lower edge.
//!
//! Reads never fail except an Int64 sum that overflows, which is an error, not a wrap.

use std::collections::VecDeque;

use datafusion::common::{HashMap, exec_err};
use datafusion::error::Result;

use super::spec::{Layout, ValueKind, WindowAgg};
use super::values::{GroupEvents, OutputColumn, OutputKind};
use arrow_schema::DataType;

/// The representation a spec's output is built in.
pub(crate) fn output_kind(
    agg: WindowAgg,
    kind: Option<ValueKind>,
    dt: Option<&DataType>,
) -> OutputKind {
    match agg {
        WindowAgg::Mean | WindowAgg::Stddev => OutputKind::F64,
        WindowAgg::Count | WindowAgg::CountStar | WindowAgg::CountDistinct => OutputKind::I64,
        WindowAgg::Sum => match (kind, dt) {
            (Some(ValueKind::F64), _) => OutputKind::F64,
            (Some(ValueKind::I128), Some(DataType::Decimal128(..))) => OutputKind::I128,
            _ => OutputKind::I64,
        },
        WindowAgg::Min | WindowAgg::Max | WindowAgg::Last => match kind {
            Some(ValueKind::F64) => OutputKind::F64,
            Some(ValueKind::I128) => OutputKind::I128,
            Some(ValueKind::Rows) => OutputKind::Rows,
            _ => OutputKind::I64,
        },
    }
}

/// Neumaier-compensated sum of finite values; non-finite values are counted apart so that
/// they can leave the window again.
#[derive(Debug, Default, Clone)]
struct FloatSum {
    sum: f64,
    comp: f64,
    nan: u32,
    pos_inf: u32,
    neg_inf: u32,
}

impl FloatSum {
    #[inline]
    fn add_finite(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }

    #[inline]
    fn add(&mut self, x: f64) {
        if x.is_finite() {
            self.add_finite(x);
        } else if x.is_nan() {
            self.nan += 1;
        } else if x > 0.0 {
            self.pos_inf += 1;
        } else {
            self.neg_inf += 1;
        }
    }

    #[inline]
    fn remove(&mut self, x: f64) {
        if x.is_finite() {
            self.add_finite(-x);
        } else if x.is_nan() {
            self.nan = self.nan.saturating_sub(1);
        } else if x > 0.0 {
            self.pos_inf = self.pos_inf.saturating_sub(1);
        } else {
            self.neg_inf = self.neg_inf.saturating_sub(1);
        }
    }

    fn value(&self) -> f64 {
        if self.nan > 0 || (self.pos_inf > 0 && self.neg_inf > 0) {
            f64::NAN
        } else if self.pos_inf > 0 {
            f64::INFINITY
        } else if self.neg_inf > 0 {
            f64::NEG_INFINITY
        } else {
            self.sum + self.comp
        }
    }
}

#[derive(Debug)]
enum SumAcc {
    Float(FloatSum),
    /// Wrapping i128 sum (exact whenever the window's true sum fits, which it always does
    /// for 64-bit inputs), and an f64 shadow that detects decimal sums beyond 38 digits.
    Exact(i128, f64),
}

/// Shifted moments for the sample variance: Σ(x−K), Σ(x−K)² over the finite values.
#[derive(Debug, Default)]
struct VarAcc {
    k: f64,
    n: u64,
    s1: FloatSum,
    s2: FloatSum,
    non_finite: u32,
}

impl VarAcc {
    fn add(&mut self, x: f64) {
        if !x.is_finite() {
            self.non_finite += 1;
            return;
        }
        if self.n == 0 {
            self.k = x;
            self.s1 = FloatSum::default();
            self.s2 = FloatSum::default();
        }
        self.n += 1;
        let d = x - self.k;
        self.s1.add_finite(d);
        self.s2.add_finite(d * d);
    }

    fn remove(&mut self, x: f64) {
        if !x.is_finite() {
            self.non_finite = self.non_finite.saturating_sub(1);
            return;
        }
        self.n = self.n.saturating_sub(1);
        if self.n == 0 {
            self.s1 = FloatSum::default();
            self.s2 = FloatSum::default();
            return;
        }
        let d = x - self.k;
        self.s1.add_finite(-d);
        self.s2.add_finite(-(d * d));
    }

    fn stddev(&self) -> Option<f64> {
        let total = self.n + self.non_finite as u64;
        if total < 2 {
            return None;
        }
        if self.non_finite > 0 {
            return Some(f64::NAN);
        }
        let n = self.n as f64;
        let s1 = self.s1.value();
        let var = (self.s2.value() - s1 * s1 / n) / (n - 1.0);
        Some(var.max(0.0).sqrt())
    }
}

#[derive(Debug)]
enum Distinct {
    Bits(HashMap<u64, u32>),
    Wide(HashMap<i128, u32>),
    Bytes(HashMap<Vec<u8>, u32>),
}

impl Distinct {
    fn new(kind: ValueKind) -> Self {
        match kind {
            ValueKind::I128 => Distinct::Wide(HashMap::default()),
            ValueKind::Rows => Distinct::Bytes(HashMap::default()),
            _ => Distinct::Bits(HashMap::default()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Distinct::Bits(m) => m.len(),
            Distinct::Wide(m) => m.len(),
            Distinct::Bytes(m) => m.len(),
        }
    }

    fn bits(ev: &super::values::Gathered, p: usize) -> u64 {
        match ev {
            super::values::Gathered::F64 { v, .. } => {
                let x = v[p];
                if x.is_nan() {
                    f64::NAN.to_bits()
                } else if x == 0.0 {
                    0
                } else {
                    x.to_bits()
                }
            }
            _ => ev.i128_at(p) as u64,
        }
    }

    fn add(&mut self, ev: &super::values::Gathered, p: usize) {
        match self {
            Distinct::Bits(m) => *m.entry(Self::bits(ev, p)).or_insert(0) += 1,
            Distinct::Wide(m) => *m.entry(ev.i128_at(p)).or_insert(0) += 1,
            Distinct::Bytes(m) => match m.get_mut(ev.bytes_at(p)) {
                Some(c) => *c += 1,
                None => {
                    m.insert(ev.bytes_at(p).to_vec(), 1);
                }
            },
        }
    }

    fn remove(&mut self, ev: &super::values::Gathered, p: usize) {
        fn dec<
            K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        >(
            m: &mut HashMap<K, u32>,
            k: &Q,
        ) {
            if let Some(c) = m.get_mut(k) {
                *c -= 1;
                if *c == 0 {
                    m.remove(k);
                }
            }
        }
        match self {
            Distinct::Bits(m) => dec(m, &Self::bits(ev, p)),
            Distinct::Wide(m) => dec(m, &ev.i128_at(p)),
            Distinct::Bytes(m) => dec(m, ev.bytes_at(p)),
        }
    }

    fn clear(&mut self) {
        match self {
            Distinct::Bits(m) => m.clear(),
            Distinct::Wide(m) => m.clear(),
            Distinct::Bytes(m) => m.clear(),
        }
    }
}

/// The aggregates of one value column over one window.
#[derive(Debug)]
struct ColState {
    col: usize,
    /// Scale divisor for decimals (10^s), 1 otherwise.
    scale: f64,
    valid: i64,
    sum: Option<SumAcc>,
    var: Option<VarAcc>,
    min: Option<VecDeque<usize>>,
    max: Option<VecDeque<usize>>,
    distinct: Option<Distinct>,
    /// Updates since the float sums were last rebuilt from the window's values.
    ops: u64,
}

impl ColState {
    fn reset(&mut self) {
        self.valid = 0;
        self.ops = 0;
        match &mut self.sum {
            Some(SumAcc::Float(s)) => *s = FloatSum::default(),
            Some(SumAcc::Exact(s, a)) => (*s, *a) = (0, 0.0),
            None => {}
        }
        if let Some(v) = &mut self.var {
            *v = VarAcc::default();
        }
        if let Some(d) = &mut self.min {
            d.clear();
        }
        if let Some(d) = &mut self.max {
            d.clear();
        }
        if let Some(d) = &mut self.distinct {
            d.clear();
        }
    }

    #[inline]
    fn add(&mut self, ev: &GroupEvents, p: usize) {
        let g = &ev.cols[self.col];
        if !g.valid(p) {
            return;
        }
        self.valid += 1;
        self.ops += 1;
        match &mut self.sum {
            Some(SumAcc::Float(s)) => s.add(g.f64_at(p)),
            Some(SumAcc::Exact(s, a)) => {
                let v = g.i128_at(p);
                *s = s.wrapping_add(v);
                *a += v as f64;
            }
            None => {}
        }
        if let Some(v) = &mut self.var {
            v.add(g.f64_at(p) / self.scale);
        }
        if let Some(d) = &mut self.min {
            while d.back().is_some_and(|&b| g.cmp(b, p).is_ge()) {
                d.pop_back();
            }
            d.push_back(p);
        }
        if let Some(d) = &mut self.max {
            while d.back().is_some_and(|&b| g.cmp(b, p).is_le()) {
                d.pop_back();
            }
            d.push_back(p);
        }
        if let Some(d) = &mut self.distinct {
            d.add(g, p);
        }
    }

    #[inline]
    fn remove(&mut self, ev: &GroupEvents, p: usize) {
        let g = &ev.cols[self.col];
        if !g.valid(p) {
            return;
        }
        self.valid -= 1;
        self.ops += 1;
        match &mut self.sum {
            Some(SumAcc::Float(s)) => s.remove(g.f64_at(p)),
            Some(SumAcc::Exact(s, a)) => {
                let v = g.i128_at(p);
                *s = s.wrapping_sub(v);
                *a -= v as f64;
            }
            None => {}
        }
        if let Some(v) = &mut self.var {
            v.remove(g.f64_at(p) / self.scale);
        }
        if let Some(d) = &mut self.distinct {
            d.remove(g, p);
        }
    }

    /// After the edges moved to `[lo, hi)`: drop deque entries that left, and rebuild float
    /// sums when enough updates happened since the last rebuild.
    fn settle(&mut self, ev: &GroupEvents, lo: usize, hi: usize) {
        for d in [&mut self.min, &mut self.max].into_iter().flatten() {
            while d.front().is_some_and(|&f| f < lo) {
                d.pop_front();
            }
        }
        if self.valid == 0
            && let Some(SumAcc::Exact(s, a)) = &mut self.sum
        {
            (*s, *a) = (0, 0.0);
        }
        let floaty = matches!(self.sum, Some(SumAcc::Float(_))) || self.var.is_some();
        if !floaty {
            return;
        }
        if self.valid == 0 {
            if let Some(SumAcc::Float(s)) = &mut self.sum {
                *s = FloatSum::default();
            }
            if let Some(v) = &mut self.var {
                *v = VarAcc::default();
            }
            self.ops = 0;
        } else if self.ops > 2 * self.valid as u64 + 64 {
            self.rebuild(ev, lo, hi);
        }
    }

    fn rebuild(&mut self, ev: &GroupEvents, lo: usize, hi: usize) {
        let g = &ev.cols[self.col];
        self.ops = 0;
        if let Some(SumAcc::Float(s)) = &mut self.sum {
            *s = FloatSum::default();
            for p in lo..hi {
                if g.valid(p) {
                    s.add(g.f64_at(p));
                }
            }
        }
        if let Some(v) = &mut self.var {
            // K = the window's mean (of finite values), so the shifted sums stay small.
            let (mut total, mut n) = (FloatSum::default(), 0u64);
            for p in lo..hi {
                let x = g.f64_at(p) / self.scale;
                if g.valid(p) && x.is_finite() {
                    total.add_finite(x);
                    n += 1;
                }
            }
            let mut fresh = VarAcc::default();
            if n > 0 {
                fresh.k = total.value() / n as f64;
                fresh.n = 0;
            }
            let k = fresh.k;
            for p in lo..hi {
                if g.valid(p) {
                    let x = g.f64_at(p) / self.scale;
                    if !x.is_finite() {
                        fresh.non_finite += 1;
                    } else {
                        fresh.n += 1;
                        let d = x - k;
                        fresh.s1.add_finite(d);
                        fresh.s2.add_finite(d * d);
                    }
                }
            }
            *v = fresh;
        }
    }
}

#[derive(Debug)]
struct WindowState {
    len: i64,
    lo: usize,
    cols: Vec<ColState>,
}

#[derive(Debug, Clone, Copy)]
struct SpecSlot {
    agg: WindowAgg,
    window: usize,
    /// Index into the window's `cols` (None for count(*)).
    state: Option<usize>,
    column: Option<usize>,
    decimal: bool,
}

/// The sliding state of every spec over one entity's events.
#[derive(Debug)]
pub(crate) struct Sweep {
    hi: usize,
    windows: Vec<WindowState>,
    /// Per input column: whether `last` reads it, and its last non-NULL position below `hi`.
    track_last: Vec<bool>,
    last_valid: Vec<Option<usize>>,
    slots: Vec<SpecSlot>,
}

impl Sweep {
    pub fn new(layout: &Layout) -> Self {
        let mut windows: Vec<WindowState> = layout
            .windows
            .iter()
            .map(|&len| WindowState {
                len,
                lo: 0,
                cols: Vec::new(),
            })
            .collect();
        let mut track_last = vec![false; layout.columns.len()];
        let mut slots = Vec::with_capacity(layout.specs.len());
        for spec in &layout.specs {
            let w = &mut windows[spec.window];
            let state = spec.column.map(|c| {
                let input = &layout.columns[c];
                let scale = match input.data_type {
                    DataType::Decimal128(_, s) => 10f64.powi(s as i32),
                    _ => 1.0,
                };
                let i = match w.cols.iter().position(|cs| cs.col == c) {
                    Some(i) => i,
                    None => {
                        w.cols.push(ColState {
                            col: c,
                            scale,
                            valid: 0,
                            sum: None,
                            var: None,
                            min: None,
                            max: None,
                            distinct: None,
                            ops: 0,
                        });
                        w.cols.len() - 1
                    }
                };
                let cs = &mut w.cols[i];
                match spec.agg {
                    WindowAgg::Sum | WindowAgg::Mean if cs.sum.is_none() => {
                        cs.sum = Some(if input.kind == ValueKind::F64 {
                            SumAcc::Float(FloatSum::default())
                        } else {
                            SumAcc::Exact(0, 0.0)
                        });
                    }
                    WindowAgg::Stddev if cs.var.is_none() => cs.var = Some(VarAcc::default()),
                    WindowAgg::Min if cs.min.is_none() => cs.min = Some(VecDeque::new()),
                    WindowAgg::Max if cs.max.is_none() => cs.max = Some(VecDeque::new()),
                    WindowAgg::CountDistinct if cs.distinct.is_none() => {
                        cs.distinct = Some(Distinct::new(input.kind))
                    }
                    WindowAgg::Last => track_last[c] = true,
                    _ => {}
                }
                i
            });
            slots.push(SpecSlot {
                agg: spec.agg,
                window: spec.window,
                state,
                column: spec.column,
                decimal: matches!(
                    spec.column.map(|c| &layout.columns[c].data_type),
                    Some(DataType::Decimal128(..))
                ),
            });
        }
        Self {
            hi: 0,
            last_valid: vec![None; layout.columns.len()],
            track_last,
            windows,
            slots,
        }
    }

    /// Starts a new entity.
    pub fn reset(&mut self) {
        self.hi = 0;
        for w in &mut self.windows {
            w.lo = 0;
            for cs in &mut w.cols {
                cs.reset();
            }
        }
        self.last_valid.iter_mut().for_each(|l| *l = None);
    }

    /// Moves the window to end at `t` (non-decreasing between calls for one entity).
    pub fn advance_to(&mut self, t: i64, ev: &GroupEvents) {
        let old_hi = self.hi;
        let mut hi = old_hi;
        while hi < ev.len() && ev.times[hi] <= t {
            hi += 1;
        }
        for (c, track) in self.track_last.iter().enumerate() {
            if *track && let Some(p) = (old_hi..hi).rev().find(|&p| ev.cols[c].valid(p)) {
                self.last_valid[c] = Some(p);
            }
        }
        for w in &mut self.windows {
            let mut lo = w.lo;
            if let Some(cut) = t.checked_sub(w.len) {
                while lo < hi && ev.times[lo] <= cut {
                    lo += 1;
                }
            }
            // Leaving: [w.lo, min(lo, old_hi)); entering: [max(lo, old_hi), hi). Events that
            // are already out of the window when the upper edge reaches them never enter.
            for cs in &mut w.cols {
                for p in w.lo..lo.min(old_hi) {
                    cs.remove(ev, p);
                }
                for p in lo.max(old_hi)..hi {
                    cs.add(ev, p);
                }
                cs.settle(ev, lo, hi);
            }
            w.lo = lo;
        }
        self.hi = hi;
    }

    /// Appends spec `i`'s current value to `out`, `k` times.
    pub fn read(&self, i: usize, ev: &GroupEvents, out: &mut OutputColumn, k: usize) -> Result<()> {
        let slot = self.slots[i];
        let w = &self.windows[slot.window];
        let cs = slot.state.map(|s| &w.cols[s]);
        match (slot.agg, cs) {
            (WindowAgg::CountStar, _) => out.push_i64(Some((self.hi - w.lo) as i64), k),
            (WindowAgg::Count, Some(cs)) => out.push_i64(Some(cs.valid), k),
            (WindowAgg::CountDistinct, Some(cs)) => {
                let n = cs.distinct.as_ref().map_or(0, Distinct::len);
                out.push_i64(Some(n as i64), k)
            }
            (WindowAgg::Sum, Some(cs)) => match (&cs.sum, cs.valid) {
                (_, 0) | (None, _) => out.push_null(k),
                (Some(SumAcc::Float(s)), _) => out.push_f64(Some(s.value()), k),
                (Some(SumAcc::Exact(s, a)), _) if slot.decimal => {
                    if a.abs() >= 1.5e38 || s.unsigned_abs() >= 10u128.pow(38) {
                        return exec_err!(
                            "window sum overflows Decimal128(38) (the window's values add up to more than 38 digits)"
                        );
                    }
                    out.push_i128(Some(*s), k)
                }
                (Some(SumAcc::Exact(s, _)), _) => match i64::try_from(*s) {
                    Ok(v) => out.push_i64(Some(v), k),
                    Err(_) => {
                        return exec_err!(
                            "window sum overflows Int64 (the sum of the window's values is {s})"
                        );
                    }
                },
            },
            (WindowAgg::Mean, Some(cs)) => match (&cs.sum, cs.valid) {
                (_, 0) | (None, _) => out.push_null(k),
                (Some(SumAcc::Float(s)), n) => out.push_f64(Some(s.value() / n as f64), k),
                (Some(SumAcc::Exact(s, _)), n) => {
                    out.push_f64(Some(*s as f64 / cs.scale / n as f64), k)
                }
            },
            (WindowAgg::Stddev, Some(cs)) => {
                out.push_f64(cs.var.as_ref().and_then(VarAcc::stddev), k)
            }
            (WindowAgg::Min, Some(cs)) => match cs.min.as_ref().and_then(|d| d.front()) {
                Some(&p) => out.push_value(&ev.cols[cs.col], p, k),
                None => out.push_null(k),
            },
            (WindowAgg::Max, Some(cs)) => match cs.max.as_ref().and_then(|d| d.front()) {
                Some(&p) => out.push_value(&ev.cols[cs.col], p, k),
                None => out.push_null(k),
            },
            (WindowAgg::Last, _) => {
                let c = slot.column.unwrap_or(0);
                match self.last_valid.get(c).copied().flatten() {
                    Some(p) if p >= w.lo => out.push_value(&ev.cols[c], p, k),
                    _ => out.push_null(k),
                }
            }
            (_, None) => out.push_null(k),
        }
        Ok(())
    }

    pub fn size(&self) -> usize {
        let mut n = 0;
        for w in &self.windows {
            for cs in &w.cols {
                n += cs.min.as_ref().map_or(0, |d| d.capacity() * 8);
                n += cs.max.as_ref().map_or(0, |d| d.capacity() * 8);
                n += match &cs.distinct {
                    Some(Distinct::Bits(m)) => m.capacity() * 16,
                    Some(Distinct::Wide(m)) => m.capacity() * 24,
                    Some(Distinct::Bytes(m)) => m.capacity() * 40,
                    None => 0,
                };
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::spec::{InputColumn, ResolvedSpec};
    use crate::window::values::{Gathered, OutputColumn};
    use arrow_schema::Field;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Float64Type, Int64Type};
    use std::sync::Arc;

    fn layout(windows: &[i64], kind: ValueKind, dt: DataType) -> Layout {
        let columns = vec![InputColumn {
            index: 0,
            data_type: dt.clone(),
            kind,
        }];
        let mut specs = Vec::new();
        for (w, _) in windows.iter().enumerate() {
            for agg in WindowAgg::ALL {
                specs.push(ResolvedSpec {
                    agg,
                    column: (agg != WindowAgg::CountStar).then_some(0),
                    window: w,
                    field: Arc::new(Field::new(format!("{agg:?}{w}"), DataType::Null, true)),
                });
            }
        }
        Layout {
            columns,
            windows: windows.to_vec(),
            specs,
        }
    }

    /// Brute force: the aggregates over events with time in (t - w, t].
    fn brute(times: &[i64], vals: &[Option<f64>], t: i64, w: i64, agg: WindowAgg) -> Option<f64> {
        let idx: Vec<usize> = (0..times.len())
            .filter(|&i| times[i] <= t && times[i] > t - w)
            .collect();
        let xs: Vec<f64> = idx.iter().filter_map(|&i| vals[i]).collect();
        let n = xs.len() as f64;
        match agg {
            WindowAgg::CountStar => Some(idx.len() as f64),
            WindowAgg::Count => Some(n),
            WindowAgg::Sum => (!xs.is_empty()).then(|| xs.iter().sum()),
            WindowAgg::Mean => (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / n),
            WindowAgg::Min => xs.iter().copied().reduce(f64::min),
            WindowAgg::Max => xs.iter().copied().reduce(f64::max),
            WindowAgg::Stddev => (xs.len() >= 2).then(|| {
                let m = xs.iter().sum::<f64>() / n;
                (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt()
            }),
            WindowAgg::CountDistinct => {
                let mut s: Vec<u64> = xs.iter().map(|x| x.to_bits()).collect();
                s.sort();
                s.dedup();
                Some(s.len() as f64)
            }
            WindowAgg::Last => idx.iter().rev().find_map(|&i| vals[i]),
        }
    }

    fn events(times: &[i64], vals: &[Option<f64>]) -> GroupEvents {
        let mut ev = GroupEvents::new(std::iter::once(ValueKind::F64));
        ev.times = times.to_vec();
        ev.cols[0] = Gathered::F64 {
            v: vals.iter().map(|v| v.unwrap_or(0.0)).collect(),
            valid: vals.iter().map(Option::is_some).collect(),
        };
        ev
    }

    fn read_f64(sweep: &Sweep, i: usize, ev: &GroupEvents, agg: WindowAgg) -> Option<f64> {
        let kind = output_kind(agg, Some(ValueKind::F64), Some(&DataType::Float64));
        let mut out = OutputColumn::new(kind, None, None).unwrap();
        sweep.read(i, ev, &mut out, 1).unwrap();
        let dt = if kind == OutputKind::I64 {
            DataType::Int64
        } else {
            DataType::Float64
        };
        let a = out.finish(&dt).unwrap();
        if a.is_null(0) {
            None
        } else if kind == OutputKind::I64 {
            Some(a.as_primitive::<Int64Type>().value(0) as f64)
        } else {
            Some(a.as_primitive::<Float64Type>().value(0))
        }
    }

    fn close(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-300)
            }
            _ => false,
        }
    }

    /// A small deterministic pseudo-random sequence (no dev-dependency needed here).
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn sliding_state_matches_brute_force_at_every_query_time() {
        let mut seed = 7u64;
        for case in 0..300 {
            let n = (lcg(&mut seed) % 40) as usize;
            let mut times: Vec<i64> = (0..n).map(|_| (lcg(&mut seed) % 50) as i64).collect();
            times.sort();
            let vals: Vec<Option<f64>> = (0..n)
                .map(|_| {
                    let r = lcg(&mut seed);
                    (!r.is_multiple_of(5)).then(|| ((r % 2001) as f64 - 1000.0) / 8.0)
                })
                .collect();
            let windows = [
                1 + (lcg(&mut seed) % 10) as i64,
                1 + (lcg(&mut seed) % 60) as i64,
            ];
            let layout = layout(&windows, ValueKind::F64, DataType::Float64);
            let ev = events(&times, &vals);
            let mut sweep = Sweep::new(&layout);
            let mut qs: Vec<i64> = (0..10).map(|_| (lcg(&mut seed) % 70) as i64 - 5).collect();
            qs.extend(times.iter().copied());
            qs.sort();
            for &t in &qs {
                sweep.advance_to(t, &ev);
                for (i, spec) in layout.specs.iter().enumerate() {
                    let w = layout.windows[spec.window];
                    let got = read_f64(&sweep, i, &ev, spec.agg);
                    let want = brute(&times, &vals, t, w, spec.agg);
                    assert!(
                        close(got, want),
                        "case {case}: {:?} w={w} t={t}: got {got:?}, want {want:?}\ntimes={times:?}\nvals={vals:?}",
                        spec.agg
                    );
                }
            }
        }
    }

    #[test]
    fn float_sums_survive_huge_values_leaving_the_window() {
        let times: Vec<i64> = (0..1000).collect();
        let vals: Vec<Option<f64>> = (0..1000)
            .map(|i| Some(if i % 100 == 0 { 1e20 } else { 0.1 }))
            .collect();
        let layout = layout(&[3], ValueKind::F64, DataType::Float64);
        let ev = events(&times, &vals);
        let mut sweep = Sweep::new(&layout);
        for &t in &times {
            sweep.advance_to(t, &ev);
            let sum_i = layout
                .specs
                .iter()
                .position(|s| s.agg == WindowAgg::Sum)
                .unwrap();
            let sd_i = layout
                .specs
                .iter()
                .position(|s| s.agg == WindowAgg::Stddev)
                .unwrap();
            let got = read_f64(&sweep, sum_i, &ev, WindowAgg::Sum).unwrap();
            let want: f64 = brute(&times, &vals, t, 3, WindowAgg::Sum).unwrap();
            let exact: f64 = (t.saturating_sub(2)..=t)
                .map(|i| if i % 100 == 0 { 1e20 } else { 0.1 })
                .sum();
            assert!(
                close(Some(got), Some(exact)) || close(Some(got), Some(want)),
                "t={t}: {got} vs {exact}"
            );
            let sd = read_f64(&sweep, sd_i, &ev, WindowAgg::Stddev);
            let want_sd = brute(&times, &vals, t, 3, WindowAgg::Stddev);
            if t % 100 > 2 {
                let (a, b) = (sd.unwrap(), want_sd.unwrap());
                assert!((a - b).abs() <= 1e-9, "t={t}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn stddev_of_large_values_with_small_spread_is_accurate() {
        let times: Vec<i64> = (0..500).collect();
        let vals: Vec<Option<f64>> = (0..500)
            .map(|i| Some(1e9 + (i % 7) as f64 * 1e-3))
            .collect();
        let layout = layout(&[50], ValueKind::F64, DataType::Float64);
        let ev = events(&times, &vals);
        let mut sweep = Sweep::new(&layout);
        let sd_i = layout
            .specs
            .iter()
            .position(|s| s.agg == WindowAgg::Stddev)
            .unwrap();
        for &t in &times {
            sweep.advance_to(t, &ev);
            let got = read_f64(&sweep, sd_i, &ev, WindowAgg::Stddev);
            let want = brute(&times, &vals, t, 50, WindowAgg::Stddev);
            match (got, want) {
                (Some(g), Some(w)) => {
                    assert!((g - w).abs() <= 1e-6 * w.max(1e-3), "t={t}: {g} vs {w}")
                }
                (g, w) => assert_eq!(g, w),
            }
        }
    }

    #[test]
    fn non_finite_values_enter_and_leave() {
        let times = vec![0, 1, 2, 3];
        let vals = vec![Some(1.0), Some(f64::INFINITY), Some(f64::NAN), Some(2.0)];
        let layout = layout(&[2], ValueKind::F64, DataType::Float64);
        let ev = events(&times, &vals);
        let mut sweep = Sweep::new(&layout);
        let sum_i = layout
            .specs
            .iter()
            .position(|s| s.agg == WindowAgg::Sum)
            .unwrap();
        let max_i = layout
            .specs
            .iter()
            .position(|s| s.agg == WindowAgg::Max)
            .unwrap();
        sweep.advance_to(1, &ev);
        assert_eq!(
            read_f64(&sweep, sum_i, &ev, WindowAgg::Sum),
            Some(f64::INFINITY)
        );
        sweep.advance_to(2, &ev);
        assert!(
            read_f64(&sweep, sum_i, &ev, WindowAgg::Sum)
                .unwrap()
                .is_nan()
        );
        assert!(
            read_f64(&sweep, max_i, &ev, WindowAgg::Max)
                .unwrap()
                .is_nan()
        );
        sweep.advance_to(4, &ev);
        assert_eq!(read_f64(&sweep, sum_i, &ev, WindowAgg::Sum), Some(2.0));
        assert_eq!(read_f64(&sweep, max_i, &ev, WindowAgg::Max), Some(2.0));
    }

    #[test]
    fn integer_sums_are_exact_and_overflow_is_an_error() {
        let mut ev = GroupEvents::new(std::iter::once(ValueKind::I64));
        ev.times = vec![0, 1];
        ev.cols[0] = Gathered::I64 {
            v: vec![i64::MAX, 1],
            valid: vec![true, true],
        };
        let layout = layout(&[10], ValueKind::I64, DataType::Int64);
        let mut sweep = Sweep::new(&layout);
        let sum_i = layout
            .specs
            .iter()
            .position(|s| s.agg == WindowAgg::Sum)
            .unwrap();
        sweep.advance_to(0, &ev);
        let mut out = OutputColumn::new(OutputKind::I64, None, None).unwrap();
        sweep.read(sum_i, &ev, &mut out, 1).unwrap();
        sweep.advance_to(1, &ev);
        let err = sweep.read(sum_i, &ev, &mut out, 1).unwrap_err().to_string();
        assert!(err.contains("overflows Int64"), "{err}");
    }
}
