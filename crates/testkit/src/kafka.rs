//! An embedded Kafka-protocol broker for tests: librdkafka's mock cluster on loopback TCP.
//!
//! The mock cluster is not `Send`, so it lives on a thread of its own and [`TestKafka`] talks to it over a
//! channel; `TestKafka` itself can be shared across tasks. Clients connect to
//! [`TestKafka::bootstrap_servers`] like to any broker. With `KAFKA_BROKERS` set, topics are created on
//! that cluster instead and fault injection is unavailable.

use std::sync::{Mutex, mpsc};
use std::time::Duration;

use anyhow::{Context as _, bail};
use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    mocking::MockCluster,
};

enum Command {
    CreateTopic(String, i32, mpsc::Sender<anyhow::Result<()>>),
    BrokerDown(mpsc::Sender<anyhow::Result<()>>),
    BrokerUp(mpsc::Sender<anyhow::Result<()>>),
    Stop,
}

/// A running broker for one test (or one `casino up`).
#[derive(Debug)]
pub struct TestKafka {
    bootstrap: String,
    control: Option<Mutex<mpsc::Sender<Command>>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

/// Default partition count of topics created by the harness.
pub const DEFAULT_PARTITIONS: i32 = 3;

impl TestKafka {
    /// Start a one-broker mock cluster (or use `KAFKA_BROKERS`) with `topics` created.
    pub fn start(topics: &[&str]) -> anyhow::Result<Self> {
        let kafka = if let Ok(brokers) = std::env::var("KAFKA_BROKERS") {
            Self {
                bootstrap: brokers,
                control: None,
            }
        } else {
            Self::start_mock()?
        };
        for topic in topics {
            kafka.create_topic(topic, DEFAULT_PARTITIONS)?;
        }
        Ok(kafka)
    }

    fn start_mock() -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("testkit-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(cluster) => cluster,
                    Err(error) => {
                        let _ = ready_tx.send(Err(anyhow::anyhow!(
                            "starting the mock Kafka cluster: {error}"
                        )));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                for command in rx {
                    match command {
                        Command::CreateTopic(name, partitions, reply) => {
                            let _ = reply.send(
                                cluster
                                    .create_topic(&name, partitions, 1)
                                    .with_context(|| format!("creating topic {name}")),
                            );
                        }
                        Command::BrokerDown(reply) => {
                            let _ = reply.send(cluster.broker_down(1).context("broker down"));
                        }
                        Command::BrokerUp(reply) => {
                            let _ = reply.send(cluster.broker_up(1).context("broker up"));
                        }
                        Command::Stop => break,
                    }
                }
            })
            .context("spawning the mock Kafka thread")?;
        let bootstrap = ready_rx
            .recv()
            .context("the mock Kafka thread died before starting")??;
        Ok(Self {
            bootstrap,
            control: Some(Mutex::new(tx)),
        })
    }

    /// `host:port` list to give clients.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Whether this is the embedded mock (fault injection available).
    pub fn is_embedded(&self) -> bool {
        self.control.is_some()
    }

    fn call(
        &self,
        make: impl FnOnce(mpsc::Sender<anyhow::Result<()>>) -> Command,
    ) -> anyhow::Result<()> {
        let Some(control) = &self.control else {
            bail!("fault injection needs the embedded broker (unset KAFKA_BROKERS)");
        };
        let (reply, answer) = mpsc::channel();
        control
            .lock()
            .map_err(|_| anyhow::anyhow!("kafka control poisoned"))?
            .send(make(reply))
            .context("the mock Kafka thread is gone")?;
        answer
            .recv_timeout(Duration::from_secs(10))
            .context("the mock Kafka thread did not answer")?
    }

    /// Create a topic with `partitions` partitions (idempotent on a real cluster).
    pub fn create_topic(&self, name: &str, partitions: i32) -> anyhow::Result<()> {
        if self.control.is_some() {
            return self.call(|reply| Command::CreateTopic(name.to_owned(), partitions, reply));
        }
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .context("creating a Kafka admin client")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let results = std::thread::scope(|s| {
            s.spawn(|| {
                runtime.block_on(admin.create_topics(
                    &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
                    &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
                ))
            })
            .join()
        })
        .map_err(|_| anyhow::anyhow!("topic creation panicked"))?
        .context("creating topics")?;
        for result in results {
            match result {
                Ok(_) => {}
                Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => bail!("creating topic {topic}: {code}"),
            }
        }
        Ok(())
    }

    /// Take the broker down: connections are closed and refused until [`TestKafka::broker_up`].
    ///
    /// Waits for children of this process that are between fork and exec: one holding the broker's
    /// listening socket would keep it from re-binding its port (see [`crate::process`]).
    pub fn broker_down(&self) -> anyhow::Result<()> {
        crate::process::exclusive(|| self.call(Command::BrokerDown))
    }

    /// Bring the broker back.
    pub fn broker_up(&self) -> anyhow::Result<()> {
        crate::process::exclusive(|| self.call(Command::BrokerUp))
    }
}

impl Drop for TestKafka {
    fn drop(&mut self) {
        if let Some(control) = &self.control
            && let Ok(control) = control.lock()
        {
            let _ = control.send(Command::Stop);
        }
    }
}
