// Reference server for `casino bench room`: the official `socket.io` 4.8 server doing what Room-Service
// does on the benchmark's path, in-process (no database, no Kafka): verify the EdDSA access token at the
// handshake (the same tokens, checked against the JWKS in BENCH_JWKS), join `player:{id}`, answer
// `chat.join` and `chat.send` through acks, broadcast `chat.message` to the room.
//
// Env: PORT (0 = any), BENCH_JWKS (the JWKS document). Prints {"port": ..., "pid": ...} once listening.
import { createServer } from "node:http";
import { createPublicKey, verify, randomUUID } from "node:crypto";
import { Server } from "socket.io";

const keys = new Map(
  (JSON.parse(process.env.BENCH_JWKS ?? '{"keys":[]}').keys ?? []).map((jwk) => [
    jwk.kid,
    createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: "jwk" }),
  ]),
);

function claimsOf(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const header = JSON.parse(Buffer.from(parts[0], "base64url"));
    const key = keys.get(header.kid);
    if (!key || header.alg !== "EdDSA") return null;
    const ok = verify(null, Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2], "base64url"));
    if (!ok) return null;
    const claims = JSON.parse(Buffer.from(parts[1], "base64url"));
    if (claims.iss !== "vault" || claims.exp + 5 < Date.now() / 1000) return null;
    return claims;
  } catch {
    return null;
  }
}

const ROOM = /^(lobby|game:[A-Za-z0-9_.-]{1,64})$/;
const httpServer = createServer();
const io = new Server(httpServer, { maxHttpBufferSize: 64 * 1024 });

io.use((socket, next) => {
  const claims = claimsOf(socket.handshake.auth?.token);
  if (!claims) return next(new Error("unauthorized"));
  socket.data.playerId = claims.sub;
  next();
});

io.on("connection", (socket) => {
  socket.join(`player:${socket.data.playerId}`);
  socket.emit("notifications.unread_count", { count: 0 });
  socket.on("chat.join", (request, ack) => {
    const room = request?.room;
    if (typeof room !== "string" || !ROOM.test(room)) return ack?.({ ok: false, error: "invalid_room" });
    socket.join(`chat:${room}`);
    ack?.({ ok: true, room, messages: [] });
  });
  socket.on("chat.send", (request, ack) => {
    const { room, text, client_msg_id } = request ?? {};
    if (!socket.rooms.has(`chat:${room}`)) return ack?.({ ok: false, error: "not_joined" });
    const trimmed = typeof text === "string" ? text.trim() : "";
    if (!trimmed) return ack?.({ ok: false, error: "empty" });
    if ([...trimmed].length > 500) return ack?.({ ok: false, error: "too_long" });
    const message = {
      message_id: randomUUID(),
      room,
      player_id: socket.data.playerId,
      text: trimmed,
      client_msg_id,
      sent_at: new Date().toISOString(),
    };
    io.to(`chat:${room}`).emit("chat.message", message);
    ack?.({ ok: true, message_id: message.message_id });
  });
});

httpServer.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: httpServer.address().port, pid: process.pid }) + "\n");
});
process.on("SIGTERM", () => {
  io.close();
  process.exit(0);
});
