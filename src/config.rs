//! Configuration: defaults, then `fstore.toml`, then environment, then command-line flags
//! (each later source wins). The names here (`warehouse`, `addr`, `memory_limit`, `[s3]`) are a
//! contract that scripts rely on; see docs/sql-reference.md (server and CLI options).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::FStoreError;

/// The default warehouse: a local directory next to where `fstore` runs.
pub const DEFAULT_WAREHOUSE: &str = "./fstore-data";
/// The default Flight SQL address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";
/// Default bound on expression nesting (`max_expression_depth`; DuckDB's default too).
pub const DEFAULT_MAX_EXPRESSION_DEPTH: usize = 1000;

/// Everything the engine and the server need to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `DIR` or `s3://bucket/prefix`.
    pub warehouse: String,
    /// Memory available to queries, e.g. `"4GiB"`; default: 60 % of physical memory.
    pub memory_limit: Option<String>,
    /// Parallelism of query plans; default: number of cores.
    pub target_partitions: Option<usize>,
    /// Object store settings for `s3://` locations (warehouse and external tables).
    pub s3: S3Config,
    /// Flight SQL server settings.
    pub server: ServerConfig,
    /// The online store: `embedded` (default) or `redis[s]://[[user]:password@]host:port[/db]`.
    pub online_store: Option<String>,
    /// Deepest expression a statement may hold (longer `a OR b OR …` chains are refused
    /// with `expression too deep`).
    pub max_expression_depth: usize,
    /// The longest a query may run (`'30s'`, `'5m'`); none: no limit. A session may lower it
    /// with `SET fstore.query_timeout`.
    pub query_timeout: Option<String>,
    /// Where statements may read and write (`[security]`).
    pub security: SecurityConfig,
    /// Where lineage events go (`[lineage]`).
    pub lineage: LineageConfig,
    /// The audit log (`[audit]`).
    pub audit: AuditConfig,
    /// The file this configuration was read from (never readable through SQL).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `[security]`: bounds of the sandbox (see `sandbox`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Locations (`s3://bucket/prefix`, `/data/landing`) that `CREATE EXTERNAL TABLE`,
    /// `COPY … TO` and `EXPORT` may read or write, for everyone; empty: anywhere the other
    /// rules allow.
    pub allowed_locations: Vec<String>,
}

/// `[lineage]`: OpenLineage run events for exports and materializations.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LineageConfig {
    /// The endpoint events are POSTed to (e.g. Marquez's `http://host:5000/api/v1/lineage`);
    /// none: no events are sent.
    pub openlineage_url: Option<String>,
    /// The OpenLineage namespace of FStore's jobs and datasets.
    pub namespace: String,
}

impl Default for LineageConfig {
    fn default() -> Self {
        Self {
            openlineage_url: None,
            namespace: "fstore".to_string(),
        }
    }
}

/// `[audit]`: how long `fstore.audit` keeps its records.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Records older than this many days are deleted (whole daily files); 0 keeps everything.
    pub retention_days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { retention_days: 90 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            warehouse: DEFAULT_WAREHOUSE.to_string(),
            memory_limit: None,
            target_partitions: None,
            s3: S3Config::default(),
            server: ServerConfig::default(),
            online_store: None,
            max_expression_depth: DEFAULT_MAX_EXPRESSION_DEPTH,
            query_timeout: None,
            security: SecurityConfig::default(),
            lineage: LineageConfig::default(),
            audit: AuditConfig::default(),
            source: None,
        }
    }
}

/// S3 (or S3-compatible) settings. Unset fields fall back to the usual AWS environment
/// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, …).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Allow `http://` endpoints (e.g. a local S3-compatible server).
    pub allow_http: Option<bool>,
    /// Path-style (`endpoint/bucket/key`) instead of virtual-hosted-style requests.
    pub path_style: Option<bool>,
}

/// Flight SQL server settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub addr: String,
    pub no_auth: bool,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub metrics_addr: Option<String>,
    pub max_concurrent_queries: usize,
    /// Lifetime of a bearer token, seconds.
    pub token_ttl_secs: u64,
    /// Users created at start-up if they do not exist yet.
    pub users: Vec<UserConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.to_string(),
            no_auth: false,
            tls_cert: None,
            tls_key: None,
            metrics_addr: None,
            max_concurrent_queries: 64,
            token_ttl_secs: 12 * 3600,
            users: Vec::new(),
        }
    }
}

/// A user declared in `fstore.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub admin: bool,
}

impl Config {
    /// Reads `fstore.toml` (or the given file). A missing default file is not an error; a
    /// missing file that was asked for explicitly is.
    pub fn load(path: Option<&Path>) -> Result<Config, FStoreError> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (Path::new("fstore.toml").to_path_buf(), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let mut config: Config = toml::from_str(&text).map_err(|e| {
                    FStoreError::invalid(format!("invalid configuration {}: {e}", path.display()))
                })?;
                config.source = Some(std::path::absolute(&path).unwrap_or(path));
                Ok(config)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                Ok(Config::default())
            }
            Err(e) => Err(FStoreError::invalid(format!(
                "cannot read configuration {}: {e}",
                path.display()
            ))),
        }
    }

    /// The memory limit in bytes.
    pub fn memory_limit_bytes(&self) -> Result<usize, FStoreError> {
        match &self.memory_limit {
            Some(s) => parse_size(s),
            None => Ok(default_memory_limit()),
        }
    }
}

/// 60 % of physical memory (from `/proc/meminfo`), or 4 GiB when it cannot be read.
fn default_memory_limit() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map(|kb| kb * 1024);
    total.map(|t| t / 10 * 6).unwrap_or(4 << 30)
}

/// Parses sizes such as `512MiB`, `4G`, `1.5GB`, `1000000` (bytes). Binary and decimal
/// suffixes are both read as powers of 1024, as memory limits conventionally are.
pub fn parse_size(s: &str) -> Result<usize, FStoreError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| FStoreError::invalid(format!("invalid size '{s}': expected e.g. 4GiB")))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        other => {
            return Err(FStoreError::invalid(format!(
                "invalid size '{s}': unknown unit '{other}' (use B, KiB, MiB, GiB, TiB)"
            )));
        }
    };
    let bytes = value * mult;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(FStoreError::invalid(format!("invalid size '{s}'")));
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn config_file_sections_parse() {
        let c: Config = toml::from_str(
            r#"
            warehouse = "s3://bucket/wh"
            memory_limit = "2GiB"
            [s3]
            endpoint = "http://127.0.0.1:9000"
            allow_http = true
            path_style = true
            [server]
            addr = "0.0.0.0:50051"
            [[server.users]]
            name = "analyst"
            password = "pw"
            "#,
        )
        .unwrap();
        assert_eq!(c.warehouse, "s3://bucket/wh");
        assert_eq!(c.memory_limit_bytes().unwrap(), 2 << 30);
        assert_eq!(c.s3.allow_http, Some(true));
        assert_eq!(c.server.users[0].name, "analyst");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<Config>("warehous = 'x'").is_err());
    }
}
