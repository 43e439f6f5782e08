//! Object stores: the warehouse (local directory or `s3://bucket/prefix`) and any `s3://`
//! location a statement names. S3 stores are built on first use from the configuration and
//! the usual AWS environment variables, so `CREATE EXTERNAL TABLE … LOCATION 's3://…'` works
//! without registering each bucket by hand.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use dashmap_free::BucketCache;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use url::Url;

use crate::config::S3Config;
use crate::error::FStoreError;

/// A one-line description of an object-store failure: S3's XML error bodies are reduced to
/// their code and message.
pub fn describe_store_error(e: &object_store::Error) -> String {
    let s = e.to_string();
    let between = |open: &str, close: &str| {
        let start = s.find(open)? + open.len();
        let end = s[start..].find(close)? + start;
        Some(s[start..end].to_string())
    };
    if let Some(code) = between("<Code>", "</Code>") {
        let message = between("<Message>", "</Message>").unwrap_or_default();
        return format!("{code}: {message}");
    }
    one_line(&s)
}

/// Folds a multi-line message into one line.
pub fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Builds an S3 store for `bucket`: environment first, configuration on top.
pub fn s3_store(bucket: &str, cfg: &S3Config) -> Result<Arc<dyn ObjectStore>> {
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(v) = &cfg.endpoint {
        b = b.with_endpoint(v);
    }
    if let Some(v) = &cfg.region {
        b = b.with_region(v);
    }
    if let Some(v) = &cfg.access_key_id {
        b = b.with_access_key_id(v);
    }
    if let Some(v) = &cfg.secret_access_key {
        b = b.with_secret_access_key(v);
    }
    if let Some(v) = &cfg.session_token {
        b = b.with_token(v);
    }
    if let Some(v) = cfg.allow_http {
        b = b.with_allow_http(v);
    }
    if let Some(path_style) = cfg.path_style {
        b = b.with_virtual_hosted_style_request(!path_style);
    }
    let store = b.build().map_err(|e| {
        DataFusionError::from(FStoreError::unavailable(format!(
            "cannot configure S3 bucket '{bucket}': {e}"
        )))
    })?;
    Ok(Arc::new(store))
}

/// DataFusion's registry, plus lazily created S3 stores.
#[derive(Debug)]
pub struct FStoreObjectStores {
    inner: DefaultObjectStoreRegistry,
    s3: S3Config,
    created: BucketCache,
}

impl FStoreObjectStores {
    pub fn new(s3: S3Config) -> Self {
        Self {
            inner: DefaultObjectStoreRegistry::new(),
            s3,
            created: BucketCache::default(),
        }
    }
}

impl ObjectStoreRegistry for FStoreObjectStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        match self.inner.get_store(url) {
            Ok(store) => Ok(store),
            Err(e) if url.scheme() == "s3" => {
                let Some(bucket) = url.host_str() else {
                    return Err(e);
                };
                let store = self
                    .created
                    .get_or_try_insert(bucket, || s3_store(bucket, &self.s3))?;
                let base = Url::parse(&format!("s3://{bucket}")).map_err(|e| {
                    DataFusionError::from(FStoreError::invalid(format!("bad S3 URL: {e}")))
                })?;
                self.inner.register_store(&base, Arc::clone(&store));
                Ok(store)
            }
            Err(e) => Err(e),
        }
    }
}

/// A tiny map of bucket → store, guarded by a mutex (look-ups happen at planning, not per row).
mod dashmap_free {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use datafusion::error::Result;
    use object_store::ObjectStore;

    #[derive(Debug, Default)]
    pub struct BucketCache(Mutex<HashMap<String, Arc<dyn ObjectStore>>>);

    impl BucketCache {
        pub fn get_or_try_insert(
            &self,
            bucket: &str,
            make: impl FnOnce() -> Result<Arc<dyn ObjectStore>>,
        ) -> Result<Arc<dyn ObjectStore>> {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = map.get(bucket) {
                return Ok(Arc::clone(s));
            }
            let s = make()?;
            map.insert(bucket.to_string(), Arc::clone(&s));
            Ok(s)
        }
    }
}

/// Where FStore keeps its registry and managed data.
#[derive(Debug, Clone)]
pub struct Warehouse {
    /// `file:///abs/dir/` or `s3://bucket/prefix/` (always with a trailing slash).
    url: Url,
    store: Arc<dyn ObjectStore>,
    /// The warehouse root inside `store`.
    prefix: Path,
    /// The local directory, when the warehouse is local (used to fsync commits).
    local_dir: Option<PathBuf>,
}

