//! A small Socket.IO v5 client (Engine.IO v4 over WebSocket, default namespace, JSON parser): what the
//! black-box tests, `casino probe chat` and `casino bench room` need to talk to Room-Service (or any
//! socket.io 4 server) without a browser.
//!
//! It speaks the wire protocol directly: `0{open}` → `40{auth}` → `40{sid}` or `44{message}`; events
//! `42[name, ...args]`, acks `42<id>[...]` / `43<id>[...]`, heartbeats `2`/`3`, server disconnect `41`.
//! Disconnect reasons use socket.io-client's names (`io server disconnect`, `transport close`,
//! `transport error`, `ping timeout`, `io client disconnect`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{
    self, Message,
    client::IntoClientRequest as _,
    http::{HeaderName, HeaderValue},
    protocol::WebSocketConfig,
};

/// Receives the JSON array text (`["event",arg,...]`) of every event, instead of the event channel
/// (benchmarks: no parsing, no queueing).
pub type EventSink = Arc<dyn Fn(&str) + Send + Sync>;

/// How to connect.
#[derive(Clone)]
pub struct ClientOptions {
    /// The handshake `auth` object (`{"token": ...}`).
    pub auth: Value,
    /// Extra HTTP headers on the WebSocket upgrade (for example `X-Forwarded-For`).
    pub headers: Vec<(String, String)>,
    /// Bound on the whole handshake.
    pub timeout: Duration,
    /// Where events go, if not to [`Client::next_event`].
    pub sink: Option<EventSink>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ClientOptions {
    /// `auth: {token}`, 10 s handshake timeout.
    pub fn token(token: &str) -> Self {
        Self::auth(json!({ "token": token }))
    }

    /// Any handshake `auth` object, 10 s handshake timeout.
    pub fn auth(auth: Value) -> Self {
        Self {
            auth,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            sink: None,
        }
    }
}

/// Something the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// An event with its arguments.
    Event {
        /// Event name.
        name: String,
        /// Arguments.
        args: Vec<Value>,
    },
    /// The connection ended.
    Disconnected {
        /// socket.io-client's reason string.
        reason: String,
    },
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered the namespace connect with `connect_error`: its message.
    #[error("connection refused: {0}")]
    Refused(String),
    /// The WebSocket could not be opened or broke (an HTTP status when the upgrade was refused).
    #[error("transport: {0}")]
    Transport(String),
    /// Nothing within the time allowed.
    #[error("timed out")]
    Timeout,
    /// The server said something this client does not understand.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The connection is gone.
    #[error("disconnected: {0}")]
    Disconnected(String),
}

type Acks = Arc<Mutex<HashMap<u64, oneshot::Sender<Vec<Value>>>>>;

