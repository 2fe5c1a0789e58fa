//! The store actor's queue, overflow and refusals, on a real database in a
//! temporary folder.

use super::*;
use crate::store::HistoryQuery;

fn ctx(dir: &std::path::Path, capacity: usize) -> Ctx {
    let store = Store::open(dir).unwrap();
    store.refuse_writes();
    Ctx {
        path: store.path().to_path_buf(),
        store: Some(store),
        state_dir: dir.to_path_buf(),
        rows: HashMap::new(),
        lost_keys: HashSet::new(),
        backlog: Backlog::new(capacity),
        reopen: false,
        health: Arc::new(StoreHealth::default()),
    }
}

fn key(n: u64) -> RowKey {
    RowKey(std::num::NonZeroU64::new(n).unwrap())
}

fn row(program: u64, start_ms: i64) -> RowStart {
    RowStart {
        program: ProgramId::new(program),
        program_name: format!("p{program}"),
        source: "/m/a.wav".into(),
        sha256: None,
        zones: vec!["thon-1".into()],
        priority: Priority::Scheduled,
        origin: "cli".into(),
        caller_uid: None,
        caller_pid: None,
        start: Timestamp::from_millisecond(start_ms).unwrap(),
    }
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap()
}

#[test]
fn writes_wait_in_order_and_catch_up_with_their_true_times() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = ctx(dir.path(), 100);
    ctx.write(Op::Begin {
        key: key(1),
        row: row(1, 1_000),
    });
    ctx.write(Op::Hash {
        key: key(1),
        sha256: "ab".into(),
    });
    ctx.write(Op::Finish {
        key: key(1),
        end: at(2_000),
        outcome: Outcome::Completed,
        error: None,
    });
    ctx.write(Op::Record {
        row: row(2, 3_000),
        outcome: Outcome::Failed,
        error: Some("no such file".into()),
    });
    let h = ctx.health.snapshot();
    assert!(
        h.failing.as_ref().unwrap().problem.contains("read-only"),
        "{h:?}"
    );
    assert_eq!((h.waiting_writes, h.lost_writes), (4, 0));
    assert!(ctx
        .store
        .as_ref()
        .unwrap()
        .history(&HistoryQuery::default())
        .unwrap()
        .is_empty());

    // The try opens a new connection (this one stays read-only) and succeeds.
    ctx.flush();
    let h = ctx.health.snapshot();
    assert!(h.failing.is_none() && h.caught_up_at.is_some(), "{h:?}");
    assert_eq!((h.waiting_writes, h.lost_writes, h.write_errors), (0, 0, 1));
    let rows = ctx
        .store
        .as_ref()
        .unwrap()
        .history(&HistoryQuery::default())
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].start, rows[0].end, rows[0].outcome),
        (at(1_000), Some(at(2_000)), Some(Outcome::Completed))
    );
    assert_eq!(rows[0].sha256.as_deref(), Some("ab"));
    assert_eq!(
        (rows[1].start, rows[1].outcome),
        (at(3_000), Some(Outcome::Failed))
    );
}

#[test]
fn overflow_drops_the_oldest_writes_and_a_lost_begin_takes_its_row_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = ctx(dir.path(), 4);
    ctx.write(Op::Begin {
        key: key(1),
        row: row(1, 1_000),
    });
    ctx.write(Op::Begin {
        key: key(2),
        row: row(2, 1_500),
    });
    ctx.write(Op::Hash {
        key: key(1),
        sha256: "ab".into(),
    });
    ctx.write(Op::Finish {
        key: key(2),
        end: at(2_500),
        outcome: Outcome::Stopped,
        error: None,
    });
    ctx.write(Op::Finish {
        key: key(1),
        end: at(3_000),
        outcome: Outcome::Completed,
        error: None,
    });
    let h = ctx.health.snapshot();
    assert_eq!(
        (h.waiting_writes, h.lost_writes, h.lost_rows),
        (4, 1, 1),
        "{h:?}"
    );
    assert!(h.lost_since.is_some());

    ctx.flush();
    let h = ctx.health.snapshot();
    // Row 1's hash and finish had nothing to write to: counted as lost too.
    assert_eq!(
        (h.waiting_writes, h.lost_writes, h.lost_rows),
        (0, 3, 1),
        "{h:?}"
    );
    assert!(h.caught_up_at.is_some());
    let rows = ctx
        .store
        .as_ref()
        .unwrap()
        .history(&HistoryQuery::default())
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].program, rows[0].end, rows[0].outcome),
        (ProgramId::new(2), Some(at(2_500)), Some(Outcome::Stopped))
    );
}

#[test]
fn a_write_the_database_refuses_is_dropped_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = ctx(dir.path(), 10);
    ctx.store = Some(Store::open(dir.path()).unwrap());
    ctx.write(Op::Other {
        what: "finish a row that is not open",
        write: Box::new(|s| s.finish_item(99, at(1), Outcome::Completed, None)),
    });
    let h = ctx.health.snapshot();
    assert!(h.failing.is_none(), "{h:?}");
    assert_eq!((h.waiting_writes, h.lost_writes, h.write_errors), (0, 1, 1));
}
