//! The Kafka side of a sink (librdkafka through `rdkafka`): one producer per connection,
//! idempotent always, transactional under `exactly_once` with the stable
//! `transactional.id` `topics-sink-<name>`, so a restarted server fences its predecessor.
//! `exactly_once` writes each batch and one progress record (key = sink name, value
//! `{source, topic_id, epoch, first_seq, last_seq, offsets}`) to the compacted progress topic
//! in one transaction, and on connect reads the last committed progress back with a
//! `read_committed` consumer. Any failure ends the connection: the task reconnects, which
//! re-fences and re-reads the progress, so a commit whose outcome was unknown is settled by
//! what Kafka actually committed. librdkafka's blocking calls run on the blocking pool.

use super::batch::{Batch, OutRecord};
use crate::model::router::Guarantee;
use crate::model::sink::SinkDef;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Bound of each blocking Kafka call (metadata, init/commit/abort of a transaction).
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest read of the progress topic up to its high watermark on connect.
const PROGRESS_READ_MAX: Duration = Duration::from_secs(60);
/// Default `message.timeout.ms`: a delivery Kafka cannot take fails after this, so an outage
/// shows as `retrying` within seconds instead of librdkafka's five minutes.
const MESSAGE_TIMEOUT_MS: &str = "10000";

/// A failed Kafka operation, as the sink's `last_error` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaFailure(pub String);

impl KafkaFailure {
    fn at(what: &str, e: impl std::fmt::Display) -> KafkaFailure {
        KafkaFailure(format!("{what}: {e}"))
    }
}

/// The position a progress record names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub topic_id: u64,
    pub epoch: u64,
    pub last_seq: u64,
    /// The sink's counters as of this commit.
    pub forwarded_total: u64,
    pub gap_markers_total: u64,
}

/// An open connection for one sink.
pub struct Conn {
    producer: FutureProducer,
    name: String,
    def: SinkDef,
    topic_id: u64,
    epoch: u64,
}

pub fn transactional_id(name: &str) -> String {
    format!("topics-sink-{name}")
}

/// The user's properties, then what the sink owns (which `model::sink` refuses to take).
fn base_config(def: &SinkDef) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in &def.properties {
        c.set(k, v);
    }
    c.set("bootstrap.servers", &def.bootstrap_servers);
    c
}

async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaFailure> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| KafkaFailure::at(what, e)),
        Err(e) => Err(KafkaFailure::at(what, e)),
    }
}

impl Conn {
    /// Drop the producer on the blocking pool: librdkafka purges and flushes it (for up to
    /// half a second), which must not hold a runtime thread.
    pub fn close(self) {
        tokio::task::spawn_blocking(move || drop(self));
    }

    /// Connect; under `exactly_once` also fence any predecessor and read the committed
    /// progress, returned when it belongs to this sink's epoch and source topic id.
    pub async fn open(
        name: &str,
        def: &SinkDef,
        epoch: u64,
        topic_id: u64,
    ) -> Result<(Conn, Option<Progress>), KafkaFailure> {
        let exactly = def.guarantee == Guarantee::ExactlyOnce;
        let mut c = base_config(def);
        if !def.properties.contains_key("client.id") {
            c.set("client.id", transactional_id(name));
        }
        if !def.properties.contains_key("message.timeout.ms") {
            c.set("message.timeout.ms", MESSAGE_TIMEOUT_MS);
        }
        // murmur2 like the Java client, so keys land where Java producers put them.
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random");
        if exactly {
            c.set("transactional.id", transactional_id(name));
        }
        let producer: FutureProducer = c.create().map_err(|e| KafkaFailure::at("producer", e))?;
        let conn = Conn {
            producer,
            name: name.to_string(),
            def: def.clone(),
            topic_id,
            epoch,
        };
        conn.check_topic().await?;
        if !exactly {
            return Ok((conn, None));
        }
        ensure_progress_topic(def).await?;
        let p = conn.producer.clone();
        blocking("init_transactions", move || p.init_transactions(OP_TIMEOUT)).await?;
        let (d, n) = (def.clone(), name.to_string());
        let found = blocking("read progress", move || read_progress(&d, &n)).await?;
        let resume = match found {
            Some(p) if p.topic_id == topic_id && p.epoch == epoch => Some(p),
            Some(p) => {
                tracing::info!(
                    sink = name,
                    found_epoch = p.epoch,
                    found_topic_id = p.topic_id,
                    epoch,
                    topic_id,
                    "progress record of an earlier sink or source topic; \
                    starting per the definition"
                );
                None
            }
            None => None,
        };
        Ok((conn, resume))
    }

