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
mod tests;
