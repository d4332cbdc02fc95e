//! Command-line interface: subcommands and how each one runs.

use clap::{Parser, Subcommand};

use gatehouse_auth::AuthConfig;
use gatehouse_common::settings::SharedConfig;
use gatehouse_gateway::GatewayConfig;
use gatehouse_users::UsersConfig;

use crate::dev;

/// Authentication for GraphQL microservices. With no subcommand, runs the whole
/// development stack (`gatehouse dev`).
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub shared: SharedConfig,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole stack in one process: databases, migrations, stream, keys,
    /// seeded admin, then gateway :4000, auth :4001 and users :4002.
    Dev(Box<DevArgs>),
    /// Run the federation gateway alone.
    Gateway(Box<GatewayConfig>),
    /// Run the auth subgraph alone.
    Auth(Box<AuthConfig>),
    /// Run the users subgraph alone.
    Users(UsersConfig),
    /// Create the databases if missing and apply all migrations.
    Migrate(StoreArgs),
    /// Create (or keep) the SYS_ADMIN account; in development also demo accounts.
    Seed(StoreArgs),
    /// Schema tooling: the subgraphs' SDL as the composition script reads it.
    Schema(SchemaArgs),
    /// Print every setting with its variable, default and meaning.
    Config {
        /// `env` (a commented .env file) or `markdown` (the README table).
        #[arg(long, value_enum, default_value = "env")]
        format: crate::config_doc::Format,
    },
    /// Exit 0 when `GET <url>` answers 2xx within two seconds (container health checks).
    Probe {
        /// For example http://127.0.0.1:4000/health.
        url: String,
    },
}

/// Without a subcommand: load a supergraph exactly as the gateway would
/// (composition, planner) and print its public API schema.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SchemaArgs {
    #[command(subcommand)]
    pub command: Option<SchemaCommand>,
    /// The supergraph to check and print.
    #[arg(long, default_value = "schema/supergraph.graphql")]
    pub supergraph: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Print one subgraph's Federation v2 SDL (with its auth directives).
    Sdl {
        #[arg(value_enum)]
        subgraph: SubgraphName,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SubgraphName {
    Auth,
    Users,
}

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    #[command(flatten)]
    pub gateway: GatewayConfig,
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub users: UsersConfig,
    #[command(flatten)]
    pub app: crate::dev_app::AppArgs,
}

#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub users: UsersConfig,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        let command = match self.command {
            Some(command) => command,
            // `cargo run` with no arguments: the development stack with its defaults.
            None => Command::Dev(Box::new(DevArgs::parse_defaults())),
        };
        match command {
            Command::Dev(args) => dev::run_stack(&self.shared, *args).await,
            Command::Gateway(config) => dev::run_gateway(&self.shared, *config).await,
            Command::Auth(config) => dev::run_auth(&self.shared, *config).await,
            Command::Users(config) => dev::run_users(&self.shared, config).await,
            Command::Migrate(args) => dev::migrate(&self.shared, &args.auth, &args.users).await,
            Command::Seed(args) => dev::seed(&self.shared, &args.auth).await,
            Command::Schema(args) => {
                let sdl = match args.command {
                    Some(SchemaCommand::Sdl { subgraph: SubgraphName::Auth }) => gatehouse_auth::schema_sdl(),
                    Some(SchemaCommand::Sdl { subgraph: SubgraphName::Users }) => gatehouse_users::schema_sdl(),
                    None => public_schema(&args.supergraph)?,
                };
                println!("{}", sdl.trim_end());
                Ok(())
            }
            Command::Config { format } => {
                print!("{}", crate::config_doc::render(format));
                Ok(())
            }
            Command::Probe { url } => crate::probe::probe(&url).await,
        }
    }
}

/// The public API schema of a supergraph file, loaded as the gateway loads it.
fn public_schema(path: &std::path::Path) -> anyhow::Result<String> {
    let config = gatehouse_gateway::GatewayConfig::new(path.to_owned(), ([127, 0, 0, 1], 0).into());
    let runtime = gatehouse_gateway::config::RuntimeConfig::try_from(&config)?;
    let supergraph = gatehouse_gateway::supergraph::Supergraph::from_file(path, &runtime)
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
    Ok(supergraph.public_sdl())
}

impl DevArgs {
    /// The `dev` arguments as if `gatehouse dev` had been typed: flags absent,
    /// so every value comes from the environment or its default.
    fn parse_defaults() -> Self {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: DevArgs,
        }
        Wrapper::parse_from(["gatehouse"]).args
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // Catches clashing flag names or ids between the flattened service configs.
        Cli::command().debug_assert();
    }

    #[test]
    fn no_arguments_means_the_development_stack() {
        let cli = Cli::try_parse_from(["gatehouse"]).unwrap();
        assert!(cli.command.is_none());
        let _ = DevArgs::parse_defaults();
    }
}
