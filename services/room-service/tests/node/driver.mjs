// Drives the official socket.io client (socket.io-client 4.x) for Room-Service's black-box tests.
//
// Reads one JSON command per line on stdin, writes one JSON line per thing that happens on stdout:
//   {"op":"connect","id":"a","url":"http://127.0.0.1:8083","auth":{...},"transports":["websocket"],"headers":{...},
//    "localAddress":"127.0.0.2"}   (localAddress: the source address of the WebSocket, to test per-IP limits)
//   {"op":"emit","id":"a","event":"chat.send","data":{...},"req":7}   (req: wait for an ack, reported as {"type":"ack","req":7,...})
//   {"op":"disconnect","id":"a"}   {"op":"exit"}
// Output: {"id","type":"connect","sid"} | {"id","type":"connect_error","message"} | {"id","type":"event","event","args"}
//         {"id","type":"ack","req","args"} | {"id","type":"disconnect","reason"} | {"type":"ready"}
import { io } from "socket.io-client";
import readline from "node:readline";

const sockets = new Map();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function connect(cmd) {
  const options = {
    auth: cmd.auth ?? {},
    reconnection: cmd.reconnection ?? false,
    forceNew: true,
    timeout: 10000,
  };
  if (cmd.transports) options.transports = cmd.transports;
  if (cmd.headers) options.extraHeaders = cmd.headers;
  if (cmd.localAddress) options.localAddress = cmd.localAddress;
  const socket = io(cmd.url, options);
  sockets.set(cmd.id, socket);
  socket.on("connect", () => out({ id: cmd.id, type: "connect", sid: socket.id }));
  socket.on("connect_error", (err) => out({ id: cmd.id, type: "connect_error", message: err.message }));
  socket.on("disconnect", (reason) => out({ id: cmd.id, type: "disconnect", reason }));
  socket.onAny((event, ...args) => out({ id: cmd.id, type: "event", event, args }));
}

function emit(cmd) {
  const socket = sockets.get(cmd.id);
  if (!socket) return out({ id: cmd.id, type: "error", message: "unknown socket" });
  if (cmd.req === undefined) {
    socket.emit(cmd.event, cmd.data);
  } else {
    socket.timeout(cmd.timeout ?? 10000).emit(cmd.event, cmd.data, (err, ...args) => {
      if (err) out({ id: cmd.id, type: "ack", req: cmd.req, timeout: true, args: [] });
      else out({ id: cmd.id, type: "ack", req: cmd.req, args });
    });
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  switch (cmd.op) {
    case "connect": return connect(cmd);
    case "emit": return emit(cmd);
    case "disconnect": {
      sockets.get(cmd.id)?.disconnect();
      return;
    }
    case "exit": {
      for (const s of sockets.values()) s.disconnect();
      process.exit(0);
    }
    default:
      out({ type: "error", message: `unknown op ${cmd.op}` });
  }
});
rl.on("close", () => process.exit(0));
out({ type: "ready" });
