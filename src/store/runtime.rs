//! Runtime schedules and playlists (added over the socket, kept across
//! restarts) and the last fire of every schedule.

use super::*;

/// A schedule added at runtime (config schedules are not stored).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleRecord {
    pub name: String,
    pub cron: String,
    pub playlist: Option<String>,
    pub file: Option<String>,
    /// Text to speak instead of a playlist or file.
    #[serde(default)]
    pub say: Option<String>,
    /// The voice for `say`; `None` = the configured `[tts] voice`.
    #[serde(default)]
    pub voice: Option<String>,
    pub zones: Vec<String>,
    #[serde(with = "priority_word")]
    pub priority: Priority,
    pub max_duration_secs: Option<u64>,
    pub misfire_grace_secs: u64,
    pub enabled: bool,
    pub on_preempt: String,
    pub on_busy: String,
    pub created_by: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlaylistRecord {
    pub name: String,
    /// The m3u/pls path it was loaded from.
    pub source: String,
    pub items: Vec<PathBuf>,
    pub loaded_by: Option<u32>,
    #[serde(serialize_with = "serde_time::timestamp")]
    pub loaded_at: Timestamp,
}

struct RawSchedule {
    name: String,
    cron: String,
    playlist: Option<String>,
    file: Option<String>,
    say: Option<String>,
    voice: Option<String>,
    zones: String,
    priority: String,
    max_duration_secs: Option<i64>,
    misfire_grace_secs: i64,
    enabled: bool,
    on_preempt: String,
    on_busy: String,
    created_by: Option<u32>,
}

