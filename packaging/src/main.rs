//! `gw502-packaging`: builds the `.deb` packages (`deb`), or writes only the man pages
//! and completions (`docs`). Run it with `cargo run -p gw502-packaging -- deb`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use gw502_packaging::deb::{self, BuildOptions};
use gw502_packaging::{files, pages, spec};

/// gw502 packaging: man pages and completions from the binaries' clap commands, and
/// .deb packages of gw502-agent, gw502-collector and gw502ctl.
#[derive(Debug, Parser)]
#[command(
    name = "gw502-packaging",
    after_help = "Examples:\n  cargo run -p gw502-packaging -- deb\n  cargo run -p gw502-packaging -- deb --package gw502-agent --bin-dir target/debug\n  cargo run -p gw502-packaging -- docs --out target/docs"
)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build .deb packages (by default: the release binaries first, then all three).
    Deb {
        /// Only this package (repeatable): gw502-agent, gw502-collector, gw502ctl.
        #[arg(long = "package", short, value_name = "NAME")]
        packages: Vec<String>,
        /// Take the binaries from DIR instead of building target/release.
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
        /// Where the .deb files go.
        #[arg(long, value_name = "DIR", default_value = "target/debian")]
        out: PathBuf,
        /// The Maintainer field.
        #[arg(long, default_value = deb::MAINTAINER)]
        maintainer: String,
    },
    /// Write the man pages and bash/zsh/fish completions of all three binaries.
    Docs {
        /// Output directory (man1/, man8/, and one directory per shell).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gw502-packaging: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    match args.command {
        Cmd::Docs { out } => {
            let mut all = Vec::new();
            for p in &spec::PACKAGES {
                all.extend(pages::man_pages((p.command)(), p.man_section, version)?);
                all.extend(pages::completions((p.command)(), p.name));
            }
            for path in pages::write_flat(&out, &all)? {
                println!("{}", path.display());
            }
        }
        Cmd::Deb {
            packages,
            bin_dir,
            out,
            maintainer,
        } => {
            let chosen = choose(&packages)?;
            let bin_dir = match bin_dir {
                Some(dir) => dir,
                None => build_release(&chosen)?,
            };
            files::create_dir(&out)?;
            let options = BuildOptions {
                bin_dir,
                out_dir: out,
                version: version.to_owned(),
                maintainer,
            };
            for package in chosen {
                let path = deb::build(package, &options)
                    .with_context(|| format!("package {}", package.name))?;
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}

fn choose(names: &[String]) -> anyhow::Result<Vec<&'static spec::Package>> {
    if names.is_empty() {
        return Ok(spec::PACKAGES.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            spec::package(name).with_context(|| {
                format!("unknown package {name:?} (gw502-agent, gw502-collector, gw502ctl)")
            })
        })
        .collect()
}

/// `cargo build --release --locked -p ...` of the chosen binaries; returns the dir
/// holding them (the cargo target dir's `release`).
fn build_release(packages: &[&spec::Package]) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--release", "--locked"]);
    for p in packages {
        command.args(["-p", p.name]);
    }
    eprintln!("gw502-packaging: building the release binaries");
    let status = command.status().context("run cargo build")?;
    if !status.success() {
        bail!("cargo build --release failed ({status})");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    Ok(target.join("release"))
}
