//! LLM model configurations. The API key (`ak`) is write-only: it is sealed on the way in
//! (when a secret key is configured) and only `model_by_name`, for the agent, reads it back.

use kafka_protocol::rest::ModelInfo;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, StoreResult, found, new_id, now_iso};

/// A model as the agent uses it. `api_key` is for the agent's HTTP calls only.
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

impl ModelRecord {
    /// What a client may see of the model.
    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            base_url: self.base_url.clone(),
            user_id: self.user_id.clone(),
        }
    }
}

fn info_from_row(row: &AnyRow) -> ModelInfo {
    ModelInfo {
        id: row.get("id"),
        name: row.get("name"),
        base_url: row.get("base_url"),
        user_id: row.get("user_id"),
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
        let sealed = self.sealer.seal(api_key, &id).map_err(StoreError::Secret)?;
        let row = (id.clone(), name.to_owned(), base_url.to_owned(), user_id.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let (id, name, base_url, user_id) = row;
                sqlx::query(
                    "INSERT INTO models (id, name, ak, base_url, user_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&id)
                .bind(&name)
                .bind(&sealed)
                .bind(&base_url)
                .bind(&user_id)
                .bind(now_iso())
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
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
        let model_id = model_id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let deleted = sqlx::query("DELETE FROM models WHERE id = $1")
                    .bind(&model_id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                found((deleted > 0).then_some(()), "Model")
            })
        })
        .await
    }

    /// The user's models, oldest first, without their keys.
    pub async fn models_of(&self, user_id: &str) -> StoreResult<Vec<ModelInfo>> {
        let rows =
            sqlx::query("SELECT id, name, base_url, user_id FROM models WHERE user_id = $1 ORDER BY created_at, id")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(info_from_row).collect())
    }

    /// The user's model with this name (the newest, if several share it), with its key, for
    /// `new_message`.
    pub async fn model_by_name(&self, user_id: &str, name: &str) -> StoreResult<ModelRecord> {
        let row = sqlx::query(
            "SELECT id, name, ak, base_url, user_id FROM models WHERE user_id = $1 AND name = $2
             ORDER BY created_at DESC, id LIMIT 1",
        )
        .bind(user_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let row = found(row, "Model")?;
        let info = info_from_row(&row);
        let api_key = self.sealer.open(row.get("ak"), &info.id)?;
        Ok(ModelRecord {
            id: info.id,
            name: info.name,
            base_url: info.base_url,
            user_id: info.user_id,
            api_key,
        })
    }

    /// Seals every key stored in plain text (run at start-up once a secret key is set).
    /// Returns how many were sealed.
    pub async fn seal_plain_keys(&self) -> StoreResult<usize> {
        if !self.sealer.is_active() {
            return Ok(0);
        }
        let sealer = self.sealer.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, ak FROM models")
                    .fetch_all(&mut *conn)
                    .await?;
                let mut sealed = 0;
                for (id, stored) in rows.iter().filter(|(_, ak)| !crate::secrets::Sealer::is_sealed(ak)) {
                    sqlx::query("UPDATE models SET ak = $1 WHERE id = $2")
                        .bind(sealer.seal(stored, id).map_err(StoreError::Secret)?)
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    sealed += 1;
                }
                Ok(sealed)
            })
        })
        .await
    }
}

impl From<crate::secrets::SecretError> for StoreError {
    fn from(error: crate::secrets::SecretError) -> Self {
        StoreError::Secret(error)
    }
}
