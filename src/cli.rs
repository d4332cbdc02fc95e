//! Command-line interface: subcommands, how the command line is parsed
//! (with the config file under the environment), and how each command runs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use gatehouse_auth::AuthConfig;
use gatehouse_common::settings::SharedConfig;
use gatehouse_gateway::GatewayConfig;
use gatehouse_users::UsersConfig;

use crate::config_file::{self, Origin, Overlay};
use crate::dev;

/// Authentication for GraphQL microservices. With no subcommand, runs the whole
/// development stack (`gatehouse dev`).
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about)]
pub struct Cli {
    /// A TOML file with the settings of every service, a section each
    /// (`gatehouse.example.toml` lists them all); environment variables and
    /// flags override it. Default: none.
    #[arg(
        long = "config",
        env = "GATEHOUSE_CONFIG",
        value_name = "FILE",
        global = true,
        help_heading = "Every service"
    )]
    pub config: Option<PathBuf>,

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
    /// The auth service's signing keys.
    Keys(KeysArgs),
    /// Schema tooling: the subgraphs' SDL as the composition script reads it.
    Schema(SchemaArgs),
    /// Print every setting with its variable, default and meaning; check a
    /// config file, print its JSON Schema, or show the settings in force.
    Config(ConfigArgs),
    /// Exit 0 when `GET <url>` answers 2xx within two seconds (container health checks).
    Probe {
        /// For example http://127.0.0.1:4000/health.
        url: String,
    },
}

/// Without a subcommand: print every setting (`--format`).
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: Option<ConfigCommand>,
    /// `env` (a commented .env file), `markdown` (the README table) or `toml`
    /// (a commented config file).
    #[arg(long, value_enum, default_value = "env")]
    pub format: crate::config_doc::Format,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file: TOML syntax, unknown sections and keys, values of
    /// the wrong type and values the settings refuse, each with its line and
    /// column. Exits 1 on any error.
    Check {
        /// The config file to check.
        file: PathBuf,
    },
    /// Print the config file's JSON Schema (draft 2020-12), for editors.
    Schema,
    /// Print the settings `gatehouse dev` would run with (from these flags,
    /// the environment, the config file and the defaults), each with where
    /// it comes from; secrets are hidden.
    Show(Box<ShowArgs>),
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Read from the parsed flags, with their sources, not from this struct.
    #[allow(dead_code)]
    #[command(flatten)]
    pub dev: DevArgs,
    /// What `config show` prints, written while the command line is parsed.
    #[arg(skip)]
    pub report: String,
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
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Show the signing key ring: each key's kid, algorithm, state (current,
    /// next, previous, retired), whether JWKS publishes it, and its dates.
    List(Box<AuthConfig>),
    /// Move the key ring along: next → current → previous, and a new next.
    /// Every auth replica picks the change up within
    /// `AUTH_KEYS_RELOAD_SECS`; verifiers already trust the new current key,
    /// published as next since the last rotation. Refused while the next key
    /// is younger than the JWKS cache age plus that interval.
    Rotate(Box<RotateArgs>),
    /// Take a key out of the JWKS and erase its private key: a previous key
    /// once the tokens it signed have expired (sooner with `--force`), or the
    /// next key (replaced by a new one). The current key is rotated away first.
    /// Verifiers drop the key at their next JWKS refresh.
    Retire(Box<RetireArgs>),
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Algorithm of the new next key. Default: `AUTH_SIGNING_ALG`.
    #[arg(long, value_enum)]
    pub alg: Option<gatehouse_auth::keys::Algorithm>,
    /// Promote the next key even if verifiers may not have fetched it yet.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub auth: AuthConfig,
}

