//! Runs the deterministic simulator over a range of seeds.
//! Exits 1 at the first failing seed, printing the command that replays it.

use agora_consensus::sim::{run, SimOptions};
use clap::Parser;
use std::process::ExitCode;
use std::time::Instant;

/// Runs the Raft + ledger simulator with faults over a range of seeds.
///
/// Example: agora-sim --seeds 1000 --from 300 --quiet
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Ticks of the safety phase (default: the CI profile's 20,000).
    #[arg(long)]
    ticks: Option<u64>,
    /// Sign votes with ML-DSA instead of the fast stand-in.
    #[arg(long)]
    real_crypto: bool,
    /// Leaders do not append the election no-op (the replay-cluster mode).
    #[arg(long)]
    no_election_noop: bool,
    /// No governance (by default it votes a spare node in, a validator out and a
    /// reputation change while the faults run).
    #[arg(long)]
    no_governance: bool,
    /// Validators (default: 3 to 7, drawn from each seed).
    #[arg(long)]
    nodes: Option<usize>,
    /// Witnesses besides the validators: they vote and keep the log, never lead and do
    /// not execute the ledger.
    #[arg(long, default_value_t = 0)]
    witnesses: usize,
    /// Zones every node serves: clusters of their own on the same nodes, whose crashes,
    /// disk losses and partitions strike every zone at once; every checker runs per zone.
    #[arg(long, default_value_t = 1)]
    zones: usize,
    /// Print only failures and the summary.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let started = Instant::now();
    for seed in args.from..args.from + args.seeds {
        let mut options = SimOptions::standard(seed);
        options.real_crypto = args.real_crypto;
        options.election_noop = !args.no_election_noop;
        options.governance = !args.no_governance;
        options.node_count = args.nodes;
        options.witnesses = args.witnesses;
        options.zones = args.zones.max(1);
        if let Some(t) = args.ticks {
            options.safety_ticks = t;
        }
        match run(&options) {
            Ok(report) if !args.quiet && report.zone_commits.len() > 1 => println!(
                "seed {seed}: ok  nodes {} zones {} commits {:?} balance transfers {} (first zone: elections {} crashes {} disks lost {} rejoins {} witness relays {}/{})",
                report.nodes,
                report.zone_commits.len(),
                report.zone_commits,
                report.balance_transfers,
                report.elections,
                report.crashes,
                report.disks_lost,
                report.rejoins,
                report.witness_relays.0,
                report.witness_relays.1,
            ),
            Ok(report) if !args.quiet => println!(
                "seed {seed}: ok  nodes {} commit {} acked {} reads {} elections {} crashes {} (disks lost {}, older copies {}, rejoins {}) configs {} governance {} snapshots {} sigs {}/{} inline ({} holds expired) vouched {} timeouts {} voted-out {} witness relays {}/{} compactions {} added/removed {}/{} former {} liveness {} ticks  trace {}",
                report.nodes,
                report.committed_index,
                report.acknowledged,
                report.reads_served,
                report.elections,
                report.crashes,
                report.disks_lost,
                report.older_copies_restored,
                report.rejoins,
                report.config_changes,
                report.proposals_passed,
                report.snapshots_installed,
                report.signature_checks,
                report.inline_checks,
                report.apply_holds_expired,
                report.leaders_vouched,
                report.commit_timeouts,
                report.voted_out_answers,
                report.witness_relays.0,
                report.witness_relays.1,
                report.witness_compactions,
                report.witness_governance.0,
                report.witness_governance.1,
                report.former_witnesses,
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
        "{} passed, 0 failed ({:.1} s)",
        args.seeds,
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
