use super::*;
use crate::media::hash::{sha256_file, sha256_open};

use jiff::ToSpan;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap()
}

fn zones() -> Vec<String> {
    vec!["market".to_string(), "school".to_string()]
}

fn item<'a>(zones: &'a [String], source: &'a str, start: Timestamp) -> NewItem<'a> {
    NewItem {
        program: ProgramId::new(7),
        program_name: "morning news",
        source,
        sha256: Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        zones,
        priority: Priority::Scheduled,
        origin: "schedule:morning",
        caller_uid: Some(1000),
        caller_pid: Some(4242),
        start,
    }
}

fn schedule(name: &str) -> ScheduleRecord {
    ScheduleRecord {
        name: name.to_string(),
        cron: "0 6 * * *".to_string(),
        playlist: Some("morning".to_string()),
        file: None,
        say: None,
        voice: None,
        zones: zones(),
        priority: Priority::Announcement,
        max_duration_secs: Some(1800),
        misfire_grace_secs: 300,
        enabled: true,
        on_preempt: "resume".to_string(),
        on_busy: "queue".to_string(),
        created_by: Some(1000),
    }
}

#[test]
fn begun_item_reads_back_open_then_finished() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let zones = zones();
    let id = store
        .begin_item(&item(&zones, "/srv/audio/news.opus", at(1_000)))
        .unwrap();

    let open = store.history(&HistoryQuery::default()).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, id);
    assert_eq!(open[0].end, None);
    assert_eq!(open[0].outcome, None);

    store
        .finish_item(
            id,
            at(61_000),
            Outcome::Preempted,
            Some("emergency on market"),
        )
        .unwrap();
    let row = &store.history(&HistoryQuery::default()).unwrap()[0];
    assert_eq!(row.program, ProgramId::new(7));
    assert_eq!(row.program_name, "morning news");
    assert_eq!(row.source, "/srv/audio/news.opus");
    assert_eq!(row.sha256.as_deref(), item(&zones, "", at(0)).sha256);
    assert_eq!(row.zones, zones);
    assert_eq!(row.priority, Priority::Scheduled);
    assert_eq!(row.origin, "schedule:morning");
    assert_eq!(row.caller_uid, Some(1000));
    assert_eq!(row.caller_pid, Some(4242));
    assert_eq!(row.start, at(1_000));
    assert_eq!(row.end, Some(at(61_000)));
    assert_eq!(row.outcome, Some(Outcome::Preempted));
    assert_eq!(row.error.as_deref(), Some("emergency on market"));
}

#[test]
fn finishing_an_item_twice_or_an_unknown_item_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let zones = zones();
    let id = store.begin_item(&item(&zones, "a.opus", at(0))).unwrap();
    store
        .finish_item(id, at(1), Outcome::Completed, None)
        .unwrap();
    let twice = store
        .finish_item(id, at(2), Outcome::Stopped, None)
        .unwrap_err();
    assert!(matches!(twice, StoreError::ItemNotOpen { id: i } if i == id));
    assert!(store
        .finish_item(id + 100, at(2), Outcome::Completed, None)
        .is_err());
    assert_eq!(
        store.history(&HistoryQuery::default()).unwrap()[0].outcome,
        Some(Outcome::Completed)
    );
}

#[test]
fn recorded_item_starts_and_ends_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let zones = zones();
    store
        .record_item(
            &item(&zones, "gone.opus", at(5_000)),
            Outcome::Missed,
            Some("fired 10 min late"),
        )
        .unwrap();
    let row = &store.history(&HistoryQuery::default()).unwrap()[0];
    assert_eq!(row.end, Some(row.start));
    assert_eq!(row.outcome, Some(Outcome::Missed));
    assert_eq!(row.error.as_deref(), Some("fired 10 min late"));
}