    /// Fails when the data topic is unknown to the cluster (or the cluster unreachable).
    async fn check_topic(&self) -> Result<(), KafkaFailure> {
        let p = self.producer.clone();
        let topic = self.def.kafka_topic.clone();
        let md = blocking("metadata", move || {
            p.client().fetch_metadata(Some(&topic), OP_TIMEOUT)
        })
        .await?;
        match md.topics().first().and_then(|t| t.error()) {
            None => Ok(()),
            Some(e) => Err(KafkaFailure(format!(
                "kafka topic {:?}: {:?}",
                self.def.kafka_topic,
                RDKafkaErrorCode::from(e)
            ))),
        }
    }

    /// Put `batch` into Kafka: acknowledged by every in-sync replica (`at_least_once`), or
    /// committed in one transaction with its progress record (`exactly_once`).
    pub async fn send(&self, batch: &Batch) -> Result<(), KafkaFailure> {
        if self.def.guarantee == Guarantee::AtLeastOnce {
            return self.produce_all(&batch.records).await.map(|_| ());
        }
        let p = self.producer.clone();
        blocking("begin_transaction", move || p.begin_transaction()).await?;
        let done = async {
            let offsets = self.produce_all(&batch.records).await?;
            if let Some(d) = test_stall() {
                tokio::time::sleep(d).await;
            }
            self.produce_progress(batch, &offsets).await?;
            let p = self.producer.clone();
            blocking("commit_transaction", move || {
                p.commit_transaction(OP_TIMEOUT)
            })
            .await
        }
        .await;
        // On failure the transaction stays open: the caller drops this connection, and the
        // reconnect's init_transactions aborts it (an abort here would only wait out the same
        // outage a second time before the sink reports it).
        done
    }

    /// Produce every record (in order: one partition per key, partition 0 without one) and
    /// wait for each delivery. The first and last offset per partition.
    async fn produce_all(
        &self,
        records: &[OutRecord],
    ) -> Result<BTreeMap<i32, (i64, i64)>, KafkaFailure> {
        let mut pending = Vec::with_capacity(records.len());
        for r in records {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let mut rec = FutureRecord::<[u8], [u8]>::to(&self.def.kafka_topic)
                .payload(&r.value[..])
                .headers(headers);
            rec = match &r.key {
                Some(k) => rec.key(&k[..]),
                None => rec.partition(0),
            };
            let f = self
                .producer
                .send_result(rec)
                .map_err(|(e, _)| KafkaFailure::at("produce", e))?;
            pending.push(f);
        }
        let mut offsets = BTreeMap::new();
        for f in pending {
            match f.await {
                Ok(Ok(d)) => {
                    let e = offsets.entry(d.partition).or_insert((d.offset, d.offset));
                    e.1 = d.offset;
                }
                Ok(Err((e, _))) => return Err(KafkaFailure::at("delivery", e)),
                Err(e) => return Err(KafkaFailure::at("delivery", e)),
            }
        }
        Ok(offsets)
    }

    async fn produce_progress(
        &self,
        batch: &Batch,
        offsets: &BTreeMap<i32, (i64, i64)>,
    ) -> Result<(), KafkaFailure> {
        let offsets: serde_json::Map<String, Value> = offsets
            .iter()
            .map(|(p, (f, l))| (p.to_string(), json!([f, l])))
            .collect();
        let value = json!({ "sink": self.name, "source": self.def.source,
            "topic_id": self.topic_id, "epoch": self.epoch, "first_seq": batch.first_seq,
            "last_seq": batch.last_seq, "kafka_topic": self.def.kafka_topic,
            "offsets": offsets, "forwarded_total": batch.forwarded_total_after,
            "gap_markers_total": batch.gap_markers_total_after })
        .to_string();
        let rec = FutureRecord::to(&self.def.progress_topic)
            .key(self.name.as_bytes())
            .payload(value.as_bytes())
            .partition(0);
        let f = self
            .producer
            .send_result(rec)
            .map_err(|(e, _)| KafkaFailure::at("produce progress", e))?;
        match f.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(KafkaFailure::at("progress delivery", e)),
            Err(e) => Err(KafkaFailure::at("progress delivery", e)),
        }
    }
}

