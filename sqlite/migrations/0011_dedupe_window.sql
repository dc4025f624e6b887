-- Retried messages are recognised by a window of recent message-id hashes
-- (sqlite/dedupe.go) instead of a unique index whose random keys made
-- every event insert rewrite a different index page.
DROP INDEX events_message;
CREATE TABLE message_hashes (
    first_seq INTEGER PRIMARY KEY,
    -- little-endian 64-bit hashes of (property_id, message_id) of the
    -- events first_seq, first_seq+1, …; 0 where no event has that seq
    hashes    BLOB NOT NULL
);
