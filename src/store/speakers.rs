//! Enrolled speakers and the audit of what happened to them (issue 15):
//! rows are written by the speakers task, never decided here.

use super::*;

/// One enrolment, live or revoked.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerRecord {
    pub name: String,
    pub zones: Vec<String>,
    /// `sha256:<hex>` of the speaker certificate's SubjectPublicKeyInfo.
    pub pin: String,
    pub enrolled_by: Option<u32>,
    pub enrolled_at: Timestamp,
    pub revoked_by: Option<u32>,
    pub revoked_at: Option<Timestamp>,
}

/// What happened to a speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeakerEventKind {
    Enrolled,
    Joined,
    Refused,
    Revoked,
    Left,
}

impl SpeakerEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SpeakerEventKind::Enrolled => "enrolled",
            SpeakerEventKind::Joined => "joined",
            SpeakerEventKind::Refused => "refused",
            SpeakerEventKind::Revoked => "revoked",
            SpeakerEventKind::Left => "left",
        }
    }

    fn parse(word: &str) -> Option<SpeakerEventKind> {
        [Self::Enrolled, Self::Joined, Self::Refused, Self::Revoked, Self::Left].into_iter().find(|k| k.as_str() == word)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerEvent {
    pub at: Timestamp,
    /// None for a certificate loa does not know.
    pub speaker: Option<String>,
    pub kind: SpeakerEventKind,
    /// The operator's uid (enrolments, revocations).
    pub by_uid: Option<u32>,
    /// The peer's address (joins, refusals).
    pub address: Option<String>,
    pub detail: String,
}

type RawSpeaker = (String, String, String, Option<u32>, i64, Option<u32>, Option<i64>);

const SPEAKER_COLUMNS: &str = "name, zones, pin, enrolled_by, enrolled_at_ms, revoked_by, revoked_at_ms";

impl Store {
    /// Records a new enrolment and its audit row together. Fails (and
    /// writes nothing) when `name` already has a live enrolment.
    pub fn enrol_speaker(&mut self, speaker: &SpeakerRecord) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(|source| StoreError::Query { action: "enrol a speaker", path: self.path.clone(), source })?;
        let sql = format!("INSERT INTO speakers ({SPEAKER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL)");
        let at = speaker.enrolled_at.as_millisecond();
        let result = tx
            .execute(&sql, params![speaker.name, zones_json(&speaker.zones), speaker.pin, speaker.enrolled_by, at])
            .and_then(|_| {
                let detail = format!("zones {}", speaker.zones.join(","));
                insert_event(&tx, at, Some(&speaker.name), SpeakerEventKind::Enrolled, speaker.enrolled_by, None, &detail)
            })
            .and_then(|()| tx.commit());
        result.map_err(self.query_error("enrol a speaker"))
    }

    /// Marks `name`'s live enrolment revoked, with its audit row. `None`
    /// when it has none.
    pub fn revoke_speaker(&mut self, name: &str, by: Option<u32>, at: Timestamp) -> Result<Option<SpeakerRecord>, StoreError> {
        let Some(mut record) = self.live_speaker(name)? else { return Ok(None) };
        let at_ms = at.as_millisecond();
        let tx = self.conn.transaction().map_err(|source| StoreError::Query { action: "revoke a speaker", path: self.path.clone(), source })?;
        let result = tx
            .execute(
                "UPDATE speakers SET revoked_by = ?1, revoked_at_ms = ?2 WHERE name = ?3 AND revoked_at_ms IS NULL",
                params![by, at_ms, name],
            )
            .and_then(|_| insert_event(&tx, at_ms, Some(name), SpeakerEventKind::Revoked, by, None, &format!("pin {}", record.pin)))
            .and_then(|()| tx.commit());
        result.map_err(self.query_error("revoke a speaker"))?;
        record.revoked_by = by;
        record.revoked_at = Some(at);
        Ok(Some(record))
    }

    /// `name`'s live (not revoked) enrolment.
    pub fn live_speaker(&self, name: &str) -> Result<Option<SpeakerRecord>, StoreError> {
        let sql = format!("SELECT {SPEAKER_COLUMNS} FROM speakers WHERE name = ?1 AND revoked_at_ms IS NULL");
        self.speakers_where(&sql, params![name]).map(|mut rows| rows.pop())
    }

    /// The enrolment with this pin, live or revoked (a revoked one is
    /// refused by name, which is the plain reason).
    pub fn speaker_by_pin(&self, pin: &str) -> Result<Option<SpeakerRecord>, StoreError> {
        let sql = format!("SELECT {SPEAKER_COLUMNS} FROM speakers WHERE pin = ?1");
        self.speakers_where(&sql, params![pin]).map(|mut rows| rows.pop())
    }

    /// Every enrolment, live ones first, then by name.
    pub fn speakers(&self) -> Result<Vec<SpeakerRecord>, StoreError> {
        let sql = format!("SELECT {SPEAKER_COLUMNS} FROM speakers ORDER BY revoked_at_ms IS NOT NULL, name, id");
        self.speakers_where(&sql, params![])
    }

    fn speakers_where(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<SpeakerRecord>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(self.query_error("read the speakers"))?;
        let raw: Vec<RawSpeaker> = stmt
            .query_map(args, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
            .and_then(|rows| rows.collect())
            .map_err(self.query_error("read the speakers"))?;
        raw.into_iter()
            .map(|(name, zones, pin, enrolled_by, enrolled_at, revoked_by, revoked_at)| {
                Ok(SpeakerRecord {
                    zones: self.parse_zones(&zones, "speaker", &name)?,
                    name,
                    pin,
                    enrolled_by,
                    enrolled_at: self.timestamp(enrolled_at)?,
                    revoked_by,
                    revoked_at: revoked_at.map(|ms| self.timestamp(ms)).transpose()?,
                })
            })
            .collect()
    }

    /// A join, a refusal or a departure (enrolments and revocations write
    /// theirs with the change).
    pub fn speaker_event(&mut self, event: &SpeakerEvent) -> Result<(), StoreError> {
        let at = event.at.as_millisecond();
        insert_event(&self.conn, at, event.speaker.as_deref(), event.kind, event.by_uid, event.address.as_deref(), &event.detail)
            .map_err(self.query_error("record a speaker event"))
    }

    /// The newest `limit` speaker events, oldest first.
    pub fn speaker_events(&self, limit: usize) -> Result<Vec<SpeakerEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT at_ms, speaker, event, by_uid, address, detail FROM
                   (SELECT * FROM speaker_events ORDER BY id DESC LIMIT ?1) ORDER BY id",
            )
            .map_err(self.query_error("read the speaker events"))?;
        type Raw = (i64, Option<String>, String, Option<u32>, Option<String>, String);
        let raw: Vec<Raw> = stmt
            .query_map(params![to_sql_int("limit", limit as u64)?], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .and_then(|rows| rows.collect())
            .map_err(self.query_error("read the speaker events"))?;
        raw.into_iter()
            .map(|(at, speaker, kind, by_uid, address, detail)| {
                let kind = SpeakerEventKind::parse(&kind).ok_or_else(|| self.bad_value(format!("speaker event \"{kind}\" is unknown")))?;
                Ok(SpeakerEvent { at: self.timestamp(at)?, speaker, kind, by_uid, address, detail })
            })
            .collect()
    }
}

fn insert_event(
    conn: &Connection,
    at_ms: i64,
    speaker: Option<&str>,
    kind: SpeakerEventKind,
    by_uid: Option<u32>,
    address: Option<&str>,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO speaker_events (at_ms, speaker, event, by_uid, address, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at_ms, speaker, kind.as_str(), by_uid, address, detail],
    )
    .map(|_| ())
}

#[cfg(test)]
#[path = "speakers_tests.rs"]
mod tests;
