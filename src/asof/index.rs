//! The right side of one partition of an AS-OF join, indexed for lookups by key and time.
//!
//! Build: every right batch is kept as it arrived (the output takes its columns from there);
//! each row with non-NULL keys and time gets its key's group number ([`KeyGroups`]) and an
//! entry `(time, row number)`. [`IndexBuilder::finish`] then groups the
//! entries by key with a counting sort, sorts each group by time, and collapses rows with equal
//! time into the one that can match (greatest CREATED, then greatest row value; see the
//! module documentation of `asof`).
//!
//! Probe: a left row's key bytes find its group; a binary search on the group's times finds the
//! nearest time on the allowed side; the look-back bound may reject it. Probing never
//! allocates per row and never looks at other groups, so a skewed key costs only its own
//! `log n`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, new_null_array};
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::error::Result;

use super::AsOfOp;
use super::keys::KeyGroups;
use crate::error::FStoreError;

/// One right row that can match: its time in the common unit and its row number in the
/// partition (across batches).
#[derive(Debug, Clone, Copy)]
struct Entry {
    time: i64,
    row: u32,
}

/// Collects one partition's right side.
pub struct IndexBuilder {
    groups: KeyGroups,
    group_of: Vec<u32>,
    entries: Vec<Entry>,
    /// CREATED per row number (NULL as `i64::MIN`), when the join has one.
    created: Option<Vec<i64>>,
    batches: Vec<RecordBatch>,
    rows: usize,
}

impl IndexBuilder {
    pub fn new(groups: KeyGroups, with_created: bool) -> Self {
        Self {
            groups,
            group_of: Vec::new(),
            entries: Vec::new(),
            created: with_created.then(Vec::new),
            batches: Vec::new(),
            rows: 0,
        }
    }

    /// Bytes held beyond the batches themselves (for memory accounting).
    pub fn overhead_bytes(&self) -> usize {
        self.group_of.capacity() * 4
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.created.as_ref().map_or(0, |c| c.capacity() * 8)
            + self.groups.memory_bytes()
    }

    /// Adds one right batch with its evaluated keys, normalized time and CREATED.
    pub fn push(
        &mut self,
        batch: RecordBatch,
        keys: &[ArrayRef],
        time: &Int64Array,
        created: Option<&Int64Array>,
    ) -> Result<()> {
        let n = batch.num_rows();
        if self.rows + n > u32::MAX as usize {
            return Err(FStoreError::new(
                crate::error::ErrorKind::ResourceExhausted,
                "ASOF JOIN: more than 4 billion right rows in one partition; raise target_partitions",
            )
            .into());
        }
        let base = self.rows as u32;
        let groups = self.groups.assign(keys, n)?;
        for (i, g) in groups.into_iter().enumerate() {
            if let Some(g) = g.filter(|_| time.is_valid(i)) {
                self.group_of.push(g);
                self.entries.push(Entry {
                    time: time.value(i),
                    row: base + i as u32,
                });
            }
        }
        if let (Some(all), Some(c)) = (&mut self.created, created) {
            all.extend((0..n).map(|i| if c.is_valid(i) { c.value(i) } else { i64::MIN }));
        }
        self.rows += n;
        self.batches.push(batch);
        Ok(())
    }

    /// Groups, sorts and resolves ties; `schema` is the right side's.
    pub fn finish(self, schema: &SchemaRef) -> Result<RightIndex> {
        let IndexBuilder {
            groups,
            group_of,
            entries,
            created,
            batches,
            rows: _,
        } = self;
        let n_groups = groups.len();
        // Counting sort by group.
        let mut starts = vec![0u32; n_groups + 1];
        for &g in &group_of {
            starts[g as usize + 1] += 1;
        }
        for g in 0..n_groups {
            starts[g + 1] += starts[g];
        }
        let mut next: Vec<u32> = starts[..n_groups].to_vec();
        let mut sorted = vec![Entry { time: 0, row: 0 }; entries.len()];
        for (e, &g) in entries.iter().zip(&group_of) {
            let slot = &mut next[g as usize];
            sorted[*slot as usize] = *e;
            *slot += 1;
        }
        drop(entries);
        drop(group_of);
        drop(next);

        // Sort each group by time and keep one entry per distinct time.
        let mut ties = Ties::default();
        let mut write = 0usize;
        let mut group_starts = Vec::with_capacity(n_groups + 1);
        for g in 0..n_groups {
            let (s, e) = (starts[g] as usize, starts[g + 1] as usize);
            sorted[s..e].sort_unstable_by_key(|x| x.time);
            group_starts.push(write as u32);
            let mut i = s;
            while i < e {
                let t = sorted[i].time;
                let mut j = i + 1;
                while j < e && sorted[j].time == t {
                    j += 1;
                }
                let winner = if j - i == 1 {
                    sorted[i].row
                } else {
                    let run = &sorted[i..j];
                    let best: Vec<u32> = match &created {
                        Some(c) => {
                            let max = run.iter().map(|x| c[x.row as usize]).max().unwrap_or(0);
                            run.iter()
                                .filter(|x| c[x.row as usize] == max)
                                .map(|x| x.row)
                                .collect()
                        }
                        None => run.iter().map(|x| x.row).collect(),
                    };
                    if best.len() == 1 {
                        best[0]
                    } else {
                        ties.push(write, best);
                        u32::MAX
                    }
                };
                sorted[write] = Entry {
                    time: t,
                    row: winner,
                };
                write += 1;
                i = j;
            }
        }
        group_starts.push(write as u32);
        sorted.truncate(write);
        sorted.shrink_to_fit();

        let mut batch_starts = Vec::with_capacity(batches.len() + 1);
        let mut total = 0u32;
        for b in &batches {
            batch_starts.push(total);
            total += b.num_rows() as u32;
        }
        batch_starts.push(total);
        let mut index = RightIndex {
            groups,
            group_starts,
            entries: sorted,
            batch_starts,
            sources: Vec::new(),
            batches,
        };
        ties.resolve(&mut index, schema)?;
        index.sources = (0..schema.fields().len())
            .map(|c| {
                let mut v: Vec<ArrayRef> = index
                    .batches
                    .iter()
                    .map(|b| Arc::clone(b.column(c)))
                    .collect();
                v.push(new_null_array(schema.field(c).data_type(), 1));
                v
            })
            .collect();
        Ok(index)
    }
}