#[test]
fn close_unfinished_turns_open_rows_into_interrupted_and_leaves_finished_ones() {
    let dir = tempfile::tempdir().unwrap();
    let zones = zones();
    {
        let mut store = Store::open(dir.path()).unwrap();
        let done = store
            .begin_item(&item(&zones, "done.opus", at(1_000)))
            .unwrap();
        store
            .finish_item(done, at(2_000), Outcome::Completed, None)
            .unwrap();
        store
            .begin_item(&item(&zones, "cut.opus", at(3_000)))
            .unwrap();
        store
            .begin_item(&item(&zones, "cut2.opus", at(4_000)))
            .unwrap();
    }
    // As on daemon start: reopen, then close what the last run left open.
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(store.close_unfinished(at(9_000)).unwrap(), 2);
    assert_eq!(store.close_unfinished(at(10_000)).unwrap(), 0);

    let rows = store.history(&HistoryQuery::default()).unwrap();
    assert_eq!(rows[0].outcome, Some(Outcome::Completed));
    assert_eq!(rows[0].end, Some(at(2_000)));
    assert_eq!(rows[0].error, None);
    for row in &rows[1..] {
        assert_eq!(row.outcome, Some(Outcome::Interrupted));
        assert_eq!(row.end, Some(at(9_000)));
        assert_eq!(
            row.error.as_deref(),
            Some("the daemon stopped before the item ended")
        );
    }
}

#[test]
fn reopening_the_database_keeps_schedules_playlists_and_last_fires() {
    let dir = tempfile::tempdir().unwrap();
    let playlist = PlaylistRecord {
        name: "morning".to_string(),
        source: "/etc/loa/morning.m3u".to_string(),
        items: vec![
            "/srv/a.opus".into(),
            "/srv/b, c.opus".into(),
            "/srv/a.opus".into(),
        ],
        loaded_by: Some(0),
        loaded_at: at(1_700_000_000_000),
    };
    {
        let mut store = Store::open(dir.path()).unwrap();
        store.save_schedule(&schedule("morning")).unwrap();
        store.save_schedule(&schedule("evening")).unwrap();
        store.save_playlist(&playlist).unwrap();
        store.set_last_fire("morning", at(1_000)).unwrap();
        store.set_last_fire("config-noon", at(2_000)).unwrap();
        store.set_last_fire("morning", at(3_000)).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.schedules().unwrap(),
        vec![schedule("evening"), schedule("morning")]
    );
    assert_eq!(store.playlists().unwrap(), vec![playlist]);
    let fires = store.last_fires().unwrap();
    assert_eq!(fires.len(), 2);
    assert_eq!(fires["morning"], at(3_000));
    assert_eq!(fires["config-noon"], at(2_000));
}

#[test]
fn saving_a_schedule_or_playlist_by_an_existing_name_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.save_schedule(&schedule("morning")).unwrap();
    let changed = ScheduleRecord {
        cron: "30 5 * * *".to_string(),
        max_duration_secs: None,
        ..schedule("morning")
    };
    store.save_schedule(&changed).unwrap();
    assert_eq!(store.schedules().unwrap(), vec![changed]);

    let mut playlist = PlaylistRecord {
        name: "p".to_string(),
        source: "/p.m3u".to_string(),
        items: vec!["/1.opus".into(), "/2.opus".into()],
        loaded_by: None,
        loaded_at: at(0),
    };
    store.save_playlist(&playlist).unwrap();
    playlist.items = vec!["/3.opus".into()];
    playlist.loaded_at = at(5);
    store.save_playlist(&playlist).unwrap();
    assert_eq!(store.playlists().unwrap(), vec![playlist]);
}

#[test]
fn schedules_can_be_disabled_and_deleted_and_unknown_names_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.save_schedule(&schedule("morning")).unwrap();
    assert!(store.set_schedule_enabled("morning", false).unwrap());
    assert!(!store.schedules().unwrap()[0].enabled);
    assert!(!store.set_schedule_enabled("nope", true).unwrap());
    assert!(!store.delete_schedule("nope").unwrap());
    assert!(store.delete_schedule("morning").unwrap());
    assert!(store.schedules().unwrap().is_empty());
}

