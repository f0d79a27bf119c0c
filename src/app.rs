//! Startup: open the store, apply migrations, and run the HTTP server, the
//! intake writer and the workers until told to stop.
//!
//! The server takes an already-bound listener, so tests start the real hub on
//! port 0 and know its address before the first request.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::crypto::MasterKey;
use crate::http::{router, AppState};
use crate::intake::Intake;
use crate::store::{self, Store};
use crate::sync::{run_scheduler, Syncer};
use crate::worker::Worker;

use std::time::Duration;

pub struct Hub {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub master_key: MasterKey,
}

impl Hub {
    /// Connects to the configured database and brings its schema up to date.
    pub async fn open(config: Config) -> anyhow::Result<Hub> {
        let url = config.database_url();
        let store = store::connect(&url)
            .await
            .with_context(|| format!("opening database {}", crate::config::redact_url(&url)))?;
        store.migrate().await.context("applying migrations")?;
        let master_key = MasterKey::load_or_create(config.master_key.as_deref(), &config.data_dir)?;
        Ok(Hub {
            config,
            store,
            master_key,
        })
    }

    pub fn worker(&self) -> Worker {
        Worker::new(self.store.clone(), self.syncer())
    }

    pub fn syncer(&self) -> Syncer {
        Syncer::new(
            self.store.clone(),
            self.master_key.clone(),
            self.config.public_url.clone(),
            Arc::new(self.config.complaints.clone()),
        )
    }

    /// Starts serving on `listener` with `config.workers` background workers.
    pub async fn start(&self, listener: TcpListener) -> anyhow::Result<Server> {
        let addr = listener.local_addr()?;
        // Install the recorder before anything counts.
        crate::telemetry::metrics_handle();
        let shutdown = CancellationToken::new();
        let stored = Arc::new(Notify::new());
        let (intake, writer) = Intake::start(self.store.clone(), stored.clone());

        let mut workers: Vec<JoinHandle<()>> = (0..self.config.workers)
            .map(|_| tokio::spawn(self.worker().run(stored.clone(), shutdown.clone())))
            .collect();

        if self.config.sync_interval_seconds > 0 {
            let interval = Duration::from_secs(self.config.sync_interval_seconds);
            let scheduler = run_scheduler(
                self.syncer(),
                self.store.clone(),
                interval,
                shutdown.clone(),
            );
            workers.push(tokio::spawn(scheduler));
        }

        if self.config.triggers.sweep_interval_seconds > 0 {
            workers.push(tokio::spawn(crate::triggers::run(self.store.clone(), self.config.triggers.clone(), shutdown.clone())));
        }

        if self.config.destinations.interval_ms > 0 {
            let engine = crate::destinations::engine::Engine::new(
                self.store.clone(),
                self.master_key.clone(),
                self.config.destinations.clone(),
            );
            workers.push(tokio::spawn(engine.run(shutdown.clone())));
        }

        if self.config.profile_refresh_interval_seconds > 0 {
            let interval = Duration::from_secs(self.config.profile_refresh_interval_seconds);
            let refresh =
                crate::traits::run_periodic(self.store.clone(), interval, shutdown.clone());
            workers.push(tokio::spawn(refresh));
        }

        let state = AppState {
            store: self.store.clone(),
            master_key: self.master_key.clone(),
            intake,
            syncer: self.syncer(),
        };
        let app = router(state, self.config.body_limit_bytes);
        let stop = shutdown.clone();
        let http = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        tracing::info!(%addr, backend = self.store.backend(), workers = workers.len(), "shophub listening");
        Ok(Server {
            addr,
            shutdown,
            http,
            writer,
            workers,
        })
    }
}

pub struct Server {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    http: JoinHandle<std::io::Result<()>>,
    writer: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

impl Server {
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting requests, finishes those in flight, stores what was
    /// already accepted, and lets each worker finish its current delivery.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the server stops (after its shutdown token is cancelled).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.http.await??;
        // The router and with it every intake handle are gone: the writer
        // drains its queue and ends.
        self.writer.await?;
        for worker in self.workers {
            worker.await?;
        }
        Ok(())
    }
}
