//! The config file (`--config FILE`, `GATEHOUSE_CONFIG`): one TOML file with
//! the settings of every service, checked against the flag definitions and
//! laid under the environment.
//!
//! Its keys, types and values are those of the flags ([`crate::config_doc`]):
//! every value is run through the value parser of its flag, so the file
//! accepts exactly what `--flag` and the variable accept, and an unknown key
//! or a refused value stops start-up with its line instead of falling back to
//! a default.
//!
//! Precedence is default < file < environment < flag: each value the file
//! sets becomes its environment variable, unless the environment already has
//! that variable, before the command line is parsed (as `.env` is loaded).
//! Values the file gives thus count as given, as the environment's do, so
//! rules between settings (a TLS certificate needs its key) hold whichever of
//! file, environment and flags each comes from; clap applies such rules to
//! given values only, not to defaults, which is why the file's values are not
//! made into defaults. An empty array is the one value the environment cannot
//! carry: it clears the setting's default instead.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgMatches, Command, CommandFactory};
use toml_edit::{Item, Key, TableLike, Value};

use crate::cli::Cli;
use crate::config_doc::{file_settings, Kind, Section, Setting};

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// Something wrong in a config file, at a line and column (1-based) when it
/// is about one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub position: Option<(usize, usize)>,
    pub severity: Severity,
    pub message: String,
}

impl Problem {
    fn error(position: (usize, usize), message: String) -> Self {
        Self { position: Some(position), severity: Severity::Error, message }
    }

    fn warning(position: Option<(usize, usize)>, message: String) -> Self {
        Self { position, severity: Severity::Warning, message }
    }

    /// `FILE:LINE:COLUMN: error: message`, as compilers write it.
    pub fn render(&self, file: &Path) -> String {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.position {
            Some((line, column)) => format!("{}:{line}:{column}: {severity}: {}", file.display(), self.message),
            None => format!("{}: {severity}: {}", file.display(), self.message),
        }
    }
}

/// A setting the file gives, with its values as the environment takes them.
#[derive(Debug, Clone)]
pub struct Entry {
    pub setting: &'static Setting,
    /// One value, or the elements of a list.
    pub values: Vec<String>,
    /// Line and column of the value.
    pub position: (usize, usize),
}

/// What checking a file found: the settings it gives, and its problems.
#[derive(Debug, Default)]
pub struct Checked {
    pub entries: Vec<Entry>,
    pub problems: Vec<Problem>,
}

impl Checked {
    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.severity == Severity::Error).count()
    }
}

/// Checks a config file's text: TOML syntax, sections, keys, value types, and
/// each value against its flag's parser.
pub fn check(text: &str) -> Checked {
    let mut checked = Checked::default();
    let document = match toml_edit::Document::parse(text) {
        Ok(document) => document,
        Err(error) => {
            let at = position(text, error.span().map_or(0, |span| span.start));
            checked.problems.push(Problem::error(at, format!("invalid TOML: {}", error.message())));
            return checked;
        }
    };
    let mut walker = Walker { text, checked: &mut checked };
    walker.table(Section::Shared, document.as_table());
    check_values(&mut checked);
    checked.problems.sort_by_key(|p| p.position);
    checked
}

struct Walker<'a> {
    text: &'a str,
    checked: &'a mut Checked,
}

