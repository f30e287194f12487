//! Helpers shared by the messaging tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use casino_messaging::{KafkaConfig, Producer};
use rdkafka::{
    ClientConfig, Message as _,
    consumer::{Consumer as _, StreamConsumer},
    message::Headers as _,
};

pub fn producer(brokers: &str) -> Producer {
    Producer::new(
        &KafkaConfig::plaintext(brokers, "test-producer"),
        Duration::from_secs(10),
    )
    .unwrap()
}

/// A raw message read back from a topic.
#[derive(Debug, Clone)]
pub struct Raw {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Raw {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Read `count` messages from `topic` from the beginning, with a fresh group.
pub async fn read(brokers: &str, topic: &str, count: usize) -> Vec<Raw> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} messages on {topic}", out.len()))
            .unwrap();
        out.push(Raw {
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers: message
                .headers()
                .map(|h| {
                    h.iter()
                        .filter_map(|h| {
                            Some((h.key.to_owned(), String::from_utf8(h.value?.to_vec()).ok()?))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    out
}

/// Poll `condition` until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    condition()
}
