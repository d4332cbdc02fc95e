//! Running services: one at a time, or the whole development stack in one process.

use std::future::Future;

use tokio_util::sync::CancellationToken;

use gatehouse_auth::settings::MailTransportKind;
use gatehouse_auth::AuthConfig;
use gatehouse_common::settings::{Environment, SharedConfig, SharedSettings};
use gatehouse_common::{events, infra, shutdown};
use gatehouse_gateway::GatewayConfig;
use gatehouse_users::UsersConfig;

use crate::cli::DevArgs;
use crate::dev_app::DevApp;

/// Every backing service that did not answer at start-up, reported together.
#[derive(Debug, thiserror::Error)]
#[error("{} backing service(s) unreachable", .0.len())]
pub struct Preflight(pub Vec<infra::Unreachable>);

/// The lines to print for a failed command: one per unreachable service, or
/// the error with its causes on one line.
pub fn error_lines(error: &anyhow::Error) -> Vec<String> {
    if let Some(Preflight(missing)) = error.downcast_ref::<Preflight>() {
        return missing.iter().map(ToString::to_string).collect();
    }
    if let Some(unreachable) = error.downcast_ref::<infra::Unreachable>() {
        return vec![unreachable.to_string()];
    }
    vec![format!("{error:#}")]
}

/// Checks PostgreSQL (each database, created if missing), Redis and NATS at
/// once, so a user with two services down learns about both in one go.
async fn preflight(shared: &SharedConfig, databases: &[&str]) -> anyhow::Result<()> {
    let nats_settings = shared.nats()?;
    let redis_settings = shared.redis();
    let (pg, redis, nats) = tokio::join!(
        futures::future::join_all(databases.iter().map(|url| gatehouse_store::postgres(url, 1))),
        infra::redis(&redis_settings),
        infra::nats(&nats_settings),
    );
    let mut missing: Vec<infra::Unreachable> = Vec::new();
    for result in pg {
        match result {
            Ok(pool) => pool.close().await,
            Err(e) if missing.iter().any(|m| m.url == e.url) => {}
            Err(e) => missing.push(e),
        }
    }
    missing.extend(redis.err());
    missing.extend(nats.err());
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Preflight(missing).into())
    }
}

pub async fn migrate(shared: &SharedConfig, auth: &AuthConfig, users: &UsersConfig) -> anyhow::Result<()> {
    let auth_pool = gatehouse_auth::connect_database(auth).await?;
    let users_pool = gatehouse_users::connect_database(users).await?;
    gatehouse_auth::migrate(&auth_pool).await?;
    gatehouse_users::migrate(&users_pool).await?;
    let settings = shared.resolve()?;
    let nats = infra::nats(&settings.nats).await?;
    events::ensure_stream(&async_nats::jetstream::new(nats), &settings).await?;
    tracing::info!("migrations applied, event stream ready");
    Ok(())
}

pub async fn seed(shared: &SharedConfig, auth: &AuthConfig) -> anyhow::Result<()> {
    let settings = shared.resolve()?;
    let pool = gatehouse_auth::connect_database(auth).await?;
    gatehouse_auth::migrate(&pool).await?;
    let report = gatehouse_auth::seed::seed(&pool, auth, &settings).await?;
    let state = if report.created { "created" } else { "already present" };
    println!("SYS_ADMIN {} ({state})", report.admin_email);
    Ok(())
}

/// `gatehouse keys …`: the signing key ring in the auth database.
pub async fn keys(shared: &SharedConfig, command: crate::cli::KeysCommand) -> anyhow::Result<()> {
    use crate::cli::KeysCommand;
    use gatehouse_auth::keys;
    let settings = shared.resolve()?;
    let config = match &command {
        KeysCommand::List(auth) => auth.as_ref(),
        KeysCommand::Rotate(args) => &args.auth,
        KeysCommand::Retire(args) => &args.auth,
    };
    let pool = gatehouse_auth::connect_database(config).await?;
    gatehouse_auth::migrate(&pool).await?;
    let ring = match &command {
        KeysCommand::List(_) => keys::list(&pool).await?,
        KeysCommand::Rotate(args) => {
            let auth = gatehouse_auth::settings::AuthSettings::resolve(&args.auth, &settings)?;
            let rotation = keys::rotate(&pool, &args.auth, &auth, &settings, args.alg, args.force).await?;
            match (rotation.created, &rotation.promoted) {
                (true, _) => println!("Created the signing key ring."),
                (false, Some(kid)) => println!("Rotated the signing keys: {kid} signs now."),
                (false, None) => println!("The ring had no next key: created one; rotate again once it is published."),
            }
            rotation.keys
        }
        KeysCommand::Retire(args) => {
            let auth = gatehouse_auth::settings::AuthSettings::resolve(&args.auth, &settings)?;
            let ring = keys::retire(&pool, &args.auth, &auth, &args.kid, args.force).await?;
            println!("Retired {}.", args.kid);
            ring
        }
    };
    print!("{}", key_table(&ring));
    Ok(())
}

