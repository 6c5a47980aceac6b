//! `PUT /v0/sinks/:sink` after its body checks: the re-point rule, the sink limit, the
//! auto-creation of the source topic and the durable file, under the sink lifecycle lock so
//! the checks see a stable set.

use super::{file::SinkFile, Sinks, MAX_SINKS};
use crate::model::sink::{repoint, SinkDef};
use crate::model::topic_config::TopicConfig;
use crate::registry::CreateError;
use std::sync::atomic::Ordering;

/// Why a PUT that passed its body checks is refused.
#[derive(Debug)]
pub enum PutError {
    /// The sink exists with another value of `field` (`source`, `kafka_topic`,
    /// `guarantee`, `progress_topic`): changing it would orphan the cursor or the progress.
    Repoint {
        field: &'static str,
        existing: SinkDef,
    },
    /// [`MAX_SINKS`] reached by a new sink.
    Limit { max: usize },
    /// Creating the source topic failed (`max_topics`, storage).
    Create { topic: String, err: CreateError },
    /// The sink file could not be written.
    Io(std::io::Error),
}

impl Sinks {
    /// Create or re-configure `name`; `Ok(true)` when created.
    pub async fn put(&self, name: &str, def: SinkDef, now_ms: u64) -> Result<bool, PutError> {
        let _guard = self.lifecycle.lock().await;
        let existing = self.get(name);
        if let Some(s) = &existing {
            let old = s.def();
            if let Some(field) = repoint(&old, &def) {
                return Err(PutError::Repoint {
                    field,
                    existing: old,
                });
            }
        } else if self.len() >= MAX_SINKS {
            return Err(PutError::Limit { max: MAX_SINKS });
        }
        self.registry
            .get_or_create(&def.source, TopicConfig::default())
            .await
            .map_err(|err| PutError::Create {
                topic: def.source.clone(),
                err,
            })?;
        match existing {
            Some(shared) => {
                let (store, s) = (self.store.clone(), shared.clone());
                tokio::task::spawn_blocking(move || store.save_shared(&s, Some(def)))
                    .await
                    .map_err(|e| PutError::Io(std::io::Error::other(e)))?
                    .map_err(PutError::Io)?;
                shared.generation.fetch_add(1, Ordering::AcqRel);
                shared.kick.notify_one();
                Ok(false)
            }
            None => {
                let f = SinkFile {
                    name: name.to_string(),
                    cursor: def.from_seq,
                    def,
                    epoch: now_ms.max(1),
                    topic_id: 0,
                    forwarded_total: 0,
                    gap_markers_total: 0,
                };
                self.save(f.clone()).await?;
                self.start(f);
                Ok(true)
            }
        }
    }

    async fn save(&self, f: SinkFile) -> Result<(), PutError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.save(&f))
            .await
            .map_err(|e| PutError::Io(std::io::Error::other(e)))?
            .map_err(PutError::Io)
    }
}