impl Walker<'_> {
    fn at(&self, span: Option<std::ops::Range<usize>>) -> (usize, usize) {
        position(self.text, span.map_or(0, |span| span.start))
    }

    fn error(&mut self, span: Option<std::ops::Range<usize>>, message: String) {
        let at = self.at(span);
        self.checked.problems.push(Problem::error(at, message));
    }

    fn table(&mut self, section: Section, table: &dyn TableLike) {
        for (name, _) in table.iter() {
            let (key, item) = table.get_key_value(name).expect("the key was just listed");
            self.entry(section, key, item);
        }
    }

    fn entry(&mut self, section: Section, key: &Key, item: &Item) {
        let name = key.get();
        if let Some(setting) = file_settings().find(|s| s.section == section && s.key == name) {
            self.value(setting, key, item);
            return;
        }
        if section == Section::Shared {
            if let Some(table) = Section::from_table(name) {
                match item.as_table_like() {
                    Some(inner) => self.table(table, inner),
                    None => self.error(
                        key.span(),
                        format!("[{name}] must be a table of settings, not {}", a(item.type_name())),
                    ),
                }
                return;
            }
        }
        let what = match (section, item.is_table_like()) {
            (Section::Shared, true) => format!("unknown section [{name}]"),
            _ => format!("unknown setting `{}`", section.name_key(name)),
        };
        let hint = hint(section, name, item.is_table_like());
        self.error(key.span(), format!("{what}{hint}"));
    }

    fn value(&mut self, setting: &'static Setting, key: &Key, item: &Item) {
        let name = setting.file_name();
        let Some(value) = item.as_value() else {
            let expected = expected(setting);
            self.error(key.span(), format!("{name} must be {expected}, not {}", a(item.type_name())));
            return;
        };
        let values = if setting.list {
            let Some(array) = value.as_array() else {
                let expected = expected(setting);
                let found = a(value.type_name());
                self.error(value.span(), format!("{name} must be {expected}, not {found} (write [\"…\"])"));
                return;
            };
            let mut values = Vec::new();
            for (index, element) in array.iter().enumerate() {
                match scalar(&setting.kind, element) {
                    Ok(text) if text.contains(',') => self.error(
                        element.span(),
                        format!(
                            "{name}: element {} holds a comma, where the list would be split; \
                             write its parts as separate elements",
                            index + 1
                        ),
                    ),
                    Ok(text) => values.push(text),
                    Err(found) => self.error(
                        element.span(),
                        format!("{name}: element {} must be {}, not {found}", index + 1, setting.kind.toml_type()),
                    ),
                }
            }
            values
        } else {
            match scalar(&setting.kind, value) {
                Ok(text) => vec![text],
                Err(found) => {
                    self.error(value.span(), format!("{name} must be {}, not {found}", setting.kind.toml_type()));
                    return;
                }
            }
        };
        let position = self.at(value.span());
        self.checked.entries.push(Entry { setting, values, position });
    }
}

/// A scalar TOML value as its flag would take it, or what it is instead.
fn scalar(kind: &Kind, value: &Value) -> Result<String, String> {
    let text = match (kind, value) {
        (Kind::String | Kind::Choice(_), Value::String(s)) => s.value().clone(),
        (Kind::Integer { .. } | Kind::Number, Value::Integer(i)) => i.value().to_string(),
        (Kind::Number, Value::Float(f)) => f.value().to_string(),
        (Kind::Boolean, Value::Boolean(b)) => b.value().to_string(),
        (_, other) => return Err(a(other.type_name())),
    };
    Ok(text)
}

fn expected(setting: &Setting) -> String {
    match setting.list {
        true => format!("an array of {}s", setting.kind.toml_type().trim_start_matches("an ").trim_start_matches("a ")),
        false => setting.kind.toml_type().to_owned(),
    }
}

/// "an integer", "a string", "an inline table".
fn a(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {type_name}")
}

/// Where an unknown key may have been meant to go.
fn hint(section: Section, name: &str, is_table: bool) -> String {
    let lower = name.to_ascii_lowercase();
    // The right key in the wrong place.
    let elsewhere: Vec<String> = file_settings()
        .filter(|s| s.key == lower && s.section != section)
        .map(|s| match s.section.table() {
            Some(table) => format!("[{table}]"),
            None => "the top level (above the first [section])".to_owned(),
        })
        .collect();
    if !elsewhere.is_empty() {
        return format!("; `{lower}` belongs in {}", elsewhere.join(" or "));
    }
    // A variable's name instead of its key.
    if let Some(s) = file_settings().find(|s| s.env.eq_ignore_ascii_case(name)) {
        return format!("; the file names {} as `{}`", s.env, s.file_name());
    }
    // A misspelling.
    let candidates: Vec<String> = match (section, is_table) {
        (Section::Shared, true) => Section::ALL.iter().filter_map(|s| s.table()).map(|t| format!("[{t}]")).collect(),
        _ => file_settings().filter(|s| s.section == section).map(|s| format!("`{}`", s.key)).collect(),
    };
    let bare = |candidate: &str| candidate.trim_matches(['[', ']', '`']).to_owned();
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&lower, &bare(c)), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .map(|(_, candidate)| format!("; did you mean {candidate}?"))
        .unwrap_or_default()
}

