//! A zone's event loop that stops moving is found and named. The driver marks where its
//! loop is ([`Pulse::enter`]: waiting for input, in the replica, writing to storage,
//! carrying out the rest); a watchdog task looks every second, and when the loop has stayed
//! in one place longer than the limit it logs an error naming the place, keeps
//! `agora_event_loop_stalled_seconds` up to date, and logs again once the loop moves.
//! While waiting, the ticker wakes the loop every tick, so even "waiting" held that long
//! means the task is not being run. Nothing here changes what the loop does.

use prometheus_client::metrics::gauge::Gauge;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// Where a zone's event loop is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a tick, a message, a request or a signature verdict.
    Waiting,
    /// Taking inputs and producing actions (the replica: Raft, apply).
    Replica,
    /// Writing the actions' storage batch (one SQLite transaction, one fsync).
    Storing,
    /// Sending, replying, starting jobs and checks.
    Carrying,
}

impl Phase {
    /// In declaration order: a phase's index is its discriminant.
    pub const ALL: [Phase; 4] = [
        Phase::Waiting,
        Phase::Replica,
        Phase::Storing,
        Phase::Carrying,
    ];

    /// The `phase` label of `agora_event_loop_seconds_total`.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Replica => "replica",
            Phase::Storing => "storing",
            Phase::Carrying => "carrying",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting for input",
            Phase::Replica => "in the replica (raft, apply)",
            Phase::Storing => "writing to its database",
            Phase::Carrying => "carrying out its actions",
        }
    }
}

/// The loop's last mark: its phase and when it entered it, in one word so a reader never
/// sees one without the other.
pub struct Pulse {
    origin: Instant,
    /// Phase index in the top byte, milliseconds since `origin` below.
    mark: AtomicU64,
    /// When the loop entered its current phase, in nanoseconds since `origin`.
    entered_ns: AtomicU64,
    /// Nanoseconds the loop spent in each phase, by index, up to its last mark.
    spent_ns: [AtomicU64; 4],
}

const MS_BITS: u32 = 56;

impl Pulse {
    /// A loop that is waiting, from now.
    pub fn new() -> Arc<Pulse> {
        Arc::new(Pulse {
            origin: Instant::now(),
            mark: AtomicU64::new(0),
            entered_ns: AtomicU64::new(0),
            spent_ns: Default::default(),
        })
    }

    /// The loop enters `phase` now (the time since its last mark is added to the phase it
    /// leaves).
    pub fn enter(&self, phase: Phase) {
        let now_ns = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let (left, _) = self.read();
        let entered = self.entered_ns.swap(now_ns, Ordering::Relaxed);
        self.spent_ns[left as usize].fetch_add(now_ns.saturating_sub(entered), Ordering::Relaxed);
        let ms = (now_ns / 1_000_000) & ((1 << MS_BITS) - 1);
        self.mark
            .store(((phase as u64) << MS_BITS) | ms, Ordering::Relaxed);
    }

    /// Seconds the loop spent in each phase (in [`Phase::ALL`] order) up to its last mark.
    pub fn spent(&self) -> [f64; 4] {
        std::array::from_fn(|i| self.spent_ns[i].load(Ordering::Relaxed) as f64 / 1e9)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn read(&self) -> (Phase, u64) {
        let mark = self.mark.load(Ordering::Relaxed);
        let phase = Phase::ALL[(mark >> MS_BITS) as usize % Phase::ALL.len()];
        (phase, mark & ((1 << MS_BITS) - 1))
    }
}

/// What one look found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The loop moved within the limit.
    Moving,
    /// The loop just passed the limit in `phase` (reported once per stall).
    Stalled { phase: Phase, ms: u64 },
    /// Still stalled, since the report.
    StillStalled { ms: u64 },
    /// It moved again after a reported stall of about `ms`.
    Recovered { ms: u64 },
}

/// The watchdog's memory between looks: whether a stall was reported, and at which mark;
/// when it last looked.
pub struct Watch {
    limit_ms: u64,
    reported: Option<(Phase, u64)>,
    last_look: Option<u64>,
}

/// A gap between two looks longer than this means the watchdog itself did not run (the
/// process was stopped or starved): the loop is not judged on that look.
const LOOK_GAP_MS: u64 = 3_000;

