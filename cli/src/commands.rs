//! What each command does: resolve settings, call the collector, print text
//! or JSON to `out`.

use std::io::Write;

use futures::StreamExt;
use gw502_pki::{self as pki, Role};
use gw502_proto::v1 as pb;
use serde::Serialize;

use crate::args::{
    Audience, Cli, Command, HostsCommand, IncidentsArgs, IncidentsCommand, PkiCommand, RoleArg,
};
use crate::client::{self, Connection, request};
use crate::error::CtlError;
use crate::render::{self, fleet, incidents};
use crate::{customer, json, labels, settings, since, ui};

/// Runs `cli`, reading the environment through `env` and printing to `out`.
pub async fn run(
    cli: Cli,
    env: impl Fn(&str) -> Option<String>,
    out: &mut (dyn Write + Send),
) -> Result<(), CtlError> {
    let as_json = cli.global.json;
    match &cli.command {
        Command::Pki(cmd) => return run_pki(cmd, as_json, out),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "gw502ctl", out);
            return Ok(());
        }
        _ => {}
    }
    let now = gw502_vocab::clock::now_ms();
    // Usage errors first, before any connection attempt.
    let since_ms = match &cli.command {
        Command::Incidents(IncidentsArgs { since: Some(s), .. }) => {
            since::parse_since(s, now).map_err(CtlError::Config)?
        }
        _ => 0,
    };
    if let Command::Ui {
        listen,
        allow_remote,
    } = &cli.command
    {
        ui::check_listen(listen, *allow_remote)?;
    }
    let settings = settings::resolve(&cli.global, env)?;
    client::server_name(&settings.collector)?;
    if let Command::Ui {
        listen,
        allow_remote,
    } = &cli.command
    {
        return run_ui(settings, listen, *allow_remote, out).await;
    }
    let mut conn = client::connect(&settings).await?;
    match cli.command {
        Command::Pki(_) | Command::Completions { .. } | Command::Ui { .. } => Ok(()),
        Command::Hosts {
            show: None,
            labels: wanted,
        } => {
            let r = conn
                .query
                .list_hosts(request(pb::ListHostsRequest {}))
                .await;
            let mut hosts = r
                .map_err(|s| conn.error(&s, "no hosts"))?
                .into_inner()
                .hosts;
            hosts.retain(|h| labels::matches(&wanted, &h.labels));
            if as_json {
                print_json(out, &hosts.iter().map(json::host).collect::<Vec<_>>())
            } else {
                print_text(out, &fleet::hosts(&hosts, now))
            }
        }
        Command::Hosts {
            show: Some(HostsCommand::Show { id }),
            ..
        } => {
            let r = conn
                .query
                .get_host(request(pb::GetHostRequest {
                    host_id: id.clone(),
                }))
                .await;
            let not_found = format!("no host {}", render::escape(&id));
            let detail = r.map_err(|s| conn.error(&s, &not_found))?.into_inner();
            if as_json {
                print_json(out, &json::host_detail(&detail))
            } else {
                print_text(out, &fleet::host_detail(&detail, now))
            }
        }
        Command::Sites { labels: wanted } => {
            let r = conn
                .query
                .list_sites(request(pb::ListSitesRequest {}))
                .await;
            let mut sites = r
                .map_err(|s| conn.error(&s, "no sites"))?
                .into_inner()
                .sites;
            sites.retain(|s| labels::matches(&wanted, &s.labels));
            if as_json {
                print_json(out, &sites.iter().map(json::site).collect::<Vec<_>>())
            } else {
                print_text(out, &fleet::sites(&sites, now))
            }
        }
        Command::Incidents(args) => {
            run_incidents(&mut conn, args, since_ms, as_json, now, out).await
        }
        Command::Deliveries { incident } => {
            let req = pb::ListDeliveriesRequest {
                incident_id: incident.unwrap_or(0),
                limit: 0,
            };
            let not_found = incident
                .map(|i| format!("no incident {i}"))
                .unwrap_or_default();
            let r = conn.query.list_deliveries(request(req)).await;
            let list = r
                .map_err(|s| conn.error(&s, &not_found))?
                .into_inner()
                .deliveries;
            if as_json {
                print_json(out, &list.iter().map(json::delivery).collect::<Vec<_>>())
            } else {
                print_text(out, &fleet::deliveries(&list, now))
            }
        }
        Command::Explain {
            url,
            audience,
            show_hosts,
        } => {
            let not_found = format!("no site serves {}", render::escape(&url));
            let r = conn
                .query
                .explain(request(pb::ExplainRequest { url }))
                .await;
            let resp = r.map_err(|s| conn.error(&s, &not_found))?.into_inner();
            match audience {
                Audience::Operator if as_json => print_json(out, &json::explain(&resp)),
                Audience::Operator => print_text(out, &fleet::explain(&resp)),
                Audience::Customer => {
                    let req = pb::ListIncidentsRequest {
                        site: resp.site.clone(),
                        ..Default::default()
                    };
                    let open = conn
                        .query
                        .list_incidents(request(req))
                        .await
                        .map_err(|s| conn.error(&s, "no incidents"))?
                        .into_inner()
                        .incidents;
                    let c = customer::explain(&resp, &open, show_hosts);
                    if as_json {
                        print_json(out, &c)
                    } else {
                        print_text(out, &customer::render(&c))
                    }
                }
            }
        }
    }
}