#[derive(Debug, clap::Args)]
pub struct RetireArgs {
    /// The key's id, as `gatehouse keys list` shows it.
    pub kid: String,
    /// Retire a previous key even though tokens it signed may still be valid
    /// (a compromised key): they are refused from then on.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub auth: AuthConfig,
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
            Command::Keys(KeysArgs { command }) => dev::keys(&self.shared, command).await,
            Command::Schema(args) => {
                let sdl = match args.command {
                    Some(SchemaCommand::Sdl { subgraph: SubgraphName::Auth }) => gatehouse_auth::schema_sdl(),
                    Some(SchemaCommand::Sdl { subgraph: SubgraphName::Users }) => gatehouse_users::schema_sdl(),
                    None => public_schema(&args.supergraph)?,
                };
                println!("{}", sdl.trim_end());
                Ok(())
            }
            Command::Config(config) => match config.command {
                None => {
                    print!("{}", crate::config_doc::render(config.format));
                    Ok(())
                }
                Some(ConfigCommand::Check { file }) => config_file::check_file(&file),
                Some(ConfigCommand::Schema) => {
                    println!("{}", serde_json::to_string_pretty(&crate::config_doc::json_schema())?);
                    Ok(())
                }
                Some(ConfigCommand::Show(show)) => {
                    print!("{}", show.report);
                    Ok(())
                }
            },
            Command::Probe { url } => crate::probe::probe(&url).await,
        }
    }
}

/// Parses the command line, with the config file (`--config FILE`, else
/// `GATEHOUSE_CONFIG`) laid under the environment: its settings become the
/// environment variables the environment does not already have (see
/// `src/config_file.rs`). Must run before any other thread exists, since it
/// sets environment variables. A config file with an error, or one that
/// cannot be read, ends the process with status 2, as a bad flag does.
pub fn parse() -> Result<Cli, ExitCode> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let file = match config_file::named(&args) {
        Some(_) if needs_no_settings(&args) => None,
        Some((path, origin)) => Some(lay_under_environment(&path, origin)?),
        None => None,
    };
    let command = match &file {
        Some((_, overlay)) => config_file::clear_defaults(Cli::command(), &overlay.cleared),
        None => Cli::command(),
    };
    let mut matches = command.clone().try_get_matches_from(&args).unwrap_or_else(|e| e.exit());
    if matches.subcommand().is_none() {
        // No subcommand: `gatehouse dev`, with the same flags, file and environment.
        let end = args.iter().position(|arg| arg == "--").unwrap_or(args.len());
        args.insert(end, "dev".into());
        matches = command.try_get_matches_from(&args).unwrap_or_else(|e| e.exit());
    }
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some((path, _)) = &file {
        debug_assert_eq!(cli.config.as_deref(), Some(path.as_path()), "clap reads --config as config_file::named");
    }
    if let Some(Command::Config(ConfigArgs { command: Some(ConfigCommand::Show(show)), .. })) = &mut cli.command {
        let show_matches = matches
            .subcommand_matches("config")
            .and_then(|config| config.subcommand_matches("show"))
            .expect("the show subcommand was parsed");
        show.report = config_file::show(show_matches, file.as_ref().map(|(path, overlay)| (path.as_path(), overlay)));
    }
    Ok(cli)
}

/// Reads and checks the config file, prints its problems, and sets the
/// variables it gives that the environment does not have.
fn lay_under_environment(path: &std::path::Path, origin: Origin) -> Result<(PathBuf, Overlay), ExitCode> {
    let checked = config_file::load(path, Some(origin)).map_err(|error| {
        eprintln!("error: {error}");
        ExitCode::from(2)
    })?;
    for problem in &checked.problems {
        eprintln!("{}", problem.render(path));
    }
    if checked.errors() > 0 {
        eprintln!("error: the config file {} (from {origin}) has errors; nothing was started", path.display());
        return Err(ExitCode::from(2));
    }
    let overlay = config_file::overlay(&checked.entries, |var| std::env::var_os(var).is_some());
    for (var, value) in &overlay.set {
        // Sound because no other thread runs yet (see `parse`).
        std::env::set_var(var, value);
    }
    Ok((path.to_owned(), overlay))
}

/// Whether the command reads no setting: `gatehouse config` printing the
/// documentation, checking a file or printing the schema. Those work even
/// when the configured file is broken (`config show` does read it).
fn needs_no_settings(args: &[OsString]) -> bool {
    let Ok(matches) = Cli::command().try_get_matches_from(args) else { return false };
    matches.subcommand_matches("config").is_some_and(|config| config.subcommand_name() != Some("show"))
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
