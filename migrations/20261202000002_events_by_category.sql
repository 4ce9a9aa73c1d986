-- Events of one category in read order. A projector's lag is the count of its categories'
-- events after its checkpoint; without this index that count scanned every event since the
-- checkpoint, and a projection of a rare category (merchants, notifications) keeps its
-- checkpoint at its last event, so each measurement (every second, per projector) scanned more
-- of the log as it grew. Catch-up reads of one category use it too.
CREATE INDEX events_category_read_order ON ledger.events (category, transaction_id, position);
