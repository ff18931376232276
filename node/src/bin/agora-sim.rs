//! Runs the deterministic simulator over a range of seeds.
//!
//! `agora-sim --seeds N --from S [--ticks T] [--real-crypto] [--quiet]`
//! Exits 1 at the first failing seed, printing the command that replays it.

use agora_node::sim::{run, SimOptions};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let mut seeds = 100u64;
    let mut from = 0u64;
    let mut ticks: Option<u64> = None;
    let mut real_crypto = false;
    let mut quiet = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Option<u64> {
            let value = args.next().and_then(|v| v.parse().ok());
            if value.is_none() {
                eprintln!("{name} needs a number");
            }
            value
        };
        match arg.as_str() {
            "--seeds" => match number("--seeds") {
                Some(v) => seeds = v,
                None => return ExitCode::from(2),
            },
            "--from" => match number("--from") {
                Some(v) => from = v,
                None => return ExitCode::from(2),
            },
            "--ticks" => match number("--ticks") {
                Some(v) => ticks = Some(v),
                None => return ExitCode::from(2),
            },
            "--real-crypto" => real_crypto = true,
            "--quiet" => quiet = true,
            "-h" | "--help" => {
                println!(
                    "usage: agora-sim [--seeds N] [--from S] [--ticks T] [--real-crypto] [--quiet]"
                );
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}; see --help");
                return ExitCode::from(2);
            }
        }
    }
    let started = Instant::now();
    for seed in from..from + seeds {
        let mut options = SimOptions::standard(seed);
        options.real_crypto = real_crypto;
        if let Some(t) = ticks {
            options.safety_ticks = t;
        }
        match run(&options) {
            Ok(report) if !quiet => println!(
                "seed {seed}: ok  nodes {} commit {} acked {} reads {} elections {} crashes {} configs {} snapshots {} liveness {} ticks  trace {}",
                report.nodes,
                report.committed_index,
                report.acknowledged,
                report.reads_served,
                report.elections,
                report.crashes,
                report.config_changes,
                report.snapshots_installed,
                report.liveness_ticks,
                &report.trace_hash.to_hex()[..16]
            ),
            Ok(_) => {}
            Err(failure) => {
                eprintln!("{failure}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "{seeds} passed, 0 failed ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
