//! Faults of the state directory under a real daemon: a full disk, a
//! read-only disk, and kill -9 under load. The broadcast must go on with no
//! RTP gap, `loa status` must say what is wrong, and the history must catch
//! up (or say what was lost) with SQLite's integrity check passing.
//!
//! Small and read-only disks are tmpfs mounts made inside the private mount
//! namespace scripts/netns.sh creates, so the host never sees them.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::daemon::{base_config, seq_gaps, zone_toml, Daemon, RtpListener};
use common::{poll_until, require_netns, write_tones_wav, LOA};
use serde_json::Value;

/// These tests mount filesystems: only as root inside netns.sh's private
/// mount namespace, never on the host.
fn require_private_mounts() {
    require_netns();
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the state-directory fault tests mount a tmpfs and must run as root (or under \
         scripts/netns.sh, which maps the user to root)"
    );
    let own = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let init = std::fs::read_link("/proc/1/ns/mnt");
    assert!(
        init.map_or(true, |init| init != own),
        "not in a private mount namespace: run the tests through scripts/netns.sh, \
         which unshares one, so the tmpfs mounts stay away from the host"
    );
}

/// A tmpfs at `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        mount(&[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            dir.to_str().unwrap(),
        ]);
        Tmpfs(dir.to_path_buf())
    }

    fn remount(&self, mode: &str) {
        mount(&["-o", &format!("remount,{mode}"), self.0.to_str().unwrap()]);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount(args: &[&str]) {
    let out = Command::new("mount").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "mount {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes zeros into `path` until the filesystem says it is full.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    total
}

fn status(daemon: &Daemon) -> Value {
    daemon.json(&["status"])
}

/// Waits until `pred` holds on the "history" part of `loa status --json`
/// (the store's health); returns that part.
fn wait_store(daemon: &Daemon, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    daemon.wait_status(what, timeout, |s| pred(&s["history"]))["history"].clone()
}

/// Completed rows in `loa history`.
fn completed(rows: &[Value]) -> usize {
    rows.iter().filter(|r| r["outcome"] == "completed").count()
}

/// Waits until one more item completes and its row is written: the
/// history is being recorded (again).
fn wait_one_more_row(daemon: &Daemon) {
    let before = completed(daemon.json(&["history"])["rows"].as_array().unwrap());
    daemon.wait_history("one more completed row", Duration::from_secs(10), |rows| completed(rows) > before);
}

fn integrity(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// (start_ms, end_ms, outcome, program_name, source) of every row, oldest first.
type Row = (i64, Option<i64>, Option<String>, String, String);

fn rows(db: &Path) -> Vec<Row> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT start_ms, end_ms, outcome, program_name, source FROM history ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The rows of one looping program follow each other with no hole: each
/// item starts about when the one before it ended. A lost row would leave a
/// hole of at least one item's length.
fn assert_no_holes(rows: &[&Row], item_ms: i64, what: &str) {
    for pair in rows.windows(2) {
        let end = pair[0]
            .1
            .unwrap_or_else(|| panic!("{what}: a row has no end: {:?}", pair[0]));
        let hole = pair[1].0 - end;
        assert!(
            hole < item_ms / 2,
            "{what}: {hole} ms between a row's end and the next row's start (an item is {item_ms} ms): a row is missing\n{rows:#?}"
        );
    }
}

/// A daemon looping a 0.5 s item on one zone, its state_dir on a 4 MB tmpfs.
struct Setup {
    daemon: Daemon,
    listener: RtpListener,
    fs: Tmpfs,
    dir: tempfile::TempDir,
}

const ITEM_MS: i64 = 500;

fn looping_daemon() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&dir.path().join("state"), "4m");
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(
        &dir.path().join("media/short.wav"),
        48_000,
        1,
        &[(800.0, ITEM_MS as f32 / 1000.0)],
    );
    let (zone, group, port) = zone_toml("thon-1");
    let daemon = Daemon::start(dir.path(), &format!("{}{zone}", base_config(dir.path())));
    let listener = RtpListener::start(&group, port);
    daemon.json(&[
        "play",
        "--loop",
        "--zones",
        "thon-1",
        "--name",
        "loop",
        "short.wav",
    ]);
    Setup {
        daemon,
        listener,
        fs,
        dir,
    }
}

