//! A payment's statuses in the order the log records them, for a follower that must see every
//! state the payment passes through (the status stream), however quickly they follow each other.

use lightspeed_domain::Decider;
use lightspeed_domain::PaymentId;
use lightspeed_domain::payment::{Payment, PaymentEvent, PaymentStatus};
use lightspeed_eventstore::limits::MAX_READ_BATCH;
use lightspeed_eventstore::{EventStore, stream_of};

use crate::error::ServiceError;
use crate::ledger::Ledger;

/// How far a follower has read one payment's stream.
#[derive(Debug, Clone, Default)]
pub struct StatusCursor {
    payment: Option<Payment>,
    version: u64,
}

impl StatusCursor {
    /// The payment as of the last event read; `None` before its initiation was read.
    pub fn payment(&self) -> Option<&Payment> {
        self.payment.as_ref()
    }

    /// Reads one recorded event; answers the status it moved the payment to, if it moved it.
    fn read(&mut self, event: &PaymentEvent, version: u64) -> Option<PaymentStatus> {
        let before = self.payment.as_ref().map(Payment::status);
        self.payment = Payment::evolve(self.payment.take(), event);
        self.version = version;
        let after = self.payment.as_ref().map(Payment::status);
        after.filter(|status| Some(*status) != before)
    }
}

impl Ledger {
    /// Every status `payment_id` moved to after `cursor`, oldest first, one per change the log
    /// records (none skipped, however close together); moves the cursor past them.
    pub async fn statuses_since(
        &self,
        payment_id: PaymentId,
        cursor: &mut StatusCursor,
    ) -> Result<Vec<PaymentStatus>, ServiceError> {
        let stream = stream_of::<Payment>(payment_id)?;
        let mut statuses = Vec::new();
        loop {
            let batch = self
                .store()
                .read_stream(&stream, cursor.version, MAX_READ_BATCH)
                .await?;
            for recorded in &batch {
                let event: PaymentEvent = recorded
                    .decode()
                    .map_err(|e| ServiceError::Store(e.to_string()))?;
                statuses.extend(cursor.read(&event, recorded.stream_version));
            }
            if batch.len() < MAX_READ_BATCH {
                return Ok(statuses);
            }
        }
    }
}