impl Warehouse {
    /// Opens (and for a local directory, creates) the warehouse. Fails with one clear message
    /// when the location cannot be used.
    pub fn open(location: &str, s3: &S3Config) -> Result<Warehouse> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(FStoreError::invalid(format!(
                    "invalid warehouse '{location}': expected s3://bucket/prefix"
                ))
                .into());
            }
            let store = s3_store(bucket, s3)?;
            let prefix = prefix.trim_matches('/');
            let url = Url::parse(&format!(
                "s3://{bucket}/{prefix}{}",
                if prefix.is_empty() { "" } else { "/" }
            ))
            .map_err(|e| FStoreError::invalid(format!("invalid warehouse '{location}': {e}")))?;
            return Ok(Warehouse {
                url,
                store,
                prefix: Path::from(prefix),
                local_dir: None,
            });
        }
        if location.contains("://") && !location.starts_with("file://") {
            return Err(FStoreError::invalid(format!(
                "unsupported warehouse '{location}': use a local directory or s3://bucket/prefix"
            ))
            .into());
        }
        let dir = location.strip_prefix("file://").unwrap_or(location);
        let dir = std::path::absolute(dir).map_err(|e| {
            FStoreError::unavailable(format!("invalid warehouse path '{location}': {e}"))
        })?;
        std::fs::create_dir_all(dir.join("_registry")).map_err(|e| {
            FStoreError::unavailable(format!(
                "warehouse '{}' is not writable: {e}",
                dir.display()
            ))
        })?;
        check_writable(&dir)?;
        let url = Url::from_directory_path(&dir).map_err(|_| {
            FStoreError::invalid(format!("invalid warehouse path '{}'", dir.display()))
        })?;
        let prefix = Path::from_filesystem_path(&dir).map_err(|e| {
            FStoreError::invalid(format!("invalid warehouse path '{}': {e}", dir.display()))
        })?;
        Ok(Warehouse {
            url,
            store: Arc::new(LocalFileSystem::new()),
            prefix,
            local_dir: Some(dir),
        })
    }

    /// The object store holding the warehouse.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The warehouse URL, e.g. `file:///data/fstore/` (trailing slash).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL of the bucket / file system root, for registering the store with DataFusion.
    pub fn store_url(&self) -> Url {
        let mut u = self.url.clone();
        u.set_path("");
        u
    }

    /// An object path inside the warehouse (`rel` uses `/` separators).
    pub fn path(&self, rel: &str) -> Path {
        let mut p = self.prefix.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.join(part);
        }
        p
    }

    /// Writes `body` at `rel` only if nothing is there yet (a conditional create: of two
    /// writers racing for one path, exactly one succeeds, the other gets `AlreadyExists`).
    pub async fn create(
        &self,
        rel: &str,
        body: impl Into<object_store::PutPayload>,
    ) -> object_store::Result<object_store::PutResult> {
        self.store
            .put_opts(
                &self.path(rel),
                body.into(),
                object_store::PutOptions::from(object_store::PutMode::Create),
            )
            .await
    }

    /// The full URL of a path inside the warehouse, as DataFusion reads it.
    pub fn url_of(&self, rel: &str) -> String {
        format!("{}{}", self.url, rel.trim_start_matches('/'))
    }

    /// Makes a just-written object durable (fsync of the file and its directory) when the
    /// warehouse is local. Object stores are durable once the PUT returns.
    pub fn sync(&self, rel: &str) -> Result<()> {
        let Some(dir) = &self.local_dir else {
            return Ok(());
        };
        let file = dir.join(rel);
        let io = |e: std::io::Error| {
            DataFusionError::from(FStoreError::unavailable(format!(
                "cannot sync {}: {e}",
                file.display()
            )))
        };
        std::fs::File::open(&file)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        if let Some(parent) = file.parent() {
            sync_dir(parent).map_err(io)?;
        }
        Ok(())
    }

    /// The local directory of a local warehouse.
    pub fn local_dir(&self) -> Option<&FsPath> {
        self.local_dir.as_deref()
    }
}

fn sync_dir(dir: &FsPath) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn check_writable(dir: &FsPath) -> Result<()> {
    let probe = dir
        .join("_registry")
        .join(format!(".probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| {
            FStoreError::unavailable(format!(
                "warehouse '{}' is not writable: {e}",
                dir.display()
            ))
            .into()
        })
}