/// The ring as a table, one key per line.
fn key_table(keys: &[gatehouse_auth::keys::KeyInfo]) -> String {
    let date = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(|at| at.format("%Y-%m-%d %H:%M:%SZ").to_string()).unwrap_or_else(|| "-".into())
    };
    let mut out = format!(
        "{:<43}  {:<5}  {:<8}  {:<9}  {:<20}  {:<20}  {:<20}\n",
        "KID", "ALG", "STATE", "PUBLISHED", "CREATED", "SIGNED FROM", "PUBLISHED UNTIL"
    );
    for key in keys {
        let until = match key.state.as_str() {
            "previous" => date(key.publish_until),
            "retired" => format!("retired {}", date(key.retired_at)),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "{:<43}  {:<5}  {:<8}  {:<9}  {:<20}  {:<20}  {}\n",
            key.kid,
            key.alg,
            key.state,
            if key.published { "yes" } else { "no" },
            date(Some(key.created_at)),
            date(key.activated_at),
            until
        ));
    }
    out
}

/// What production demands of the gateway: no GraphiQL and no
/// introspection unless asked for (also when production came from `--env`,
/// not the variable), and browser origins over HTTPS only.
fn apply_environment(config: &mut GatewayConfig, settings: &SharedSettings) -> anyhow::Result<()> {
    if settings.environment != Environment::Production {
        return Ok(());
    }
    config.graphiql.get_or_insert(false);
    config.introspection.get_or_insert(false);
    if let Some(origin) =
        config.security.cors_origins.iter().find(|o| !o.trim().is_empty() && !o.starts_with("https://"))
    {
        anyhow::bail!("GATEWAY_CORS_ORIGINS must list https:// origins in production, not {origin:?}");
    }
    Ok(())
}

pub async fn run_gateway(shared: &SharedConfig, mut config: GatewayConfig) -> anyhow::Result<()> {
    let settings = shared.resolve()?;
    apply_environment(&mut config, &settings)?;
    let app = gatehouse_gateway::Application::build_with(config, Some(settings)).await?;
    tracing::info!(port = app.port(), "gateway listening");
    serve_until_signal(app.run_until_stopped(shutdown::on_signal())).await
}

pub async fn run_auth(shared: &SharedConfig, config: AuthConfig) -> anyhow::Result<()> {
    preflight(shared, &[&config.database_url]).await?;
    let app = gatehouse_auth::Application::build(config, shared.resolve()?).await?;
    tracing::info!(port = app.port(), "auth subgraph listening");
    serve_until_signal(app.run_until_stopped(shutdown::on_signal())).await
}

pub async fn run_users(shared: &SharedConfig, config: UsersConfig) -> anyhow::Result<()> {
    preflight(shared, &[&config.database_url]).await?;
    let app = gatehouse_users::Application::build(config, shared.resolve()?).await?;
    tracing::info!(port = app.port(), "users subgraph listening");
    serve_until_signal(app.run_until_stopped(shutdown::on_signal())).await
}

async fn serve_until_signal(server: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    server.await?;
    tracing::info!("stopped");
    Ok(())
}