async fn run_incidents(
    conn: &mut Connection,
    args: IncidentsArgs,
    since_ms: i64,
    as_json: bool,
    now: i64,
    out: &mut (dyn Write + Send),
) -> Result<(), CtlError> {
    match args.command {
        None => {
            let req = pb::ListIncidentsRequest {
                all: args.all,
                site: args.site.unwrap_or_default(),
                layer: args.layer.unwrap_or_default(),
                owner: args.owner.unwrap_or_default(),
                since_ms,
                limit: 0,
                labels: labels::to_map(&args.labels),
            };
            let r = conn.query.list_incidents(request(req)).await;
            let list = r
                .map_err(|s| conn.error(&s, "no incidents"))?
                .into_inner()
                .incidents;
            if as_json {
                print_json(out, &list.iter().map(json::incident).collect::<Vec<_>>())
            } else {
                print_text(out, &incidents::list(&list, now))
            }
        }
        Some(IncidentsCommand::Show { id }) => {
            let r = conn
                .query
                .get_incident(request(pb::GetIncidentRequest { id }))
                .await;
            let not_found = format!("no incident {id}");
            let detail = r.map_err(|s| conn.error(&s, &not_found))?.into_inner();
            if as_json {
                let j = json::incident_detail(&detail).ok_or(CtlError::NotFound(not_found))?;
                print_json(out, &j)
            } else {
                print_text(out, &incidents::show(&detail, now))
            }
        }
        Some(IncidentsCommand::Watch {
            site,
            labels: wanted,
        }) => {
            let req = pb::WatchIncidentsRequest {
                site: site.unwrap_or_default(),
            };
            let r = conn.query.watch_incidents(req).await;
            let mut stream = r.map_err(|s| conn.error(&s, "no such site"))?.into_inner();
            while let Some(event) = stream.next().await {
                let event = event.map_err(|s| conn.error(&s, "no such site"))?;
                let matching = event
                    .incident
                    .as_ref()
                    .is_some_and(|i| labels::matches(&wanted, &i.labels));
                if !matching {
                    continue;
                }
                if as_json {
                    if let Some(j) = json::incident_event(&event) {
                        serde_json::to_writer(&mut *out, &j).map_err(std::io::Error::from)?;
                        writeln!(out)?;
                    }
                } else {
                    writeln!(out, "{}", incidents::event_line(&event))?;
                }
                out.flush()?;
            }
            Ok(())
        }
    }
}

/// `ui`: binds the listener, says where, and serves until Ctrl-C or SIGTERM.
async fn run_ui(
    settings: settings::Settings,
    listen: &str,
    allow_remote: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), CtlError> {
    let addr = ui::check_listen(listen, allow_remote)?;
    // Unreadable credentials are a usage error now, not a page later.
    for (what, path) in [
        ("CA certificate", &settings.ca),
        ("client certificate", &settings.cert),
        ("client key", &settings.key),
    ] {
        gw502_pki::load_pem(path)
            .map_err(|e| CtlError::Config(format!("cannot load {what}: {e}")))?;
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CtlError::Config(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr()?;
    writeln!(
        out,
        "serving the web view on http://{bound}/ for collector {} (Ctrl-C stops)",
        settings.collector
    )?;
    out.flush()?;
    ui::server::run(listener, settings, allow_remote, shutdown_signal()).await
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn run_pki(cmd: &PkiCommand, as_json: bool, out: &mut (dyn Write + Send)) -> Result<(), CtlError> {
    #[derive(Serialize)]
    struct Written {
        cert: String,
        key: String,
        identity: Option<String>,
        scope: Vec<String>,
    }
    let written = match cmd {
        PkiCommand::Revoke {
            name,
            serial,
            reason,
            dir,
        } => {
            let (name, serial) = (name.as_deref(), serial.as_deref());
            return crate::revocation::revoke(dir, name, serial, *reason, as_json, out);
        }
        PkiCommand::List { dir } => return crate::revocation::list(dir, as_json, out),
        PkiCommand::Init { dir, force } => {
            let p = pki::init_with(dir, *force).map_err(|e| match e {
                pki::PkiError::CaExists { .. } => {
                    CtlError::Config(format!("{e} (pass --force to replace it)"))
                }
                e => CtlError::Pki(e),
            })?;
            Written {
                cert: p.cert.display().to_string(),
                key: p.key.display().to_string(),
                identity: None,
                scope: Vec::new(),
            }
        }
        PkiCommand::Issue {
            role,
            name,
            dir,
            san,
            scope,
        } => {
            let role = match role {
                RoleArg::Agent => Role::Agent,
                RoleArg::Collector => Role::Collector,
                RoleArg::Operator => Role::Operator,
            };
            // A bad or misplaced scope is a usage error, caught before any file is written.
            let scope = pki::Scope::parse(scope).map_err(|e| CtlError::Config(e.to_string()))?;
            if role != Role::Operator && !scope.is_unscoped() {
                return Err(CtlError::Config(
                    pki::PkiError::ScopeNotAllowed { role }.to_string(),
                ));
            }
            let p = pki::issue_scoped(dir, role, name, san, &scope)?;
            Written {
                cert: p.cert.display().to_string(),
                key: p.key.display().to_string(),
                identity: Some(p.identity.uri()),
                scope: scope.uris(),
            }
        }
    };
    if as_json {
        return print_json(out, &written);
    }
    let mut text = format!(
        "wrote {}\nwrote {} (mode 0600)\n",
        written.cert, written.key
    );
    if let Some(id) = &written.identity {
        text.push_str(&format!("identity {id}\n"));
    }
    for uri in &written.scope {
        text.push_str(&format!("scope {uri}\n"));
    }
    print_text(out, &text)
}

fn print_json(out: &mut (dyn Write + Send), value: &impl Serialize) -> Result<(), CtlError> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

fn print_text(out: &mut (dyn Write + Send), text: &str) -> Result<(), CtlError> {
    out.write_all(text.as_bytes())?;
    Ok(())
}