#[test]
fn a_full_disk_keeps_the_broadcast_going_and_the_history_catches_up_when_space_returns() {
    require_private_mounts();
    let Setup {
        mut daemon,
        listener,
        fs,
        dir,
    } = looping_daemon();
    let state = fs.0.clone();
    wait_one_more_row(&daemon);

    let filled = fill(&state.join("filler"));
    let full_at = common::daemon::now_ms() as i64;
    let h = wait_store(&daemon, "status to report the full disk", Duration::from_secs(10), |h| {
        h["failing"].is_object()
    });
    assert_eq!(h["failing"]["problem"], "the disk is full", "{h:#}");
    // Items keep starting and ending while the disk is full; their writes
    // wait. Real time, not a condition: the packets sent over these 3 s are
    // counted below.
    std::thread::sleep(Duration::from_millis(3000));
    let h = status(&daemon)["history"].clone();
    assert!(
        h["waiting_writes"].as_u64().unwrap() >= 6,
        "3 s of 0.5 s items wait: {h:#}"
    );
    assert_eq!(h["lost_writes"], 0, "{h:#}");
    let text = String::from_utf8_lossy(&daemon.loa(&["status"]).stdout).into_owned();
    assert!(
        text.contains("history writes are failing") && text.contains("the disk is full"),
        "{text}"
    );
    assert!(
        daemon
            .log_text()
            .contains("history writes are failing: the disk is full"),
        "{}",
        daemon.log_text()
    );

    std::fs::remove_file(state.join("filler")).unwrap();
    let freed_at = common::daemon::now_ms() as i64;
    let h = wait_store(&daemon, "the history to catch up", Duration::from_secs(12), |h| {
        h["failing"].is_null() && h["caught_up_at"].is_string()
    });
    assert_eq!(h["waiting_writes"], 0, "{h:#}");
    assert_eq!(h["lost_writes"], 0, "{h:#}");
    let text = String::from_utf8_lossy(&daemon.loa(&["status"]).stdout).into_owned();
    assert!(text.contains("history caught up at"), "{text}");
    assert!(
        daemon.log_text().contains("the history caught up"),
        "{}",
        daemon.log_text()
    );
    wait_one_more_row(&daemon);

    daemon.loa(&["stop", "--all"]);
    daemon.wait_idle(Duration::from_secs(10));
    let packets = listener.stop();
    assert_eq!(
        seq_gaps(&packets),
        0,
        "the RTP stream has a gap while the disk was full"
    );
    let during = packets
        .iter()
        .filter(|p| {
            let ms = p
                .arrival
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            ms > full_at && ms < freed_at
        })
        .count();
    assert!(
        during > 100,
        "only {during} packets while the disk was full"
    );

    let history = daemon.json(&["history"])["rows"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        daemon.stop(),
        "the daemon did not stop cleanly:\n{}",
        daemon.log_text()
    );
    let db = state.join("loa.db");
    assert_eq!(integrity(&db), "ok");
    let all = rows(&db);
    assert_eq!(all.len(), history.len(), "`loa history` shows every row");
    let looped: Vec<&Row> = all.iter().filter(|r| r.4.ends_with("short.wav")).collect();
    assert_no_holes(&looped, ITEM_MS, "full disk");
    let while_full = looped
        .iter()
        .filter(|r| r.0 > full_at && r.0 < freed_at)
        .count() as i64;
    let expected = (freed_at - full_at) / ITEM_MS;
    assert!(
        while_full >= expected - 1,
        "{while_full} rows began while the disk was full, {expected} items played"
    );
    for r in &looped[..looped.len() - 1] {
        assert_eq!(r.2.as_deref(), Some("completed"), "{r:?}");
    }
    assert_eq!(looped.last().unwrap().2.as_deref(), Some("stopped"));
    eprintln!(
        "full disk: filler {} KiB, {} rows ({while_full} begun while full), {} packets, 0 gaps",
        filled / 1024,
        all.len(),
        packets.len()
    );
    drop(dir);
}