/// A connected socket.
pub struct Client {
    sid: String,
    out: mpsc::UnboundedSender<Message>,
    events: mpsc::UnboundedReceiver<ClientEvent>,
    backlog: VecDeque<ClientEvent>,
    acks: Acks,
    next_ack: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

/// `ws(s)://host/socket.io/?EIO=4&transport=websocket` for a base URL such as `http://127.0.0.1:8083`.
pub fn socket_url(base_url: &str) -> Result<String, ClientError> {
    let base = base_url.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        return Err(ClientError::Transport(format!(
            "not an http(s) or ws(s) URL: {base_url}"
        )));
    };
    Ok(format!("{base}/socket.io/?EIO=4&transport=websocket"))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(ws: &mut Ws) -> Result<String, ClientError> {
    loop {
        match ws.next().await {
            None => return Err(ClientError::Disconnected("transport close".into())),
            Some(Err(error)) => return Err(ClientError::Transport(error.to_string())),
            Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
            Some(Ok(Message::Close(_))) => {
                return Err(ClientError::Disconnected("transport close".into()));
            }
            Some(Ok(_)) => {}
        }
    }
}

impl Client {
    /// Open the WebSocket, do the Engine.IO and Socket.IO handshakes.
    pub async fn connect(base_url: &str, options: ClientOptions) -> Result<Self, ClientError> {
        tokio::time::timeout(options.timeout, Self::handshake(base_url, options))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn handshake(base_url: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let mut request = socket_url(base_url)?
            .into_client_request()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        for (name, value) in &options.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            let value =
                HeaderValue::from_str(value).map_err(|e| ClientError::Transport(e.to_string()))?;
            request.headers_mut().insert(name, value);
        }
        // Small buffers (messages are small; the benchmark holds thousands of these) and no Nagle delay.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .map_err(|error| match error {
                tungstenite::Error::Http(response) => {
                    ClientError::Transport(format!("HTTP {}", response.status()))
                }
                other => ClientError::Transport(other.to_string()),
            })?;
        let open = next_text(&mut ws).await?;
        let open: Value = open
            .strip_prefix('0')
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| {
                ClientError::Protocol(format!("expected an open packet, got {open:?}"))
            })?;
        let ping_interval = open["pingInterval"].as_u64().unwrap_or(25_000);
        let ping_timeout = open["pingTimeout"].as_u64().unwrap_or(20_000);
        ws.send(Message::Text(format!("40{}", options.auth).into()))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let (out, out_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let acks: Acks = Arc::default();
        let sid = loop {
            let text = next_text(&mut ws).await?;
            if text == "2" {
                ws.send(Message::Text("3".into()))
                    .await
                    .map_err(|e| ClientError::Transport(e.to_string()))?;
            } else if let Some(json) = text.strip_prefix("40") {
                let connected: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                break connected["sid"].as_str().unwrap_or_default().to_owned();
            } else if let Some(json) = text.strip_prefix("44") {
                let error: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                let message = error["message"].as_str().unwrap_or(json).to_owned();
                let _ = ws.close(None).await;
                return Err(ClientError::Refused(message));
            } else if let Some(packet) = text.strip_prefix("42") {
                // An event queued before the CONNECT packet (the official client buffers these too).
                socket_packet(
                    &format!("2{packet}"),
                    &events_tx,
                    &acks,
                    options.sink.as_ref(),
                );
            }
        };
        let heartbeat = Duration::from_millis(ping_interval + ping_timeout);
        tokio::spawn(run(
            ws,
            out_rx,
            events_tx,
            acks.clone(),
            options.sink,
            heartbeat,
        ));
        Ok(Self {
            sid,
            out,
            events,
            backlog: VecDeque::new(),
            acks,
            next_ack: AtomicU64::new(1),
        })
    }

    /// The socket id the server gave.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    fn send(&self, text: String) -> Result<(), ClientError> {
        self.out
            .send(Message::Text(text.into()))
            .map_err(|_| ClientError::Disconnected("transport close".into()))
    }

    /// Emit `event` with one argument.
    pub fn emit(&self, event: &str, data: &Value) -> Result<(), ClientError> {
        self.send(format!("42{}", json!([event, data])))
    }

    /// Emit `event` with one argument and wait for the ack's first argument.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        data: &Value,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let id = self.next_ack.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut acks) = self.acks.lock() {
            acks.insert(id, tx);
        }
        self.send(format!("42{id}{}", json!([event, data])))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(mut args)) => Ok(if args.is_empty() {
                Value::Null
            } else {
                args.swap_remove(0)
            }),
            Ok(Err(_)) => Err(ClientError::Disconnected("closed before the ack".into())),
            Err(_) => {
                if let Ok(mut acks) = self.acks.lock() {
                    acks.remove(&id);
                }
                Err(ClientError::Timeout)
            }
        }
    }

    /// The next thing the server sent, waiting up to `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<ClientEvent, ClientError> {
        if let Some(event) = self.backlog.pop_front() {
            return Ok(event);
        }
        match tokio::time::timeout(timeout, self.events.recv()).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(ClientError::Disconnected("transport close".into())),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// Wait for the next `name` event (others stay queued, in order) and return its arguments.
    pub async fn wait_for(
        &mut self,
        name: &str,
        timeout: Duration,
    ) -> Result<Vec<Value>, ClientError> {
        if let Some(pos) = self
            .backlog
            .iter()
            .position(|e| matches!(e, ClientEvent::Event { name: n, .. } if n == name))
            && let Some(ClientEvent::Event { args, .. }) = self.backlog.remove(pos)
        {
            return Ok(args);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let event = match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => event,
                Ok(None) => return Err(ClientError::Disconnected("transport close".into())),
                Err(_) => return Err(ClientError::Timeout),
            };
            match event {
                ClientEvent::Event { name: n, args } if n == name => return Ok(args),
                ClientEvent::Disconnected { reason } => {
                    self.backlog.push_back(ClientEvent::Disconnected {
                        reason: reason.clone(),
                    });
                    return Err(ClientError::Disconnected(reason));
                }
                other => self.backlog.push_back(other),
            }
        }
    }

    /// Everything received so far, without waiting.
    pub fn drain(&mut self) -> Vec<ClientEvent> {
        let mut all: Vec<ClientEvent> = self.backlog.drain(..).collect();
        while let Ok(event) = self.events.try_recv() {
            all.push(event);
        }
        all
    }

    /// Leave the namespace and close the WebSocket.
    pub fn close(self) {
        let _ = self.send("41".into());
        let _ = self.out.send(Message::Close(None));
    }
}

