//! Every setting, its variable, its config-file key, its type, its defaults
//! and what it does, taken from the flag definitions themselves, so that the
//! documentation (`.env.example`, the README table, `gatehouse.example.toml`),
//! the config file's JSON Schema and the config file's checks
//! (`src/config_file.rs`) cannot drift from the code or from each other.
//!
//! Config-file keys follow one rule: a setting belongs to the section of the
//! service whose settings define it (the shared ones are top-level keys), and
//! its key is its environment variable lower-cased, without the section's
//! prefix (`GATEWAY_`, `AUTH_`, `USERS_`, `DEV_APP_`) or, when the variable has
//! none, without `GATEHOUSE_`: `GATEWAY_MAX_BODY_BYTES` is `[gateway]
//! max_body_bytes`, `GATEHOUSE_ADMIN_EMAIL` is `[auth] admin_email`,
//! `SMTP_URL` is `[auth] smtp_url`, `REDIS_URL` is the top-level `redis_url`.

use std::any::TypeId;
use std::sync::OnceLock;

use clap::{Arg, ArgAction, Command, CommandFactory};
use serde_json::{json, Map, Value};

use crate::cli::Cli;

/// Output format of `gatehouse config`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// A commented `.env` file with every variable at its default.
    Env,
    /// A markdown table for the README.
    Markdown,
    /// A commented config file (`gatehouse.example.toml`) with every setting at its default.
    Toml,
}

/// The id of `--config`: a setting of the command line and the environment,
/// not of the file itself.
pub const CONFIG_ARG_ID: &str = "config";

/// Where a setting lives in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Top-level keys: the settings every service shares.
    Shared,
    Gateway,
    Auth,
    Users,
    /// The example app `gatehouse dev` serves.
    App,
}

impl Section {
    pub const ALL: [Section; 5] = [Section::Shared, Section::Gateway, Section::Auth, Section::Users, Section::App];

    /// The section's table name; `None` for the top-level keys.
    pub fn table(self) -> Option<&'static str> {
        match self {
            Section::Shared => None,
            Section::Gateway => Some("gateway"),
            Section::Auth => Some("auth"),
            Section::Users => Some("users"),
            Section::App => Some("app"),
        }
    }

    /// The section of a table name.
    pub fn from_table(name: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|section| section.table() == Some(name))
    }

    /// The prefix its variables drop to become keys.
    fn env_prefix(self) -> &'static str {
        match self {
            Section::Shared => "",
            Section::Gateway => "GATEWAY_",
            Section::Auth => "AUTH_",
            Section::Users => "USERS_",
            Section::App => "DEV_APP_",
        }
    }

    /// The subcommand that runs this service alone (its settings are that
    /// subcommand's own); `App` is what `dev` has besides the services.
    fn subcommand(self) -> Option<&'static str> {
        match self {
            Section::Gateway => Some("gateway"),
            Section::Auth => Some("auth"),
            Section::Users => Some("users"),
            Section::Shared | Section::App => None,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Section::Shared => "Settings every service shares (top-level keys).",
            Section::Gateway => "The federation gateway (`gatehouse gateway`, and the gateway of `gatehouse dev`).",
            Section::Auth => "The auth subgraph (`gatehouse auth`, `migrate`, `seed`, and in `gatehouse dev`).",
            Section::Users => "The users subgraph (`gatehouse users`, `migrate`, and in `gatehouse dev`).",
            Section::App => "The example single-page app `gatehouse dev` serves.",
        }
    }

    /// How messages name a key of this section: `[gateway] listen`, or `redis_url`.
    pub fn name_key(self, key: &str) -> String {
        match self.table() {
            Some(table) => format!("[{table}] {key}"),
            None => key.to_owned(),
        }
    }
}

/// What values a setting takes, as the config file and its schema type them.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    String,
    /// An integer, within the bounds of the field's type.
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    /// A number with a fraction (an integer is accepted too).
    Number,
    Boolean,
    /// One of these words (a `value_enum` setting).
    Choice(Vec<String>),
}