#[test]
fn a_read_only_disk_keeps_the_broadcast_going_and_the_history_catches_up_after_remount() {
    require_private_mounts();
    let Setup {
        mut daemon,
        listener,
        fs,
        dir,
    } = looping_daemon();
    let state = fs.0.clone();
    wait_one_more_row(&daemon);
    drop(listener);
    // The mount cannot turn read-only while loa holds the database open for
    // writing (the kernel says "busy"); in the field it happens to a disk
    // with errors, or the next boot mounts it read-only. So: crash, the disk
    // comes back read-only, loa starts on it.
    daemon.kill9();
    fs.remount("ro");

    let mut daemon = Daemon::start_existing(dir.path());
    let h = wait_store(
        &daemon,
        "status to report the read-only disk",
        Duration::from_secs(10),
        |h| h["failing"].is_object(),
    );
    assert!(
        h["failing"]["problem"]
            .as_str()
            .unwrap()
            .contains("read-only"),
        "{h:#}"
    );
    let (group, port) = zone_group(&daemon.config);
    let listener = RtpListener::start(&group, port);
    daemon.json(&[
        "play",
        "--loop",
        "--zones",
        "thon-1",
        "--name",
        "loop-2",
        "short.wav",
    ]);
    let ro_at = common::daemon::now_ms() as i64;
    // Writes only pile up while the disk is read-only, so waiting the
    // former 3 s for six of them is the same check, done sooner.
    let h = poll_until(Duration::from_millis(3000), || {
        let h = status(&daemon)["history"].clone();
        if h["waiting_writes"].as_u64().unwrap() >= 6 {
            Ok(h)
        } else {
            Err(h)
        }
    })
    .unwrap_or_else(|h| h);
    assert!(h["waiting_writes"].as_u64().unwrap() >= 6, "{h:#}");
    let text = String::from_utf8_lossy(&daemon.loa(&["status"]).stdout).into_owned();
    assert!(text.contains("read-only"), "{text}");
    let refused = daemon.loa(&["history"]);
    assert!(
        refused.status.success(),
        "reading the history still works: {}",
        String::from_utf8_lossy(&refused.stderr)
    );

    fs.remount("rw");
    let rw_at = common::daemon::now_ms() as i64;
    let h = wait_store(
        &daemon,
        "the history to catch up after remount",
        Duration::from_secs(12),
        |h| h["failing"].is_null() && h["caught_up_at"].is_string(),
    );
    assert_eq!(h["lost_writes"], 0, "{h:#}");
    wait_one_more_row(&daemon);
    daemon.loa(&["stop", "--all"]);
    daemon.wait_idle(Duration::from_secs(10));
    let packets = listener.stop();
    assert_eq!(
        seq_gaps(&packets),
        0,
        "the RTP stream has a gap while the disk was read-only"
    );
    assert!(
        daemon.stop(),
        "the daemon did not stop cleanly:\n{}",
        daemon.log_text()
    );

    let db = state.join("loa.db");
    assert_eq!(integrity(&db), "ok");
    let all = rows(&db);
    let first: Vec<&Row> = all.iter().filter(|r| r.3 == "loop").collect();
    assert_eq!(
        first.last().unwrap().2.as_deref(),
        Some("interrupted"),
        "the row the crash left open: {first:#?}"
    );
    let second: Vec<&Row> = all.iter().filter(|r| r.3 == "loop-2").collect();
    assert_no_holes(&second, ITEM_MS, "read-only disk");
    let while_ro = second.iter().filter(|r| r.0 < rw_at).count() as i64;
    assert!(
        while_ro >= (rw_at - ro_at) / ITEM_MS - 1,
        "{while_ro} rows while read-only"
    );
    assert!(
        all.iter().all(|r| r.1.is_some()),
        "a row without end: {all:#?}"
    );
    eprintln!(
        "read-only disk: {} rows ({while_ro} begun while read-only), {} packets, 0 gaps",
        all.len(),
        packets.len()
    );
}

#[test]
fn loa_refuses_to_start_on_a_read_only_state_dir_without_a_database_and_says_why() {
    require_private_mounts();
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&dir.path().join("state"), "1m");
    fs.remount("ro");
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    let (zone, _, _) = zone_toml("thon-1");
    let config = dir.path().join("loa.toml");
    std::fs::write(&config, format!("{}{zone}", base_config(dir.path()))).unwrap();
    let out = Command::new(LOA)
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started on a read-only state_dir: {err}"
    );
    assert!(
        err.contains("read-only") && err.contains(&fs.0.display().to_string()),
        "{err}"
    );
}

/// The group and port of the first zone in a config.
fn zone_group(config: &Path) -> (String, u16) {
    let text = std::fs::read_to_string(config).unwrap();
    let line = text.lines().find(|l| l.starts_with("group = ")).unwrap();
    let value = line.trim_start_matches("group = ").trim_matches('"');
    let (group, port) = value.rsplit_once(':').unwrap();
    (group.to_string(), port.parse().unwrap())
}