/// The whole stack in one process, for development and the README quick start.
pub async fn run_stack(shared: &SharedConfig, mut args: DevArgs) -> anyhow::Result<()> {
    let settings = shared.resolve()?;
    preflight(shared, &[&args.auth.database_url, &args.users.database_url]).await?;

    // Subgraphs first, so the gateway can be pointed at the ports they got.
    // Each build creates its database if missing and migrates it; the relay
    // and the projection create or update the event stream.
    // Auth sits behind the gateway here; the gateway appends the client's
    // address to X-Forwarded-For, so auth's per-IP limits must look one hop in.
    if args.gateway.forwarded_for && args.auth.trusted_proxy_hops == 0 {
        args.auth.trusted_proxy_hops = 1;
    }
    let (issuer, audience) = (args.auth.issuer.clone(), args.auth.audience.clone());
    let (auth_body_limit, users_body_limit) = (args.auth.max_body_bytes, args.users.max_body_bytes);
    let seed_config = args.auth.clone();
    let auth = gatehouse_auth::Application::build(args.auth, settings.clone()).await?;
    let seeded = gatehouse_auth::seed::seed(auth.service().pool(), &seed_config, &settings).await?;
    let users = gatehouse_users::Application::build(args.users, settings.clone()).await?;
    let app = DevApp::bind(&args.app).await?;
    let mut gateway_config = args.gateway;
    apply_environment(&mut gateway_config, &settings)?;
    if settings.environment == Environment::Development {
        // GraphiQL's sample login runs as it is, with the admin the banner prints.
        gateway_config.graphiql_samples = gatehouse_gateway::http::GraphiqlConfig {
            sample_login: Some(seeded.admin_email.clone()),
            sample_password: seeded.dev_password.clone(),
        };
    }
    wire_gateway_to_local_subgraphs(&mut gateway_config, auth.port(), users.port(), issuer, audience);
    // Requests the subgraphs would refuse as too large are refused at the gateway, by name.
    for (name, bytes) in [("auth", auth_body_limit), ("users", users_body_limit)] {
        let named = gateway_config.subgraph_max_request_bytes.iter().any(|pair| pair.starts_with(&format!("{name}=")));
        if !named {
            gateway_config.subgraph_max_request_bytes.push(format!("{name}={bytes}"));
        }
    }
    if let Some(app) = &app {
        for origin in app.origins() {
            push_missing(&mut gateway_config.security.cors_origins, origin);
        }
    }
    let gateway = gatehouse_gateway::Application::build_with(gateway_config, Some(settings.clone())).await?;

    let ports =
        Ports { gateway: gateway.port(), auth: auth.port(), users: users.port(), app: app.as_ref().map(DevApp::port) };
    let mail = match &auth.service().settings().mail {
        MailTransportKind::Folder(folder) => folder.display().to_string(),
        MailTransportKind::Smtp(_) => "sent over SMTP_URL".to_owned(),
    };
    // A gateway without a supergraph serves unready: the banner says so, with
    // the reason from one more load (which also picks up a file fixed since).
    let served = gateway.gateway();
    let unloaded = match served.store.current() {
        Some(_) => None,
        None => served.store.reload(served.config.supergraph_path.clone(), served.config.clone()).await.err(),
    };
    let banner = banner(&settings, &ports, &mail, &seeded, &served.config, unloaded.as_ref());
    // One write, and a closed stdout (a pipe whose reader went away) must not
    // take the running stack down with it, so the error is deliberately dropped.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), banner.as_bytes());

    // Shutdown runs front to back: the gateway stops accepting and finishes
    // its requests while the subgraphs still answer them, then the
    // subgraphs stop. A service that fails stops the whole stack the same way.
    let stop = shutdown::on_signal();
    let subgraphs = CancellationToken::new();
    let app = async {
        match app {
            Some(app) => app.run_until_stopped(format!("http://localhost:{}", ports.gateway), stop.child_token()).await,
            None => Ok(()),
        }
    };
    let gateway = async {
        let result = run_with_siblings(gateway.run_until_stopped(stop.child_token()), stop.clone()).await;
        subgraphs.cancel();
        result
    };
    let results = tokio::join!(
        gateway,
        run_with_siblings(auth.run_until_stopped(subgraphs.child_token()), stop.clone()),
        run_with_siblings(users.run_until_stopped(subgraphs.child_token()), stop.clone()),
        app,
    );
    results.0?;
    results.1?;
    results.2?;
    tracing::info!("stopped");
    Ok(())
}

/// In one process the gateway talks to the subgraphs it started: their real
/// ports (even when chosen by the OS) unless the operator named other URLs,
/// their JWKS, and their token issuer and audience.
fn wire_gateway_to_local_subgraphs(
    config: &mut GatewayConfig,
    auth_port: u16,
    users_port: u16,
    issuer: String,
    audience: String,
) {
    for (name, port) in [("auth", auth_port), ("users", users_port)] {
        let named = config.subgraph_urls.iter().any(|pair| pair.split('=').next().map(str::trim) == Some(name));
        if !named {
            config.subgraph_urls.push(format!("{name}=http://127.0.0.1:{port}/graphql"));
        }
    }
    // Sessions record the device they were started from.
    push_missing(&mut config.subgraph_propagate_headers, "auth=user-agent".to_owned());
    config.security.jwks_url = format!("http://127.0.0.1:{auth_port}/.well-known/jwks.json");
    config.security.token_issuer = issuer;
    config.security.token_audience = audience;
}

/// Runs one service; when it ends (failure included) the others stop too, so
/// the stack never keeps running half-alive.
async fn run_with_siblings(
    service: impl Future<Output = anyhow::Result<()>>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let result = service.await;
    stop.cancel();
    result
}

