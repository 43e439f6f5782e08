//! The `OnlineStore` face of the store (publish, lookup, describe, remove), and lookup results
//! built from the HMGET replies.

use super::*;

#[async_trait]
impl OnlineStore for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, snapshot: Snapshot) -> Result<()> {
        let Snapshot { info, batch } = snapshot;
        let set = info.set.clone();
        let schema = batch.schema();
        let key_columns: Vec<usize> = info
            .key_columns
            .iter()
            .map(|k| {
                schema.index_of(k).map_err(|_| {
                    FStoreError::invalid(format!(
                        "the snapshot of feature set {set} has no key column {k}"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        if key_columns.is_empty() {
            return Err(FStoreError::invalid(format!(
                "the snapshot of feature set {set} has no key columns"
            )));
        }

        // Entity keys (rows with a NULL key can never be looked up: skipped).
        let key_arrays: Vec<_> = key_columns
            .iter()
            .map(|&c| Arc::clone(batch.column(c)))
            .collect();
        let entity_keys: Vec<Option<String>> = (0..batch.num_rows())
            .map(|row| row_key(&key_arrays, row))
            .collect();
        let mut seen = HashSet::with_capacity(entity_keys.len());
        for key in entity_keys.iter().flatten() {
            if !seen.insert(key.as_str()) {
                return Err(FStoreError::invalid(format!(
                    "the snapshot of feature set {set} has the key {:?} twice",
                    key.replace(crate::online::key::KEY_SEPARATOR, ", ")
                )));
            }
        }
        drop(seen);

        // Stored columns: non-key columns, and key columns whose key text does not cast
        // back to the same values.
        let mut stored: Vec<(String, Encoded)> = Vec::new();
        for (c, field) in schema.fields().iter().enumerate() {
            let column = batch.column(c);
            if let Some(part) = key_columns.iter().position(|&k| k == c) {
                let texts: StringArray = entity_keys
                    .iter()
                    .map(|k| {
                        k.as_deref().map(|k| {
                            k.split(crate::online::key::KEY_SEPARATOR)
                                .nth(part)
                                .unwrap_or("")
                        })
                    })
                    .collect();
                let exact = from_text(texts, field.data_type())
                    .is_ok_and(|back| back.as_ref() == column.as_ref());
                if exact {
                    continue;
                }
            }
            if field.name() == KEY_FIELD {
                return Err(FStoreError::invalid(format!(
                    "feature set {set} has a column named {KEY_FIELD}, which the Redis online store reserves"
                )));
            }
            if stored.iter().any(|(n, _)| n == field.name()) {
                return Err(FStoreError::invalid(format!(
                    "the snapshot of feature set {set} has two columns named {}",
                    field.name()
                )));
            }
            let encoded = match text_encode(column) {
                Some(text) => Encoded::Text(text),
                None => Encoded::Ipc(ipc_encode(field, column)?),
            };
            stored.push((field.name().clone(), encoded));
        }

        let keys = Keys::new(&set);
        let generation = self.claim_generation(&set, &keys, info.generation).await?;
        let pointer = Pointer {
            info: info.clone(),
            schema: schema.as_ref().clone(),
            key_generation: generation,
            fields: stored
                .iter()
                .map(|(name, e)| StoredField {
                    name: name.clone(),
                    encoding: e.encoding(),
                })
                .collect(),
        };
        let json = serde_json::to_vec(&pointer).map_err(|e| {
            FStoreError::new(
                ErrorKind::Internal,
                format!("cannot serialise the online pointer of feature set {set}: {e}"),
            )
        })?;
        let loaded = Arc::new(Loaded::new(pointer).map_err(|e| {
            FStoreError::new(ErrorKind::Internal, format!("online pointer of {set}: {e}"))
        })?);

        if let Err(e) = self
            .write_rows(&set, &keys, generation, &entity_keys, &stored)
            .await
        {
            self.abandon(&set, &keys, generation).await;
            return Err(e);
        }

        // The swap.
        let what = format!("publish feature set {set}");
        let getset = redis::cmd("GETSET").arg(keys.pointer()).arg(json).clone();
        // Not retried: a swap that did run would make our own pointer look like the previous.
        let swapped = getset.query_async::<Value>(&mut self.writes.clone()).await;
        let previous = match swapped {
            Ok(Value::Nil) => None,
            Ok(Value::BulkString(old)) => match serde_json::from_slice::<Pointer>(&old) {
                Ok(p) => Some(p.key_generation),
                Err(e) => {
                    tracing::warn!(set, "the previous online pointer was unreadable: {e}");
                    None
                }
            },
            Ok(other) => {
                self.abandon(&set, &keys, generation).await;
                return Err(self.unexpected(&what, &other));
            }
            Err(e) if server_error_text(&e).is_some() => {
                // An error reply: the swap did not happen.
                self.abandon(&set, &keys, generation).await;
                return Err(self.redis_error(&what, e));
            }
            Err(e) => {
                // Unknown whether the swap happened: leave the generation in place (a later
                // publication retires it if it is not live).
                return Err(self.redis_error(&what, e));
            }
        };
        self.cache(&set, Some(loaded));
        tracing::debug!(
            set,
            generation,
            ?previous,
            rows = batch.num_rows(),
            "published online snapshot to Redis"
        );

        if let Err(e) = self.retire(&set, &keys, generation, previous).await {
            tracing::warn!(set, "cannot delete old online generations from Redis: {e}");
        }
        Ok(())
    }

    async fn lookup(&self, set: &str, keys: &[EntityKey]) -> Result<Option<Lookup>> {
        let names = Keys::new(set);
        let mut fresh = false;
        for _ in 0..LOOKUP_ATTEMPTS {
            let Some(loaded) = self.pointer(set, fresh).await? else {
                return Ok(None);
            };
            let n_parts = loaded.info.key_columns.len();
            if let Some(bad) = keys.iter().find(|k| k.0.len() != n_parts) {
                return Err(FStoreError::invalid(format!(
                    "feature set {set} is keyed by {} ({n_parts} values), got a key of {} values",
                    loaded.info.key_columns.join(", "),
                    bad.0.len()
                )));
            }
            let generation = loaded.key_generation;
            let mut pipe = Pipeline::with_capacity(keys.len() + 1);
            for key in keys {
                pipe.cmd("HMGET")
                    .arg(names.entity(generation, &key.encoded()))
                    .arg(&loaded.hmget_fields);
            }
            pipe.cmd("HEXISTS").arg(names.generations()).arg(generation);
            let mut replies = self
                .pipeline(&self.reads, "HMGET", &pipe, Retry::Once)
                .await?;
            let live = replies.pop().expect("one reply per command");
            match live {
                Value::Int(1) => {}
                Value::Int(_) => {
                    // The generation was retired (or the set removed) under us.
                    fresh = true;
                    continue;
                }
                other => return Err(self.unexpected("check the generation", &other)),
            }
            return self.build(set, &loaded, keys, replies).map(Some);
        }
        Err(FStoreError::unavailable(format!(
            "feature set {set} changed in Redis at {} during every attempt to look it up",
            self.addr
        )))
    }

    async fn describe(&self, set: &str) -> Result<Option<(SnapshotInfo, SchemaRef)>> {
        Ok(self
            .pointer(set, true)
            .await?
            .map(|l| (l.info.clone(), l.schema.clone())))
    }

    async fn remove(&self, set: &str) -> Result<()> {
        let keys = Keys::new(set);
        let what = format!("remove feature set {set}");
        let mut pipe = Pipeline::with_capacity(2);
        pipe.cmd("DEL")
            .arg(keys.pointer())
            .cmd("DEL")
            .arg(keys.generations());
        let replies = self.pipeline(&self.writes, &what, &pipe, Retry::Once).await;
        self.cache(set, None);
        if let Some(bad) = replies?.iter().find(|r| !matches!(r, Value::Int(_))) {
            return Err(self.unexpected(&what, bad));
        }
        self.unlink_generations(&keys, |_| true).await?;
        Ok(())
    }
}

impl RedisStore {
    /// The lookup result from the HMGET replies.
    pub(super) fn build(
        &self,
        set: &str,
        loaded: &Loaded,
        keys: &[EntityKey],
        replies: Vec<Value>,
    ) -> Result<Lookup> {
        let width = loaded.hmget_fields.len();
        let rows: Vec<Option<Vec<Value>>> = replies
            .into_iter()
            .map(|r| match r {
                Value::Array(values) if values.len() == width => {
                    Ok((!matches!(values[0], Value::Nil)).then_some(values))
                }
                other => Err(self.unexpected("HMGET", &other)),
            })
            .collect::<Result<_>>()?;
        let found: Vec<bool> = rows.iter().map(Option::is_some).collect();
        let corrupt =
            |column: &str, why: String| self.corrupt(set, format!("column {column}: {why}"));

        let mut columns: Vec<ArrayRef> = Vec::with_capacity(loaded.sources.len());
        for (field, source) in loaded.schema.fields().iter().zip(&loaded.sources) {
            let dt = field.data_type();
            let column = match *source {
                Source::KeyText(part) => {
                    let texts: StringArray = keys
                        .iter()
                        .zip(&found)
                        .map(|(k, &f)| f.then(|| k.0[part].as_str()))
                        .collect();
                    from_text(texts, dt).map_err(|e| corrupt(field.name(), e))?
                }
                Source::Field(n, Encoding::Text) => {
                    let texts = rows
                        .iter()
                        .map(|row| match row.as_ref().map(|v| &v[1 + n]) {
                            None | Some(Value::Nil) => Ok(None),
                            Some(Value::BulkString(b)) => std::str::from_utf8(b)
                                .map(Some)
                                .map_err(|_| "a value is not UTF-8".to_string()),
                            Some(other) => Err(format!("a value is {}", describe(other))),
                        })
                        .collect::<std::result::Result<StringArray, String>>()
                        .map_err(|e| corrupt(field.name(), e))?;
                    from_text(texts, dt).map_err(|e| corrupt(field.name(), e))?
                }
                Source::Field(n, Encoding::Ipc) => {
                    let cells = rows
                        .iter()
                        .map(|row| match row.as_ref().map(|v| &v[1 + n]) {
                            None | Some(Value::Nil) => Ok(new_null_array(dt, 1)),
                            Some(Value::BulkString(b)) => ipc_decode(b, field),
                            Some(other) => Err(format!("a value is {}", describe(other))),
                        })
                        .collect::<std::result::Result<Vec<ArrayRef>, String>>()
                        .map_err(|e| corrupt(field.name(), e))?;
                    if cells.is_empty() {
                        new_null_array(dt, 0)
                    } else {
                        let refs: Vec<&dyn Array> = cells.iter().map(|c| c.as_ref()).collect();
                        concat(&refs).map_err(|e| corrupt(field.name(), e.to_string()))?
                    }
                }
            };
            columns.push(column);
        }
        let batch = RecordBatch::try_new_with_options(
            loaded.out_schema.clone(),
            columns,
            &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(keys.len())),
        )
        .map_err(|e| self.corrupt(set, e))?;
        Ok(Lookup {
            info: loaded.info.clone(),
            batch,
            found,
        })
    }
}
