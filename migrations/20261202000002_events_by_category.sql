-- no-transaction
-- Events of one category in read order. A projector's lag is the count of its categories'
-- events after its checkpoint; without this index that count scanned every event since the
-- checkpoint, and a projection of a rare category (merchants, notifications) keeps its
-- checkpoint at its last event, so each measurement (every second, per projector) scanned more
-- of the log as it grew. Reads of some categories (catch-up, rebuilds) use it too.
--
-- Built CONCURRENTLY (hence outside a transaction) so appends go on while a large log is
-- indexed. If the build fails midway PostgreSQL leaves an invalid index behind: drop it
-- (`DROP INDEX ledger.events_category_read_order`) and migrate again.
CREATE INDEX CONCURRENTLY events_category_read_order
    ON ledger.events (category, transaction_id, position);