/// Adds a setting to a list-valued option unless the user already listed it.
fn push_missing(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// Where the stack's servers ended up listening.
struct Ports {
    gateway: u16,
    auth: u16,
    users: u16,
    app: Option<u16>,
}

/// The start-up banner: where everything listens and how to sign in, or,
/// when the gateway has no supergraph (`unloaded`, why it failed to load),
/// that it answers no GraphQL until a valid one is written.
fn banner(
    settings: &SharedSettings,
    ports: &Ports,
    mail: &str,
    seeded: &gatehouse_auth::seed::SeedReport,
    gateway_config: &gatehouse_gateway::config::RuntimeConfig,
    unloaded: Option<&anyhow::Error>,
) -> String {
    let Ports { gateway, auth, users, app } = ports;
    let mut lines = vec![String::new()];
    match unloaded {
        None => lines.push(format!("  Gatehouse is running ({:?})", settings.environment)),
        Some(error) => {
            let path = &gateway_config.supergraph_path;
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            lines.push(format!(
                "  Gatehouse started WITHOUT A SUPERGRAPH ({:?}): the gateway answers no GraphQL",
                settings.environment
            ));
            lines.push(format!("  Supergraph:  NOT LOADED from {}", path.display()));
            for line in format!("{error:#}").lines().filter(|l| !l.trim().is_empty()) {
                lines.push(format!("               {}", line.trim_end()));
            }
            lines.push(if gateway_config.watch_supergraph {
                "               /ready answers 503 until a valid supergraph is written to that file \
                 (it is watched: saving it reloads)"
                    .to_owned()
            } else {
                "               /ready answers 503 until a valid supergraph is written to that file \
                 and reloaded with SIGHUP (GATEWAY_WATCH_SUPERGRAPH=false: it is not watched)"
                    .to_owned()
            });
        }
    }
    lines.extend([
        format!("  Playground:  http://localhost:{gateway}/graphql"),
        format!("  Gateway:     http://localhost:{gateway}   (health /health, ready /ready, metrics /metrics)"),
        format!("  Auth:        http://localhost:{auth}/graphql"),
        format!("  Users:       http://localhost:{users}/graphql"),
    ]);
    if let Some(app) = app {
        lines.push(format!("  App:         http://localhost:{app}/   (the example single-page app)"));
    }
    lines.push(format!("  Mail:        {mail}"));
    lines.push(match &seeded.dev_password {
        Some(password) => format!("  SYS_ADMIN:   {} / {password}", seeded.admin_email),
        None => format!("  SYS_ADMIN:   {} (password from GATEHOUSE_ADMIN_PASSWORD)", seeded.admin_email),
    });
    for demo in &seeded.demo_accounts {
        lines.push(format!("  {:<13}{} / {}", format!("Demo {}:", demo.role), demo.email, demo.password));
    }
    lines.push("  Stop with Ctrl-C.".to_owned());
    lines.push(String::new());
    lines.push(String::new());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(environment: Environment) -> SharedSettings {
        SharedSettings { environment, ..SharedSettings::for_tests("t:", "T", "t") }
    }

    #[test]
    fn production_turns_graphiql_and_introspection_off_unless_asked_for() {
        let mut config = GatewayConfig::new("s.graphql".into(), "127.0.0.1:0".parse().unwrap());
        apply_environment(&mut config, &settings(Environment::Production)).unwrap();
        assert_eq!((config.graphiql, config.introspection), (Some(false), Some(false)));

        let mut asked = GatewayConfig::new("s.graphql".into(), "127.0.0.1:0".parse().unwrap());
        asked.introspection = Some(true);
        apply_environment(&mut asked, &settings(Environment::Production)).unwrap();
        assert_eq!(asked.introspection, Some(true), "an explicit setting stays");

        let mut development = GatewayConfig::new("s.graphql".into(), "127.0.0.1:0".parse().unwrap());
        apply_environment(&mut development, &settings(Environment::Development)).unwrap();
        assert_eq!((development.graphiql, development.introspection), (None, None));
        let runtime = gatehouse_gateway::config::RuntimeConfig::try_from(&development).unwrap();
        assert!(runtime.introspection, "on by default outside production");
    }

    #[test]
    fn production_refuses_plain_http_browser_origins() {
        let mut config = GatewayConfig::new("s.graphql".into(), "127.0.0.1:0".parse().unwrap());
        config.security.cors_origins = vec!["http://app.example.com".into()];
        let error = apply_environment(&mut config, &settings(Environment::Production)).unwrap_err();
        assert!(error.to_string().contains("https:// origins"), "{error}");
    }
}
