//! `PUT /v0/routers/:router` after its body checks: the graph checks, the limit, the
//! auto-creation of source and dest, and the durable definition, in the contract's order
//! (API.md §12), all under the router lifecycle lock so the checks see a stable set.

use super::{edge_refs, Routers};
use crate::model::router::{check_shape, def_to_json, find_cycle, GraphError, Position, RouterDef};
use crate::model::topic_config::TopicConfig;
use crate::registry::CreateError;
use crate::storage::frame;
use crate::topic::TopicError;
use std::sync::Arc;

/// Why a PUT that passed its body checks is refused.
#[derive(Debug)]
pub enum PutError {
    /// `create_dest:false` and the dest does not exist.
    DestMissing(String),
    Graph(GraphError),
    /// `max_routers` reached by a new router.
    Limit {
        max: u64,
    },
    /// Creating `topic` failed (`max_topics`, storage).
    Create {
        topic: String,
        err: CreateError,
    },
    Topic(TopicError),
}

impl Routers {
    /// Create or re-configure `name`; `Ok(true)` when created.
    pub async fn put(&self, name: &str, def: RouterDef) -> Result<bool, PutError> {
        if !def.create_dest && self.registry.get(&def.dest).is_none() {
            return Err(PutError::DestMissing(def.dest));
        }
        let _guard = self.lifecycle.lock().await;
        let edges = self.edges();
        let refs = edge_refs(&edges);
        check_shape(&refs, name, &def).map_err(PutError::Graph)?;
        let existing = self.get(name);
        let max = self.params.max_routers;
        if existing.is_none() && max > 0 && self.len() as u64 >= max {
            return Err(PutError::Limit { max });
        }
        if !def.allow_cycle {
            if let Some(cycle) = find_cycle(&refs, name, &def.source, &def.dest) {
                return Err(PutError::Graph(GraphError::Cycle(cycle)));
            }
        }
        if !def.create_dest && self.registry.get(&def.dest).is_none() {
            // Deleted while this request waited for the lock.
            return Err(PutError::DestMissing(def.dest));
        }
        let source = self.create(&def.source).await?;
        let dest = self.create(&def.dest).await?;
        match existing {
            Some(shared) => {
                // The cursor rides along only so a snapshot-less replay has one; replay
                // applies it with `max`, so this frame can never move the cursor.
                self.log_def(shared.id, name, &def, shared.position())
                    .await?;
                *shared.def.write().unwrap_or_else(|e| e.into_inner()) = def;
                shared.kick.notify_one();
                Ok(false)
            }
            None => {
                // Only records committed after creation are forwarded (API.md §12); no copy of
                // this router is in the dest yet.
                let pos = Position {
                    cursor: source.state(false).await.map_err(PutError::Topic)?.head_seq,
                    forwarded_total: 0,
                    dest_mark: dest.state(false).await.map_err(PutError::Topic)?.head_seq,
                };
                let id = self.registry.allocate_id();
                self.log_def(id, name, &def, pos).await?;
                self.start(id, Arc::from(name), def, pos);
                Ok(true)
            }
        }
    }

    async fn create(&self, topic: &str) -> Result<crate::topic::TopicHandle, PutError> {
        self.registry
            .get_or_create(topic, TopicConfig::default())
            .await
            .map(|(h, _)| h)
            .map_err(|err| PutError::Create {
                topic: topic.to_string(),
                err,
            })
    }

    async fn log_def(
        &self,
        id: u64,
        name: &str,
        def: &RouterDef,
        pos: Position,
    ) -> Result<(), PutError> {
        let json = def_to_json(def).to_string();
        let mut buf = Vec::new();
        frame::encode_router_def(&mut buf, id, name, json.as_bytes(), pos);
        self.log(name, buf).await.map_err(PutError::Topic)
    }
}