impl Watch {
    /// Reports a loop that stays in one place longer than `limit`.
    pub fn new(limit: Duration) -> Watch {
        Watch {
            limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            reported: None,
            last_look: None,
        }
    }

    /// One look at a mark (`phase` entered at `since_ms`) at `now_ms`.
    pub fn look(&mut self, phase: Phase, since_ms: u64, now_ms: u64) -> Finding {
        let held = now_ms.saturating_sub(since_ms);
        let gap = self.last_look.map(|last| now_ms.saturating_sub(last));
        self.last_look = Some(now_ms);
        if self.reported.is_none() && gap.is_some_and(|gap| gap > LOOK_GAP_MS) {
            // The whole process stood still (SIGSTOP, a paused machine): the loop had no
            // chance to move either. The next look, a second on, judges it.
            return Finding::Moving;
        }
        match self.reported {
            Some((p, since)) if p == phase && since == since_ms => {
                Finding::StillStalled { ms: held }
            }
            Some((_, since)) => {
                self.reported = None;
                let stalled = Finding::Recovered {
                    ms: now_ms.saturating_sub(since),
                };
                if held > self.limit_ms {
                    // Moved, and stuck again somewhere else: the recovery is what to say now.
                    self.reported = Some((phase, since_ms));
                }
                stalled
            }
            None if held > self.limit_ms => {
                self.reported = Some((phase, since_ms));
                Finding::Stalled { phase, ms: held }
            }
            None => Finding::Moving,
        }
    }
}

