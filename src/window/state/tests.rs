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
        (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-300),
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
