//! Property tests: the AS-OF join on random small inputs equals a brute-force reference, for
//! every operator, with and without a look-back bound and CREATED, inner and left, with the
//! inputs split into random partitions and batches, and time units mixed.
//!
//! The reference, per left row: the right rows with equal non-NULL key and non-NULL time on the
//! allowed side; the nearest time; among rows at that time the greatest (CREATED, NULL lowest,
//! when named; then the values of the right columns the query reads — here k, t, [c,] v, so the
//! unique `v` decides); dropped when farther than the look-back bound.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray, TimestampSecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::MemTable;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct LeftRow {
    k: Option<i64>,
    t: Option<i64>,
}

#[derive(Debug, Clone)]
struct RightRow {
    k: Option<i64>,
    t: Option<i64>,
    c: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    GtEq,
    Gt,
    LtEq,
    Lt,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::GtEq => ">=",
            Op::Gt => ">",
            Op::LtEq => "<=",
            Op::Lt => "<",
        }
    }
    fn backward(self) -> bool {
        matches!(self, Op::GtEq | Op::Gt)
    }
    fn holds(self, l: i64, r: i64) -> bool {
        match self {
            Op::GtEq => l >= r,
            Op::Gt => l > r,
            Op::LtEq => l <= r,
            Op::Lt => l < r,
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    left: Vec<LeftRow>,
    right: Vec<RightRow>,
    op: Op,
    /// (bound, inclusive)
    lookback: Option<(i64, bool)>,
    created: bool,
    inner: bool,
    /// Left times in seconds, right times in milliseconds (right t is t * 1000 + jitter).
    units: bool,
    partitions: usize,
    left_chunks: usize,
    right_chunks: usize,
}

fn opt(range: std::ops::Range<i64>) -> impl Strategy<Value = Option<i64>> {
    prop_oneof![1 => Just(None), 6 => range.prop_map(Some)]
}

fn case(op: Op) -> impl Strategy<Value = Case> {
    let left = prop::collection::vec(
        (opt(0..4), opt(0..20)).prop_map(|(k, t)| LeftRow { k, t }),
        0..25,
    );
    let right = prop::collection::vec(
        (opt(0..4), opt(0..20), opt(0..4)).prop_map(|(k, t, c)| RightRow { k, t, c }),
        0..40,
    );
    (
        left,
        right,
        prop::option::of((0i64..8, any::<bool>())),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        1usize..5,
        1usize..4,
        1usize..5,
    )
        .prop_map(
            move |(left, right, lookback, created, inner, units, partitions, lc, rc)| Case {
                left,
                right,
                op,
                lookback,
                created,
                inner,
                units,
                partitions,
                left_chunks: lc,
                right_chunks: rc,
            },
        )
}

/// Right time in the common unit (milliseconds when `units`).
fn right_time(case: &Case, i: usize) -> Option<i64> {
    case.right[i].t.map(|t| {
        if case.units {
            // Jitter keeps ties possible (0) and makes units matter (±1 ms).
            t * 1000 + [0, 0, 1, -1][i % 4]
        } else {
            t
        }
    })
}

fn left_time(case: &Case, i: usize) -> Option<i64> {
    case.left[i]
        .t
        .map(|t| if case.units { t * 1000 } else { t })
}

/// (left id, matched right v) per output row, sorted.
fn reference(case: &Case) -> Vec<(i64, Option<i64>)> {
    let scale = if case.units { 1000 } else { 1 };
    let mut out = Vec::new();
    for (li, l) in case.left.iter().enumerate() {
        let found = match (l.k, left_time(case, li)) {
            (Some(lk), Some(lt)) => {
                let candidates: Vec<(usize, i64)> = case
                    .right
                    .iter()
                    .enumerate()
                    .filter_map(|(ri, r)| {
                        let rt = right_time(case, ri)?;
                        (r.k == Some(lk) && case.op.holds(lt, rt)).then_some((ri, rt))
                    })
                    .collect();
                let nearest = if case.op.backward() {
                    candidates.iter().map(|c| c.1).max()
                } else {
                    candidates.iter().map(|c| c.1).min()
                };
                nearest
                    .and_then(|nt| {
                        candidates
                            .iter()
                            .filter(|c| c.1 == nt)
                            // The query reads k, t, v (and c with CREATED): the row values
                            // that break ties are CREATED (when named), then v.
                            .max_by_key(|c| {
                                (
                                    if case.created {
                                        case.right[c.0].c
                                    } else {
                                        None
                                    },
                                    c.0 as i64,
                                )
                            })
                            .copied()
                    })
                    .filter(|&(_, rt)| match case.lookback {
                        None => true,
                        Some((b, inclusive)) => {
                            let diff = if case.op.backward() { lt - rt } else { rt - lt };
                            if inclusive {
                                diff <= b * scale
                            } else {
                                diff < b * scale
                            }
                        }
                    })
                    .map(|(ri, _)| ri as i64)
            }
            _ => None,
        };
        if found.is_some() || !case.inner {
            out.push((li as i64, found));
        }
    }
    out.sort();
    out
}

fn chunks(batch: &RecordBatch, n: usize) -> Vec<RecordBatch> {
    let rows = batch.num_rows();
    let size = rows.div_ceil(n.max(1)).max(1);
    (0..rows)
        .step_by(size)
        .map(|o| batch.slice(o, size.min(rows - o)))
        .collect()
}

/// Spreads batches over `partitions` partitions of a MemTable.
fn table(schema: SchemaRef, batch: RecordBatch, n_chunks: usize, partitions: usize) -> MemTable {
    let mut parts: Vec<Vec<RecordBatch>> = vec![vec![]; partitions];
    for (i, b) in chunks(&batch, n_chunks).into_iter().enumerate() {
        parts[i % partitions].push(b);
    }
    MemTable::try_new(schema, parts).unwrap()
}

fn run(case: &Case) -> Vec<(i64, Option<i64>)> {
    let (lt_type, rt_type) = if case.units {
        (
            DataType::Timestamp(TimeUnit::Second, None),
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        )
    } else {
        (DataType::Int64, DataType::Int64)
    };
    let ls = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k", DataType::Int64, true),
        Field::new("t", lt_type, true),
    ]));
    let rs = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("t", rt_type, true),
        Field::new("c", DataType::Int64, true),
        Field::new("v", DataType::Int64, false),
    ]));
    let lt: Vec<Option<i64>> = case.left.iter().map(|r| r.t).collect();
    let rt: Vec<Option<i64>> = (0..case.right.len()).map(|i| right_time(case, i)).collect();
    let lt_array: Arc<dyn Array> = if case.units {
        Arc::new(TimestampSecondArray::from(lt))
    } else {
        Arc::new(Int64Array::from(lt))
    };
    let rt_array: Arc<dyn Array> = if case.units {
        Arc::new(TimestampMillisecondArray::from(rt).with_timezone("UTC"))
    } else {
        Arc::new(Int64Array::from(rt))
    };
    let left = RecordBatch::try_new(
        Arc::clone(&ls),
        vec![
            Arc::new(Int64Array::from_iter_values(0..case.left.len() as i64)),
            Arc::new(Int64Array::from(
                case.left.iter().map(|r| r.k).collect::<Vec<_>>(),
            )),
            lt_array,
        ],
    )
    .unwrap();
    let right = RecordBatch::try_new(
        Arc::clone(&rs),
        vec![
            Arc::new(Int64Array::from(
                case.right.iter().map(|r| r.k).collect::<Vec<_>>(),
            )),
            rt_array,
            Arc::new(Int64Array::from(
                case.right.iter().map(|r| r.c).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from_iter_values(0..case.right.len() as i64)),
        ],
    )
    .unwrap();

    let config = SessionConfig::new()
        .with_target_partitions(case.partitions)
        .with_batch_size(7);
    let state = fstore::asof::register(
        SessionStateBuilder::new()
            .with_config(config)
            .with_default_features(),
    )
    .unwrap()
    .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.register_table(
        "l",
        Arc::new(table(ls, left, case.left_chunks, case.partitions)),
    )
    .unwrap();
    ctx.register_table(
        "r",
        Arc::new(table(rs, right, case.right_chunks, case.partitions)),
    )
    .unwrap();

    let op = case.op.sql();
    let created = if case.created {
        " AND CREATED(r.c)"
    } else {
        ""
    };
    let lookback = match case.lookback {
        None => String::new(),
        Some((b, inclusive)) => {
            let diff = if case.op.backward() {
                "l.t - r.t"
            } else {
                "r.t - l.t"
            };
            let cmp = if inclusive { "<=" } else { "<" };
            let bound = if case.units {
                format!("INTERVAL '{b} seconds'")
            } else {
                b.to_string()
            };
            format!(" AND {diff} {cmp} {bound}")
        }
    };
    let sql = if case.inner {
        format!(
            "SELECT l.id, r.v FROM l ASOF JOIN r ON l.k = r.k AND l.t {op} r.t{created}{lookback}"
        )
    } else {
        format!(
            "SELECT l.id, r.v FROM l ASOF JOIN r MATCH_CONDITION (l.t {op} r.t{created}) ON l.k = r.k{lookback}"
        )
    };
    let statements = fstore::sql::asof::parse_sql(&sql).unwrap();
    let fstore::sql::FStoreStatement::DataFusion(stmt) = &statements[0].statement else {
        panic!("not a DataFusion statement")
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let batches = rt.block_on(async {
        let plan = ctx
            .state()
            .statement_to_plan((**stmt).clone())
            .await
            .unwrap();
        ctx.execute_logical_plan(plan)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap()
    });
    let mut out = Vec::new();
    for b in &batches {
        let id = b.column(0).as_primitive::<Int64Type>();
        let v = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((id.value(i), v.is_valid(i).then(|| v.value(i))));
        }
    }
    out.sort();
    out
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn at_or_before_matches_the_reference(case in case(Op::GtEq)) {
        prop_assert_eq!(run(&case), reference(&case), "{:?}", case);
    }

    #[test]
    fn strictly_before_matches_the_reference(case in case(Op::Gt)) {
        prop_assert_eq!(run(&case), reference(&case), "{:?}", case);
    }

    #[test]
    fn at_or_after_matches_the_reference(case in case(Op::LtEq)) {
        prop_assert_eq!(run(&case), reference(&case), "{:?}", case);
    }

    #[test]
    fn strictly_after_matches_the_reference(case in case(Op::Lt)) {
        prop_assert_eq!(run(&case), reference(&case), "{:?}", case);
    }

    /// Point in time: for `>=`, no matched right row is later than its left row, and no right
    /// row closer in time was passed over.
    #[test]
    fn no_match_leaks_the_future(case in case(Op::GtEq)) {
        let out = run(&case);
        for (li, v) in out {
            if let Some(ri) = v {
                let lt = left_time(&case, li as usize).unwrap();
                let rt = right_time(&case, ri as usize).unwrap();
                prop_assert!(rt <= lt, "right time {} after left time {}", rt, lt);
                let lk = case.left[li as usize].k;
                let closer = (0..case.right.len()).any(|j| {
                    case.right[j].k == lk && right_time(&case, j).is_some_and(|t| t > rt && t <= lt)
                });
                prop_assert!(!closer);
            }
        }
    }
}
