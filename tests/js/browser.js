// A browser as LQDOJ's resources/event.js drives socket.io-client, scripted over stdin/stdout.
// argv: URL CHANNELS(comma-separated) [START]
// stdin: one JSON command per line: {"op":"disconnect"} {"op":"connect"} {"op":"emit","event":E,"data":D}
//        {"op":"filter","channels":[...]} {"op":"exit"}
// stdout: one JSON event per line: open (engine, first transport), connect, upgrade, message, status, error, last-response, disconnect, connect_error
const { io } = require("socket.io-client");
const readline = require("readline");

const [url, channelsArg, startArg] = process.argv.slice(2);
let channels = channelsArg ? channelsArg.split(",") : [];
let lastMsg = startArg ? parseInt(startArg, 10) : 0;
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const socket = io(url, {
  auth: { role: "client" },
  reconnectionAttempts: 10,
  reconnectionDelay: 1000,
  reconnectionDelayMax: 5000,
  timeout: 10000,
});

socket.io.on("open", () => {
  const engine = socket.io.engine;
  out({ ev: "open", transport: engine.transport.name });
  engine.once("upgrade", (t) => out({ ev: "upgrade", transport: t.name }));
});
socket.on("connect", () => {
  out({ ev: "connect", transport: socket.io.engine.transport.name });
  socket.emit("start-msg", { start: lastMsg });
  socket.emit("set-filter", { filter: channels });
});
socket.on("message", (data) => {
  lastMsg = data.id;
  out({ ev: "message", data });
});
for (const name of ["status", "error", "last-response"]) {
  socket.on(name, (data) => out({ ev: name, data }));
}
socket.on("disconnect", (reason) => out({ ev: "disconnect", reason }));
socket.on("connect_error", (err) => out({ ev: "connect_error", message: err.message }));

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const cmd = JSON.parse(line);
  if (cmd.op === "disconnect") socket.disconnect();
  else if (cmd.op === "connect") socket.connect();
  else if (cmd.op === "emit") socket.emit(cmd.event, cmd.data);
  else if (cmd.op === "filter") { channels = cmd.channels; socket.emit("set-filter", { filter: channels }); }
  else if (cmd.op === "exit") { socket.disconnect(); process.exit(0); }
}).on("close", () => process.exit(0));
