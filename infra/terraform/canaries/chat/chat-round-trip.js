'use strict';
// CloudWatch Synthetics canary: "customer chat is down".
// Logs in the synthetic player through the public ALB, connects to Room-Service with socket.io like a
// browser, joins a probe room, sends a message with a unique client_msg_id and waits until the message
// comes back through Kafka (room.chat.v1) as an event. Mirrors `casino probe chat`.
//
// Environment (set by Terraform, modules/observability/canaries.tf):
//   BASE_URL          https://<public hostname>
//   PLAYER_SECRET_ID  Secrets Manager secret with JSON {"username": ..., "password": ...}
//   CHAT_ROOM         room to use (default game:synthetics-probe)
// For local runs (scripts/infra/canary-test.js): PLAYER_USERNAME / PLAYER_PASSWORD instead of the secret.
//
// Assumed API (Vault and Room-Service issues): POST /api/v1/auth/login {email, password} -> JSON with
// access_token; socket.io at /socket.io/ with auth {token}; client events `chat.join` {room} and
// `chat.send` {room, text, client_msg_id} (acknowledged with {ok} or {error}); the message is then
// broadcast to the room. Any server event whose payload contains our client_msg_id counts as received,
// so the broadcast event's name does not matter.

const { io } = require('socket.io-client');

let synthetics = null;
let log = console;
try {
  // Provided by the Synthetics runtime only.
  synthetics = require('Synthetics'); // eslint-disable-line import/no-unresolved
  log = require('SyntheticsLogger'); // eslint-disable-line import/no-unresolved
} catch (_) {
  synthetics = null;
}

function timeoutMs() {
  return Number(process.env.ROUND_TRIP_TIMEOUT_MS || 15000);
}

async function player() {
  if (process.env.PLAYER_USERNAME) {
    return { username: process.env.PLAYER_USERNAME, password: process.env.PLAYER_PASSWORD || '' };
  }
  const { SecretsManagerClient, GetSecretValueCommand } = require('@aws-sdk/client-secrets-manager');
  const client = new SecretsManagerClient({});
  const out = await client.send(new GetSecretValueCommand({ SecretId: process.env.PLAYER_SECRET_ID }));
  const secret = JSON.parse(out.SecretString);
  return { username: secret.username, password: secret.password };
}

async function login(baseUrl, creds) {
  const res = await fetch(`${baseUrl}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'casino-synthetics-chat' },
    body: JSON.stringify({ email: creds.username, password: creds.password }),
  });
  if (res.status !== 200) {
    throw new Error(`login answered ${res.status}`);
  }
  const body = await res.json();
  const token = body.access_token || body.accessToken || body.token;
  if (!token) {
    throw new Error('login answer has no access_token');
  }
  return token;
}

function roundTrip(baseUrl, token, room) {
  const TIMEOUT_MS = timeoutMs();
  return new Promise((resolve, reject) => {
    const nonce = `synthetics-${Date.now()}-${Math.random().toString(36).slice(2, 10)}`;
    const started = Date.now();
    let sent = false;
    let done = false;

    const socket = io(baseUrl, {
      path: '/socket.io/',
      transports: ['websocket'],
      auth: { token },
      reconnection: false,
      timeout: TIMEOUT_MS,
      extraHeaders: { 'user-agent': 'casino-synthetics-chat' },
    });

    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(
      () => finish(new Error(`no echo of ${nonce} within ${TIMEOUT_MS} ms (sent: ${sent})`)),
      TIMEOUT_MS,
    );

    const send = () => {
      if (sent) return;
      sent = true;
      socket.emit('chat.send', { room, text: `synthetic probe ${nonce}`, client_msg_id: nonce }, (ack) => {
        if (ack && ack.error) finish(new Error(`chat.send refused: ${JSON.stringify(ack.error)}`));
      });
    };

    socket.on('connect_error', (err) => finish(new Error(`socket.io connect failed: ${err.message}`)));
    socket.on('disconnect', (reason) => {
      if (!done) finish(new Error(`socket disconnected: ${reason}`));
    });
    socket.onAny((_event, ...args) => {
      if (JSON.stringify(args).includes(nonce)) {
        finish(null, Date.now() - started);
      }
    });
    socket.on('connect', () => {
      // Send once the join is acknowledged; if the server answers the join with an event instead of an
      // ack, send anyway after a short grace period.
      socket.emit('chat.join', { room }, () => send());
      setTimeout(send, 2000);
    });
  });
}

async function chatRoundTrip() {
  const baseUrl = (process.env.BASE_URL || '').replace(/\/+$/, '');
  if (!baseUrl) throw new Error('BASE_URL is not set');
  const room = process.env.CHAT_ROOM || 'game:synthetics-probe';
  const token = await login(baseUrl, await player());
  const ms = await roundTrip(baseUrl, token, room);
  log.info(`chat round trip ok in ${ms} ms`);
  return ms;
}

exports.chatRoundTrip = chatRoundTrip;
exports.handler = async () => {
  if (synthetics) {
    return synthetics.executeStep('chatRoundTrip', chatRoundTrip);
  }
  return chatRoundTrip();
};