#[test]
fn schedule_record_serializes_priority_as_the_lowercase_word() {
    let json = serde_json::to_value(schedule("morning")).unwrap();
    assert_eq!(json["priority"], "announcement");
    let back: ScheduleRecord = serde_json::from_value(json).unwrap();
    assert_eq!(back, schedule("morning"));
}

#[test]
fn journal_mode_is_wal() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mode: String = store
        .conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: bool = store
        .conn
        .pragma_query_value(None, "foreign_keys", |row| row.get(0))
        .unwrap();
    assert!(fk);
    // 1 = NORMAL
    let sync: i64 = store
        .conn
        .pragma_query_value(None, "synchronous", |row| row.get(0))
        .unwrap();
    assert_eq!(sync, 1);
}

#[test]
fn open_creates_the_state_dir_and_loa_db_inside_it() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("var/lib/loa");
    let store = Store::open(&state_dir).unwrap();
    assert_eq!(store.path(), state_dir.join("loa.db"));
    assert!(store.path().is_file());
}

#[test]
fn new_database_is_at_the_current_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let version: i64 = store
        .conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(version, 7);
}

#[test]
fn schema_1_database_is_upgraded_to_gain_health_events() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join("loa.db")).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    let mut store = Store::open(dir.path()).unwrap();
    store
        .record_health_event(
            at(1_000),
            "market",
            "speaker-3",
            "10.0.0.3:5004",
            "down",
            "no RTCP for 30 s",
        )
        .unwrap();
    let row: (i64, String, String) = store
        .conn
        .query_row("SELECT at_ms, state, detail FROM health_events", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(
        row,
        (1_000, "down".to_string(), "no RTCP for 30 s".to_string())
    );
}

#[test]
fn database_from_a_newer_loa_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join("loa.db")).unwrap();
        conn.pragma_update(None, "user_version", 8).unwrap();
    }
    let err = Store::open(dir.path()).unwrap_err();
    let expected = format!(
        "the history database {} is from a newer loa (schema 8, this build knows 7)",
        dir.path().join("loa.db").display()
    );
    assert_eq!(err.to_string(), expected);
    // Left untouched: still its own version, not switched to WAL.
    let conn = Connection::open(dir.path().join("loa.db")).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 8);
}

#[test]
fn random_bytes_in_loa_db_give_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // Fixed pseudo-random bytes: reproducible, and no SQLite header.
    let mut x: u32 = 0x9e37_79b9;
    let junk: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(dir.path().join("loa.db"), junk).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("loa.db is damaged or is not a database"),
        "{message}"
    );
    assert!(message.contains("move it aside"), "{message}");
}

#[test]
fn history_since_keeps_later_starts_and_limit_keeps_the_newest_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let zones = zones();
    let base = at(1_700_000_000_000);
    for minutes in 0..5 {
        let start = base.checked_add(minutes.minutes()).unwrap();
        store
            .record_item(&item(&zones, "x.opus", start), Outcome::Completed, None)
            .unwrap();
    }
    let starts = |q: HistoryQuery| -> Vec<Timestamp> {
        store
            .history(&q)
            .unwrap()
            .into_iter()
            .map(|r| r.start)
            .collect()
    };
    let minute = |m: i64| base.checked_add(m.minutes()).unwrap();

    assert_eq!(starts(HistoryQuery::default()).len(), 5);
    assert_eq!(
        starts(HistoryQuery {
            since: Some(minute(2)),
            limit: None
        }),
        vec![minute(2), minute(3), minute(4)]
    );
    assert_eq!(
        starts(HistoryQuery {
            since: None,
            limit: Some(2)
        }),
        vec![minute(3), minute(4)]
    );
    assert_eq!(
        starts(HistoryQuery {
            since: Some(minute(1)),
            limit: Some(10)
        }),
        vec![minute(1), minute(2), minute(3), minute(4)]
    );
    assert!(starts(HistoryQuery {
        since: None,
        limit: Some(0)
    })
    .is_empty());
}

