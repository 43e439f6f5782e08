//! `fstore`: the command-line entry point. Parses flags, builds the configuration, and
//! dispatches; everything else lives in the library.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use fstore::cli;
use fstore::cli::output::Format;
use fstore::config::Config;
use fstore::error::user_message;

// The system allocator, on purpose: mimalloc (2026-11-28 to 2026-12-04) saved ~20 % of the
// server's CPU per online lookup, but doubled the peak RSS of batch queries (AS-OF at scale 1:
// 3.0 GB against 1.6 GB; windows: 969 MB against 447 MB) and slowed the AS-OF join by a
// third, with no gain over ADBC (benches/README.md). Memory must stay within the limit.

#[derive(Parser, Debug)]
#[command(
    name = "fstore",
    version,
    about = "FStore: a feature store that is a SQL engine"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct Global {
    /// Warehouse: a local directory or s3://bucket/prefix [default: ./fstore-data]
    #[arg(long, global = true, env = "FSTORE_WAREHOUSE")]
    warehouse: Option<String>,
    /// Configuration file [default: ./fstore.toml if present]
    #[arg(long, global = true, env = "FSTORE_CONFIG")]
    config: Option<PathBuf>,
    /// Memory available to queries, e.g. 4GiB [default: 60% of RAM]
    #[arg(long, global = true, env = "FSTORE_MEMORY_LIMIT")]
    memory_limit: Option<String>,
    /// Parallelism of query plans [default: number of cores]
    #[arg(long, global = true)]
    target_partitions: Option<usize>,
    /// Online store: embedded, or redis[s]://[[user]:password@]host:port[/db] [default: embedded]
    #[arg(long, global = true, env = "FSTORE_ONLINE_STORE")]
    online_store: Option<String>,
    /// Deepest expression a statement may hold [default: 1000]
    #[arg(long, global = true, env = "FSTORE_MAX_EXPRESSION_DEPTH")]
    max_expression_depth: Option<usize>,
    /// The longest a query may run, e.g. 30s or 5m; a session may lower it [default: no limit]
    #[arg(long, global = true, env = "FSTORE_QUERY_TIMEOUT")]
    query_timeout: Option<String>,
    /// Log level: error, warn, info, debug, trace (or a tracing filter)
    #[arg(long, global = true, env = "FSTORE_LOG", default_value = "warn")]
    log_level: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run SQL against the warehouse: -c SQL, -f FILE, SQL on stdin, or an interactive shell
    Sql {
        /// SQL to run (may be repeated; runs in order)
        #[arg(short = 'c', long = "command")]
        commands: Vec<String>,
        /// File of SQL statements (may be repeated; runs in order)
        #[arg(short = 'f', long = "file")]
        files: Vec<PathBuf>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Serve the warehouse over Arrow Flight SQL (ADBC, JDBC, pyarrow, BI tools)
    Serve {
        /// Address to listen on
        #[arg(long, env = "FSTORE_ADDR")]
        addr: Option<String>,
        /// Write the sample data set first if the warehouse has no `transactions` table
        #[arg(long)]
        demo: bool,
        /// Disable authentication (local development only)
        #[arg(long)]
        no_auth: bool,
        /// TLS certificate (PEM); requires --tls-key
        #[arg(long)]
        tls_cert: Option<String>,
        /// TLS private key (PEM)
        #[arg(long)]
        tls_key: Option<String>,
        /// Serve Prometheus metrics at http://ADDR/metrics
        #[arg(long)]
        metrics_addr: Option<String>,
        /// Queries allowed to run at once; more get ResourceExhausted
        #[arg(long)]
        max_concurrent_queries: Option<usize>,
    },
    /// Write the sample data set (tables transactions and products) into the warehouse
    Demo {
        /// Number of transactions
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// Random seed
        #[arg(long, default_value_t = fstore::sample::DEFAULT_SEED)]
        seed: u64,
    },
    /// Write a browsable Markdown catalog of feature groups and sets (features, owners, versions, expectations, drift baselines, online status, lineage)
    Catalog {
        /// Directory to write README.md, groups/ and sets/ into (created if missing)
        #[arg(long)]
        out: PathBuf,
    },
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn config_from(global: &Global) -> Result<Config, String> {
    let mut config = Config::load(global.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(w) = &global.warehouse {
        config.warehouse = w.clone();
    }
    if let Some(m) = &global.memory_limit {
        config.memory_limit = Some(m.clone());
    }
    if let Some(p) = global.target_partitions {
        config.target_partitions = Some(p);
    }
    if let Some(o) = &global.online_store {
        config.online_store = Some(o.clone());
    }
    if let Some(d) = global.max_expression_depth {
        config.max_expression_depth = d;
    }
    if let Some(t) = &global.query_timeout {
        config.query_timeout = Some(t.clone());
    }
    config.memory_limit_bytes().map_err(|e| e.to_string())?;
    if let Some(t) = &config.query_timeout {
        fstore::engine::options::parse_timeout(t).map_err(|e| fstore::error::user_message(&e))?;
    }
    Ok(config)
}

async fn run(cli: Cli) -> Result<(), String> {
    let mut config = config_from(&cli.global)?;
    if let Command::Serve {
        addr,
        no_auth,
        tls_cert,
        tls_key,
        metrics_addr,
        max_concurrent_queries,
        ..
    } = &cli.command
    {
        let s = &mut config.server;
        if let Some(a) = addr {
            s.addr = a.clone();
        }
        s.no_auth |= *no_auth;
        s.tls_cert = tls_cert.clone().or(s.tls_cert.take());
        s.tls_key = tls_key.clone().or(s.tls_key.take());
        s.metrics_addr = metrics_addr.clone().or(s.metrics_addr.take());
        if let Some(n) = max_concurrent_queries {
            s.max_concurrent_queries = *n;
        }
    }
    let err = |e: datafusion::error::DataFusionError| user_message(&e);
    let engine = fstore::open(&config).await.map_err(err)?;
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Sql {
            commands,
            files,
            format,
        } => {
            if commands.is_empty() && files.is_empty() {
                if std::io::stdin().is_terminal() {
                    drop(stdout);
                    return cli::repl::run(&engine, format).await.map_err(err);
                }
                let mut sql = String::new();
                std::io::stdin()
                    .read_to_string(&mut sql)
                    .map_err(|e| format!("cannot read SQL from stdin: {e}"))?;
                return cli::run_script(&engine, &sql, format, &mut stdout)
                    .await
                    .map_err(err);
            }
            for sql in &commands {
                cli::run_script(&engine, sql, format, &mut stdout)
                    .await
                    .map_err(err)?;
            }
            for file in &files {
                let sql = std::fs::read_to_string(file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                cli::run_script(&engine, &sql, format, &mut stdout)
                    .await
                    .map_err(|e| format!("{}: {}", file.display(), user_message(&e)))?;
            }
            Ok(())
        }
        Command::Demo { rows, seed } => cli::demo(&engine, rows, seed, &mut stdout)
            .await
            .map_err(err),
        Command::Catalog { out } => {
            let state = engine.registry().state();
            let summary = cli::catalog::write_catalog(&state, &out)?;
            writeln!(stdout, "catalog written to {}: {summary}", out.display())
                .map_err(|e| format!("cannot write to stdout: {e}"))
        }
        Command::Serve { demo, .. } => {
            drop(stdout);
            if demo
                && !engine
                    .registry()
                    .state()
                    .relations
                    .contains_key("transactions")
            {
                cli::demo(
                    &engine,
                    100_000,
                    fstore::sample::DEFAULT_SEED,
                    &mut std::io::stderr(),
                )
                .await
                .map_err(err)?;
            }
            // Background jobs (scheduled materializations) for as long as the server runs.
            let jobs = tokio::spawn(fstore::jobs::scheduler::run(std::sync::Arc::clone(&engine)));
            let served = fstore::flight::serve(engine, &config, |_| {}).await;
            jobs.abort();
            served.map_err(err)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(fstore::sql::limits::WORKER_STACK_BYTES)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = std::io::stdout().flush();
            eprintln!("error: {}", fstore::warehouse::one_line(&message));
            ExitCode::FAILURE
        }
    }
}
