//! Emitting the spine rows with their features, in the spine's own order.

use super::*;

/// The spine rows (packed (batch, row)) in the spine's own order, or `None` when they
/// arrived in that order (the common case: then batches are emitted as they are).
pub(super) fn spine_order(batches: &[SpineBatch]) -> Option<Vec<u64>> {
    let seq_of = |b: &SpineBatch, r: usize| b.seq.as_ref().map_or(0, |s| s[r]);
    let mut prev = None;
    let mut sorted = true;
    'outer: for b in batches {
        for r in 0..b.batch.num_rows() {
            let s = seq_of(b, r);
            if prev.is_some_and(|p| p > s) {
                sorted = false;
                break 'outer;
            }
            prev = Some(s);
        }
    }
    if sorted {
        return None;
    }
    let mut keyed: Vec<(u64, u64)> = batches
        .iter()
        .enumerate()
        .flat_map(|(bi, b)| (0..b.batch.num_rows()).map(move |r| (seq_of(b, r), pack(bi, r))))
        .collect();
    keyed.sort_unstable();
    Some(keyed.into_iter().map(|(_, x)| x).collect())
}

impl AtEmitter {
    fn step(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(order) = &self.order {
            if self.done == order.len() {
                return Ok(None);
            }
            let end = (self.done + self.job.batch_size).min(order.len());
            let rows: Vec<(usize, usize)> =
                order[self.done..end].iter().map(|&x| unpack(x)).collect();
            self.done = end;
            let idx = UInt32Array::from_iter_values(
                rows.iter().map(|&(b, r)| self.visit[self.offsets[b] + r]),
            );
            let mut columns = Vec::with_capacity(self.job.schema.fields().len());
            let mut sources: Vec<&dyn Array> = Vec::with_capacity(self.spine.len());
            for c in 0..self.job.sp_side.visible {
                sources.clear();
                sources.extend(self.spine.iter().map(|b| b.column(c).as_ref()));
                columns.push(interleave(&sources, &rows)?);
            }
            for r in &self.results {
                columns.push(take(r.as_ref(), &idx, None)?);
            }
            let out = RecordBatch::try_new(Arc::clone(&self.job.schema), columns)?;
            self.job.metrics.record_output(out.num_rows());
            return Ok(Some(out));
        }
        let Some(batch) = self.spine.get(self.next) else {
            return Ok(None);
        };
        let len = (batch.num_rows() - self.row).min(self.job.batch_size);
        let start = self.offsets[self.next] + self.row;
        let idx = UInt32Array::from(self.visit[start..start + len].to_vec());
        let visible = self.job.sp_side.visible;
        let mut columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .take(visible)
            .map(|c| c.slice(self.row, len))
            .collect();
        for r in &self.results {
            columns.push(take(r.as_ref(), &idx, None)?);
        }
        self.row += len;
        if self.row == batch.num_rows() {
            self.next += 1;
            self.row = 0;
        }
        let out = RecordBatch::try_new(Arc::clone(&self.job.schema), columns)?;
        self.job.metrics.record_output(out.num_rows());
        Ok(Some(out))
    }
}

impl Iterator for AtEmitter {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => {
                self.job.metrics.done();
                self.spine.clear();
                None
            }
            Err(e) => {
                self.spine.clear();
                Some(Err(e))
            }
        }
    }
}