#[test]
fn sha256_of_a_file_holding_abc_is_the_known_digest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abc.txt");
    std::fs::write(&path, b"abc").unwrap();
    assert_eq!(
        sha256_file(&path).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn sha256_spanning_many_reads_matches_the_known_digest() {
    // FIPS 180-2 test vector: one million 'a's, several 64 KiB reads.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.bin");
    std::fs::write(&path, vec![b'a'; 1_000_000]).unwrap();
    assert_eq!(
        sha256_file(&path).unwrap(),
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    );
}

#[test]
fn sha256_of_an_open_file_survives_deletion_and_ignores_the_shared_read_offset() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.bin");
    std::fs::write(&path, vec![b'a'; 1_000_000]).unwrap();
    let mut decoder_side = std::fs::File::open(&path).unwrap();
    let hash_side = decoder_side.try_clone().unwrap();
    let mut head = [0u8; 1000];
    decoder_side.read_exact(&mut head).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        sha256_open(&hash_side).unwrap(),
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    );
    // The decoder's offset is where it was: hashing read positionally.
    let mut next = [0u8; 10];
    decoder_side.read_exact(&mut next).unwrap();
    let position = std::io::Seek::stream_position(&mut decoder_side).unwrap();
    assert_eq!(position, 1010);
}

#[test]
fn integrity_check_says_ok() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let zones = zones();
    store.begin_item(&item(&zones, "a.opus", at(0))).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn content_hash_can_be_set_after_the_item_began_or_finished() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let zones = zones();
    let unhashed = NewItem {
        sha256: None,
        ..item(&zones, "a.opus", at(0))
    };
    let id = store.begin_item(&unhashed).unwrap();
    store
        .finish_item(id, at(1), Outcome::Completed, None)
        .unwrap();
    store.set_item_sha256(id, "ab12").unwrap();
    assert_eq!(
        store.history(&HistoryQuery::default()).unwrap()[0]
            .sha256
            .as_deref(),
        Some("ab12")
    );
    assert!(matches!(
        store.set_item_sha256(id + 1, "ab12"),
        Err(StoreError::NoSuchItem { .. })
    ));
}

#[test]
fn silence_from_stalls_is_a_running_total_on_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let zones = zones();
    let id = store.begin_item(&item(&zones, "a.opus", at(0))).unwrap();
    let other = store.begin_item(&item(&zones, "b.opus", at(0))).unwrap();
    store.set_item_skipped(id, 1_500).unwrap();
    // The total again (a retried write), then a larger one after the end.
    store.set_item_skipped(id, 1_500).unwrap();
    store
        .finish_item(id, at(10), Outcome::Completed, None)
        .unwrap();
    store.set_item_skipped(id, 2_700).unwrap();
    let rows = store.history(&HistoryQuery::default()).unwrap();
    let skipped = |row: i64| rows.iter().find(|r| r.id == row).unwrap().skipped_ms;
    assert_eq!(skipped(id), Some(2_700));
    assert_eq!(skipped(other), None, "a row no stall hit has none");
    assert!(matches!(
        store.set_item_skipped(other + 1, 20),
        Err(StoreError::NoSuchItem { .. })
    ));
}