/// Runs each value through its flag's parser (the same command line the
/// services parse, without the environment), and notes settings that need
/// another one the file does not give.
fn check_values(checked: &mut Checked) {
    let command = without_env(Cli::command());
    let given: Vec<&str> = checked.entries.iter().map(|e| e.setting.id.as_str()).collect();
    let mut problems = Vec::new();
    for entry in &checked.entries {
        let setting = entry.setting;
        let Some(long) = &setting.long else { continue };
        let mut args: Vec<OsString> = vec!["gatehouse".into(), "dev".into()];
        args.extend(entry.values.iter().map(|v| OsString::from(format!("--{long}={v}"))));
        if entry.values.is_empty() {
            continue;
        }
        let Err(error) = command.clone().try_get_matches_from(args) else { continue };
        if error.kind() == ErrorKind::MissingRequiredArgument {
            for needed in missing(&error) {
                if !given.contains(&needed.id.as_str()) {
                    let message = format!(
                        "{} needs {} as well ({}), which this file does not set; the environment or a flag must",
                        setting.file_name(),
                        needed.file_name(),
                        needed.env
                    );
                    problems.push(Problem::warning(Some(entry.position), message));
                }
            }
            continue;
        }
        let name = setting.file_name();
        let reason = refusal(&error, setting);
        let message = match (setting.secret, entry.values.as_slice()) {
            (false, [one]) if !setting.list => format!("{name} = {} is refused: {reason}", setting.kind.toml(one)),
            _ => format!("{name} is refused: {reason}"),
        };
        problems.push(Problem::error(entry.position, message));
    }
    checked.problems.extend(problems);
}

/// Why a value parser refused a value, without the value when it is a secret.
fn refusal(error: &clap::Error, setting: &Setting) -> String {
    match (error.kind(), &setting.kind) {
        (ErrorKind::InvalidValue, Kind::Choice(values)) => {
            let values: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
            format!("expected one of {}", values.join(", "))
        }
        (ErrorKind::ValueValidation, _) => match std::error::Error::source(error) {
            Some(source) => source.to_string(),
            None => "not a valid value".to_owned(),
        },
        _ if setting.secret => "not a valid value".to_owned(),
        _ => {
            let rendered = error.kind().as_str().unwrap_or("not a valid value");
            rendered.trim_end_matches('.').to_owned()
        }
    }
}

/// The settings a `MissingRequiredArgument` error names.
fn missing(error: &clap::Error) -> Vec<&'static Setting> {
    let Some(ContextValue::Strings(flags)) = error.get(ContextKind::InvalidArg) else { return Vec::new() };
    flags
        .iter()
        .filter_map(|flag| flag.split_whitespace().next()?.strip_prefix("--"))
        .filter_map(|long| file_settings().find(|s| s.long.as_deref() == Some(long)))
        .collect()
}

/// The command line with no environment variable read, for checking values alone.
fn without_env(command: Command) -> Command {
    command.mut_args(|arg| arg.env(None::<&str>)).mut_subcommands(without_env)
}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
}

/// Where the config file was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Environment,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Flag => "--config",
            Origin::Environment => "GATEHOUSE_CONFIG",
        })
    }
}

