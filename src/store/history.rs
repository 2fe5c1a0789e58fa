//! The `history` table: the audit trail of what played.

use super::*;

/// One item about to go on air (or that failed to).
#[derive(Debug, Clone, Copy)]
pub struct NewItem<'a> {
    /// None for rows that never became a program (a missed fire).
    pub program: Option<ProgramId>,
    pub program_name: &'a str,
    /// A file path, or `say:…` for synthesized speech.
    pub source: &'a str,
    pub sha256: Option<&'a str>,
    pub zones: &'a [String],
    pub priority: Priority,
    /// `schedule:NAME` or `cli`.
    pub origin: &'a str,
    pub caller_uid: Option<u32>,
    pub caller_pid: Option<i32>,
    pub start: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Only rows that started at or after this instant.
    pub since: Option<Timestamp>,
    /// Keep the newest N of the matching rows.
    pub limit: Option<usize>,
}

struct RawHistory {
    id: i64,
    program: i64,
    program_name: String,
    source: String,
    sha256: Option<String>,
    zones: String,
    priority: String,
    origin: String,
    caller_uid: Option<u32>,
    caller_pid: Option<i32>,
    start_ms: i64,
    end_ms: Option<i64>,
    outcome: Option<String>,
    error: Option<String>,
    skipped_ms: Option<i64>,
}

impl Store {
    /// Rows with no end become `Interrupted` with end = now (or = start, if
    /// the clock stepped back past it). Returns how many.
    pub fn close_unfinished(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE history SET end_ms = MAX(start_ms, ?1), outcome = ?2, error = ?3
                 WHERE end_ms IS NULL",
                params![
                    now.as_millisecond(),
                    Outcome::Interrupted.as_str(),
                    INTERRUPTED_ERROR
                ],
            )
            .map_err(self.query_error("close unfinished items"))
    }

    /// Records an item going on air; finish it with `finish_item`.
    pub fn begin_item(&mut self, item: &NewItem) -> Result<i64, StoreError> {
        self.insert_item(item, None, None)
    }

    pub fn finish_item(
        &mut self,
        id: i64,
        end: Timestamp,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE history SET end_ms = ?2, outcome = ?3, error = ?4
                 WHERE id = ?1 AND end_ms IS NULL",
                params![id, end.as_millisecond(), outcome.as_str(), error],
            )
            .map_err(self.query_error("record the end of an item"))?;
        if changed == 0 {
            return Err(StoreError::ItemNotOpen { id });
        }
        Ok(())
    }

    /// Records the content hash once known: hashing runs beside playback,
    /// so the item may already have finished.
    pub fn set_item_sha256(&mut self, id: i64, sha256: &str) -> Result<(), StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE history SET sha256 = ?2 WHERE id = ?1",
                params![id, sha256],
            )
            .map_err(self.query_error("record a content hash"))?;
        if changed == 0 {
            return Err(StoreError::NoSuchItem { id });
        }
        Ok(())
    }

    /// Records the silence pacer stalls put into the item so far (the
    /// running total, so writing it again changes nothing); like the hash,
    /// it may come after the item finished.
    pub fn set_item_skipped(&mut self, id: i64, skipped_ms: u64) -> Result<(), StoreError> {
        let skipped_ms = i64::try_from(skipped_ms).unwrap_or(i64::MAX);
        let changed = self
            .conn
            .execute(
                "UPDATE history SET skipped_ms = ?2 WHERE id = ?1",
                params![id, skipped_ms],
            )
            .map_err(self.query_error("record silence from a pacer stall"))?;
        if changed == 0 {
            return Err(StoreError::NoSuchItem { id });
        }
        Ok(())
    }

    /// A row that starts and ends at once (failed to open, missed fire).
    pub fn record_item(
        &mut self,
        item: &NewItem,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<i64, StoreError> {
        self.insert_item(item, Some(outcome), error)
    }

    /// Oldest first. `since` keeps rows with start >= since; `limit` keeps
    /// the newest N of those.
    pub fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryRow>, StoreError> {
        let since_ms = query.since.map(|t| t.as_millisecond());
        // LIMIT -1 is SQLite for "no limit".
        let limit = query
            .limit
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT * FROM (
                     SELECT id, program, program_name, source, sha256, zones, priority, origin,
                            caller_uid, caller_pid, start_ms, end_ms, outcome, error,
                            skipped_ms
                     FROM history
                     WHERE ?1 IS NULL OR start_ms >= ?1
                     ORDER BY start_ms DESC, id DESC
                     LIMIT ?2)
                 ORDER BY start_ms, id",
            )
            .map_err(self.query_error("read history"))?;
        let raw: Vec<RawHistory> = stmt
            .query_map(params![since_ms, limit], |row| {
                Ok(RawHistory {
                    id: row.get(0)?,
                    program: row.get(1)?,
                    program_name: row.get(2)?,
                    source: row.get(3)?,
                    sha256: row.get(4)?,
                    zones: row.get(5)?,
                    priority: row.get(6)?,
                    origin: row.get(7)?,
                    caller_uid: row.get(8)?,
                    caller_pid: row.get(9)?,
                    start_ms: row.get(10)?,
                    end_ms: row.get(11)?,
                    outcome: row.get(12)?,
                    error: row.get(13)?,
                    skipped_ms: row.get(14)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(self.query_error("read history"))?;
        raw.into_iter().map(|r| self.history_row(r)).collect()
    }

    fn history_row(&self, r: RawHistory) -> Result<HistoryRow, StoreError> {
        let outcome = match r.outcome {
            Some(word) => Some(
                word.parse::<Outcome>()
                    .map_err(|e| self.bad_value(format!("history item {}: {e}", r.id)))?,
            ),
            None => None,
        };
        Ok(HistoryRow {
            id: r.id,
            // The column holds 0 for rows that never became a program.
            program: ProgramId::new(r.program as u64),
            program_name: r.program_name,
            source: r.source,
            sha256: r.sha256,
            zones: self.parse_zones(&r.zones, "history item", &r.id.to_string())?,
            priority: r
                .priority
                .parse()
                .map_err(|e| self.bad_value(format!("history item {}: {e}", r.id)))?,
            origin: r.origin,
            caller_uid: r.caller_uid,
            caller_pid: r.caller_pid,
            start: self.timestamp(r.start_ms)?,
            end: r.end_ms.map(|ms| self.timestamp(ms)).transpose()?,
            outcome,
            error: r.error,
            skipped_ms: r.skipped_ms.map(|ms| ms.max(0) as u64),
        })
    }
}
