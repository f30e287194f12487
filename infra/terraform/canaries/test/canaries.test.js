'use strict';
// Runs both canary scripts against a local stand-in of the public API on 127.0.0.1 (login endpoint,
// socket.io chat that broadcasts sent messages, health paths), including the failure cases: the chat
// canary must fail when the echo never comes or login is refused, the health canary when a path is not 2xx.
// This proves the scripts' own logic and their use of socket.io-client; whether the real services speak
// the assumed protocol is only proven by the canary in AWS (or `casino probe chat` locally).
// Usage: NODE_PATH=<dir with socket.io and socket.io-client> node canaries.test.js
const http = require('node:http');
const path = require('node:path');
const assert = require('node:assert');
const { Server } = require('socket.io');

const chatCanary = require(path.join(__dirname, '..', 'chat', 'chat-round-trip.js'));
const healthCanary = require(path.join(__dirname, '..', 'health', 'health-endpoints.js'));

function startServer({ echo = true, loginStatus = 200, unhealthy = new Set() } = {}) {
  const server = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/api/v1/auth/login') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const creds = JSON.parse(body);
        const ok = loginStatus === 200 && creds.email === 'probe@example.test' && creds.password === 'pw';
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        res.end(JSON.stringify(ok ? { access_token: 'token-1', token_type: 'Bearer' } : { error: 'invalid_credentials' }));
      });
      return;
    }
    const p = req.url.split('?')[0];
    if (['/.well-known/jwks.json', '/api/v1/leaderboards'].includes(p)) {
      const code = unhealthy.has(p) ? 503 : 200;
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    if (p.startsWith('/socket.io')) return; // handled by socket.io
    res.writeHead(404);
    res.end();
  });
  const ioServer = new Server(server, { path: '/socket.io/' });
  ioServer.use((socket, next) => {
    if (socket.handshake.auth && socket.handshake.auth.token === 'token-1') next();
    else next(new Error('unauthorized'));
  });
  ioServer.on('connection', (socket) => {
    socket.on('chat.join', ({ room }, ack) => {
      socket.join(room);
      if (ack) ack({ ok: true, messages: [] });
    });
    socket.on('chat.send', (msg, ack) => {
      if (ack) ack({ ok: true });
      if (echo) ioServer.to(msg.room).emit('chat.message', { room: msg.room, text: msg.text, client_msg_id: msg.client_msg_id, player_id: 'p1' });
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, ioServer, url: `http://127.0.0.1:${server.address().port}` }));
  });
}

async function stop(s) {
  s.ioServer.close();
  s.server.closeAllConnections();
  await new Promise((r) => s.server.close(r));
}

async function expectFailure(fn, pattern) {
  let failed = false;
  try {
    await fn();
  } catch (err) {
    failed = true;
    assert.match(err.message, pattern);
  }
  assert.ok(failed, `expected a failure matching ${pattern}`);
}

const cases = [
  ['chat round trip succeeds when the message comes back', async () => {
    const s = await startServer();
    try {
      Object.assign(process.env, { BASE_URL: s.url, PLAYER_USERNAME: 'probe@example.test', PLAYER_PASSWORD: 'pw', ROUND_TRIP_TIMEOUT_MS: '3000' });
      const ms = await chatCanary.chatRoundTrip();
      assert.ok(ms >= 0);
    } finally { await stop(s); }
  }],
  ['chat canary fails when the message never comes back', async () => {
    const s = await startServer({ echo: false });
    try {
      Object.assign(process.env, { BASE_URL: s.url, PLAYER_USERNAME: 'probe@example.test', PLAYER_PASSWORD: 'pw', ROUND_TRIP_TIMEOUT_MS: '1500' });
      await expectFailure(() => chatCanary.chatRoundTrip(), /no echo/);
    } finally { await stop(s); }
  }],
  ['chat canary fails when login is refused', async () => {
    const s = await startServer({ loginStatus: 401 });
    try {
      Object.assign(process.env, { BASE_URL: s.url, PLAYER_USERNAME: 'probe@example.test', PLAYER_PASSWORD: 'pw' });
      await expectFailure(() => chatCanary.chatRoundTrip(), /login answered 401/);
    } finally { await stop(s); }
  }],
  ['health canary passes when every path answers 2xx', async () => {
    const s = await startServer();
    try {
      process.env.BASE_URL = s.url;
      process.env.PATHS = 'vault=/.well-known/jwks.json,room-service=/socket.io/?EIO=4&transport=polling,concierge=/api/v1/leaderboards';
      await healthCanary.healthEndpoints();
    } finally { await stop(s); }
  }],
  ['health canary fails and names the service when a path is not 2xx', async () => {
    const s = await startServer({ unhealthy: new Set(['/api/v1/leaderboards']) });
    try {
      process.env.BASE_URL = s.url;
      process.env.PATHS = 'vault=/.well-known/jwks.json,concierge=/api/v1/leaderboards';
      await expectFailure(() => healthCanary.healthEndpoints(), /concierge \/api\/v1\/leaderboards answered 503/);
    } finally { await stop(s); }
  }],
];

(async () => {
  let passed = 0;
  let failed = 0;
  for (const [name, fn] of cases) {
    try {
      await fn();
      passed += 1;
      console.log(`ok   ${name}`);
    } catch (err) {
      failed += 1;
      console.log(`FAIL ${name}: ${err.stack || err}`);
    }
  }
  console.log(`canary tests: ${passed} ok, ${failed} failing`);
  process.exit(failed === 0 ? 0 : 1);
})();
