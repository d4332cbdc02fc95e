//! Builds the GraphiQL page's assets into the binary.
//!
//! `gateway/graphiql/` pins GraphiQL and its dependencies (package.json and
//! package-lock.json) and bundles them with esbuild (`build.mjs`). This script
//! copies that folder under `OUT_DIR` (the source tree stays clean), runs
//! `npm ci` there, bundles into `OUT_DIR/graphiql-assets/` and writes
//! `OUT_DIR/graphiql_assets.rs`, which lists every file for `include_bytes!`
//! (see `src/http/graphiql.rs`).
//!
//! Without Node.js and npm, or when the install or the bundle fails, the
//! build still succeeds: it warns, and the gateway serves a page that says
//! how to build GraphiQL. There is never a CDN fallback.
//! `GATEHOUSE_SKIP_GRAPHIQL_BUILD=1` skips the build the same way.
//! `GATEHOUSE_GRAPHIQL_ASSETS=DIR` embeds a folder `build.mjs` wrote earlier
//! instead (the Dockerfile bundles in a Node.js stage, then builds the Rust
//! side without Node.js).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The generated module, included by `src/http/graphiql.rs`.
const GENERATED: &str = "graphiql_assets.rs";
const SKIP_VARIABLE: &str = "GATEHOUSE_SKIP_GRAPHIQL_BUILD";
const PREBUILT_VARIABLE: &str = "GATEHOUSE_GRAPHIQL_ASSETS";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let source = manifest_dir.join("graphiql");
    let client = manifest_dir.join("../examples/spa/gatehouse-client.js");

    // Only these inputs: the folder may also hold a developer's node_modules.
    for input in ["package.json", "package-lock.json", "build.mjs", "src"] {
        println!("cargo:rerun-if-changed={}", source.join(input).display());
    }
    println!("cargo:rerun-if-changed={}", client.display());
    println!("cargo:rerun-if-env-changed={SKIP_VARIABLE}");
    println!("cargo:rerun-if-env-changed={PREBUILT_VARIABLE}");

    let assets = out_dir.join("graphiql-assets");
    let generated = match build(&source, &client, &out_dir, &assets) {
        Ok(manifest) => built_module(&manifest),
        Err(failure) => {
            for line in failure.details.lines().filter(|l| !l.trim().is_empty()) {
                println!("cargo:warning={line}");
            }
            let hint = if failure.skipped {
                ""
            } else {
                " With Node.js 20+ and npm installed and the npm registry (or a warm npm cache) at hand, \
                 `touch gateway/graphiql/package.json` and build again."
            };
            println!(
                "cargo:warning=GraphiQL's assets were not built ({}); the gateway serves a page saying how to build \
                 them.{hint}",
                failure.reason
            );
            not_built_module(&failure.reason)
        }
    };
    fs::write(out_dir.join(GENERATED), generated).expect("cannot write the generated GraphiQL asset list");
}

/// Why the assets were not built: a short reason for the page, details for the build log.
struct Failure {
    reason: String,
    details: String,
    skipped: bool,
}

impl Failure {
    fn new(reason: impl Into<String>, details: impl Into<String>) -> Self {
        Self { reason: reason.into(), details: details.into(), skipped: false }
    }
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Self::new(format!("a file operation failed: {error}"), String::new())
    }
}

/// What `build.mjs` wrote to `manifest.txt`.
struct Manifest {
    dir: PathBuf,
    script: String,
    style: String,
    files: Vec<String>,
}