/// A history row with the engine's program id, as the database holds it.
#[derive(Debug, Clone, PartialEq)]
struct FullRow {
    id: i64,
    program: i64,
    source: String,
    start_ms: i64,
    end_ms: Option<i64>,
    outcome: Option<String>,
}

fn full_rows(db: &Path) -> Vec<FullRow> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, program, source, start_ms, end_ms, outcome FROM history ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(FullRow {
            id: r.get(0)?,
            program: r.get(1)?,
            source: r.get(2)?,
            start_ms: r.get(3)?,
            end_ms: r.get(4)?,
            outcome: r.get(5)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// (program, source) of every item the log says went on air, in order:
/// the engine logs "on air: SOURCE program=P row=R" right before it hands
/// the row's begin to the store thread, which writes in that order.
fn on_air(log: &str) -> Vec<(i64, String)> {
    common::strip_ansi(log)
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find("on air: ")? + "on air: ".len()..];
            let (source, fields) = rest.rsplit_once(" program=")?;
            let program = fields.split(' ').next()?.parse().ok()?;
            Some((program, source.to_string()))
        })
        .collect()
}

#[test]
fn kill_9_under_load_loses_no_committed_row_and_the_database_stays_sound() {
    require_private_mounts();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    write_tones_wav(&dir.path().join("media/short.wav"), 48_000, 1, &[(600.0, 0.4)]);
    write_tones_wav(&dir.path().join("media/chime.wav"), 48_000, 1, &[(1000.0, 0.5)]);
    let mut config = base_config(dir.path());
    for z in 1..=10 {
        config += &zone_toml(&format!("z{z}")).0;
    }
    let mut daemon = Daemon::start(dir.path(), &config);
    for z in 1..=8 {
        daemon.json(&["play", "--loop", "--zones", &format!("z{z}"), "--name", &format!("loop-{z}"), "short.wav"]);
    }
    for z in [9, 10] {
        let name = format!("every-2s-{z}");
        daemon.json(&["schedule", "add", &name, "--cron", "*/2 * * * * *", "--file", "chime.wav", "--zones", &format!("z{z}")]);
    }
    // Real time, not a condition: the items put on air in these 6 s are
    // counted below. Then the kill comes 1.2 s after an even second: the
    // chimes (0.5 s, at even seconds) have ended, the next is 0.8 s away,
    // so only the eight loops are on air.
    std::thread::sleep(Duration::from_millis(6000));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let kill_at = (now / 2.0).floor() * 2.0 + 1.2;
    let kill_at = if kill_at < now { kill_at + 2.0 } else { kill_at };
    // Real time, not a condition: waiting for a point on the wall clock.
    std::thread::sleep(Duration::from_secs_f64(kill_at - now));
    daemon.kill9();
    let log = on_air(&daemon.log_text());
    let db = dir.path().join("state/loa.db");
    // Look at a copy, as the crash left it: opening the database itself
    // would checkpoint it before the restart sees it.
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["loa.db", "loa.db-wal"] {
        if dir.path().join("state").join(f).exists() {
            std::fs::copy(dir.path().join("state").join(f), copy.join(f)).unwrap();
        }
    }
    assert_eq!(integrity(&copy.join("loa.db")), "ok", "as kill -9 left it");
    let saved = full_rows(&copy.join("loa.db"));
    assert!(log.len() >= 8 * 10, "the first run played only {} items in 6 s", log.len());

    // Every row saved is an item the log put on air, in the same order
    // (none missing in between, none made up). What the log has beyond
    // them were begins handed to the store thread and not yet written when
    // the process died: at most the newest item of each program.
    let as_logged: Vec<(i64, String)> = saved.iter().map(|r| (r.program, r.source.clone())).collect();
    assert!(saved.len() <= log.len(), "{} rows saved, {} items on air", saved.len(), log.len());
    assert_eq!(as_logged, log[..saved.len()], "the saved rows are the items on air, in order");
    let unsaved = &log[saved.len()..];
    for (i, (program, source)) in unsaved.iter().enumerate() {
        let newer = unsaved[i + 1..].iter().any(|(p, _)| p == program);
        assert!(
            !newer && source.ends_with("short.wav"),
            "the begin of an older item of program {program} ({source}) was lost: {unsaved:?}"
        );
    }

    // Open rows as the crash left them: exactly the item each loop was
    // playing. A loop whose newest begin was unsaved may also have had its
    // previous row's finish written (it is sent just before), or not.
    let mut expected_open = Vec::new();
    for row in &saved {
        let last_of_program = saved.iter().rev().find(|r| r.program == row.program) == Some(row);
        let loop_item = row.source.ends_with("short.wav");
        let next_unsaved = unsaved.iter().any(|(p, _)| *p == row.program);
        if loop_item && last_of_program && !next_unsaved {
            assert_eq!(row.end_ms, None, "the item playing at the kill: {row:?}");
        } else if !(loop_item && last_of_program && next_unsaved) {
            assert_eq!(row.outcome.as_deref(), Some("completed"), "an item that ended before the kill: {row:?}");
        }
        if row.end_ms.is_none() {
            expected_open.push(row.id);
        }
    }
    assert!(
        expected_open.len() + unsaved.len() >= 8,
        "eight loops were on air: {} open rows, {} unsaved begins",
        expected_open.len(),
        unsaved.len()
    );

    let mut daemon = Daemon::start_existing(dir.path());
    // Closing them is a queued write of the new run.
    let _ = poll_until(Duration::from_secs(10), || {
        let now = full_rows(&db);
        if now.iter().take(saved.len()).all(|r| r.end_ms.is_some()) {
            Ok(())
        } else {
            Err(())
        }
    });
    assert_eq!(integrity(&db), "ok", "after kill -9");
    let after_restart = full_rows(&db);
    assert!(after_restart.len() >= saved.len(), "rows vanished: {} of {}", after_restart.len(), saved.len());
    // The first run's rows are all still there, as saved; the open ones
    // (and only they) are closed as interrupted.
    let mut interrupted = Vec::new();
    for (before, after) in saved.iter().zip(&after_restart) {
        assert_eq!(
            (before.id, before.program, &before.source, before.start_ms),
            (after.id, after.program, &after.source, after.start_ms),
            "a saved row changed"
        );
        if before.end_ms.is_some() {
            assert_eq!(before, after, "a finished row changed");
        } else {
            assert_eq!(after.outcome.as_deref(), Some("interrupted"), "{after:?}");
            assert!(after.end_ms.is_some(), "{after:?}");
            interrupted.push(after.id);
        }
    }
    assert_eq!(interrupted, expected_open, "the rows marked interrupted are the ones left open");
    let marked = format!(
        "{} history row(s) were left open by a previous run; marked interrupted",
        interrupted.len()
    );
    // The store thread logs it right after the rows are closed.
    let said = poll_until(Duration::from_secs(5), || {
        let text = common::strip_ansi(&daemon.log_text());
        text.contains("left open by a previous run").then_some(text.clone()).ok_or(text)
    })
    .unwrap_or_else(|text| text);
    assert!(said.contains(&marked), "no {marked:?} in:\n{said}");

    // The restarted daemon plays and records again (the schedules were saved).
    daemon.json(&["play", "--zones", "z1", "--name", "after-restart", "short.wav"]);
    let recorded = poll_until(Duration::from_secs(10), || {
        let now = rows(&db);
        let fired = now
            .iter()
            .skip(saved.len())
            .any(|r| r.4.ends_with("chime.wav") && r.1.is_some());
        let played = now
            .iter()
            .skip(saved.len())
            .any(|r| r.4.ends_with("short.wav") && r.2.as_deref() == Some("completed"));
        if fired && played {
            Ok(())
        } else {
            Err(now)
        }
    });
    if let Err(now) = recorded {
        panic!(
            "the restarted daemon did not record a schedule fire and a play: {:#?}\n{}",
            &now[saved.len().min(now.len())..],
            daemon.log_text()
        );
    }
    assert!(daemon.stop(), "{}", daemon.log_text());
    assert_eq!(integrity(&db), "ok");
    let end = rows(&db);
    assert!(end.iter().all(|r| r.1.is_some()), "a clean stop leaves no open row");
    eprintln!(
        "kill -9 under load: {} items on air in the first run, {} rows saved, {} begins unsaved at the kill, \
         {} interrupted, {} rows at the end",
        log.len(),
        saved.len(),
        unsaved.len(),
        interrupted.len(),
        end.len()
    );
}
