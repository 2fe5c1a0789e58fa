//! The store's schema, one migration per version. `PRAGMA user_version`
//! holds how many of `MIGRATIONS` a database has had; a migration, once
//! released, never changes — a new need is a new entry at the end.

/// Migration `i` takes a database from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: history, runtime schedules and playlists, last fire per schedule.
    r#"
    CREATE TABLE history (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        program       INTEGER NOT NULL,
        program_name  TEXT NOT NULL,
        source        TEXT NOT NULL,
        sha256        TEXT,
        zones         TEXT NOT NULL,  -- JSON array of zone names
        priority      TEXT NOT NULL,
        origin        TEXT NOT NULL,
        caller_uid    INTEGER,
        caller_pid    INTEGER,
        start_ms      INTEGER NOT NULL,
        end_ms        INTEGER,
        outcome       TEXT CHECK (outcome IN ('completed', 'preempted', 'stopped',
                                              'failed', 'interrupted', 'missed')),
        error         TEXT,
        CHECK ((end_ms IS NULL) = (outcome IS NULL))
    );
    CREATE INDEX history_by_start ON history (start_ms);
    -- Open rows are few (one per zone on air) and looked up on every start.
    CREATE INDEX history_open ON history (id) WHERE end_ms IS NULL;

    CREATE TABLE schedules (
        name                TEXT PRIMARY KEY NOT NULL,
        cron                TEXT NOT NULL,
        playlist            TEXT,
        file                TEXT,
        zones               TEXT NOT NULL,  -- JSON array of zone names
        priority            TEXT NOT NULL,
        max_duration_secs   INTEGER,
        misfire_grace_secs  INTEGER NOT NULL,
        enabled             INTEGER NOT NULL,
        on_preempt          TEXT NOT NULL,
        on_busy             TEXT NOT NULL,
        created_by          INTEGER
    );

    CREATE TABLE playlists (
        name          TEXT PRIMARY KEY NOT NULL,
        source        TEXT NOT NULL,
        loaded_by     INTEGER,
        loaded_at_ms  INTEGER NOT NULL
    );
    CREATE TABLE playlist_items (
        playlist  TEXT NOT NULL REFERENCES playlists (name) ON DELETE CASCADE,
        position  INTEGER NOT NULL,
        path      BLOB NOT NULL,  -- OS bytes: paths need not be UTF-8
        PRIMARY KEY (playlist, position)
    );

    -- Keyed by name alone: config schedules have no row in `schedules`.
    CREATE TABLE last_fires (
        schedule  TEXT PRIMARY KEY NOT NULL,
        at_ms     INTEGER NOT NULL
    );
    "#,
    // 2: endpoint health transitions (DESIGN "Endpoint health").
    r#"
    CREATE TABLE health_events (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms     INTEGER NOT NULL,
        zone      TEXT NOT NULL,
        endpoint  TEXT NOT NULL,
        address   TEXT NOT NULL,
        state     TEXT NOT NULL,
        detail    TEXT NOT NULL
    );
    CREATE INDEX health_events_by_at ON health_events (at_ms);
    "#,
    // 3: EBU R128 loudness per content hash (issue 7), measured once.
    r#"
    CREATE TABLE loudness (
        sha256           TEXT PRIMARY KEY NOT NULL,
        integrated_lufs  REAL,  -- NULL: -inf (digital silence)
        true_peak_dbtp   REAL,  -- NULL: -inf
        measured_at_ms   INTEGER NOT NULL
    );
    "#,
    // 4: runtime schedules that speak (`loa schedule add --say`): the text,
    // and the voice when not the configured one.
    r#"
    ALTER TABLE schedules ADD COLUMN say TEXT;
    ALTER TABLE schedules ADD COLUMN voice TEXT;
    "#,
    // 5: silence in an item because the pacer stalled while it was on air
    // (issue 14), milliseconds; NULL: no stall hit it.
    r#"
    ALTER TABLE history ADD COLUMN skipped_ms INTEGER;
    "#,
    // 6: each SRTP zone's key ring (issue 15), so a restart keeps the keys
    // and SDPs handed out stay valid until their keys expire. Secret: the
    // database file is mode 0600.
    r#"
    CREATE TABLE zone_keys (
        zone          TEXT PRIMARY KEY NOT NULL,
        suite         TEXT NOT NULL,
        current_mki   INTEGER NOT NULL,
        current_key   BLOB NOT NULL,
        next_mki      INTEGER NOT NULL,
        next_key      BLOB NOT NULL,
        switch_at_ms  INTEGER NOT NULL
    );
    "#,
    // 7: enrolled speakers (issue 15) and the audit of their enrolments,
    // joins, refusals and revocations. A revoked row stays (who, when);
    // a name can be enrolled again, but only one row per name is live.
    r#"
    CREATE TABLE speakers (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        name            TEXT NOT NULL,
        zones           TEXT NOT NULL,  -- JSON array of zone names
        pin             TEXT NOT NULL UNIQUE,  -- sha256:<hex> of the cert's SPKI
        enrolled_by     INTEGER,
        enrolled_at_ms  INTEGER NOT NULL,
        revoked_by      INTEGER,
        revoked_at_ms   INTEGER
    );
    CREATE UNIQUE INDEX speakers_live ON speakers (name) WHERE revoked_at_ms IS NULL;

    CREATE TABLE speaker_events (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms    INTEGER NOT NULL,
        speaker  TEXT,  -- NULL: a refused certificate loa does not know
        event    TEXT NOT NULL CHECK (event IN ('enrolled', 'joined', 'refused', 'revoked', 'left')),
        by_uid   INTEGER,  -- the operator, for enrolments and revocations
        address  TEXT,  -- the peer, for joins and refusals
        detail   TEXT NOT NULL
    );
    CREATE INDEX speaker_events_by_at ON speaker_events (at_ms);
    "#,
];

/// The schema version this build writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;
