//! The image database: SQLite in WAL mode under `cas/db/`, one row per image
//! (rkt's `aciinfo` table) and the HTTP cache table (`remote`) for later fetchers.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use abi::calendar::unix_nanos;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use super::{ImageInfo, ImageKey, StoreError};

/// The WAL is checkpointed into the database when it grows this long.
const WAL_CHECKPOINT_PAGES: i64 = 64;

/// Bumped whenever `migrate` learns a new step.
const SCHEMA_VERSION: i64 = 1;

pub(crate) struct Db {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        let err = |source| StoreError::Db {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        // Concurrent `rkt fetch` processes wait for each other instead of failing.
        conn.busy_timeout(Duration::from_secs(60)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        // Every rkt command is a short-lived last connection: by default it
        // would checkpoint (two fsyncs) and delete the WAL and shared-memory
        // files on close, only for the next command to create them again.
        // But the next first connection reads the whole WAL back to rebuild
        // its index, so the WAL is kept short: commits checkpoint once it
        // reaches 64 pages (256 KiB), one `rkt run` in twenty or so.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(err)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
            .map_err(err)?;
        let db = Db {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        };
        db.migrate()?;
        Ok(db)
    }

    /// Opens the database for reading only, as a member of the data
    /// directory's group does: no creation, no WAL switch, no migration.
    /// The WAL and shared-memory files root's commands leave in place (see
    /// `open`) let SQLite read without writing them.
    pub fn open_read_only(path: &Path) -> Result<Db, StoreError> {
        let unreadable = |why: String| StoreError::Unreadable {
            path: path.to_path_buf(),
            why,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| unreadable(e.to_string()))?;
        conn.busy_timeout(Duration::from_secs(60))
            .map_err(|e| unreadable(e.to_string()))?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| unreadable(e.to_string()))?;
        if found < SCHEMA_VERSION {
            return Err(StoreError::NeedsUpgrade {
                path: path.to_path_buf(),
                found,
                wanted: SCHEMA_VERSION,
            });
        }
        Ok(Db {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Db {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        // The common case reads the version without taking the write lock
        // every command would otherwise queue on.
        let current: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.err())?;
        if current >= SCHEMA_VERSION {
            return Ok(());
        }
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.err())?;
        if version < 1 {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS aciinfo (
                    blobkey TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL,
                    version TEXT,
                    importtime INTEGER NOT NULL,
                    lastused INTEGER NOT NULL,
                    latest INTEGER NOT NULL,
                    size INTEGER NOT NULL,
                    treestoresize INTEGER NOT NULL DEFAULT 0
                 );
                 CREATE INDEX IF NOT EXISTS aciinfo_name ON aciinfo(name);
                 CREATE TABLE IF NOT EXISTS remote (
                    aciurl TEXT PRIMARY KEY NOT NULL,
                    sigurl TEXT,
                    etag TEXT,
                    blobkey TEXT NOT NULL,
                    cachemaxage INTEGER NOT NULL DEFAULT 0,
                    downloadtime INTEGER NOT NULL
                 );",
            )
            .map_err(self.err())?;
        }
        if version < SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(self.err())?;
        }
        tx.commit().map_err(self.err())
    }

    /// Inserts or refreshes an image row (re-import of the same image keeps
    /// its tree-store size).
    pub fn upsert(&self, row: &ImageInfo) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(self.err())?;
        tx.execute(
            "INSERT INTO aciinfo (blobkey, name, version, importtime, lastused, latest, size, treestoresize)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)
             ON CONFLICT(blobkey) DO UPDATE SET
                name = excluded.name, version = excluded.version,
                importtime = excluded.importtime, lastused = excluded.lastused,
                latest = excluded.latest, size = excluded.size",
            params![
                row.key.as_str(),
                row.name,
                row.version,
                unix_nanos(row.import_time),
                unix_nanos(row.last_used),
                row.latest,
                row.size as i64,
            ],
        )
        .map_err(self.err())?;
        tx.commit().map_err(self.err())
    }

    pub fn get(&self, key: &ImageKey) -> Result<Option<ImageInfo>, StoreError> {
        self.conn()
            .query_row(
                &format!("{SELECT} WHERE blobkey = ?1"),
                [key.as_str()],
                from_row,
            )
            .optional()
            .map_err(self.err())
    }

    pub fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<ImageKey>, StoreError> {
        // Keys are lowercase hex, so a range scan is an exact prefix match
        // without LIKE's wildcard characters.
        let upper = format!("{prefix}\u{7f}");
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT blobkey FROM aciinfo WHERE blobkey >= ?1 AND blobkey < ?2")
            .map_err(self.err())?;
        let keys = stmt
            .query_map([prefix, upper.as_str()], |r| r.get::<_, String>(0))
            .map_err(self.err())?
            .filter_map(|k| k.ok().and_then(|k| ImageKey::parse(&k)))
            .collect();
        Ok(keys)
    }

    pub fn by_name(&self, name: &str) -> Result<Vec<ImageInfo>, StoreError> {
        self.query(&format!("{SELECT} WHERE name = ?1"), [name])
    }

    pub fn all(&self) -> Result<Vec<ImageInfo>, StoreError> {
        self.query(SELECT, [])
    }

    fn query<P: rusqlite::Params>(&self, sql: &str, p: P) -> Result<Vec<ImageInfo>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql).map_err(self.err())?;
        let rows = stmt.query_map(p, from_row).map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    pub fn touch(&self, key: &ImageKey, when: SystemTime) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE aciinfo SET lastused = ?2 WHERE blobkey = ?1",
                params![key.as_str(), unix_nanos(when)],
            )
            .map_err(self.err())?;
        Ok(())
    }

    pub fn set_tree_store_size(&self, key: &ImageKey, size: u64) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE aciinfo SET treestoresize = ?2 WHERE blobkey = ?1",
                params![key.as_str(), size as i64],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Deletes the image row and cache rows pointing at it; false if absent.
    pub fn remove(&self, key: &ImageKey) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(self.err())?;
        let n = tx
            .execute("DELETE FROM aciinfo WHERE blobkey = ?1", [key.as_str()])
            .map_err(self.err())?;
        tx.execute("DELETE FROM remote WHERE blobkey = ?1", [key.as_str()])
            .map_err(self.err())?;
        tx.commit().map_err(self.err())?;
        Ok(n > 0)
    }
}