impl Store {
    /// Inserts the schedule, or replaces the one with the same name.
    pub fn save_schedule(&mut self, s: &ScheduleRecord) -> Result<(), StoreError> {
        let max_duration_secs = s
            .max_duration_secs
            .map(|v| to_sql_int("max_duration_secs", v))
            .transpose()?;
        let misfire_grace_secs = to_sql_int("misfire_grace_secs", s.misfire_grace_secs)?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO schedules (name, cron, playlist, file, zones, priority,
                     max_duration_secs, misfire_grace_secs, enabled, on_preempt, on_busy,
                     created_by, say, voice)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    s.name,
                    s.cron,
                    s.playlist,
                    s.file,
                    zones_json(&s.zones),
                    s.priority.as_str(),
                    max_duration_secs,
                    misfire_grace_secs,
                    s.enabled,
                    s.on_preempt,
                    s.on_busy,
                    s.created_by,
                    s.say,
                    s.voice,
                ],
            )
            .map_err(self.query_error("save a schedule"))?;
        Ok(())
    }

    /// Returns whether a schedule by that name existed.
    pub fn delete_schedule(&mut self, name: &str) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .execute("DELETE FROM schedules WHERE name = ?1", params![name])
            .map_err(self.query_error("delete a schedule"))?;
        Ok(changed > 0)
    }

    /// Returns whether a schedule by that name exists.
    pub fn set_schedule_enabled(&mut self, name: &str, enabled: bool) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE schedules SET enabled = ?2 WHERE name = ?1",
                params![name, enabled],
            )
            .map_err(self.query_error("enable or disable a schedule"))?;
        Ok(changed > 0)
    }

    /// Every stored schedule, by name.
    pub fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, cron, playlist, file, zones, priority, max_duration_secs,
                        misfire_grace_secs, enabled, on_preempt, on_busy, created_by,
                        say, voice
                 FROM schedules ORDER BY name",
            )
            .map_err(self.query_error("read schedules"))?;
        let raw: Vec<RawSchedule> = stmt
            .query_map([], |row| {
                Ok(RawSchedule {
                    name: row.get(0)?,
                    cron: row.get(1)?,
                    playlist: row.get(2)?,
                    file: row.get(3)?,
                    zones: row.get(4)?,
                    priority: row.get(5)?,
                    max_duration_secs: row.get(6)?,
                    misfire_grace_secs: row.get(7)?,
                    enabled: row.get(8)?,
                    on_preempt: row.get(9)?,
                    on_busy: row.get(10)?,
                    created_by: row.get(11)?,
                    say: row.get(12)?,
                    voice: row.get(13)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(self.query_error("read schedules"))?;
        raw.into_iter().map(|r| self.schedule_record(r)).collect()
    }

    /// Inserts the playlist, or replaces the one with the same name
    /// (items included).
    pub fn save_playlist(&mut self, p: &PlaylistRecord) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Query {
            action: "save a playlist",
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT INTO playlists (name, source, loaded_by, loaded_at_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET
                 source = excluded.source,
                 loaded_by = excluded.loaded_by,
                 loaded_at_ms = excluded.loaded_at_ms",
            params![p.name, p.source, p.loaded_by, p.loaded_at.as_millisecond()],
        )
        .map_err(err)?;
        tx.execute(
            "DELETE FROM playlist_items WHERE playlist = ?1",
            params![p.name],
        )
        .map_err(err)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO playlist_items (playlist, position, path) VALUES (?1, ?2, ?3)",
                )
                .map_err(err)?;
            for (position, item) in p.items.iter().enumerate() {
                insert
                    .execute(params![p.name, position as i64, path_bytes(item)])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Every stored playlist, by name, items in playing order.
    pub fn playlists(&self) -> Result<Vec<PlaylistRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, source, loaded_by, loaded_at_ms FROM playlists ORDER BY name",
            )
            .map_err(self.query_error("read playlists"))?;
        let heads: Vec<(String, String, Option<u32>, i64)> = stmt
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(self.query_error("read playlists"))?;
        let mut items_stmt = self
            .conn
            .prepare_cached("SELECT path FROM playlist_items WHERE playlist = ?1 ORDER BY position")
            .map_err(self.query_error("read playlists"))?;
        let mut out = Vec::with_capacity(heads.len());
        for (name, source, loaded_by, loaded_at_ms) in heads {
            let items: Vec<Vec<u8>> = items_stmt
                .query_map(params![name], |row| row.get(0))
                .and_then(|rows| rows.collect())
                .map_err(self.query_error("read playlists"))?;
            out.push(PlaylistRecord {
                items: items.into_iter().map(path_from_bytes).collect(),
                loaded_at: self.timestamp(loaded_at_ms)?,
                name,
                source,
                loaded_by,
            });
        }
        Ok(out)
    }

    /// Last fire per schedule name (config and runtime schedules alike).
    pub fn set_last_fire(&mut self, schedule: &str, at: Timestamp) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO last_fires (schedule, at_ms) VALUES (?1, ?2)
                 ON CONFLICT (schedule) DO UPDATE SET at_ms = excluded.at_ms",
                params![schedule, at.as_millisecond()],
            )
            .map_err(self.query_error("record a schedule's last fire"))?;
        Ok(())
    }

    pub fn last_fires(&self) -> Result<HashMap<String, Timestamp>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT schedule, at_ms FROM last_fires")
            .map_err(self.query_error("read last fires"))?;
        let raw: Vec<(String, i64)> = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(self.query_error("read last fires"))?;
        raw.into_iter()
            .map(|(name, ms)| Ok((name, self.timestamp(ms)?)))
            .collect()
    }

    fn schedule_record(&self, r: RawSchedule) -> Result<ScheduleRecord, StoreError> {
        let bad = |detail: String| self.bad_value(format!("schedule {:?}: {detail}", r.name));
        let priority = r
            .priority
            .parse::<Priority>()
            .map_err(|e| bad(e.to_string()))?;
        let max_duration_secs = r
            .max_duration_secs
            .map(|v| {
                u64::try_from(v).map_err(|_| bad(format!("max_duration_secs {v} is negative")))
            })
            .transpose()?;
        let misfire_grace_secs = u64::try_from(r.misfire_grace_secs).map_err(|_| {
            bad(format!(
                "misfire_grace_secs {} is negative",
                r.misfire_grace_secs
            ))
        })?;
        Ok(ScheduleRecord {
            zones: self.parse_zones(&r.zones, "schedule", &r.name)?,
            name: r.name,
            cron: r.cron,
            playlist: r.playlist,
            file: r.file,
            say: r.say,
            voice: r.voice,
            priority,
            max_duration_secs,
            misfire_grace_secs,
            enabled: r.enabled,
            on_preempt: r.on_preempt,
            on_busy: r.on_busy,
            created_by: r.created_by,
        })
    }
}
