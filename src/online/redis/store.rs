//! Connecting, publishing, removing and the pointer cache.

use super::*;

impl RedisStore {
    /// Connects to `redis://[[user]:password@]host[:port][/db]` (`rediss://` for TLS) and
    /// checks the server answers PING. The connection for publishing opens on first use.
    pub async fn connect(url: &str) -> Result<RedisStore> {
        let (client, addr) = open_client(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1));
        let unreachable =
            |e: RedisError| FStoreError::unavailable(format!("cannot reach Redis at {addr}: {e}"));
        let first = ConnectionManager::new_with_config(client.clone(), config.clone());
        let reads = match tokio::time::timeout(CONNECT_TIMEOUT, first).await {
            Ok(connected) => connected.map_err(unreachable)?,
            Err(_) => {
                return Err(FStoreError::unavailable(format!(
                    "cannot reach Redis at {addr}: no connection within {} s",
                    CONNECT_TIMEOUT.as_secs_f64()
                )));
            }
        };
        let writes =
            ConnectionManager::new_lazy_with_config(client, config).map_err(unreachable)?;
        let store = RedisStore {
            reads,
            writes,
            addr,
            pointers: ArcSwap::from_pointee(HashMap::new()),
        };
        match redis::cmd("PING")
            .query_async::<Value>(&mut store.reads.clone())
            .await
        {
            Ok(Value::SimpleString(s)) if s == "PONG" => Ok(store),
            Ok(other) => Err(FStoreError::unavailable(format!(
                "the server at {} does not speak Redis: PING answered {}",
                store.addr,
                describe(&other)
            ))),
            Err(e) => Err(match server_error_text(&e) {
                Some(text) => FStoreError::unavailable(format!(
                    "Redis at {} refused PING: {text}",
                    store.addr
                )),
                None => store.redis_error("answer PING", e),
            }),
        }
    }

    /// Runs one command on `conn`.
    pub(super) async fn command(
        &self,
        conn: &ConnectionManager,
        what: &str,
        cmd: &Cmd,
        retry: Retry,
    ) -> Result<Value> {
        let mut conn = conn.clone();
        let mut result = cmd.query_async::<Value>(&mut conn).await;
        if retry == Retry::Once
            && result
                .as_ref()
                .is_err_and(RedisError::is_unrecoverable_error)
        {
            result = cmd.query_async::<Value>(&mut conn).await;
        }
        result.map_err(|e| self.redis_error(what, e))
    }

    /// Sends the commands of `pipe` in one write and returns their replies, in order.
    pub(super) async fn pipeline(
        &self,
        conn: &ConnectionManager,
        what: &str,
        pipe: &Pipeline,
        retry: Retry,
    ) -> Result<Vec<Value>> {
        if pipe.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = conn.clone();
        let mut result = pipe.query_async::<Vec<Value>>(&mut conn).await;
        if retry == Retry::Once
            && result
                .as_ref()
                .is_err_and(RedisError::is_unrecoverable_error)
        {
            result = pipe.query_async::<Vec<Value>>(&mut conn).await;
        }
        let replies = result.map_err(|e| self.redis_error(what, e))?;
        if replies.len() != pipe.len() {
            return Err(FStoreError::new(
                ErrorKind::Internal,
                format!(
                    "Redis at {} answered {} commands to {what} with {} replies",
                    self.addr,
                    pipe.len(),
                    replies.len()
                ),
            ));
        }
        Ok(replies)
    }

    /// A failure of the client: an error reply, or the server could not be talked to.
    pub(super) fn redis_error(&self, what: &str, e: RedisError) -> FStoreError {
        let addr = &self.addr;
        if let Some(text) = server_error_text(&e) {
            return self.failed(what, &text);
        }
        if e.is_timeout() {
            return FStoreError::unavailable(format!(
                "Redis at {addr} did not answer in time ({} s to connect, {} s per command): {e}",
                CONNECT_TIMEOUT.as_secs_f64(),
                RESPONSE_TIMEOUT.as_secs_f64()
            ));
        }
        match e.kind() {
            redis::ErrorKind::Io | redis::ErrorKind::AuthenticationFailed => {
                FStoreError::unavailable(format!("Redis at {addr}: {e}"))
            }
            redis::ErrorKind::Parse => {
                FStoreError::unavailable(format!("Redis at {addr}: protocol error: {e}"))
            }
            _ => FStoreError::new(
                ErrorKind::Internal,
                format!("Redis at {addr} failed to {what}: {e}"),
            ),
        }
    }

    /// An error reply, classified.
    pub(super) fn failed(&self, what: &str, error: &str) -> FStoreError {
        const UNAVAILABLE: &[&str] = &[
            "LOADING",
            "READONLY",
            "MASTERDOWN",
            "BUSY",
            "NOAUTH",
            "WRONGPASS",
            "NOPERM",
            "CLUSTERDOWN",
            "TRYAGAIN",
            "MISCONF",
            "MOVED",
            "ASK",
        ];
        let kind = if error.starts_with("OOM") {
            ErrorKind::ResourceExhausted
        } else if UNAVAILABLE.iter().any(|p| error.starts_with(p)) {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Internal
        };
        FStoreError::new(
            kind,
            format!("Redis at {} failed to {what}: {error}", self.addr),
        )
    }

    pub(super) fn unexpected(&self, what: &str, reply: &Value) -> FStoreError {
        FStoreError::new(
            ErrorKind::Internal,
            format!(
                "Redis at {} answered {what} with {}",
                self.addr,
                describe(reply)
            ),
        )
    }

    pub(super) fn corrupt(&self, set: &str, why: impl std::fmt::Display) -> FStoreError {
        FStoreError::new(
            ErrorKind::Internal,
            format!(
                "the online copy of feature set {set} in Redis at {} is corrupt: {why}",
                self.addr
            ),
        )
    }

    pub(super) fn parse_pointer(&self, set: &str, bytes: &[u8]) -> Result<Arc<Loaded>> {
        let pointer: Pointer = serde_json::from_slice(bytes).map_err(|e| self.corrupt(set, e))?;
        Loaded::new(pointer)
            .map(Arc::new)
            .map_err(|e| self.corrupt(set, e))
    }

    pub(super) fn cache(&self, set: &str, loaded: Option<Arc<Loaded>>) {
        let now = Instant::now();
        self.pointers.rcu(|pointers| {
            let mut pointers = HashMap::clone(pointers);
            match &loaded {
                Some(l) => {
                    pointers.insert(set.to_string(), (now, Arc::clone(l)));
                }
                None => {
                    pointers.remove(set);
                }
            }
            pointers
        });
    }

    /// The set's pointer: from the cache when younger than [`POINTER_CACHE_TTL`] (unless
    /// `fresh`), else read from Redis.
    pub(super) async fn pointer(&self, set: &str, fresh: bool) -> Result<Option<Arc<Loaded>>> {
        if !fresh
            && let Some((at, loaded)) = self.pointers.load().get(set)
            && at.elapsed() < POINTER_CACHE_TTL
        {
            return Ok(Some(Arc::clone(loaded)));
        }
        let what = format!("read the pointer of feature set {set}");
        let get = redis::cmd("GET").arg(Keys::new(set).pointer()).clone();
        let loaded = match self.command(&self.reads, &what, &get, Retry::Once).await? {
            Value::Nil => None,
            Value::BulkString(bytes) => Some(self.parse_pointer(set, &bytes)?),
            other => return Err(self.unexpected(&what, &other)),
        };
        self.cache(set, loaded.clone());
        Ok(loaded)
    }

    /// The generations listed in the set's `gens` hash.
    pub(super) async fn live_generations(&self, keys: &Keys) -> Result<HashSet<u64>> {
        let what = "list generations";
        let hkeys = redis::cmd("HKEYS").arg(keys.generations()).clone();
        match self
            .command(&self.writes, what, &hkeys, Retry::Once)
            .await?
        {
            Value::Array(items) | Value::Set(items) => Ok(items
                .iter()
                .filter_map(|i| match i {
                    Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
                    Value::SimpleString(s) => s.parse().ok(),
                    _ => None,
                })
                .collect()),
            other => Err(self.unexpected(what, &other)),
        }
    }

    /// Claims a generation number for a new publication, starting at `wanted`.
    pub(super) async fn claim_generation(
        &self,
        set: &str,
        keys: &Keys,
        wanted: u64,
    ) -> Result<u64> {
        let what = format!("claim a generation of feature set {set}");
        for _ in 0..16 {
            let taken = self.live_generations(keys).await?;
            let candidate = if taken.contains(&wanted) {
                taken.iter().max().copied().unwrap_or(wanted).max(wanted) + 1
            } else {
                wanted
            };
            let hsetnx = redis::cmd("HSETNX")
                .arg(keys.generations())
                .arg(candidate)
                .arg(now_micros())
                .clone();
            // Not retried: a claim that did run would be seen as taken by another publication.
            match self
                .command(&self.writes, &what, &hsetnx, Retry::Never)
                .await?
            {
                Value::Int(1) => return Ok(candidate),
                Value::Int(0) => continue,
                other => return Err(self.unexpected(&what, &other)),
            }
        }
        Err(FStoreError::new(
            ErrorKind::Conflict,
            format!(
                "cannot claim a generation of feature set {set}: other publications keep taking them"
            ),
        ))
    }

    /// UNLINKs every entity hash of the set whose generation satisfies `doomed` (a `SCAN`
    /// cursor loop; each batch of keys found is unlinked before the next `SCAN`).
    pub(super) async fn unlink_generations(
        &self,
        keys: &Keys,
        doomed: impl Fn(u64) -> bool,
    ) -> Result<u64> {
        let pattern = keys.entity_pattern();
        let mut cursor = b"0".to_vec();
        let mut unlinked = 0;
        loop {
            let scan = redis::cmd("SCAN")
                .arg(&cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .clone();
            let reply = self
                .command(&self.writes, "SCAN", &scan, Retry::Once)
                .await?;
            let (next, found) = match reply {
                Value::Array(mut parts) if parts.len() == 2 => {
                    let found = parts.pop().expect("two parts");
                    let next = parts.pop().expect("two parts");
                    match (next, found) {
                        (Value::BulkString(next), Value::Array(found)) => (next, found),
                        (next, _) => return Err(self.unexpected("SCAN", &next)),
                    }
                }
                other => return Err(self.unexpected("SCAN", &other)),
            };
            let mut unlink = redis::cmd("UNLINK");
            let mut n = 0u64;
            for key in found {
                if let Value::BulkString(key) = key
                    && keys.generation_of(&key).is_some_and(&doomed)
                {
                    unlink.arg(key);
                    n += 1;
                }
            }
            if n > 0 {
                let what = "UNLINK old generations";
                match self
                    .command(&self.writes, what, &unlink, Retry::Once)
                    .await?
                {
                    Value::Int(_) => unlinked += n,
                    other => return Err(self.unexpected(what, &other)),
                }
            }
            if next == b"0" {
                return Ok(unlinked);
            }
            cursor = next;
        }
    }

    /// After a swap to `current`: retires generations other than `current` and `previous`
    /// that are older than the newer of the two.
    pub(super) async fn retire(
        &self,
        set: &str,
        keys: &Keys,
        current: u64,
        previous: Option<u64>,
    ) -> Result<()> {
        let newest_kept = previous.map_or(current, |p| p.max(current));
        let old: Vec<u64> = self
            .live_generations(keys)
            .await?
            .into_iter()
            .filter(|&g| g != current && Some(g) != previous && g < newest_kept)
            .collect();
        if old.is_empty() {
            return Ok(());
        }
        let what = "retire old generations";
        let hdel = redis::cmd("HDEL").arg(keys.generations()).arg(&old).clone();
        let reply = self.command(&self.writes, what, &hdel, Retry::Once).await?;
        if !matches!(reply, Value::Int(_)) {
            return Err(self.unexpected(what, &reply));
        }
        // Anything older not in `gens` now is retired (or an orphan of a failed publication);
        // newer generations may be being written by another publication.
        let live = self.live_generations(keys).await?;
        let n = self
            .unlink_generations(keys, |g| g < newest_kept && !live.contains(&g))
            .await?;
        tracing::debug!(set, generations = ?old, hashes = n, "retired old online generations");
        Ok(())
    }

    /// Writes the rows of a snapshot as generation `generation`: one pipeline of `HSET`s per
    /// [`WRITE_CHUNK`] entities, [`WRITE_CONCURRENCY`] pipelines in flight.
    pub(super) async fn write_rows(
        &self,
        set: &str,
        keys: &Keys,
        generation: u64,
        entity_keys: &[Option<String>],
        stored: &[(String, Encoded)],
    ) -> Result<()> {
        let what = format!("write the online rows of feature set {set}");
        let rows: Vec<usize> = (0..entity_keys.len())
            .filter(|&r| entity_keys[r].is_some())
            .collect();
        futures::stream::iter((0..rows.len()).step_by(WRITE_CHUNK))
            .map(|start| {
                let end = (start + WRITE_CHUNK).min(rows.len());
                let mut pipe = Pipeline::with_capacity(end - start);
                for &row in &rows[start..end] {
                    let key = entity_keys[row].as_deref().expect("rows with keys");
                    pipe.cmd("HSET")
                        .arg(keys.entity(generation, key))
                        .arg(KEY_FIELD)
                        .arg(key);
                    for (name, encoded) in stored {
                        if let Some(v) = encoded.value(row) {
                            pipe.arg(name.as_str()).arg(v);
                        }
                    }
                }
                let what = &what;
                async move {
                    // HSET of the same values again changes nothing: retried.
                    let replies = self
                        .pipeline(&self.writes, what, &pipe, Retry::Once)
                        .await?;
                    match replies.iter().find(|r| !matches!(r, Value::Int(_))) {
                        Some(bad) => Err(self.unexpected(what, bad)),
                        None => Ok(()),
                    }
                }
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Removes what a failed publication wrote (best effort).
    pub(super) async fn abandon(&self, set: &str, keys: &Keys, generation: u64) {
        let hdel = redis::cmd("HDEL")
            .arg(keys.generations())
            .arg(generation)
            .clone();
        let result = match self
            .command(&self.writes, "abandon a publication", &hdel, Retry::Once)
            .await
        {
            Ok(_) => self
                .unlink_generations(keys, |g| g == generation)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(
                set,
                generation,
                "cannot remove a failed online publication: {e}"
            );
        }
    }
}