/// The config file named on the command line (the last `--config FILE` or
/// `--config=FILE` before a `--`), else by `GATEHOUSE_CONFIG` (when not empty).
pub fn named(args: &[OsString]) -> Option<(PathBuf, Origin)> {
    let mut found = None;
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            found = args.next().map(PathBuf::from);
        } else if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            found = Some(PathBuf::from(path));
        }
    }
    match found {
        Some(path) => Some((path, Origin::Flag)),
        None => std::env::var_os("GATEHOUSE_CONFIG").filter(|v| !v.is_empty()).map(|v| (v.into(), Origin::Environment)),
    }
}

/// A file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the config file {}{}: {source}", path.display(), origin.map(|o| format!(" (from {o})")).unwrap_or_default())]
pub struct Unreadable {
    pub path: PathBuf,
    /// How it was named, when it was named to configure the services.
    pub origin: Option<Origin>,
    pub source: std::io::Error,
}

/// Reads and checks a config file, adding a warning when it holds secrets
/// other users can read.
pub fn load(path: &Path, origin: Option<Origin>) -> Result<Checked, Unreadable> {
    let unreadable = |source| Unreadable { path: path.to_owned(), origin, source };
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let mut checked = check(&text);
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    if let Some(warning) = exposed_secrets(&metadata, &checked.entries) {
        checked.problems.push(warning);
    }
    Ok(checked)
}

#[cfg(unix)]
fn exposed_secrets(metadata: &std::fs::Metadata, entries: &[Entry]) -> Option<Problem> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    let secrets: Vec<String> =
        entries.iter().filter(|e| e.setting.secret).map(|e| format!("`{}`", e.setting.file_name())).collect();
    (mode & 0o077 != 0 && !secrets.is_empty()).then(|| {
        let message = format!(
            "holds secrets ({}) and other users may read it (mode {mode:o}): `chmod 600` it, \
             or give secrets in the environment instead",
            secrets.join(", ")
        );
        Problem::warning(None, message)
    })
}

#[cfg(not(unix))]
fn exposed_secrets(_: &std::fs::Metadata, _: &[Entry]) -> Option<Problem> {
    None
}

/// `gatehouse config check FILE`: every problem on stderr, `FILE: ok` on
/// stdout when there is no error (warnings do not fail the check).
pub fn check_file(path: &Path) -> anyhow::Result<()> {
    let checked = load(path, None)?;
    for problem in &checked.problems {
        eprintln!("{}", problem.render(path));
    }
    match checked.errors() {
        0 => {
            println!("{}: ok", path.display());
            Ok(())
        }
        1 => anyhow::bail!("{}: 1 error", path.display()),
        errors => anyhow::bail!("{}: {errors} errors", path.display()),
    }
}

/// What laying a file under the environment does.
#[derive(Debug, Default)]
pub struct Overlay {
    /// Variables to set: the file's values the environment does not override.
    pub set: Vec<(String, String)>,
    /// Ids of list settings the file empties (their defaults are dropped).
    pub cleared: Vec<String>,
    /// Where in the file each variable it set, or each setting it cleared, comes from.
    pub lines: HashMap<String, usize>,
}

/// The file's settings the environment (`is_set`) does not already give.
pub fn overlay(entries: &[Entry], is_set: impl Fn(&str) -> bool) -> Overlay {
    let mut overlay = Overlay::default();
    for entry in entries {
        let setting = entry.setting;
        if is_set(&setting.env) {
            continue;
        }
        if setting.list && entry.values.is_empty() {
            overlay.cleared.push(setting.id.clone());
        } else {
            overlay.set.push((setting.env.clone(), entry.values.join(",")));
        }
        overlay.lines.insert(setting.env.clone(), entry.position.0);
    }
    overlay
}

/// The command line with the defaults of `cleared` settings dropped, in
/// every subcommand that has them.
pub fn clear_defaults(mut command: Command, cleared: &[String]) -> Command {
    for id in cleared {
        if command.get_arguments().any(|arg| arg.get_id() == id.as_str()) {
            command = command.mut_arg(id, |arg| arg.default_values(Vec::<&str>::new()));
        }
    }
    command.mut_subcommands(|sub| clear_defaults(sub, cleared))
}