fn build(source: &Path, client: &Path, out_dir: &Path, assets: &Path) -> Result<Manifest, Failure> {
    if env::var_os(SKIP_VARIABLE).is_some_and(|v| !v.is_empty() && v != "0") {
        return Err(Failure { skipped: true, ..Failure::new(format!("{SKIP_VARIABLE} is set"), String::new()) });
    }
    if let Some(prebuilt) = env::var_os(PREBUILT_VARIABLE).filter(|v| !v.is_empty()) {
        println!("cargo:rerun-if-changed={}", Path::new(&prebuilt).join("manifest.txt").display());
        return read_manifest(Path::new(&prebuilt));
    }
    let work = out_dir.join("graphiql-npm");
    copy_package(source, &work)?;

    // `npm ci` deletes and reinstalls node_modules; skip it while the lock
    // file is the one the current node_modules came from.
    let lock = fs::read(work.join("package-lock.json"))?;
    let stamp = work.join("node_modules").join(".gatehouse-installed-lock");
    if fs::read(&stamp).ok().as_deref() != Some(lock.as_slice()) {
        let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
        let output = Command::new(npm)
            .current_dir(&work)
            // Our dependencies need no install scripts (esbuild finds its
            // binary through its optional platform package); dev dependencies
            // are build tools, wanted even when NODE_ENV=production.
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", "--include=dev"])
            .output()
            .map_err(|e| Failure::new(format!("npm was not found ({e})"), String::new()))?;
        check("`npm ci`", &output)?;
        fs::write(&stamp, &lock)?;
    }

    let node = if cfg!(windows) { "node.exe" } else { "node" };
    let output = Command::new(node)
        .current_dir(&work)
        .arg("build.mjs")
        .arg(assets)
        .arg("--client")
        .arg(client)
        .output()
        .map_err(|e| Failure::new(format!("node was not found ({e})"), String::new()))?;
    check("bundling (node build.mjs)", &output)?;
    read_manifest(assets)
}

fn check(what: &str, output: &Output) -> Result<(), Failure> {
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
    let details = tail.into_iter().rev().map(|line| format!("{what}: {line}")).collect::<Vec<_>>().join("\n");
    Err(Failure::new(format!("{what} failed ({})", output.status), details))
}

/// Copies the package (not a developer's node_modules) to `work`.
fn copy_package(source: &Path, work: &Path) -> io::Result<()> {
    fs::create_dir_all(work)?;
    for file in ["package.json", "package-lock.json", "build.mjs"] {
        fs::copy(source.join(file), work.join(file))?;
    }
    let src = work.join("src");
    if src.exists() {
        fs::remove_dir_all(&src)?;
    }
    copy_dir(&source.join("src"), &src)
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn read_manifest(dir: &Path) -> Result<Manifest, Failure> {
    let text = fs::read_to_string(dir.join("manifest.txt"))?;
    let (mut script, mut style, mut files) = (None, None, Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (kind, name) = line.split_once(' ').unwrap_or((line, ""));
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !valid {
            return Err(Failure::new(format!("manifest.txt names an odd file: {line:?}"), String::new()));
        }
        match kind {
            "script" => script = Some(name.to_owned()),
            "style" => style = Some(name.to_owned()),
            "file" => files.push(name.to_owned()),
            _ => return Err(Failure::new(format!("manifest.txt has an unknown line: {line:?}"), String::new())),
        }
    }
    let (Some(script), Some(style)) = (script, style) else {
        return Err(Failure::new("manifest.txt names no script or no stylesheet", String::new()));
    };
    if !files.contains(&script) || !files.contains(&style) {
        return Err(Failure::new("manifest.txt lists its script or stylesheet as no file", String::new()));
    }
    Ok(Manifest { dir: dir.to_path_buf(), script, style, files })
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

const HEADER: &str = "// @generated by gateway/build.rs: the GraphiQL page's assets.\n";

fn built_module(manifest: &Manifest) -> String {
    let mut out = String::from(HEADER);
    let _ = writeln!(
        out,
        "pub(super) const BUNDLE: Bundle = Bundle::Built {{ script: {:?}, style: {:?} }};",
        manifest.script, manifest.style
    );
    let _ = writeln!(out, "pub(super) static ASSETS: &[Asset] = &[");
    for name in &manifest.files {
        let path = manifest.dir.join(name);
        let _ = writeln!(
            out,
            "    Asset {{ name: {name:?}, content_type: {:?}, bytes: include_bytes!({:?}) }},",
            content_type(name),
            path.display().to_string()
        );
    }
    out.push_str("];\n");
    out
}

fn not_built_module(reason: &str) -> String {
    let mut out = String::from(HEADER);
    let _ = writeln!(out, "pub(super) const BUNDLE: Bundle = Bundle::NotBuilt {{ reason: {reason:?} }};");
    out.push_str("pub(super) static ASSETS: &[Asset] = &[];\n");
    out
}
