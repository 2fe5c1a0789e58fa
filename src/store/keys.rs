//! Zone key rings (issue 15): saved on every change, read once at start.

use super::*;
use crate::keys::SavedRing;

impl Store {
    /// Saves `zone`'s ring, replacing the one before.
    pub fn put_zone_keys(&mut self, zone: &str, ring: &SavedRing) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO zone_keys (zone, suite, current_mki, current_key, next_mki, next_key, switch_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (zone) DO UPDATE SET suite = excluded.suite,
                   current_mki = excluded.current_mki, current_key = excluded.current_key,
                   next_mki = excluded.next_mki, next_key = excluded.next_key,
                   switch_at_ms = excluded.switch_at_ms",
                params![
                    zone,
                    ring.suite,
                    ring.current_mki,
                    ring.current_key,
                    ring.next_mki,
                    ring.next_key,
                    ring.switch_at_ms
                ],
            )
            .map_err(self.query_error("save a zone's keys"))?;
        Ok(())
    }

    /// Forgets a zone's keys (the zone was removed or made plain RTP).
    pub fn delete_zone_keys(&mut self, zone: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM zone_keys WHERE zone = ?1", params![zone])
            .map_err(self.query_error("forget a zone's keys"))?;
        Ok(())
    }

    /// Every saved ring, by zone name.
    pub fn zone_keys(&self) -> Result<Vec<(String, SavedRing)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT zone, suite, current_mki, current_key, next_mki, next_key, switch_at_ms
                 FROM zone_keys ORDER BY zone",
            )
            .map_err(self.query_error("read zone keys"))?;
        stmt.query_map([], |row| {
            Ok((
                row.get(0)?,
                SavedRing {
                    suite: row.get(1)?,
                    current_mki: row.get(2)?,
                    current_key: row.get(3)?,
                    next_mki: row.get(4)?,
                    next_key: row.get(5)?,
                    switch_at_ms: row.get(6)?,
                },
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(self.query_error("read zone keys"))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn ring(mki: u32) -> SavedRing {
        SavedRing {
            suite: "AES_CM_128_HMAC_SHA1_80".into(),
            current_mki: mki,
            current_key: vec![1; 30],
            next_mki: mki + 1,
            next_key: vec![2; 30],
            switch_at_ms: 1_800_000_000_000,
        }
    }

    #[test]
    fn zone_keys_survive_a_reopen_and_the_file_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = Store::open(dir.path()).unwrap();
            store.put_zone_keys("thon-1", &ring(1)).unwrap();
            store.put_zone_keys("thon-2", &ring(5)).unwrap();
            store.put_zone_keys("thon-1", &ring(2)).unwrap();
            store.put_zone_keys("cu", &ring(9)).unwrap();
            store.delete_zone_keys("cu").unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.zone_keys().unwrap(),
            [("thon-1".to_string(), ring(2)), ("thon-2".to_string(), ring(5))]
        );
        let mode = std::fs::metadata(dir.path().join(DB_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn an_existing_world_readable_database_is_made_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let path = dir.path().join(DB_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Store::open(dir.path()).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