impl Kind {
    /// The kind of values `arg` parses to.
    fn of(arg: &Arg) -> Kind {
        let parser = arg.get_value_parser();
        let type_id = parser.type_id();
        let is = |other: TypeId| type_id == other;
        let bounded = |min: i64, max: i64| Kind::Integer { min: Some(min), max: Some(max) };
        if is(TypeId::of::<bool>()) {
            Kind::Boolean
        } else if is(TypeId::of::<u8>()) {
            bounded(0, u8::MAX.into())
        } else if is(TypeId::of::<u16>()) {
            bounded(0, u16::MAX.into())
        } else if is(TypeId::of::<u32>()) {
            bounded(0, u32::MAX.into())
        } else if is(TypeId::of::<u64>()) || is(TypeId::of::<usize>()) {
            Kind::Integer { min: Some(0), max: None }
        } else if is(TypeId::of::<i8>()) {
            bounded(i8::MIN.into(), i8::MAX.into())
        } else if is(TypeId::of::<i16>()) {
            bounded(i16::MIN.into(), i16::MAX.into())
        } else if is(TypeId::of::<i32>()) {
            bounded(i32::MIN.into(), i32::MAX.into())
        } else if is(TypeId::of::<i64>()) || is(TypeId::of::<isize>()) {
            Kind::Integer { min: None, max: None }
        } else if is(TypeId::of::<f64>()) || is(TypeId::of::<f32>()) {
            Kind::Number
        } else if let Some(values) = parser.possible_values() {
            Kind::Choice(values.filter(|v| !v.is_hide_set()).map(|v| v.get_name().to_owned()).collect())
        } else {
            Kind::String
        }
    }

    /// The TOML type a value of this kind must have, for messages.
    pub fn toml_type(&self) -> &'static str {
        match self {
            Kind::String | Kind::Choice(_) => "a string",
            Kind::Integer { .. } => "an integer",
            Kind::Number => "a number",
            Kind::Boolean => "a boolean",
        }
    }

    /// A value of this kind as JSON (for the schema's defaults).
    fn json(&self, raw: &str) -> Value {
        let typed = match self {
            Kind::Integer { .. } => raw.parse::<i64>().ok().map(Value::from),
            Kind::Number => raw.parse::<f64>().ok().map(Value::from),
            Kind::Boolean => raw.parse::<bool>().ok().map(Value::from),
            Kind::String | Kind::Choice(_) => None,
        };
        typed.unwrap_or_else(|| Value::from(raw))
    }

    /// A value of this kind as TOML.
    pub fn toml(&self, raw: &str) -> String {
        let bare = match self {
            Kind::Integer { .. } => raw.parse::<i64>().is_ok(),
            Kind::Number => raw.parse::<f64>().is_ok_and(f64::is_finite),
            Kind::Boolean => raw == "true" || raw == "false",
            Kind::String | Kind::Choice(_) => false,
        };
        if bare {
            raw.to_owned()
        } else {
            toml_string(raw)
        }
    }

    fn json_schema(&self) -> Value {
        match self {
            Kind::String => json!({ "type": "string" }),
            Kind::Integer { min, max } => {
                let mut schema = json!({ "type": "integer" });
                if let Some(min) = min {
                    schema["minimum"] = (*min).into();
                }
                if let Some(max) = max {
                    schema["maximum"] = (*max).into();
                }
                schema
            }
            Kind::Number => json!({ "type": "number" }),
            Kind::Boolean => json!({ "type": "boolean" }),
            Kind::Choice(values) => json!({ "type": "string", "enum": values }),
        }
    }
}

/// One setting, as every format describes it.
#[derive(Debug, Clone)]
pub struct Setting {
    /// The clap id of its argument.
    pub id: String,
    pub env: String,
    /// Its flag, without the dashes.
    pub long: Option<String>,
    pub section: Section,
    /// Its key in the config file (within `section`).
    pub key: String,
    /// Every default value (several for list settings); empty when it has none.
    pub defaults: Vec<String>,
    pub help: String,
    /// The kind of each value.
    pub kind: Kind,
    /// A list: several values (comma-separated in the environment, an array in the file).
    pub list: bool,
    /// Its value is never printed (`hide_env_values`).
    pub secret: bool,
    /// Whether the config file may set it (everything but `GATEHOUSE_CONFIG`).
    pub in_file: bool,
}

impl Setting {
    /// `[gateway] listen`, or `redis_url`.
    pub fn file_name(&self) -> String {
        self.section.name_key(&self.key)
    }

    /// Its defaults as the environment writes them (a list comma-separated).
    fn env_default(&self) -> Option<String> {
        (!self.defaults.is_empty()).then(|| self.defaults.join(","))
    }

    /// Values of this setting as TOML: an array for a list.
    pub fn toml_value(&self, values: &[String]) -> String {
        if self.list {
            let items: Vec<String> = values.iter().map(|v| self.kind.toml(v)).collect();
            format!("[{}]", items.join(", "))
        } else {
            values.first().map(|v| self.kind.toml(v)).unwrap_or_default()
        }
    }
}

