use clap::Parser;
use shophub::app::Hub;
use shophub::cli::{
    Cli, Command, ExportCommand, ProfilesCommand, ResolveCommand, SearchCommand, WorkspaceCommand,
};
use shophub::clock::now_ms;
use shophub::config::Config;
use shophub::{backfill, demo, import, telemetry, workspaces};
use shophub_connectors::poll::Resource;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), &cli.flags.overrides())?;
    telemetry::init_logs(config.log_format);
    let hub = Hub::open(config).await?;

    match cli.command {
        Command::Migrate => println!("migrations applied ({})", hub.store.backend()),
        Command::Backfill {
            connection,
            since,
            resource,
        } => {
            let since = since.as_deref().map(parse_date).transpose()?;
            let resource = resource
                .as_deref()
                .map(|r| {
                    Resource::parse(r).ok_or_else(|| {
                        anyhow::anyhow!("--resource must be orders, customers or reviews")
                    })
                })
                .transpose()?;
            for done in backfill::run(&hub.syncer(), &connection, since, resource, true).await? {
                println!(
                    "{}: {} records in {} pages",
                    done.stream, done.records, done.pages
                );
            }
        }
        Command::Import {
            connection,
            file,
            preset,
            kind,
            map,
        } => {
            let format = import_format(&file, preset, kind, map)?;
            let report = import::run(
                hub.store.as_ref(),
                &connection,
                &file,
                &format,
                &hub.config.complaints,
            )
            .await?;
            for (line, reason) in &report.rejected {
                eprintln!("line {line}: skipped: {reason}");
            }
            println!(
                "{} records loaded, {} lines skipped",
                report.loaded,
                report.rejected.len()
            );
        }
        Command::Resolve {
            command: ResolveCommand::Rebuild { workspace },
        } => {
            let report =
                shophub::resolve::rebuild::rebuild(hub.store.as_ref(), &workspace, now_ms())
                    .await?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Export {
            command: ExportCommand::Profiles { workspace, out, .. },
        } => {
            let written = match out {
                Some(path) => {
                    let file = std::fs::File::create(&path)?;
                    let mut writer = std::io::BufWriter::new(file);
                    shophub::export::profiles(hub.store.as_ref(), &workspace, &mut writer).await?
                }
                None => {
                    let mut stdout = std::io::stdout().lock();
                    shophub::export::profiles(hub.store.as_ref(), &workspace, &mut stdout).await?
                }
            };
            eprintln!("{written} profiles exported");
        }
        Command::Profiles {
            command: ProfilesCommand::Refresh { workspace },
        } => {
            let changed =
                shophub::traits::refresh_workspace(hub.store.as_ref(), &workspace, now_ms())
                    .await?;
            println!("{changed} profiles changed");
        }
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
        Command::Search {
            command: SearchCommand::Reindex { workspace },
        } => {
            let profiles = shophub::search::reindex(hub.store.as_ref(), &workspace).await?;
            println!("{profiles} profiles indexed");
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

fn import_format(
    file: &std::path::Path,
    preset: Option<String>,
    kind: Option<String>,
    map: Option<String>,
) -> anyhow::Result<import::Format> {
    let is_csv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    match (preset, kind, map) {
        (Some(name), None, None) => import::presets::preset(&name)
            .map(import::Format::Csv)
            .ok_or_else(|| anyhow::anyhow!("--preset must be shopify-customers or taobao-orders")),
        (None, Some(kind), Some(map)) => Ok(import::Format::Csv(
            import::presets::custom(&kind, &map).map_err(anyhow::Error::msg)?,
        )),
        (None, None, None) if !is_csv => Ok(import::Format::JsonLines),
        _ => anyhow::bail!(
            "a CSV file needs --preset, or --kind with --map (JSON Lines need neither)"
        ),
    }
}

/// `2026-01-31` (midnight UTC) or a full RFC 3339 time.
fn parse_date(value: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(time.with_timezone(&chrono::Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("--since must be YYYY-MM-DD or RFC 3339"))?;
    Ok(day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
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
