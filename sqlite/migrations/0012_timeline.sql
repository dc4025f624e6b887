-- The per-person timeline index moves out of events into a table of its
-- own that the writer fills in sorted sweeps (sqlite/timeline_index.go):
-- an index on events kept every person's newest leaf page dirty, so each
-- commit rewrote about one index page per event it held.
CREATE TABLE timeline (
    person_id TEXT NOT NULL,
    ts        INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (person_id, ts, seq)
) WITHOUT ROWID;
INSERT INTO timeline (person_id, ts, seq) SELECT person_id, ts, seq FROM events ORDER BY person_id, ts, seq;
DROP INDEX events_person_ts;

-- Every event with seq <= indexed_through has its timeline row; later
-- ones may or may not (readers look at them in events directly).
CREATE TABLE timeline_state (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_through  INTEGER NOT NULL
);
INSERT INTO timeline_state (id, indexed_through) VALUES (1, (SELECT COALESCE(max(seq), 0) FROM events));
