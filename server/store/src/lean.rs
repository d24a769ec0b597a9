//! Lean reads for the WebSocket payload: version lists without their content, the newest
//! version of each file, and conversation entries as their stored JSON text.
//!
//! Why: a chat with a long history holds megabytes of version content and conversation;
//! reading only what a frame needs, and never parsing JSON that is sent on as it is, keeps
//! a connect cheap however long the history grows.

use sqlx::Row;

use super::versions::VersionRecord;
use super::{Store, StoreResult};

/// A version without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMeta {
    pub id: String,
    pub file_id: String,
    pub seq: i64,
    pub timestamp: String,
}

/// A conversation entry as stored: `content_json` is the JSON text `append` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub seq: i64,
    pub role: String,
    pub kind: String,
    pub content_json: String,
}

impl Store {
    /// Every version of the chat's files, without content, by file and oldest first.
    ///
    /// Read as one row per file, each listing its versions: through sqlx every row is a hop
    /// between SQLite's thread and the runtime, and with a thousand versions those hops were
    /// most of building a lean payload. A list that does not parse back (an ID
    /// or timestamp holding a separator) is read again row by row.
    pub async fn chat_version_list(&self, chat_id: &str) -> StoreResult<Vec<VersionMeta>> {
        let rows = sqlx::query(VERSION_LIST)
            .bind(chat_id)
            .bind(FIELD.to_string())
            .bind(RECORD.to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut metas = Vec::new();
        for row in rows {
            let (file_id, list): (String, String) = (row.get("chat_file_id"), row.get("list"));
            match parse_version_list(&file_id, row.get("n"), &list) {
                Some(versions) => metas.extend(versions),
                None => return self.chat_version_rows(chat_id).await,
            }
        }
        Ok(metas)
    }

    /// [`Self::chat_version_list`] one row per version.
    async fn chat_version_rows(&self, chat_id: &str) -> StoreResult<Vec<VersionMeta>> {
        let rows = sqlx::query(
            "SELECT v.id, v.chat_file_id, v.seq, v.timestamp FROM chat_file_versions v
             JOIN chat_files cf ON cf.id = v.chat_file_id WHERE cf.chat_id = $1 ORDER BY v.chat_file_id, v.seq",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| VersionMeta {
                id: row.get("id"),
                file_id: row.get("chat_file_id"),
                seq: row.get("seq"),
                timestamp: row.get("timestamp"),
            })
            .collect())
    }

    /// The newest version of each of the chat's files, with content.
    pub async fn latest_chat_versions(&self, chat_id: &str) -> StoreResult<Vec<VersionRecord>> {
        let rows = sqlx::query(
            "SELECT v.id, v.chat_file_id, v.seq, v.timestamp, v.content FROM chat_files cf
             JOIN chat_file_versions v ON v.id = (SELECT m.id FROM chat_file_versions m
                                                   WHERE m.chat_file_id = cf.id ORDER BY m.seq DESC LIMIT 1)
             WHERE cf.chat_id = $1",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| VersionRecord {
                id: row.get("id"),
                file_id: row.get("chat_file_id"),
                seq: row.get("seq"),
                timestamp: row.get("timestamp"),
                content: row.get("content"),
            })
            .collect())
    }

    /// `(version id, content)` of every version of a file, oldest first.
    pub async fn version_contents(&self, file_id: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT id, content FROM chat_file_versions WHERE chat_file_id = $1 ORDER BY seq")
                .bind(file_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The entries after `after_seq` (all: 0), in order, as stored.
    pub async fn conversation_after(&self, chat_id: &str, after_seq: i64) -> StoreResult<Vec<StoredMessage>> {
        let rows = sqlx::query(
            "SELECT seq, role, type, content FROM chat_conversations WHERE chat_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(chat_id)
        .bind(after_seq)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(stored_message).collect())
    }

    /// Up to `limit` entries before `before_seq` (all the newest when `None`), in order.
    pub async fn conversation_page(
        &self,
        chat_id: &str,
        before_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredMessage>> {
        let rows = sqlx::query(
            "SELECT seq, role, type, content FROM chat_conversations WHERE chat_id = $1 AND seq < $2
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(chat_id)
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut page: Vec<StoredMessage> = rows.into_iter().map(stored_message).collect();
        page.reverse();
        Ok(page)
    }
}

/// The versions of a chat's files, one row per file (`string_agg` with `ORDER BY`: SQLite 3.44
/// and PostgreSQL), read from the `chat_file_versions_list` index alone.
const VERSION_LIST: &str = "SELECT v.chat_file_id, COUNT(*) AS n,
        string_agg(v.id || $2 || v.seq || $2 || v.timestamp, $3 ORDER BY v.seq) AS list
    FROM chat_file_versions v JOIN chat_files cf ON cf.id = v.chat_file_id
    WHERE cf.chat_id = $1 GROUP BY v.chat_file_id ORDER BY v.chat_file_id";

/// Separators of the aggregated version list: control characters, which generated IDs and
/// timestamps never hold.
const FIELD: char = '\u{1f}';
const RECORD: char = '\u{1e}';

/// `id FIELD seq FIELD timestamp`, joined by `RECORD`; `None` unless exactly `count` versions
/// of three fields each come back.
fn parse_version_list(file_id: &str, count: i64, list: &str) -> Option<Vec<VersionMeta>> {
    let versions = list
        .split(RECORD)
        .map(|version| {
            let mut fields = version.split(FIELD);
            let (id, seq, timestamp) = (fields.next()?, fields.next()?, fields.next()?);
            fields.next().is_none().then_some(())?;
            Some(VersionMeta {
                id: id.to_owned(),
                file_id: file_id.to_owned(),
                seq: seq.parse().ok()?,
                timestamp: timestamp.to_owned(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    (i64::try_from(versions.len()) == Ok(count)).then_some(versions)
}

fn stored_message(row: sqlx::any::AnyRow) -> StoredMessage {
    StoredMessage {
        seq: row.get("seq"),
        role: row.get("role"),
        kind: row.get("type"),
        content_json: row.get("content"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, seq: i64, timestamp: &str) -> VersionMeta {
        VersionMeta {
            id: id.into(),
            file_id: "f".into(),
            seq,
            timestamp: timestamp.into(),
        }
    }

    #[test]
    fn a_version_list_parses_back_whole_or_not_at_all() {
        let list = format!("a{FIELD}1{FIELD}t1{RECORD}b{FIELD}3{FIELD}t3");
        assert_eq!(
            parse_version_list("f", 2, &list),
            Some(vec![meta("a", 1, "t1"), meta("b", 3, "t3")])
        );
        // A separator inside a field shows as a wrong count or a wrong number of fields.
        assert_eq!(parse_version_list("f", 3, &list), None);
        assert_eq!(parse_version_list("f", 1, &format!("a{FIELD}x{FIELD}1{FIELD}t")), None);
        assert_eq!(parse_version_list("f", 1, &format!("a{FIELD}x{FIELD}t")), None);
    }

    async fn store_with_versions(dir: &std::path::Path) -> Store {
        let store = Store::connect(&format!("sqlite://{}", dir.join("kafka.db").display()))
            .await
            .unwrap();
        for sql in [
            "INSERT INTO users (id, email, created_at) VALUES ('u', 'u@x', 't')",
            "INSERT INTO workspaces (id, name, owner_id, created_at) VALUES ('w', 'w', 'u', 't')",
            "INSERT INTO chats (id, name, user_id, workspace_id) VALUES ('c', 'c', 'u', 'w')",
            "INSERT INTO chat_files (id, filename, path, chat_id, kind, created_at) VALUES
                 ('f1', 'a.based', '', 'c', 'based', 't'), ('f2', 'b.based', '', 'c', 'based', 't')",
            // Inserted out of order: the list orders by seq.
            "INSERT INTO chat_file_versions (id, chat_file_id, seq, timestamp, content) VALUES
                 ('v3', 'f1', 3, 't3', 'x'), ('v1', 'f1', 1, 't1', 'x'), ('w1', 'f2', 1, 's1', 'y')",
        ] {
            store
                .write(move |conn| {
                    Box::pin(async move {
                        sqlx::query(sql).execute(&mut *conn).await?;
                        Ok(())
                    })
                })
                .await
                .unwrap();
        }
        store
    }

    #[tokio::test]
    async fn the_version_list_reads_the_covering_index_and_matches_the_row_by_row_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_versions(dir.path()).await;
        let list = store.chat_version_list("c").await.unwrap();
        assert_eq!(list, store.chat_version_rows("c").await.unwrap());
        let ids: Vec<&str> = list.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["v1", "v3", "w1"]);

        let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {VERSION_LIST}"))
            .bind("c")
            .bind(FIELD.to_string())
            .bind(RECORD.to_string())
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get("detail"))
            .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING COVERING INDEX chat_file_versions_list")),
            "{plan:?}"
        );
    }
}
