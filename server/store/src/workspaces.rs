//! Workspaces: create with their first files, rename, delete with everything in them.

use super::files::{NewFile, insert_workspace_file};
use super::{Store, StoreResult, found, new_id, now_iso};

impl Store {
    /// Creates a workspace and its files in one transaction; returns its ID.
    pub async fn create_workspace(&self, owner_id: &str, name: &str, files: &[NewFile]) -> StoreResult<String> {
        let id = new_id();
        let (ws, name, owner_id, files) = (id.clone(), name.to_owned(), owner_id.to_owned(), files.to_vec());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO workspaces (id, name, owner_id, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&ws)
                    .bind(&name)
                    .bind(&owner_id)
                    .bind(now_iso())
                    .execute(&mut *conn)
                    .await?;
                for file in &files {
                    insert_workspace_file(conn, &ws, file).await?;
                }
                Ok(())
            })
        })
        .await?;
        Ok(id)
    }

    pub async fn workspace_owner(&self, workspace_id: &str) -> StoreResult<String> {
        found(
            sqlx::query_scalar("SELECT owner_id FROM workspaces WHERE id = $1")
                .bind(workspace_id)
                .fetch_optional(&self.pool)
                .await?,
            "Workspace",
        )
    }

    pub async fn rename_workspace(&self, workspace_id: &str, new_name: &str) -> StoreResult<()> {
        let (id, name) = (workspace_id.to_owned(), new_name.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let updated = sqlx::query("UPDATE workspaces SET name = $1 WHERE id = $2")
                    .bind(&name)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                found((updated > 0).then_some(()), "Workspace")
            })
        })
        .await
    }

    /// Deletes the workspace; its chats, files, versions and conversation go with it
    /// (ON DELETE CASCADE). Returns the IDs of its chats and the stored paths of its
    /// uploaded bytes, for the caller to close sockets and remove the bytes after the commit.
    pub async fn delete_workspace(&self, workspace_id: &str) -> StoreResult<(Vec<String>, Vec<String>)> {
        let workspace_id = workspace_id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let chat_ids: Vec<String> = sqlx::query_scalar("SELECT id FROM chats WHERE workspace_id = $1")
                    .bind(&workspace_id)
                    .fetch_all(&mut *conn)
                    .await?;
                let paths: Vec<String> = sqlx::query_scalar(
                    "SELECT path FROM files WHERE workspace_id = $1
                     UNION SELECT cf.path FROM chat_files cf JOIN chats c ON c.id = cf.chat_id
                     WHERE c.workspace_id = $1 AND cf.path <> ''",
                )
                .bind(&workspace_id)
                .fetch_all(&mut *conn)
                .await?;
                let deleted = sqlx::query("DELETE FROM workspaces WHERE id = $1")
                    .bind(&workspace_id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                found((deleted > 0).then_some(()), "Workspace")?;
                Ok((chat_ids, paths))
            })
        })
        .await
    }
}
