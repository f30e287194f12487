//! The stack's Kafka: the embedded broker (librdkafka's mock cluster, with every topic and its DLQ) reached
//! through a fixed bootstrap address, or an existing cluster from `KAFKA_BROKERS`.
//!
//! The mock cluster listens on a port of its own choosing; a small TCP relay on the fixed address
//! (127.0.0.1:9092 by default) forwards bootstrap connections to it. Clients then talk to the broker at
//! the address its metadata advertises, which is also loopback.

use std::net::SocketAddr;

use anyhow::Context as _;
use casino_testkit::kafka::TestKafka;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Every topic of the platform and its dead-letter topic.
pub fn all_topics() -> Vec<String> {
    casino_events::topics::ALL
        .iter()
        .flat_map(|topic| [(*topic).to_owned(), casino_events::topics::dlq(topic)])
        .collect()
}

/// The broker of a local stack.
#[derive(Debug)]
pub struct Kafka {
    /// The broker (mock or external).
    pub broker: TestKafka,
    /// What clients are given.
    pub bootstrap: String,
}

impl Kafka {
    /// Use `KAFKA_BROKERS` (topics created when missing) or start the embedded broker behind `listener`.
    pub fn start(
        external: Option<String>,
        listener: Option<std::net::TcpListener>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let topics = all_topics();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        if let Some(brokers) = external {
            // TestKafka::start reads KAFKA_BROKERS itself; it is set, since that is where `external` came from.
            let broker = TestKafka::start(&topics).with_context(|| format!("using {brokers}"))?;
            return Ok(Self {
                broker,
                bootstrap: brokers,
            });
        }
        let broker = TestKafka::start(&topics)?;
        let listener = listener.context("a listener for the bootstrap address")?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let bootstrap = listener.local_addr()?.to_string();
        let upstream: SocketAddr = broker
            .bootstrap_servers()
            .split(',')
            .next()
            .unwrap_or_default()
            .parse()
            .context("the mock broker's address")?;
        tokio::spawn(relay(listener, upstream, cancel.clone()));
        Ok(Self { broker, bootstrap })
    }
}

async fn relay(listener: TcpListener, upstream: SocketAddr, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut client, _)) = accepted else {
            continue;
        };
        tokio::spawn(async move {
            // A refused upstream (broker taken down) closes the client's connection, as a down broker would.
            if let Ok(mut server) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}