impl Db {
    /// The cache row of an image fetched from `url`.
    pub fn remote(&self, url: &str) -> Result<Option<Remote>, StoreError> {
        self.conn()
            .query_row(
                "SELECT blobkey, etag, cachemaxage, downloadtime FROM remote WHERE aciurl = ?1",
                [url],
                |r| {
                    let key: String = r.get(0)?;
                    Ok((key, r.get(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
                },
            )
            .optional()
            .map_err(self.err())
            .map(|row| {
                row.and_then(|(key, etag, max_age, downloaded)| {
                    Some(Remote {
                        key: ImageKey::parse(&key)?,
                        etag,
                        max_age: max_age.max(0) as u64,
                        downloaded: from_nanos(downloaded),
                    })
                })
            })
    }

    /// Records (or refreshes) what `url` gave.
    pub fn set_remote(
        &self,
        url: &str,
        sig_url: Option<&str>,
        remote: &Remote,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO remote (aciurl, sigurl, etag, blobkey, cachemaxage, downloadtime)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(aciurl) DO UPDATE SET sigurl = excluded.sigurl,
                    etag = excluded.etag, blobkey = excluded.blobkey,
                    cachemaxage = excluded.cachemaxage, downloadtime = excluded.downloadtime",
                params![
                    url,
                    sig_url,
                    remote.etag,
                    remote.key.as_str(),
                    remote.max_age.min(i64::MAX as u64) as i64,
                    unix_nanos(remote.downloaded),
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }
}

/// What an http(s) URL last gave (rkt's `remote` table).
#[derive(Debug, Clone)]
pub struct Remote {
    pub key: ImageKey,
    pub etag: Option<String>,
    /// `Cache-Control: max-age` of that answer, in seconds.
    pub max_age: u64,
    pub downloaded: SystemTime,
}

impl Remote {
    /// Still fresh by its max-age.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        self.max_age > 0
            && now
                .duration_since(self.downloaded)
                .is_ok_and(|age| age.as_secs() < self.max_age)
    }
}

const SELECT: &str =
    "SELECT blobkey, name, version, importtime, lastused, latest, size, treestoresize FROM aciinfo";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ImageInfo> {
    let key: String = r.get(0)?;
    let key = ImageKey::parse(&key).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("bad image key {key:?} in database").into(),
        )
    })?;
    Ok(ImageInfo {
        key,
        name: r.get(1)?,
        version: r.get(2)?,
        import_time: from_nanos(r.get(3)?),
        last_used: from_nanos(r.get(4)?),
        latest: r.get(5)?,
        size: r.get::<_, i64>(6)?.max(0) as u64,
        tree_store_size: r.get::<_, i64>(7)?.max(0) as u64,
    })
}

fn from_nanos(n: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n.max(0) as u64)
}
