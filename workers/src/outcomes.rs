//! The PSP outcome processor (`webhook-processing`): applies every recorded PSP outcome to its
//! payment.
//!
//! Jobs are `PspOutcomeReported` events, whether a verified webhook or a status check recorded
//! them. Each is settled with a command id derived from the event id, so however often the event
//! is delivered its effect is stored once; and the payment refuses a second success, so two
//! different reports racing for one payment still accrue exactly one commission.

use lightspeed_domain::psp_outcome::PspOutcomeEvent;
use lightspeed_eventstore::RecordedEvent;
use lightspeed_services::{Ledger, Settled};

use crate::ids;
use crate::queue::{Job, JobHandler, JobOutcome};
use crate::support::{caused_by, domain_event, ledger_failure, recorded_event};

/// The queue's name.
pub const QUEUE: &str = "webhook-processing";
/// The event that asks for settlement.
pub const EVENT_TYPE: &str = "PspOutcomeReported";

/// Settles recorded PSP outcomes.
#[derive(Debug, Clone)]
pub(crate) struct OutcomeProcessor {
    pub(crate) ledger: Ledger,
}

impl JobHandler for OutcomeProcessor {
    async fn handle(&self, job: Job) -> JobOutcome {
        let event = match recorded_event(&job) {
            Ok(event) => event,
            Err(outcome) => return outcome,
        };
        self.settle(&job, &event)
            .await
            .unwrap_or_else(|outcome| outcome)
    }
}

impl OutcomeProcessor {
    async fn settle(&self, job: &Job, event: &RecordedEvent) -> Result<JobOutcome, JobOutcome> {
        if event.event_type != EVENT_TYPE {
            return Ok(JobOutcome::Done);
        }
        let PspOutcomeEvent::PspOutcomeReported { report, .. } = domain_event(event)?;
        let context = caused_by(event, QUEUE, Some(ids::settle_command(event.event_id)));
        let settled = self
            .ledger
            .settle_outcome(&report, &context)
            .await
            .map_err(|e| ledger_failure(job, "settle the PSP outcome", &e))?;
        if let Some(payment_id) = report.payment_id {
            match settled {
                Settled::Succeeded {
                    commission,
                    late_success,
                } => {
                    tracing::info!(%payment_id, %commission, late_success, source = ?report.source, "payment succeeded")
                }
                Settled::Failed => {
                    tracing::info!(%payment_id, source = ?report.source, "payment failed")
                }
                Settled::Unchanged => {}
            }
        }
        Ok(JobOutcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_exists_in_the_domain() {
        assert!(PspOutcomeEvent::EVENT_TYPES.contains(&EVENT_TYPE));
    }
}