#[test]
fn disk_faults_are_named_in_plain_words_and_kept_for_retry() {
    use super::Problem;
    let sqlite = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
    let query = |code| StoreError::Query { action: "record an item", path: "/x/loa.db".into(), source: sqlite(code) };
    assert_eq!(query(rusqlite::ffi::SQLITE_FULL).problem().words(), "the disk is full");
    assert!(query(rusqlite::ffi::SQLITE_READONLY).problem().words().contains("read-only"));
    assert!(query(rusqlite::ffi::SQLITE_IOERR_WRITE).problem().words().contains("input/output"));
    assert_eq!(query(rusqlite::ffi::SQLITE_BUSY).problem(), Problem::Busy);
    for code in [rusqlite::ffi::SQLITE_FULL, rusqlite::ffi::SQLITE_READONLY, rusqlite::ffi::SQLITE_IOERR, rusqlite::ffi::SQLITE_CANTOPEN] {
        assert!(query(code).problem().transient(), "{code} is a disk fault");
    }
    assert!(!query(rusqlite::ffi::SQLITE_CONSTRAINT).problem().transient(), "a refused value never succeeds");
    assert!(!StoreError::ItemNotOpen { id: 3 }.problem().transient());
    assert!(query(rusqlite::ffi::SQLITE_READONLY).problem().reopen(), "a connection opened read-only stays so");
    assert!(!query(rusqlite::ffi::SQLITE_FULL).problem().reopen());

    let io = |errno| std::io::Error::from_raw_os_error(errno);
    assert_eq!(Problem::from_io(&io(libc::ENOSPC)), Problem::DiskFull);
    assert_eq!(Problem::from_io(&io(libc::EROFS)), Problem::ReadOnly);
    assert_eq!(Problem::from_io(&io(libc::EIO)), Problem::Io);
    let unwritable = StoreError::Unwritable { path: "/s/loa.db".into(), dir: "/s".into(), source: io(libc::EROFS) };
    let text = unwritable.to_string();
    assert!(text.contains("read-only") && text.contains("/s/loa.db"), "{text}");
}

#[test]
fn loudness_is_remembered_by_hash_across_reopen() {
    use crate::media::loudness::Measured;
    let dir = tempfile::tempdir().unwrap();
    let loud = Measured {
        integrated_lufs: -9.5,
        true_peak_dbtp: -0.3,
    };
    let silent = Measured {
        integrated_lufs: f64::NEG_INFINITY,
        true_peak_dbtp: f64::NEG_INFINITY,
    };
    let first = Measured {
        integrated_lufs: -30.0,
        true_peak_dbtp: -12.0,
    };
    {
        let mut store = Store::open(dir.path()).unwrap();
        store.put_loudness("aa", &first, at(1_000)).unwrap();
        store.put_loudness("aa", &loud, at(2_000)).unwrap();
        store.put_loudness("bb", &silent, at(3_000)).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let mut rows = store.loudness().unwrap();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        rows,
        vec![("aa".to_string(), loud), ("bb".to_string(), silent)]
    );
}

#[test]
fn schema_2_database_is_upgraded_to_gain_loudness() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join("loa.db")).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
    }
    let mut store = Store::open(dir.path()).unwrap();
    let m = crate::media::loudness::Measured {
        integrated_lufs: -20.0,
        true_peak_dbtp: -4.0,
    };
    store.put_loudness("cc", &m, at(1_000)).unwrap();
    assert_eq!(store.loudness().unwrap(), vec![("cc".to_string(), m)]);
}

#[test]
fn schema_3_schedules_survive_the_upgrade_and_speaking_ones_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join("loa.db")).unwrap();
        for sql in &MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute(
            "INSERT INTO schedules (name, cron, playlist, file, zones, priority,
                 max_duration_secs, misfire_grace_secs, enabled, on_preempt, on_busy,
                 created_by)
             VALUES ('old', '0 6 * * *', 'morning', NULL, '[\"market\"]', 'scheduled',
                 NULL, 300, 1, 'pause', 'wait', NULL)",
            [],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
    }
    let mut store = Store::open(dir.path()).unwrap();
    let old = &store.schedules().unwrap()[0];
    assert_eq!(
        (old.name.as_str(), old.playlist.as_deref()),
        ("old", Some("morning"))
    );
    assert_eq!((old.say.as_deref(), old.voice.as_deref()), (None, None));

    let spoken = ScheduleRecord {
        playlist: None,
        say: Some("Xin chào bà con".to_string()),
        voice: Some("vi-vn-x-south".to_string()),
        ..schedule("notice")
    };
    store.save_schedule(&spoken).unwrap();
    let back = store.schedules().unwrap();
    assert_eq!(back.iter().find(|s| s.name == "notice"), Some(&spoken));
}