/// `gatehouse config show`: every setting the way `gatehouse dev` would take
/// it from `matches` (the `show` subcommand's), and where it comes from.
pub fn show(matches: &ArgMatches, file: Option<(&Path, &Overlay)>) -> String {
    let mut out = String::from(
        "# The settings `gatehouse dev` runs with, as parsed (flag > environment > config file > default).\n",
    );
    match file {
        Some((path, _)) => out.push_str(&format!("# Config file: {}\n", path.display())),
        None => out.push_str("# Config file: none\n"),
    }
    for section in Section::ALL {
        if let Some(table) = section.table() {
            out.push_str(&format!("\n[{table}]\n"));
        }
        for setting in file_settings().filter(|s| s.section == section) {
            out.push_str(&shown(matches, setting, file));
            out.push('\n');
        }
    }
    out
}

fn shown(matches: &ArgMatches, setting: &Setting, file: Option<(&Path, &Overlay)>) -> String {
    use clap::parser::ValueSource;
    let values: Option<Vec<String>> =
        matches.get_raw(&setting.id).map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect());
    let from_file = file.and_then(|(path, overlay)| {
        let line = overlay.lines.get(&setting.env)?;
        Some(format!("file {}:{line}", path.display()))
    });
    let source = match matches.value_source(&setting.id) {
        Some(ValueSource::CommandLine) => {
            format!("flag --{}", setting.long.as_deref().unwrap_or(&setting.id))
        }
        Some(ValueSource::EnvVariable) => from_file.unwrap_or_else(|| format!("environment {}", setting.env)),
        Some(ValueSource::DefaultValue) => "default".to_owned(),
        // A list the file emptied.
        None if setting.list && from_file.is_some() => from_file.unwrap_or_default(),
        _ => return format!("# {} is not set", setting.key),
    };
    let value = match (setting.secret, values) {
        (true, _) => "\"(hidden)\"".to_owned(),
        (false, Some(values)) => setting.toml_value(&values),
        (false, None) => "[]".to_owned(),
    };
    format!("{} = {value}  # {source}", setting.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        check(text).problems.iter().map(|p| p.render(Path::new("f.toml"))).collect()
    }

    #[test]
    fn a_good_file_gives_its_settings_with_their_positions() {
        let text = "env = \"production\"\nredis_url = \"redis://r:6379\"\n\n[gateway]\nmax_depth = 12\n\
                    csrf = false\ncors_origins = [\"https://a.example\", \"https://b.example\"]\n\
                    csrf_required_headers = []\n\n[auth]\nlisten = \"0.0.0.0:4001\"\nadmin_email = \"root@x\"\n\
                    [users.listener]\n";
        let checked = check(text);
        // `[users.listener]` is not a setting: it is the one problem.
        assert_eq!(problems(text), ["f.toml:13:8: error: unknown setting `[users] listener`; did you mean `listen`?"]);
        let found: Vec<(String, Vec<String>, (usize, usize))> =
            checked.entries.iter().map(|e| (e.setting.env.clone(), e.values.clone(), e.position)).collect();
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            found,
            [
                ("GATEHOUSE_ENV".to_owned(), owned(&["production"]), (1, 7)),
                ("REDIS_URL".to_owned(), owned(&["redis://r:6379"]), (2, 13)),
                ("GATEWAY_MAX_DEPTH".to_owned(), owned(&["12"]), (5, 13)),
                ("GATEWAY_CSRF".to_owned(), owned(&["false"]), (6, 8)),
                ("GATEWAY_CORS_ORIGINS".to_owned(), owned(&["https://a.example", "https://b.example"]), (7, 16)),
                ("GATEWAY_CSRF_REQUIRED_HEADERS".to_owned(), Vec::new(), (8, 25)),
                ("AUTH_LISTEN".to_owned(), owned(&["0.0.0.0:4001"]), (11, 10)),
                ("GATEHOUSE_ADMIN_EMAIL".to_owned(), owned(&["root@x"]), (12, 15)),
            ]
        );
    }

    #[test]
    fn unknown_sections_and_keys_are_named_with_their_line_and_a_suggestion() {
        let text = "redis_ur = \"x\"\nlisten = \"127.0.0.1:1\"\n[gatway]\nlisten = \"x\"\n[gateway]\n\
                    max_dpth = 3\nredis_url = \"redis://x\"\nGATEWAY_MAX_DEPTH = 3\nfrobnicate = 1\n";
        assert_eq!(
            problems(text),
            [
                "f.toml:1:1: error: unknown setting `redis_ur`; did you mean `redis_url`?",
                "f.toml:2:1: error: unknown setting `listen`; `listen` belongs in [gateway] or [auth] or [users] or [app]",
                "f.toml:3:2: error: unknown section [gatway]; did you mean [gateway]?",
                "f.toml:6:1: error: unknown setting `[gateway] max_dpth`; did you mean `max_depth`?",
                "f.toml:7:1: error: unknown setting `[gateway] redis_url`; `redis_url` belongs in the top level (above the first [section])",
                "f.toml:8:1: error: unknown setting `[gateway] GATEWAY_MAX_DEPTH`; the file names GATEWAY_MAX_DEPTH as `[gateway] max_depth`",
                "f.toml:9:1: error: unknown setting `[gateway] frobnicate`",
            ]
        );
    }

    #[test]
    fn values_of_the_wrong_type_are_named_with_their_line() {
        let text = "[gateway]\nmax_depth = \"12\"\ncsrf = \"yes\"\ncors_origins = \"https://a\"\n\
                    propagate_headers = [\"x-a\", 7]\nlisten = 4000\n[auth]\nlisten = { host = \"x\" }\n\
                    [app]\ndir = 1.5\n";
        assert_eq!(
            problems(text),
            [
                "f.toml:2:13: error: [gateway] max_depth must be an integer, not a string",
                "f.toml:3:8: error: [gateway] csrf must be a boolean, not a string",
                "f.toml:4:16: error: [gateway] cors_origins must be an array of strings, not a string (write [\"…\"])",
                "f.toml:5:29: error: [gateway] propagate_headers: element 2 must be a string, not an integer",
                "f.toml:6:10: error: [gateway] listen must be a string, not an integer",
                "f.toml:8:10: error: [auth] listen must be a string, not an inline table",
                "f.toml:10:7: error: [app] dir must be a string, not a float",
            ]
        );
        assert_eq!(
            problems("gateway = 3\n"),
            ["f.toml:1:1: error: [gateway] must be a table of settings, not an integer"]
        );
    }

    #[test]
    fn values_the_flags_refuse_are_refused_with_their_line() {
        let text = "env = \"staging\"\n[gateway]\nlisten = \"nowhere\"\nmax_depth = -1\n\
                    authorization_mode = \"Filter\"\ncors_origins = [\"https://a,https://b\"]\n";
        assert_eq!(
            problems(text),
            [
                "f.toml:1:7: error: env = \"staging\" is refused: expected one of \"development\", \"production\"",
                "f.toml:3:10: error: [gateway] listen = \"nowhere\" is refused: invalid socket address syntax",
                "f.toml:4:13: error: [gateway] max_depth = -1 is refused: invalid digit found in string",
                "f.toml:5:22: error: [gateway] authorization_mode = \"Filter\" is refused: expected one of \"filter\", \"reject\"",
                "f.toml:6:17: error: [gateway] cors_origins: element 1 holds a comma, where the list would be split; write its parts as separate elements",
            ]
        );
    }

    #[test]
    fn secrets_are_never_printed_back() {
        let text = "identity_secret = \"\"\nnats_token = [\"hunter2-token\"]\n[auth]\nadmin_password = 12345\n";
        let found = problems(text);
        assert_eq!(
            found,
            [
                "f.toml:1:19: error: identity_secret is refused: must not be empty",
                "f.toml:2:14: error: nats_token must be a string, not an array",
                "f.toml:4:18: error: [auth] admin_password must be a string, not an integer",
            ]
        );
        assert!(!found.concat().contains("hunter2") && !found.concat().contains("12345"));
    }

    #[test]
    fn toml_syntax_errors_carry_their_line() {
        let found = problems("[gateway]\nlisten = \"127.0.0.1:4000\"\nmax_depth = = 3\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("f.toml:3:13: error: invalid TOML: "), "{found:?}");
        let found = problems("[gateway]\nmax_depth = 3\nmax_depth = 4\n");
        assert!(found[0].starts_with("f.toml:3:1: error: invalid TOML: duplicate key"), "{found:?}");
    }

    #[test]
    fn a_setting_that_needs_another_says_so_unless_the_file_gives_both() {
        let alone = "[gateway]\ntls_cert_file = \"cert.pem\"\n";
        assert_eq!(
            problems(alone),
            ["f.toml:2:17: warning: [gateway] tls_cert_file needs [gateway] tls_key_file as well \
              (GATEWAY_TLS_KEY_FILE), which this file does not set; the environment or a flag must"]
        );
        assert_eq!(check(alone).errors(), 0);
        assert!(problems("[gateway]\ntls_cert_file = \"c.pem\"\ntls_key_file = \"k.pem\"\n").is_empty());
    }

    #[test]
    fn the_environment_wins_over_the_file_and_empty_lists_clear_defaults() {
        let checked =
            check("redis_url = \"redis://file\"\n[gateway]\nmax_depth = 3\ncsrf_required_headers = []\nsubgraph_h2c = [\"a\", \"b\"]\n");
        assert!(checked.problems.is_empty(), "{:?}", checked.problems);
        let overlay = overlay(&checked.entries, |var| var == "GATEWAY_MAX_DEPTH");
        assert_eq!(
            overlay.set,
            [
                ("REDIS_URL".to_owned(), "redis://file".to_owned()),
                ("GATEWAY_SUBGRAPH_H2C".to_owned(), "a,b".to_owned())
            ]
        );
        assert_eq!(overlay.cleared, ["csrf_required_headers"]);
        assert_eq!(overlay.lines.get("REDIS_URL"), Some(&1));
        assert_eq!(overlay.lines.get("GATEWAY_MAX_DEPTH"), None, "the environment's own value stays");

        // A cleared list is empty unless a flag (or the environment) gives it.
        let command = clear_defaults(Cli::command(), &overlay.cleared);
        let parse = |args: &[&str]| {
            let matches = command.clone().try_get_matches_from(args).unwrap();
            let (_, dev) = matches.subcommand().unwrap();
            dev.get_raw("csrf_required_headers").map(|v| v.count()).unwrap_or(0)
        };
        assert_eq!(parse(&["gatehouse", "dev"]), 0);
        assert_eq!(parse(&["gatehouse", "dev", "--csrf-required-header", "x-a"]), 1);
        let untouched = Cli::command().try_get_matches_from(["gatehouse", "dev"]).unwrap();
        assert_eq!(untouched.subcommand().unwrap().1.get_raw("csrf_required_headers").unwrap().count(), 2);
    }

    #[test]
    fn the_file_is_named_by_the_last_config_flag_before_a_double_dash() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        let named_by = |list: &[&str]| named(&args(list)).filter(|(_, origin)| *origin == Origin::Flag).map(|(p, _)| p);
        assert_eq!(named_by(&["gatehouse", "--config", "a.toml", "dev"]), Some("a.toml".into()));
        assert_eq!(named_by(&["gatehouse", "dev", "--config=b.toml"]), Some("b.toml".into()));
        assert_eq!(named_by(&["gatehouse", "--config=a", "gateway", "--config", "c"]), Some("c".into()));
        assert_eq!(named_by(&["gatehouse", "probe", "--", "--config", "x"]), None);
    }

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        assert_eq!(position("ab\ncdé f", 0), (1, 1));
        assert_eq!(position("ab\ncdé f", 3), (2, 1));
        assert_eq!(position("ab\ncdé f", 8), (2, 5));
    }
}