/// Sets of right rows with equal key, time and CREATED, to be decided by their values.
#[derive(Default)]
struct Ties {
    /// (entry position, first candidate, candidate count)
    sets: Vec<(usize, usize, usize)>,
    candidates: Vec<u32>,
}

impl Ties {
    fn push(&mut self, position: usize, rows: Vec<u32>) {
        self.sets
            .push((position, self.candidates.len(), rows.len()));
        self.candidates.extend(rows);
    }

    /// Picks each set's winner: the greatest row in arrow's row format over all right columns
    /// (those the query reads: the rest were pruned before the join), or, for column types the
    /// row format cannot order, the last row in input order.
    fn resolve(self, index: &mut RightIndex, schema: &SchemaRef) -> Result<()> {
        if self.sets.is_empty() {
            return Ok(());
        }
        let fields: Vec<SortField> = schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        let ranked = match RowConverter::new(fields) {
            Ok(converter) if !schema.fields().is_empty() => {
                let at: Vec<(usize, usize)> =
                    self.candidates.iter().map(|&r| index.locate(r)).collect();
                let columns = (0..schema.fields().len())
                    .map(|c| {
                        let arrays: Vec<&dyn Array> =
                            index.batches.iter().map(|b| b.column(c).as_ref()).collect();
                        interleave(&arrays, &at)
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Some(converter.convert_columns(&columns)?)
            }
            _ => None,
        };
        for (position, first, count) in self.sets {
            let range = first..first + count;
            let best = match &ranked {
                Some(rows) => range
                    .max_by(|&a, &b| {
                        rows.row(a)
                            .cmp(&rows.row(b))
                            .then(self.candidates[a].cmp(&self.candidates[b]))
                    })
                    .map(|i| self.candidates[i]),
                None => range.map(|i| self.candidates[i]).max(),
            };
            index.entries[position].row = best.unwrap_or(u32::MAX);
        }
        Ok(())
    }
}

/// One partition's right side, ready for lookups.
pub struct RightIndex {
    groups: KeyGroups,
    /// Entries of group g: `entries[group_starts[g]..group_starts[g + 1]]`, by time, one per time.
    group_starts: Vec<u32>,
    entries: Vec<Entry>,
    /// First row number of each batch, and the total at the end.
    batch_starts: Vec<u32>,
    /// Per right column: its array in every batch, then a one-row NULL array.
    sources: Vec<Vec<ArrayRef>>,
    batches: Vec<RecordBatch>,
}

impl std::fmt::Debug for RightIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RightIndex")
            .field("groups", &self.groups.len())
            .field("entries", &self.entries.len())
            .field("batches", &self.batches.len())
            .finish()
    }
}

impl RightIndex {
    /// Bytes held beyond the batches.
    pub fn overhead_bytes(&self) -> usize {
        self.group_starts.capacity() * 4
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.batch_starts.capacity() * 4
            + self.groups.memory_bytes()
    }

    /// (batch, row in batch) of a row number.
    fn locate(&self, row: u32) -> (usize, usize) {
        let b = self.batch_starts.partition_point(|&s| s <= row) - 1;
        (b, (row - self.batch_starts[b]) as usize)
    }

    /// The matching right row number of every left row (None: no match).
    pub fn probe(
        &self,
        keys: &[ArrayRef],
        time: &Int64Array,
        op: AsOfOp,
        max_difference: Option<i64>,
    ) -> Result<Vec<Option<u32>>> {
        let n = time.len();
        let groups = self.groups.find(keys, n)?;
        let mut out = Vec::with_capacity(n);
        for (i, group) in groups.into_iter().enumerate() {
            let Some(g) = group.filter(|_| time.is_valid(i)) else {
                out.push(None);
                continue;
            };
            let slice = &self.entries[self.group_starts[g as usize] as usize
                ..self.group_starts[g as usize + 1] as usize];
            let t = time.value(i);
            let at = match op {
                AsOfOp::GtEq => slice.partition_point(|e| e.time <= t).checked_sub(1),
                AsOfOp::Gt => slice.partition_point(|e| e.time < t).checked_sub(1),
                AsOfOp::LtEq => Some(slice.partition_point(|e| e.time < t)),
                AsOfOp::Lt => Some(slice.partition_point(|e| e.time <= t)),
            };
            let found = at.and_then(|p| slice.get(p)).filter(|e| {
                max_difference.is_none_or(|max| {
                    let diff = if op.is_backward() {
                        t as i128 - e.time as i128
                    } else {
                        e.time as i128 - t as i128
                    };
                    diff <= max as i128
                })
            });
            out.push(found.map(|e| e.row));
        }
        Ok(out)
    }

    /// The right columns for `matches` (NULLs where there is none).
    pub fn take(&self, matches: &[Option<u32>]) -> Result<Vec<ArrayRef>> {
        let null = (self.batches.len(), 0);
        let at: Vec<(usize, usize)> = matches
            .iter()
            .map(|m| m.map_or(null, |r| self.locate(r)))
            .collect();
        self.sources
            .iter()
            .map(|arrays| {
                let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
                Ok(interleave(&refs, &at)?)
            })
            .collect()
    }
}