/// `TOPICS_TEST_SINK_STALL_MS=N`: an `exactly_once` batch waits N ms between the delivery of
/// its records and its progress record, so a crash test's `kill -9` lands inside the
/// transaction. It exists only for tests and is never set in production (logged when set).
fn test_stall() -> Option<Duration> {
    static STALL: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    *STALL.get_or_init(|| {
        let ms: u64 = std::env::var("TOPICS_TEST_SINK_STALL_MS")
            .ok()?
            .trim()
            .parse()
            .ok()?;
        tracing::warn!(
            ms,
            "test-only sink stall in use: every exactly_once batch waits"
        );
        Some(Duration::from_millis(ms))
    })
}

/// Create the progress topic (one partition, compacted) unless it exists. Looking first
/// means a sink whose credentials may not create topics works with a topic made for it.
async fn ensure_progress_topic(def: &SinkDef) -> Result<(), KafkaFailure> {
    let d = def.clone();
    if blocking("progress topic metadata", move || progress_topic_exists(&d)).await? {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = base_config(def)
        .create()
        .map_err(|e| KafkaFailure::at("admin client", e))?;
    let topic = NewTopic::new(
        &def.progress_topic,
        1,
        TopicReplication::Fixed(def.progress_replication),
    )
    .set("cleanup.policy", "compact");
    let opts = AdminOptions::new().request_timeout(Some(OP_TIMEOUT));
    let results = admin
        .create_topics([&topic], &opts)
        .await
        .map_err(|e| KafkaFailure::at("create progress topic", e))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(KafkaFailure(format!(
                    "create progress topic {t:?}: {code:?}"
                )));
            }
        }
    }
    Ok(())
}

/// Does the progress topic exist? Asked through a consumer handle, which never makes a broker
/// auto-create the topic (it would not be compacted).
fn progress_topic_exists(def: &SinkDef) -> Result<bool, KafkaError> {
    let consumer: BaseConsumer = base_config(def)
        .set("allow.auto.create.topics", "false")
        .create()?;
    let md = consumer.fetch_metadata(Some(&def.progress_topic), OP_TIMEOUT)?;
    Ok(md
        .topics()
        .first()
        .is_some_and(|t| t.error().is_none() && !t.partitions().is_empty()))
}

/// The last committed progress record of sink `name` (blocking): partition 0 of the progress
/// topic, read with `read_committed` from the beginning up to the high watermark taken first.
/// It reads to the high watermark, not to the first end it sees: another sink's open
/// transaction holds back the stable end, and this sink's last commit may lie beyond it.
fn read_progress(def: &SinkDef, name: &str) -> Result<Option<Progress>, KafkaError> {
    let mut c = base_config(def);
    c.set("group.id", format!("{}-progress", transactional_id(name)))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = c.create()?;
    let topic = def.progress_topic.as_str();
    let (low, high) = consumer.fetch_watermarks(topic, 0, OP_TIMEOUT)?;
    if high <= low {
        return Ok(None);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + PROGRESS_READ_MAX;
    let mut last = None;
    while position(&consumer, topic)? < high {
        if Instant::now() > deadline {
            return Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::OperationTimedOut,
            ));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) if m.key() == Some(name.as_bytes()) => {
                last = m.payload().and_then(parse_progress).or(last);
            }
            Some(Ok(_)) | None => {}
            Some(Err(e)) => return Err(e),
        }
    }
    Ok(last)
}

fn position(consumer: &BaseConsumer, topic: &str) -> Result<i64, KafkaError> {
    let tpl = consumer.position()?;
    Ok(match tpl.find_partition(topic, 0).map(|p| p.offset()) {
        Some(Offset::Offset(n)) => n,
        _ => -1,
    })
}

fn parse_progress(bytes: &[u8]) -> Option<Progress> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    Some(Progress {
        topic_id: v.get("topic_id")?.as_u64()?,
        epoch: v.get("epoch")?.as_u64()?,
        last_seq: v.get("last_seq")?.as_u64()?,
        forwarded_total: v
            .get("forwarded_total")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        gap_markers_total: v
            .get("gap_markers_total")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
}