/// The settings of the command line and of `gatehouse dev` (which holds those
/// of all three services and the app), in definition order, each variable once.
pub fn settings() -> &'static [Setting] {
    static SETTINGS: OnceLock<Vec<Setting>> = OnceLock::new();
    SETTINGS.get_or_init(collect)
}

fn collect() -> Vec<Setting> {
    let root: Command = Cli::command();
    let dev = root.find_subcommand("dev").expect("the dev subcommand exists");
    let section_of = |arg: &Arg| {
        Section::ALL
            .into_iter()
            .filter_map(|section| Some((section, root.find_subcommand(section.subcommand()?)?)))
            .find(|(_, command)| command.get_arguments().any(|a| a.get_id() == arg.get_id()))
            .map_or(Section::App, |(section, _)| section)
    };
    let mut seen = std::collections::HashSet::new();
    let shared = root.get_arguments().map(|arg| (arg, Section::Shared));
    let services = dev.get_arguments().map(|arg| (arg, section_of(arg)));
    shared
        .chain(services)
        .filter_map(|(arg, section)| setting(arg, section))
        .filter(|s| seen.insert(s.env.clone()))
        .collect()
}

fn setting(arg: &Arg, section: Section) -> Option<Setting> {
    let env = arg.get_env()?.to_string_lossy().into_owned();
    let defaults = arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
    let help = arg.get_long_help().or_else(|| arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
    let list = arg.get_value_delimiter().is_some() || matches!(arg.get_action(), ArgAction::Append);
    Some(Setting {
        id: arg.get_id().to_string(),
        long: arg.get_long().map(str::to_owned),
        key: file_key(section, &env),
        env,
        section,
        defaults,
        help: help.split_whitespace().collect::<Vec<_>>().join(" "),
        kind: Kind::of(arg),
        list,
        secret: arg.is_hide_env_values_set(),
        in_file: arg.get_id() != CONFIG_ARG_ID,
    })
}

/// The key of a variable in its section (the rule in this module's comment).
fn file_key(section: Section, env: &str) -> String {
    let prefix = section.env_prefix();
    let bare = match env.strip_prefix(prefix) {
        Some(rest) if !prefix.is_empty() => rest,
        _ => env.strip_prefix("GATEHOUSE_").unwrap_or(env),
    };
    bare.to_ascii_lowercase()
}

/// The settings a config file may hold, section by section.
pub fn file_settings() -> impl Iterator<Item = &'static Setting> {
    Section::ALL.into_iter().flat_map(|section| settings().iter().filter(move |s| s.in_file && s.section == section))
}

pub fn render(format: Format) -> String {
    match format {
        Format::Env => render_env(),
        Format::Markdown => render_markdown(),
        Format::Toml => render_toml(),
    }
}

fn render_env() -> String {
    let mut out = String::new();
    out.push_str("# Gatehouse settings: every variable at its default (generated by `gatehouse config`).\n");
    out.push_str("# Copy to .env and uncomment what you change; real environment variables win.\n");
    for s in settings() {
        out.push('\n');
        for line in wrap(&s.help, 76) {
            out.push_str(&format!("# {line}\n"));
        }
        out.push_str(&format!("# {}={}\n", s.env, s.env_default().unwrap_or_default()));
    }
    out
}

fn render_markdown() -> String {
    let mut out = String::from("| Variable | Config file | Default | What it does |\n| --- | --- | --- | --- |\n");
    for s in settings() {
        let default = s.env_default().map(|d| format!("`{d}`")).unwrap_or_else(|| "—".into());
        let key = if s.in_file { format!("`{}`", s.file_name()) } else { "—".into() };
        out.push_str(&format!("| `{}` | {} | {} | {} |\n", s.env, key, default, s.help.replace('|', "\\|")));
    }
    out
}

fn render_toml() -> String {
    let mut out = String::new();
    out.push_str("# Gatehouse config file: every setting at its default (generated by\n");
    out.push_str("# `gatehouse config --format toml`). Load it with `--config FILE` or\n");
    out.push_str("# GATEHOUSE_CONFIG=FILE; environment variables and flags override it.\n");
    out.push_str("# Uncomment what you change; a setting without a default has no value here.\n");
    out.push_str("# Check a file with `gatehouse config check FILE`; `gatehouse config schema`\n");
    out.push_str("# prints its JSON Schema.\n");
    for section in Section::ALL {
        if let Some(table) = section.table() {
            out.push_str(&format!("\n# {}\n[{table}]\n", section.description()));
        }
        for s in file_settings().filter(|s| s.section == section) {
            out.push('\n');
            for line in wrap(&format!("{} ({})", s.help, s.env), 76) {
                out.push_str(&format!("# {line}\n"));
            }
            match s.defaults.is_empty() {
                true if !s.list => out.push_str(&format!("# {} =\n", s.key)),
                _ => out.push_str(&format!("# {} = {}\n", s.key, s.toml_value(&s.defaults))),
            }
        }
    }
    out
}

