//! `agora-fuzz seeds --out DIR`: writes each target's seed corpus (from the committed
//! vectors) to `DIR/<target>/`, the input directories of an AFL++ run.
//! `agora-fuzz replay TARGET FILE…`: runs the target on each file (a crash found by AFL++,
//! before it becomes a regression file) and says which one fails.

use agora_fuzz::Target;
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Agora's fuzz targets: seed corpora and replays")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes every target's seeds to DIR/<target>/seed-<n>.
    Seeds {
        /// The corpus root.
        #[arg(long)]
        out: PathBuf,
    },
    /// Runs TARGET on each file; a failing property panics and names the file.
    Replay {
        /// tx, block, peer, snapshot, stored, genesis or api.
        target: String,
        /// Inputs.
        files: Vec<PathBuf>,
    },
}

fn target(name: &str) -> Result<Target> {
    match Target::parse(name) {
        Some(target) => Ok(target),
        None => {
            let names: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
            bail!(
                "unknown target {name:?}; the targets are {}",
                names.join(", ")
            )
        }
    }
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Seeds { out } => {
            for target in Target::ALL {
                let dir = out.join(target.name());
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let seeds = agora_fuzz::seeds(target);
                for (i, seed) in seeds.iter().enumerate() {
                    let path = dir.join(format!("seed-{i}"));
                    std::fs::write(&path, seed)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                println!(
                    "{}: {} seeds in {}",
                    target.name(),
                    seeds.len(),
                    dir.display()
                );
            }
        }
        Command::Replay {
            target: name,
            files,
        } => {
            let target = target(&name)?;
            for file in files {
                let data =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                eprintln!("{}: {} bytes", file.display(), data.len());
                agora_fuzz::run(target, &data);
            }
            println!("no property failed");
        }
    }
    Ok(())
}
