//! One partition's events, buffered: every input batch normalised on arrival
//! ([`EventBatch`]), entities numbered by DataFusion's `GroupValues` hash table ([`KeyGroups`]),
//! then a counting sort by entity ([`EventTable::group_order`]) and, per entity, a sort by
//! time that is skipped when the events already arrive in time order
//! ([`EventTable::gather`]). This replaces a full sort of the partition by (key, time): it
//! moves 8 bytes per row instead of the rows, and keys are hashed once.
//!
//! Everything held here is accounted to the query's memory pool; when a partition does not
//! fit, the query fails with "resources exhausted" naming the operator.

use std::sync::Arc;

use arrow_schema::{Field, Schema};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::arrow::row::RowConverter;
use datafusion::common::{DataFusionError, exec_err};
use datafusion::error::Result;
use datafusion::execution::memory_pool::MemoryReservation;
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use super::spec::Layout;
use super::values::{GroupEvents, ValueArray, normalize_time};

/// Group id of rows that belong to no entity (a NULL key or a NULL time).
pub(crate) const NO_GROUP: u32 = u32::MAX;

/// Packs (batch, row) into one u64.
#[inline]
pub(crate) fn pack(b: usize, r: usize) -> u64 {
    ((b as u64) << 32) | r as u64
}

#[inline]
pub(crate) fn unpack(x: u64) -> (usize, usize) {
    ((x >> 32) as usize, (x & 0xFFFF_FFFF) as usize)
}

/// Grows `reservation` by `bytes`, or fails with a message saying what did not fit.
pub(crate) fn reserve(
    reservation: &MemoryReservation,
    bytes: usize,
    what: &str,
    rows: usize,
) -> Result<()> {
    reservation.try_grow(bytes).map_err(|e| {
        DataFusionError::ResourcesExhausted(format!(
            "{what}: a partition's events do not fit in memory ({rows} rows buffered so far, {} bytes held): {}. Raise the memory limit or use more partitions (target_partitions)",
            reservation.size(),
            e.strip_backtrace()
        ))
    })
}

/// Numbers entities: equal keys get equal dense ids; rows with any NULL key get [`NO_GROUP`].
pub(crate) struct KeyGroups {
    values: Box<dyn GroupValues>,
    scratch: Vec<usize>,
}

impl KeyGroups {
    pub fn new(fields: Vec<Field>) -> Result<Self> {
        let schema = Arc::new(Schema::new(fields));
        Ok(Self {
            values: new_group_values(schema, &GroupOrdering::None)?,
            scratch: Vec::new(),
        })
    }