/// Watches `pulse` every second until its loop ends (the driver drops the pulse).
pub fn spawn(
    pulse: &Arc<Pulse>,
    limit: Duration,
    zone: String,
    stalled_seconds: Gauge,
) -> tokio::task::JoinHandle<()> {
    let pulse: Weak<Pulse> = Arc::downgrade(pulse);
    tokio::spawn(async move {
        let mut watch = Watch::new(limit);
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(pulse) = pulse.upgrade() else {
                return;
            };
            let (phase, since) = pulse.read();
            match watch.look(phase, since, pulse.now_ms()) {
                Finding::Moving => {
                    stalled_seconds.set(0);
                }
                Finding::Stalled { phase, ms } => {
                    stalled_seconds.set((ms / 1_000) as i64);
                    tracing::error!(
                        zone = %zone,
                        seconds = ms / 1_000,
                        "this zone's event loop has not moved for {} s: it is {}; its ticks, messages and requests wait",
                        ms / 1_000,
                        phase.name()
                    );
                }
                Finding::StillStalled { ms } => {
                    stalled_seconds.set((ms / 1_000) as i64);
                }
                Finding::Recovered { ms } => {
                    stalled_seconds.set(0);
                    tracing::warn!(zone = %zone, seconds = ms / 1_000, "this zone's event loop moves again");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Looks a second apart, as the task makes them.
    fn looks(watch: &mut Watch, phase: Phase, since: u64, from: u64, to: u64) -> Vec<Finding> {
        (from..=to)
            .step_by(1_000)
            .map(|now| watch.look(phase, since, now))
            .collect()
    }

    #[test]
    fn a_loop_held_in_one_place_past_the_limit_is_reported_once_and_its_recovery_too() {
        let mut watch = Watch::new(Duration::from_secs(5));
        // Moving: each mark held less than the limit.
        assert!(looks(&mut watch, Phase::Waiting, 0, 1_000, 4_000)
            .iter()
            .all(|f| *f == Finding::Moving));
        assert_eq!(watch.look(Phase::Replica, 4_500, 5_000), Finding::Moving);
        // Entered storage at 5.5 s and held there: reported once, past 5 s, with the place.
        let found = looks(&mut watch, Phase::Storing, 5_500, 6_000, 13_000);
        assert_eq!(found[..5], [Finding::Moving; 5]);
        assert_eq!(
            found[5],
            Finding::Stalled {
                phase: Phase::Storing,
                ms: 5_500
            }
        );
        assert_eq!(
            found[6..],
            [
                Finding::StillStalled { ms: 6_500 },
                Finding::StillStalled { ms: 7_500 }
            ]
        );
        // Moved on: the recovery, measured from the stalled mark.
        assert_eq!(
            watch.look(Phase::Carrying, 13_500, 14_000),
            Finding::Recovered { ms: 8_500 }
        );
        assert_eq!(watch.look(Phase::Waiting, 14_200, 15_000), Finding::Moving);
        // Re-entering the same phase is a move (a new mark); one mark held past the limit
        // is a stall, whatever the phase.
        let found = looks(&mut watch, Phase::Waiting, 15_500, 16_000, 22_000);
        assert_eq!(
            found[5],
            Finding::Stalled {
                phase: Phase::Waiting,
                ms: 5_500
            }
        );
        assert_eq!(
            watch.look(Phase::Waiting, 22_500, 23_000),
            Finding::Recovered { ms: 7_500 }
        );
    }

    /// A process stopped for a while (its watchdog too) is not a stalled loop: the first
    /// look after the gap passes; a loop that still has not moved a second later is.
    #[test]
    fn a_stopped_process_is_judged_on_the_look_after_it_resumes() {
        let mut watch = Watch::new(Duration::from_secs(5));
        assert_eq!(watch.look(Phase::Waiting, 0, 1_000), Finding::Moving);
        assert_eq!(watch.look(Phase::Waiting, 0, 20_000), Finding::Moving);
        assert_eq!(watch.look(Phase::Replica, 20_100, 21_000), Finding::Moving);
        // Stopped again, and the loop really is stuck after it: reported on the next look.
        assert_eq!(watch.look(Phase::Storing, 21_500, 40_000), Finding::Moving);
        assert_eq!(
            watch.look(Phase::Storing, 21_500, 41_000),
            Finding::Stalled {
                phase: Phase::Storing,
                ms: 19_500
            }
        );
    }

    #[test]
    fn the_pulse_keeps_the_phase_with_its_time() {
        let pulse = Pulse::new();
        assert_eq!(pulse.read().0, Phase::Waiting);
        for phase in Phase::ALL {
            pulse.enter(phase);
            let (read, since) = pulse.read();
            assert_eq!(read, phase);
            assert!(since <= pulse.now_ms());
        }
    }

    /// The task reads the real pulse: a loop that never marks again is reported in the
    /// gauge, and a loop that ends (the pulse dropped) ends its watchdog.
    #[tokio::test(start_paused = true)]
    async fn the_watchdog_task_sets_the_gauge_and_ends_with_its_loop() {
        let pulse = Pulse::new();
        pulse.enter(Phase::Storing);
        let gauge = Gauge::default();
        let task = spawn(&pulse, Duration::from_secs(2), "z".into(), gauge.clone());
        // Paused time: the watchdog's interval and the pulse's clock advance together.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert!(gauge.get() >= 2, "stalled seconds: {}", gauge.get());
        pulse.enter(Phase::Waiting);
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert_eq!(gauge.get(), 0);
        assert!(!task.is_finished());
        drop(pulse);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(task.is_finished(), "the watchdog ended with its loop");
    }

    /// Each phase is charged the time from entering it to the next mark, whichever phase
    /// comes next (paused time: exact).
    #[tokio::test(start_paused = true)]
    async fn each_phase_is_charged_the_time_until_the_next_mark() {
        let pulse = Pulse::new();
        let ms = |n| tokio::time::advance(Duration::from_millis(n));
        ms(7).await;
        pulse.enter(Phase::Replica);
        ms(3).await;
        pulse.enter(Phase::Storing);
        ms(5).await;
        pulse.enter(Phase::Carrying);
        ms(1).await;
        pulse.enter(Phase::Replica);
        ms(2).await;
        pulse.enter(Phase::Waiting);
        ms(40).await; // not charged until the loop marks again
        assert_eq!(pulse.spent(), [0.007, 0.005, 0.005, 0.001]);
        pulse.enter(Phase::Replica);
        assert_eq!(pulse.spent(), [0.047, 0.005, 0.005, 0.001]);
        // The exposition carries each phase's seconds under its own label.
        let metrics = crate::metrics::Metrics::new(Default::default());
        metrics.record_loop(&pulse);
        let text = metrics.render();
        for (phase, seconds) in [("waiting", 0.047), ("replica", 0.005), ("carrying", 0.001)] {
            let line = format!(
                "agora_event_loop_seconds_total{{zone=\"default\",phase=\"{phase}\"}} {seconds}"
            );
            assert!(text.contains(&line), "no `{line}` in:\n{text}");
        }
    }
}
