//! `fstore serve`: the Arrow Flight SQL endpoint of FStore.
//!
//! [`serve`] binds the address, authenticates (or runs with `--no-auth` for development),
//! optionally serves TLS and a Prometheus `/metrics` page, and shuts down gracefully on
//! SIGTERM/SIGINT: it stops accepting connections, lets in-flight queries finish for a grace
//! period, then cancels what is left. Registry writes are durable when their statement
//! returns, so there is nothing to flush.

pub mod auth;
mod caches;
pub mod ipc_check;
pub mod metadata;
pub mod metrics;
mod prepared;
pub mod service;
mod sessions;
pub mod status;
pub mod streams;
pub mod tickets;
pub mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use datafusion::error::Result;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::config::Config;
use crate::engine::Engine;
use crate::error::FStoreError;
use service::FStoreFlightSql;
use streams::RunningQueries;

/// Largest gRPC message accepted or sent (parameter batches, ingest chunks, result chunks).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// How long in-flight queries may run on after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the server until SIGTERM/SIGINT. `on_ready` receives the bound address (useful with
/// port 0).
pub async fn serve(
    engine: Arc<Engine>,
    config: &Config,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let server = &config.server;
    let (auth, generated) = auth::Authenticator::new(Arc::clone(&engine), config).await?;
    if server.no_auth {
        tracing::warn!("authentication is disabled (--no-auth): for local development only");
        eprintln!(
            "warning: authentication is disabled (--no-auth); anyone who can connect has full access"
        );
    }
    if let Some(p) = generated {
        eprintln!(
            "created user 'admin' with password {} (shown once; set FSTORE_ADMIN_PASSWORD to choose it)",
            p.0
        );
    }
    let addr: SocketAddr = server.addr.parse().map_err(|e| {
        FStoreError::invalid(format!(
            "invalid --addr '{}': {e} (expected HOST:PORT)",
            server.addr
        ))
    })?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| FStoreError::unavailable(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| FStoreError::unavailable(format!("cannot listen on {addr}: {e}")))?;

    let metrics = Arc::new(metrics::Metrics::default());
    if let Some(maddr) = &server.metrics_addr {
        let ml = TcpListener::bind(maddr).await.map_err(|e| {
            FStoreError::unavailable(format!("cannot listen on --metrics-addr {maddr}: {e}"))
        })?;
        let m = Arc::clone(&metrics);
        let pool = Arc::clone(&engine.ctx().runtime_env().memory_pool);
        eprintln!(
            "metrics on http://{}/metrics",
            ml.local_addr().map(|a| a.to_string()).unwrap_or_default()
        );
        let registry = Arc::clone(engine.registry());
        tokio::spawn(metrics::serve(ml, move || {
            m.render(pool.reserved()) + &metrics::monitor_gauges(&registry.state())
        }));
    }

    let running = Arc::new(RunningQueries::default());
    let auth = Arc::new(auth);
    let interceptor = auth::AuthInterceptor::new(Arc::clone(&auth), Arc::clone(&metrics));
    let service = FStoreFlightSql::new(
        Arc::clone(&engine),
        auth,
        metrics,
        Arc::clone(&running),
        server.max_concurrent_queries,
    );
    let svc = FlightServiceServer::new(transport::Transport(service))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    // Authentication runs before any handler: a tonic interceptor (see `auth`).
    let svc = tonic::service::interceptor::InterceptedService::new(svc, interceptor);
    let mut builder = Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)));
    let scheme = match (&server.tls_cert, &server.tls_key) {
        (Some(cert), Some(key)) => {
            let read = |p: &str| {
                std::fs::read(p).map_err(|e| FStoreError::invalid(format!("cannot read {p}: {e}")))
            };
            let identity = Identity::from_pem(read(cert)?, read(key)?);
            builder = builder
                .tls_config(ServerTlsConfig::new().identity(identity))
                .map_err(|e| FStoreError::invalid(format!("invalid TLS configuration: {e}")))?;
            "grpc+tls"
        }
        (None, None) => "grpc",
        _ => return Err(FStoreError::invalid("--tls-cert and --tls-key go together").into()),
    };
    eprintln!(
        "FStore Flight SQL server listening on {scheme}://{local} (warehouse {})",
        engine.warehouse().url()
    );
    on_ready(local);

    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
        if let Ok(s) = &s {
            let _ = s.set_nodelay(true);
        }
        s
    });
    let served = builder
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, shutdown_signal(running))
        .await;
    served.map_err(|e| FStoreError::unavailable(format!("server failed: {e}")))?;
    eprintln!("server stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT; after the grace period, cancels the queries still running.
async fn shutdown_signal(running: Arc<RunningQueries>) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    eprintln!(
        "shutting down: {} quer{} in flight, up to {}s to finish",
        running.len(),
        if running.len() == 1 { "y" } else { "ies" },
        SHUTDOWN_GRACE.as_secs()
    );
    tokio::spawn(async move {
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        let n = running.cancel_all();
        if n > 0 {
            eprintln!("cancelled {n} queries still running after the grace period");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        eprintln!("connections still open after the grace period; exiting");
        std::process::exit(0);
    });
}
