//! Several zones on the same nodes. Each zone is a world of its own — its genesis (chain
//! `agora-sim-<seed>-zone-<k>`), weights, clients, governance, network delays and every
//! checker — over the same nodes (the same validator and witness keys). What strikes a
//! node strikes all its zones at the same tick: the first zone's world decides crashes
//! (with their disk losses and restored copies), operators' backups and partitions, and
//! every other zone suffers them too (`World::share`). Every 20 ticks each node that
//! leads zones hands some to members that lead fewer, as `agora-node`'s drivers do
//! (`Replica::balance_leadership`, with each node's view of who leads its zones). Then
//! each zone's liveness phase must converge.

use crate::raft::{NodeId, Role};
use crate::sim::world::{NodeFault, World};
use crate::sim::{SimFailure, SimOptions, SimReport};

/// Ticks between two looks at spreading leaders (the node's `BALANCE_TICKS`).
const BALANCE_TICKS: u64 = 20;

pub(super) fn run(options: &SimOptions) -> Result<SimReport, SimFailure> {
    let mut worlds: Vec<World> = Vec::new();
    for zone in 0..options.zones {
        let mut zone_options = options.clone();
        zone_options.zone = zone;
        if let Some(first) = worlds.first() {
            // The same nodes: the first zone's count, drawn from the seed.
            zone_options.node_count = Some(first.report.nodes - first_extra(options));
        }
        let mut world = World::new(zone_options);
        match worlds.first() {
            None => world.fault_log = Some(Vec::new()),
            Some(first) => {
                world.shares_faults = true;
                // One clock per node, whichever zone reads it.
                for (node, first) in world.nodes.iter_mut().zip(&first.nodes) {
                    node.clock_rate_percent = first.clock_rate_percent;
                }
            }
        }
        worlds.push(world);
    }
    let mut shared_crashes = 0;
    let result = simulate(options, &mut worlds, &mut shared_crashes);
    for world in &mut worlds {
        world.finish_report();
    }
    let zone_commits = worlds.iter().map(|w| w.report.committed_index).collect();
    let zone_crashes = worlds.iter().map(|w| w.report.crashes).collect();
    let balance_transfers = worlds.iter().map(|w| w.report.balance_transfers).sum();
    let mut zone_leader_loads = vec![0; worlds[0].nodes.len()];
    for leader in worlds.iter().filter_map(World::leader_node) {
        zone_leader_loads[leader] += 1;
    }
    match result {
        Ok(()) => {
            let mut report = worlds.swap_remove(0).report;
            report.zone_commits = zone_commits;
            report.zone_crashes = zone_crashes;
            report.shared_crashes = shared_crashes;
            report.balance_transfers = balance_transfers;
            report.zone_leader_loads = zone_leader_loads;
            Ok(report)
        }
        Err((zone, mut violation)) => {
            violation.detail = format!("zone {zone}: {}", violation.detail);
            Err(SimFailure {
                seed: options.seed,
                tick: worlds[zone].now(),
                violation,
                replay_args: options.replay_args(),
            })
        }
    }
}

/// Nodes a world has besides its validators (witnesses and spares), which the node count
/// option does not include.
fn first_extra(options: &SimOptions) -> usize {
    let governance = options.governance && options.faults && options.election_noop;
    options.witnesses + usize::from(governance) + usize::from(governance && options.witnesses > 0)
}

fn simulate(
    options: &SimOptions,
    worlds: &mut [World],
    shared_crashes: &mut u64,
) -> Result<(), (usize, crate::sim::Violation)> {
    for _ in 0..options.safety_ticks {
        for world in worlds.iter_mut() {
            world.now += 1;
        }
        if worlds[0].faults_on {
            worlds[0].inject_faults();
            let faults = std::mem::take(worlds[0].fault_log.as_mut().expect("the first zone logs"));
            *shared_crashes += faults
                .iter()
                .filter(|f| matches!(f, NodeFault::Crash { .. }))
                .count() as u64;
            for world in worlds[1..].iter_mut() {
                world.inject_faults();
                for fault in &faults {
                    world.share(fault);
                }
            }
        }
        for (zone, world) in worlds.iter_mut().enumerate() {
            world.step().map_err(|v| (zone, v))?;
            world.observe_leadership();
        }
        if worlds[0].now.is_multiple_of(BALANCE_TICKS) {
            balance(worlds)?;
        }
    }
    for (zone, world) in worlds.iter_mut().enumerate() {
        world.liveness().map_err(|v| (zone, v))?;
    }
    Ok(())
}

/// Each running node that leads a zone asks its replica there whether to hand it to a
/// member that leads fewer of the zones, counting leaders as this node sees them.
fn balance(worlds: &mut [World]) -> Result<(), (usize, crate::sim::Violation)> {
    let nodes = worlds[0].nodes.len();
    for i in 0..nodes {
        let seen: Vec<Option<NodeId>> = worlds
            .iter()
            .map(|w| w.nodes[i].replica.as_ref().and_then(|r| r.raft().leader()))
            .collect();
        let load = |n: &NodeId| seen.iter().filter(|l| l.as_ref() == Some(n)).count() as u64;
        for (zone, world) in worlds.iter_mut().enumerate() {
            let leads = world.nodes[i]
                .replica
                .as_ref()
                .is_some_and(|r| r.raft().role() == Role::Leader);
            if !leads {
                continue;
            }
            let replica = world.nodes[i].replica.as_mut().expect("it leads");
            if replica.balance_leadership(load).is_some() {
                world.report.balance_transfers += 1;
            }
            world.drain(i).map_err(|v| (zone, v))?;
        }
    }
    Ok(())
}