    pub fn intern(&mut self, keys: &[ArrayRef], out: &mut Vec<u32>) -> Result<()> {
        self.scratch.clear();
        self.values.intern(keys, &mut self.scratch)?;
        if self.values.len() >= NO_GROUP as usize {
            return exec_err!(
                "window: more than {} entities in one partition",
                NO_GROUP - 1
            );
        }
        out.clear();
        out.extend(self.scratch.iter().map(|&g| g as u32));
        let mut nulls: Option<NullBuffer> = None;
        for k in keys {
            nulls = NullBuffer::union(nulls.as_ref(), k.logical_nulls().as_ref());
        }
        if let Some(n) = nulls {
            for i in (0..n.len()).filter(|&i| n.is_null(i)) {
                out[i] = NO_GROUP;
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn size(&self) -> usize {
        self.values.size() + self.scratch.capacity() * 8
    }
}

/// One input batch, normalised.
#[derive(Debug)]
pub(crate) struct EventBatch {
    pub time: ScalarBuffer<i64>,
    pub values: Vec<ValueArray>,
    /// The tie-break position of each row (see `sequence.rs`), when `last` needs one.
    pub seq: Option<ScalarBuffer<u64>>,
    pub gids: Vec<u32>,
}

impl EventBatch {
    /// Normalises `batch`: time column `time` (× `factor`), the layout's value columns, the
    /// optional tie-break column `seq`; `gids` are the rows' entities.
    pub fn try_new(
        batch: &RecordBatch,
        layout: &Layout,
        converters: &[Option<Arc<RowConverter>>],
        time: usize,
        factor: i64,
        seq: Option<usize>,
        gids: Vec<u32>,
    ) -> Result<Self> {
        let values: Vec<ArrayRef> = layout
            .columns
            .iter()
            .map(|c| Arc::clone(batch.column(c.index)))
            .collect();
        Self::from_columns(
            batch.column(time),
            factor,
            &values,
            layout,
            converters,
            seq.map(|i| batch.column(i)),
            gids,
        )
    }

    /// Like [`EventBatch::try_new`], from the columns themselves (`values` in layout order).
    pub fn from_columns(
        time: &ArrayRef,
        factor: i64,
        values: &[ArrayRef],
        layout: &Layout,
        converters: &[Option<Arc<RowConverter>>],
        seq: Option<&ArrayRef>,
        mut gids: Vec<u32>,
    ) -> Result<Self> {
        let (time, time_nulls) = normalize_time(time, factor)?;
        if let Some(n) = time_nulls {
            for i in (0..n.len()).filter(|&i| n.is_null(i)) {
                gids[i] = NO_GROUP;
            }
        }
        let values = layout
            .columns
            .iter()
            .zip(values)
            .zip(converters)
            .map(|((c, a), conv)| ValueArray::try_new(a, c.kind, conv.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        let seq = seq.map(|a| a.as_primitive::<UInt64Type>().values().clone());
        Ok(Self {
            time,
            values,
            seq,
            gids,
        })
    }

    /// Memory beyond the source batch: ids and converted values.
    pub fn extra_size(&self) -> usize {
        self.gids.capacity() * 4
            + self
                .values
                .iter()
                .map(ValueArray::extra_size)
                .sum::<usize>()
    }
}

/// A partition's buffered events.
#[derive(Debug, Default)]
pub(crate) struct EventTable {
    pub batches: Vec<EventBatch>,
    pub rows: usize,
}

/// Rows ordered by entity: `order[starts[g]..starts[g + 1]]` are entity `g`'s rows (packed
/// (batch, row)), in arrival order; `orphans` are the rows of no entity.
pub(crate) struct GroupOrder {
    pub order: Vec<u64>,
    pub starts: Vec<usize>,
    pub orphans: Vec<u64>,
}

impl GroupOrder {
    pub fn groups(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    pub fn group(&self, g: usize) -> &[u64] {
        &self.order[self.starts[g]..self.starts[g + 1]]
    }
}

impl EventTable {
    pub fn push(&mut self, batch: EventBatch) {
        self.rows += batch.gids.len();
        self.batches.push(batch);
    }

    /// Counting sort of every row by entity (stable: arrival order within an entity). Frees
    /// the per-row ids.
    pub fn group_order(&mut self, groups: usize) -> GroupOrder {
        let order = counting_sort(self.batches.iter().map(|b| b.gids.as_slice()), groups);
        for b in &mut self.batches {
            b.gids = Vec::new();
        }
        order
    }

    /// Gathers one entity's rows into `ev` in time order (ties: by the tie-break column when
    /// there is one, else by arrival), and their packed positions into `refs`.
    pub fn gather(
        &self,
        rows: &[u64],
        ev: &mut GroupEvents,
        refs: &mut Vec<u64>,
        keyed: &mut Vec<(i64, u64, u64)>,
    ) {
        ev.clear();
        refs.clear();
        keyed.clear();
        keyed.extend(rows.iter().map(|&x| {
            let (b, r) = unpack(x);
            let batch = &self.batches[b];
            let tie = batch.seq.as_ref().map_or(x, |s| s[r]);
            (batch.time[r], tie, x)
        }));
        if !keyed.is_sorted_by(|a, b| (a.0, a.1) <= (b.0, b.1)) {
            keyed.sort_unstable_by_key(|&(t, tie, _)| (t, tie));
        }
        for &(t, _, x) in keyed.iter() {
            let (b, r) = unpack(x);
            let batch = &self.batches[b];
            ev.times.push(t);
            for (c, g) in ev.cols.iter_mut().enumerate() {
                g.push(&batch.values[c], r);
            }
            refs.push(x);
        }
    }
}

/// Orders the rows of `batches` (given by their entity ids) by entity, stably.
pub(crate) fn counting_sort<'a>(
    batches: impl Iterator<Item = &'a [u32]> + Clone,
    groups: usize,
) -> GroupOrder {
    let mut counts = vec![0usize; groups + 1];
    let mut orphans = Vec::new();
    let mut rows = 0;
    for (b, gids) in batches.clone().enumerate() {
        rows += gids.len();
        for (r, &g) in gids.iter().enumerate() {
            if g == NO_GROUP || g as usize >= groups {
                orphans.push(pack(b, r));
            } else {
                counts[g as usize + 1] += 1;
            }
        }
    }
    for g in 1..counts.len() {
        counts[g] += counts[g - 1];
    }
    let starts = counts.clone();
    let mut next = counts;
    let mut order = vec![0u64; rows - orphans.len()];
    for (b, gids) in batches.enumerate() {
        for (r, &g) in gids.iter().enumerate() {
            if g != NO_GROUP && (g as usize) < groups {
                let slot = &mut next[g as usize];
                order[*slot] = pack(b, r);
                *slot += 1;
            }
        }
    }
    GroupOrder {
        order,
        starts,
        orphans,
    }
}