async fn run(
    ws: Ws,
    mut out: mpsc::UnboundedReceiver<Message>,
    events: mpsc::UnboundedSender<ClientEvent>,
    acks: Acks,
    sink: Option<EventSink>,
    heartbeat: Duration,
) {
    let (mut write, mut read) = ws.split();
    // One timer for the connection's life, moved on each ping (not a new one per frame: the benchmark
    // runs thousands of these next to the server it measures).
    let ping_timeout = tokio::time::sleep_until(Instant::now() + heartbeat);
    tokio::pin!(ping_timeout);
    let reason = loop {
        tokio::select! {
            frame = read.next() => match frame {
                None | Some(Ok(Message::Close(_))) => break "transport close",
                Some(Err(_)) => break "transport error",
                Some(Ok(Message::Text(text))) => match text.as_bytes().first() {
                    Some(b'2') => {
                        ping_timeout.as_mut().reset(Instant::now() + heartbeat);
                        if write.send(Message::Text("3".into())).await.is_err() {
                            break "transport error";
                        }
                    }
                    Some(b'1') => break "transport close",
                    Some(b'4') => {
                        if let Some(reason) = socket_packet(&text[1..], &events, &acks, sink.as_ref()) {
                            break reason;
                        }
                    }
                    _ => {}
                },
                Some(Ok(_)) => {}
            },
            message = out.recv() => match message {
                Some(Message::Close(frame)) => {
                    let _ = write.send(Message::Close(frame)).await;
                    break "io client disconnect";
                }
                Some(message) => {
                    if write.send(message).await.is_err() {
                        break "transport error";
                    }
                }
                None => {
                    let _ = write.send(Message::Close(None)).await;
                    break "io client disconnect";
                }
            },
            _ = &mut ping_timeout => break "ping timeout",
        }
    };
    if let Ok(mut acks) = acks.lock() {
        acks.clear();
    }
    let _ = events.send(ClientEvent::Disconnected {
        reason: reason.into(),
    });
}

/// Handle a Socket.IO packet (without the Engine.IO `4`); `Some(reason)` when it ends the connection.
fn socket_packet(
    packet: &str,
    events: &mpsc::UnboundedSender<ClientEvent>,
    acks: &Acks,
    sink: Option<&EventSink>,
) -> Option<&'static str> {
    let kind = packet.as_bytes().first()?;
    let rest = &packet[1..];
    // The default namespace has no prefix; skip packets of other namespaces.
    if rest.starts_with('/') {
        return None;
    }
    let json_at = rest.find(['[', '{']).unwrap_or(rest.len());
    let id: Option<u64> = rest[..json_at].parse().ok();
    let json = &rest[json_at..];
    match kind {
        b'2' => {
            if let Some(sink) = sink {
                sink(json);
                return None;
            }
            if let Ok(Value::Array(mut array)) = serde_json::from_str::<Value>(json)
                && !array.is_empty()
                && let Value::String(name) = array.remove(0)
            {
                let _ = events.send(ClientEvent::Event { name, args: array });
            }
            None
        }
        b'3' => {
            let args = match serde_json::from_str::<Value>(json) {
                Ok(Value::Array(args)) => args,
                _ => Vec::new(),
            };
            if let Some(id) = id
                && let Some(tx) = acks.lock().ok().and_then(|mut acks| acks.remove(&id))
            {
                let _ = tx.send(args);
            }
            None
        }
        b'1' => Some("io server disconnect"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_urls_come_from_base_urls() {
        assert_eq!(
            socket_url("http://127.0.0.1:8083/").unwrap(),
            "ws://127.0.0.1:8083/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            socket_url("https://casino.example").unwrap(),
            "wss://casino.example/socket.io/?EIO=4&transport=websocket"
        );
        assert!(socket_url("casino.example").is_err());
    }

    #[test]
    fn events_acks_and_disconnects_are_parsed() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let acks: Acks = Arc::default();
        let (ack_tx, mut ack_rx) = oneshot::channel();
        acks.lock().unwrap().insert(7, ack_tx);
        assert_eq!(
            socket_packet(r#"2["chat.message",{"text":"hi"}]"#, &tx, &acks, None),
            None
        );
        assert_eq!(
            rx.try_recv().unwrap(),
            ClientEvent::Event {
                name: "chat.message".into(),
                args: vec![json!({"text": "hi"})]
            }
        );
        assert_eq!(socket_packet(r#"37[{"ok":true}]"#, &tx, &acks, None), None);
        assert_eq!(ack_rx.try_recv().unwrap(), vec![json!({"ok": true})]);
        assert_eq!(
            socket_packet("1", &tx, &acks, None),
            Some("io server disconnect")
        );
        assert_eq!(socket_packet(r#"2/admin,["x"]"#, &tx, &acks, None), None);
        assert!(rx.try_recv().is_err());
    }
}