/// The JSON Schema (draft 2020-12) of the config file.
pub fn json_schema() -> Value {
    let mut root = Map::new();
    for section in Section::ALL {
        let mut properties = Map::new();
        for s in file_settings().filter(|s| s.section == section) {
            properties.insert(s.key.clone(), property(s));
        }
        match section.table() {
            None => root.extend(properties),
            Some(table) => {
                let object = json!({
                    "description": section.description(),
                    "type": "object",
                    "additionalProperties": false,
                    "properties": properties,
                });
                root.insert(table.to_owned(), object);
            }
        }
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Gatehouse config file",
        "description": "Settings of every Gatehouse service (`gatehouse --config FILE`, or GATEHOUSE_CONFIG). \
            Environment variables and flags override the file. Generated by `gatehouse config schema`.",
        "type": "object",
        "additionalProperties": false,
        "properties": root,
    })
}

fn property(s: &Setting) -> Value {
    let flag = s.long.as_deref().map(|long| format!(", flag `--{long}`")).unwrap_or_default();
    let mut schema =
        if s.list { json!({ "type": "array", "items": s.kind.json_schema() }) } else { s.kind.json_schema() };
    schema["description"] = format!("{}\n\nEnvironment variable `{}`{flag}.", s.help, s.env).into();
    if s.list {
        schema["default"] = s.defaults.iter().map(|d| s.kind.json(d)).collect::<Vec<_>>().into();
    } else if let Some(default) = s.defaults.first() {
        schema["default"] = s.kind.json(default);
    }
    schema
}

