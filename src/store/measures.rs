//! Loudness measurements by content hash, and endpoint health transitions.

use super::*;

impl Store {
    /// Remembers an item's loudness by content hash (a later measurement of
    /// the same bytes replaces it).
    pub fn put_loudness(
        &mut self,
        sha256: &str,
        m: &crate::media::loudness::Measured,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let finite = |v: f64| v.is_finite().then_some(v);
        self.conn
            .execute(
                "INSERT INTO loudness (sha256, integrated_lufs, true_peak_dbtp, measured_at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (sha256) DO UPDATE SET integrated_lufs = excluded.integrated_lufs,
                   true_peak_dbtp = excluded.true_peak_dbtp, measured_at_ms = excluded.measured_at_ms",
                params![sha256, finite(m.integrated_lufs), finite(m.true_peak_dbtp), at.as_millisecond()],
            )
            .map_err(self.query_error("record an item's loudness"))?;
        Ok(())
    }

    /// Every remembered loudness measurement, by content hash.
    pub fn loudness(&self) -> Result<Vec<(String, crate::media::loudness::Measured)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT sha256, integrated_lufs, true_peak_dbtp FROM loudness")
            .map_err(self.query_error("read loudness measurements"))?;
        let raw: Vec<(String, Option<f64>, Option<f64>)> = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(self.query_error("read loudness measurements"))?;
        Ok(raw
            .into_iter()
            .map(|(sha256, lufs, tp)| {
                let m = crate::media::loudness::Measured {
                    integrated_lufs: lufs.unwrap_or(f64::NEG_INFINITY),
                    true_peak_dbtp: tp.unwrap_or(f64::NEG_INFINITY),
                };
                (sha256, m)
            })
            .collect())
    }

    /// One endpoint health transition (DESIGN "Endpoint health").
    pub fn record_health_event(
        &mut self,
        at: Timestamp,
        zone: &str,
        endpoint: &str,
        address: &str,
        state: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO health_events (at_ms, zone, endpoint, address, state, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![at.as_millisecond(), zone, endpoint, address, state, detail],
            )
            .map_err(self.query_error("record a health event"))?;
        Ok(())
    }
}
