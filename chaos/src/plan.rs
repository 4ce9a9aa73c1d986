//! What a run does: how long and how fast the load runs, and the faults it meets, in order.

use std::time::Duration;

/// A role process the run kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Whichever relay leads at the time (the other one is standing by).
    RelayLeader,
    /// The API process (`lightspeed serve`).
    Api,
    /// The workers process (`lightspeed work all`).
    Workers,
    /// The projectors process (`lightspeed project all`).
    Projectors,
}

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL of a role process; a supervisor starts it again at once.
    Kill(Target),
    /// The NATS server stopped (SIGTERM, or SIGKILL when `kill`) and started again.
    NatsRestart {
        /// Killed rather than stopped.
        kill: bool,
    },
    /// PostgreSQL stopped as a crash stops it (`pg_ctl stop -m immediate`) and started again.
    PostgresRestart,
}

impl Fault {
    /// How the report names it.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill(Target::RelayLeader) => "SIGKILL relay leader",
            Fault::Kill(Target::Api) => "SIGKILL api",
            Fault::Kill(Target::Workers) => "SIGKILL workers",
            Fault::Kill(Target::Projectors) => "SIGKILL projectors",
            Fault::NatsRestart { kill: false } => "NATS restart (SIGTERM)",
            Fault::NatsRestart { kill: true } => "NATS restart (SIGKILL)",
            Fault::PostgresRestart => "PostgreSQL restart (immediate)",
        }
    }
}

/// A run's shape.
#[derive(Debug, Clone)]
pub struct Plan {
    /// How long new payments are started.
    pub load: Duration,
    /// New payments per second.
    pub rate: u32,
    /// Merchants the payments are spread over.
    pub merchants: usize,
    /// Processes of each role (relays: at least two).
    pub replicas: usize,
    /// The faults, spread evenly over the load.
    pub faults: Vec<Fault>,
    /// Longest the run waits after the load for everything to settle.
    pub settle: Duration,
}

/// One round of role kills: every role once.
const ROUND: [Fault; 4] = [
    Fault::Kill(Target::RelayLeader),
    Fault::Kill(Target::Workers),
    Fault::Kill(Target::Api),
    Fault::Kill(Target::Projectors),
];

impl Plan {
    /// About three minutes: 10 payments a second for 110 s over three merchants; every role
    /// killed twice, NATS and PostgreSQL restarted once.
    pub fn short() -> Self {
        Self {
            load: Duration::from_secs(110),
            rate: 10,
            merchants: 3,
            replicas: 1,
            faults: rounds(
                2,
                &[
                    (1, Fault::NatsRestart { kill: false }),
                    (2, Fault::PostgresRestart),
                ],
            ),
            settle: Duration::from_secs(180),
        }
    }

    /// Ten minutes: 25 payments a second for 600 s (15 000 payments) over three merchants;
    /// every role killed four times, NATS restarted twice (once with SIGKILL), PostgreSQL once.
    pub fn long() -> Self {
        Self {
            load: Duration::from_secs(600),
            rate: 25,
            merchants: 3,
            replicas: 1,
            faults: rounds(
                4,
                &[
                    (1, Fault::NatsRestart { kill: false }),
                    (2, Fault::PostgresRestart),
                    (3, Fault::NatsRestart { kill: true }),
                ],
            ),
            settle: Duration::from_secs(300),
        }
    }

    /// Two processes of every role sharing the work: 10 payments a second for 80 s over four
    /// merchants, each process killed once (a supervisor restarts it) while its twin carries on.
    pub fn replicated() -> Self {
        Self {
            load: Duration::from_secs(80),
            rate: 10,
            merchants: 4,
            replicas: 2,
            faults: [ROUND, ROUND].concat(),
            settle: Duration::from_secs(180),
        }
    }

    /// How many payments the load starts.
    pub fn payments(&self) -> u64 {
        self.load.as_secs() * u64::from(self.rate)
    }

    /// When the `index`-th fault is due, from the start of the load.
    pub fn fault_due(&self, index: usize) -> Duration {
        let slots = u32::try_from(self.faults.len() + 1).unwrap_or(u32::MAX);
        let index = u32::try_from(index + 1).unwrap_or(u32::MAX);
        self.load / slots * index
    }
}

/// `count` rounds of kills, each `extra` fault after the round it names (1-based).
fn rounds(count: usize, extra: &[(usize, Fault)]) -> Vec<Fault> {
    let mut faults = Vec::new();
    for round in 1..=count {
        faults.extend(ROUND);
        faults.extend(
            extra
                .iter()
                .filter(|(after, _)| *after == round)
                .map(|(_, fault)| *fault),
        );
    }
    faults
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_is_killed_several_times_and_each_service_restarted() {
        for plan in [Plan::short(), Plan::long()] {
            for target in [
                Target::RelayLeader,
                Target::Api,
                Target::Workers,
                Target::Projectors,
            ] {
                let kills = plan
                    .faults
                    .iter()
                    .filter(|f| **f == Fault::Kill(target))
                    .count();
                assert!(kills >= 2, "{target:?} killed {kills} times");
            }
            assert!(plan.faults.contains(&Fault::PostgresRestart));
            assert!(
                plan.faults
                    .iter()
                    .any(|f| matches!(f, Fault::NatsRestart { .. }))
            );
            let last = plan.fault_due(plan.faults.len() - 1);
            assert!(last < plan.load, "the last fault falls inside the load");
        }
        assert_eq!(Plan::long().payments(), 15_000);
    }

    #[test]
    fn the_replicated_run_kills_each_of_two_processes_once() {
        let plan = Plan::replicated();
        assert_eq!(plan.replicas, 2);
        for target in [Target::Api, Target::Workers, Target::Projectors] {
            let kills = plan.faults.iter().filter(|f| **f == Fault::Kill(target));
            assert_eq!(kills.count(), plan.replicas, "{target:?}");
        }
        assert!(plan.fault_due(plan.faults.len() - 1) < plan.load);
    }
}