/// A TOML basic string.
pub fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("never empty");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(env: &str) -> &'static Setting {
        settings().iter().find(|s| s.env == env).unwrap_or_else(|| panic!("{env} is a setting"))
    }

    #[test]
    fn every_variable_appears_once_with_its_help() {
        let all = settings();
        assert!(all.iter().any(|s| s.env == "GATEWAY_SUPERGRAPH"));
        assert!(all.iter().any(|s| s.env == "AUTH_DATABASE_URL"));
        assert!(all.iter().any(|s| s.env == "USERS_DATABASE_URL"));
        assert!(all.iter().any(|s| s.env == "REDIS_URL"));
        for s in all {
            assert!(!s.help.is_empty(), "{} has no documentation", s.env);
        }
        let mut names: Vec<_> = all.iter().map(|s| &s.env).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn keys_follow_the_naming_rule_and_are_unique_in_their_section() {
        let key = |env: &str| find(env).file_name();
        assert_eq!(key("GATEWAY_MAX_BODY_BYTES"), "[gateway] max_body_bytes");
        assert_eq!(key("GATEWAY_MAX_CONNECTIONS"), "[gateway] max_connections");
        assert_eq!(key("AUTH_LISTEN"), "[auth] listen");
        assert_eq!(key("GATEHOUSE_ADMIN_EMAIL"), "[auth] admin_email");
        assert_eq!(key("SMTP_URL"), "[auth] smtp_url");
        assert_eq!(key("USERS_PROJECTION_ACK_WAIT_SECS"), "[users] projection_ack_wait_secs");
        assert_eq!(key("DEV_APP_LISTEN"), "[app] listen");
        assert_eq!(key("REDIS_URL"), "redis_url");
        assert_eq!(key("GATEHOUSE_ENV"), "env");
        assert_eq!(key("GATEHOUSE_IDENTITY_SECRET"), "identity_secret");
        assert!(!find("GATEHOUSE_CONFIG").in_file, "the file does not name another file");
        let mut names: Vec<String> = file_settings().map(Setting::file_name).collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "two settings share a key");
        for s in file_settings() {
            assert!(s.long.is_some(), "{} has no flag (the file's values are checked as flags)", s.env);
            if s.section == Section::Shared {
                assert!(Section::from_table(&s.key).is_none(), "{} hides a section", s.key);
            }
        }
    }

    #[test]
    fn types_come_from_the_value_parsers() {
        assert_eq!(find("GATEWAY_MAX_DEPTH").kind, Kind::Integer { min: Some(0), max: None });
        assert_eq!(find("AUTH_RSA_KEY_BITS").kind, Kind::Integer { min: Some(0), max: Some(u32::MAX.into()) });
        assert_eq!(find("GATEWAY_CSRF").kind, Kind::Boolean);
        assert_eq!(find("GATEWAY_INTROSPECTION").kind, Kind::Boolean);
        assert_eq!(find("GATEHOUSE_ENV").kind, Kind::Choice(vec!["development".into(), "production".into()]));
        assert_eq!(find("GATEWAY_LISTEN").kind, Kind::String);
        assert!(find("GATEWAY_CORS_ORIGINS").list && !find("GATEWAY_LISTEN").list);
        assert!(find("GATEHOUSE_IDENTITY_SECRET").secret && find("AUTH_REFRESH_SECRET").secret);
        assert!(!find("AUTH_LISTEN").secret);
    }

    #[test]
    fn list_settings_keep_every_default() {
        let csrf = find("GATEWAY_CSRF_REQUIRED_HEADERS");
        assert_eq!(csrf.defaults, ["x-apollo-operation-name", "apollo-require-preflight"]);
        let both = "x-apollo-operation-name,apollo-require-preflight";
        assert!(render(Format::Env).contains(&format!("# GATEWAY_CSRF_REQUIRED_HEADERS={both}\n")));
        assert!(render(Format::Markdown).contains(&format!("| `{both}` |")));
        assert!(render(Format::Toml)
            .contains("# csrf_required_headers = [\"x-apollo-operation-name\", \"apollo-require-preflight\"]\n"));
        let schema = json_schema();
        let property = &schema["properties"]["gateway"]["properties"]["csrf_required_headers"];
        assert_eq!(property["default"], json!(["x-apollo-operation-name", "apollo-require-preflight"]));
        assert_eq!(property["type"], "array");
        assert_eq!(property["items"]["type"], "string");
    }

    #[test]
    fn the_schema_closes_every_object_and_types_and_documents_every_property() {
        let schema = json_schema();
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(schema["additionalProperties"], false);
        let mut checked = 0;
        for section in Section::ALL {
            let properties = match section.table() {
                Some(table) => {
                    let object = &schema["properties"][table];
                    assert_eq!(object["additionalProperties"], false, "[{table}]");
                    object["properties"].as_object().unwrap()
                }
                None => schema["properties"].as_object().unwrap(),
            };
            for s in file_settings().filter(|s| s.section == section) {
                let property = &properties[&s.key];
                assert!(property["type"].is_string(), "{} has no type", s.env);
                assert!(property["description"].as_str().unwrap().contains(&s.env), "{}", s.env);
                checked += 1;
            }
        }
        assert_eq!(checked, file_settings().count());
        let gateway = &schema["properties"]["gateway"]["properties"];
        assert_eq!(gateway["max_body_bytes"]["default"], 2 * 1024 * 1024);
        assert_eq!(gateway["max_body_bytes"]["minimum"], 0);
        assert_eq!(gateway["csrf"]["default"], true);
        assert_eq!(schema["properties"]["env"]["enum"], json!(["development", "production"]));
        assert!(gateway["oidc_issuer"].get("default").is_none(), "no default, none invented");
    }

    #[test]
    fn the_checked_in_env_example_is_current() {
        let checked_in = include_str!("../.env.example");
        assert!(checked_in == render(Format::Env), ".env.example is out of date: run scripts/update-docs.sh");
    }

    #[test]
    fn the_checked_in_example_config_file_is_current() {
        let checked_in = include_str!("../gatehouse.example.toml");
        assert!(
            checked_in == render(Format::Toml),
            "gatehouse.example.toml is out of date: run scripts/update-docs.sh"
        );
    }

    #[test]
    fn the_readme_configuration_table_is_current() {
        let readme = include_str!("../README.md");
        let start = readme.find("<!-- config:start").expect("README has the config:start marker");
        let start = start + readme[start..].find("-->\n").expect("the marker closes") + 4;
        let end = readme.find("<!-- config:end -->").expect("README has the config:end marker");
        assert!(
            readme[start..end] == render(Format::Markdown),
            "the README configuration table is out of date: run scripts/update-docs.sh"
        );
    }

    #[test]
    fn toml_strings_escape_what_they_must() {
        assert_eq!(toml_string(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(toml_string("x\ny\u{1}"), r#""x\ny\u0001""#);
    }

    #[test]
    fn long_help_wraps_without_losing_words() {
        let text = "one two three four five six seven eight nine ten";
        assert_eq!(wrap(text, 10).join(" "), text);
        assert!(wrap(text, 10).iter().all(|l| l.len() <= 10));
    }
}
