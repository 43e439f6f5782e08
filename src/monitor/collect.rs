//! The values a monitor's drift metrics compare, collected inside its one aggregate pass.
//!
//! `array_agg` would build a list per partition, serialize it as the partial state and copy
//! it again when merging — for 10M rows that cost more than the scan. [`Collect`] is an
//! aggregate used only inside one monitor run: each partition's accumulator gathers its
//! values locally and hands them to the run's shared [`Sink`] once (when its state or result
//! is asked for), so every value is copied once, as `check_drift`'s streaming collector does;
//! its SQL result is only the number of values collected.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use arrow_schema::{DataType, Field, FieldRef};
use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{Float64Type, UInt64Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

/// What one feature's values became.
#[derive(Debug, Default)]
pub struct Collected {
    /// Numeric values (Float64 input).
    pub numbers: Vec<f64>,
    /// Category counts (Utf8 input).
    pub categories: HashMap<String, u64>,
}

/// Where the accumulators of one run put their values.
pub type Sink = Arc<Mutex<Collected>>;

/// `collect(x)` for one feature of one run.
#[derive(Debug)]
pub struct Collect {
    name: String,
    sink: Sink,
    signature: Signature,
}

impl PartialEq for Collect {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Collect {}
impl Hash for Collect {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl Collect {
    /// A collecting aggregate with a name unique to the run, and its sink.
    pub fn udaf() -> (AggregateUDF, Sink) {
        let sink: Sink = Arc::new(Mutex::new(Collected::default()));
        let udaf = AggregateUDF::from(Collect {
            name: format!("__monitor_collect_{}", uuid::Uuid::new_v4().simple()),
            sink: Arc::clone(&sink),
            signature: Signature::any(1, Volatility::Volatile),
        });
        (udaf, sink)
    }
}

impl AggregateUDFImpl for Collect {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(CollectAccumulator {
            sink: Arc::clone(&self.sink),
            local: Collected::default(),
            count: 0,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[count]", args.name),
            DataType::UInt64,
            true,
        ))])
    }
}

#[derive(Debug)]
struct CollectAccumulator {
    sink: Sink,
    local: Collected,
    count: u64,
}

impl CollectAccumulator {
    /// Hands the local values to the run's sink.
    fn flush(&mut self) {
        if self.local.numbers.is_empty() && self.local.categories.is_empty() {
            return;
        }
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        if sink.numbers.is_empty() {
            sink.numbers = std::mem::take(&mut self.local.numbers);
        } else {
            sink.numbers.append(&mut self.local.numbers);
        }
        for (k, c) in self.local.categories.drain() {
            *sink.categories.entry(k).or_default() += c;
        }
    }
}

impl Accumulator for CollectAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let a = &values[0];
        if let Some(x) = a.as_primitive_opt::<Float64Type>() {
            let before = self.local.numbers.len();
            self.local.numbers.extend(x.iter().flatten());
            self.count += (self.local.numbers.len() - before) as u64;
        } else if let Some(x) = a.as_string_opt::<i32>() {
            for v in x.iter().flatten() {
                self.count += 1;
                match self.local.categories.get_mut(v) {
                    Some(c) => *c += 1,
                    None => {
                        self.local.categories.insert(v.to_string(), 1);
                    }
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.flush();
        Ok(ScalarValue::UInt64(Some(self.count)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.local.numbers.capacity() * 8
            + self
                .local
                .categories
                .keys()
                .map(|k| k.len() + 48)
                .sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.flush();
        Ok(vec![ScalarValue::UInt64(Some(self.count))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let counts = states[0].as_primitive::<UInt64Type>();
        self.count += counts.iter().flatten().sum::<u64>();
        Ok(())
    }
}
