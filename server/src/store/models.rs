//! LLM model configurations. The API key is stored, and only `model_for_agent` reads it.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreResult, found, new_id, now_iso};

/// A model as stored. `api_key` is for the agent's HTTP calls only.
#[derive(Clone)]
pub struct ModelRecord {
    pub id: String,
    pub name: String,
    pub base_url: String,
    pub user_id: String,
    pub api_key: String,
}

impl std::fmt::Debug for ModelRecord {
    // The key must never reach a log line, even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("user_id", &self.user_id)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

fn model_from_row(row: AnyRow) -> ModelRecord {
    ModelRecord {
        id: row.get("id"),
        name: row.get("name"),
        base_url: row.get("base_url"),
        user_id: row.get("user_id"),
        api_key: row.get("ak"),
    }
}

impl Store {
    pub async fn create_model(
        &self,
        user_id: &str,
        name: &str,
        api_key: &str,
        base_url: &str,
    ) -> StoreResult<ModelRecord> {
        let id = new_id();
        sqlx::query("INSERT INTO models (id, name, ak, base_url, user_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&id)
            .bind(name)
            .bind(api_key)
            .bind(base_url)
            .bind(user_id)
            .bind(now_iso())
            .execute(&self.pool)
            .await?;
        Ok(ModelRecord {
            id,
            name: name.to_owned(),
            base_url: base_url.to_owned(),
            user_id: user_id.to_owned(),
            api_key: api_key.to_owned(),
        })
    }

    pub async fn delete_model(&self, model_id: &str) -> StoreResult<()> {
        let deleted = sqlx::query("DELETE FROM models WHERE id = $1")
            .bind(model_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        found((deleted > 0).then_some(()), "Model")
    }

    pub async fn model(&self, model_id: &str) -> StoreResult<ModelRecord> {
        let row = sqlx::query("SELECT id, name, ak, base_url, user_id FROM models WHERE id = $1")
            .bind(model_id)
            .fetch_optional(&self.pool)
            .await?;
        found(row.map(model_from_row), "Model")
    }

    /// The user's models, oldest first.
    pub async fn models_of(&self, user_id: &str) -> StoreResult<Vec<ModelRecord>> {
        let rows = sqlx::query(
            "SELECT id, name, ak, base_url, user_id FROM models WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(model_from_row).collect())
    }

    /// The user's model with this name (the newest, if several share it), for `new_message`.
    pub async fn model_by_name(&self, user_id: &str, name: &str) -> StoreResult<ModelRecord> {
        let row = sqlx::query(
            "SELECT id, name, ak, base_url, user_id FROM models WHERE user_id = $1 AND name = $2
             ORDER BY created_at DESC, id LIMIT 1",
        )
        .bind(user_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        found(row.map(model_from_row), "Model")
    }
}
