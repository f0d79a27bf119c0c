use clap::Parser;
use shophub::app::Hub;
use shophub::cli::{Cli, Command, WorkspaceCommand};
use shophub::config::Config;
use shophub::{demo, telemetry, workspaces};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), &cli.flags.overrides())?;
    telemetry::init_logs(config.log_format);
    let hub = Hub::open(config).await?;

    match cli.command {
        Command::Migrate => println!("migrations applied ({})", hub.store.backend()),
        Command::Workspace {
            command: WorkspaceCommand::Create { name, json },
        } => {
            let created = workspaces::create(hub.store.as_ref(), &name).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "id": created.id, "api_key": created.api_key })
                );
            } else {
                println!(
                    "workspace: {}\napi key:   {}\n(the key is shown only this once)",
                    created.id, created.api_key
                );
            }
        }
        Command::Serve { demo: seed_demo } => {
            let listener = tokio::net::TcpListener::bind(&hub.config.listen).await?;
            let server = hub.start(listener).await?;
            if seed_demo {
                demo::seed(&hub, server.addr).await?;
            }
            let stop = server.shutdown_token();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down");
                stop.cancel();
            });
            server.wait().await?;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
