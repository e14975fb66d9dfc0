// Load client for bench/fedmsg_load.py: many raw WebSocket subscribers in one Node process.
// Node's per-frame cost is a fraction of Python's, so the machine's CPU goes to the server.
// Usage: node fedmsg_client.js HOST PORT PATH PATTERNS.json  (commands on stdin: "stats K", "quit")
"use strict";
const net = require("net");
const crypto = require("crypto");
const fs = require("fs");
const readline = require("readline");

const [host, port, path, patternsFile] = process.argv.slice(2);
const patterns = JSON.parse(fs.readFileSync(patternsFile, "utf8"));
const MARK = Buffer.from('"body":{"t":');
const lat = new Map(); // step -> array of ns
const perMsg = new Map(); // step -> message index -> [min ns, max ns]
let ready = 0;
let closed = 0;
let announced = false;

function frame(text) {
  const data = Buffer.from(text);
  const n = data.length;
  const head = n < 126 ? Buffer.from([0x81, 0x80 | n]) : Buffer.from([0x81, 0x80 | 126, n >> 8, n & 255]);
  return Buffer.concat([head, Buffer.alloc(4), data]); // zero mask key: valid and cheap
}

function readInt(buf, at) {
  let v = 0;
  for (;;) {
    const c = buf[at++];
    if (c < 48 || c > 57) return [v, at - 1]; // at: the first non-digit
    v = v * 10 + (c - 48);
  }
}

function open(pats) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port: Number(port), noDelay: true });
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let seenReady = false;
    sock.on("error", (e) => { if (!upgraded) reject(e); });
    sock.on("close", () => { closed++; });
    sock.on("connect", () => {
      const key = crypto.randomBytes(16).toString("base64");
      sock.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    sock.on("data", (data) => {
      const now = Number(process.hrtime.bigint());
      buf = buf.length ? Buffer.concat([buf, data]) : data;
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (buf.toString("latin1", 0, 12) !== "HTTP/1.1 101") { reject(new Error(buf.toString("latin1", 0, 80))); return; }
        buf = buf.subarray(end + 4);
        upgraded = true;
        sock.write(Buffer.concat(pats.map((p) => frame(JSON.stringify({ topic: "__topic_subscribe__", body: p })))));
        resolve(sock);
      }
      let pos = 0;
      const size = buf.length;
      while (size - pos >= 2) {
        let n = buf[pos + 1] & 0x7f;
        let head = 2;
        if (n === 126) { if (size - pos < 4) break; n = buf.readUInt16BE(pos + 2); head = 4; }
        else if (n === 127) { if (size - pos < 10) break; n = Number(buf.readBigUInt64BE(pos + 2)); head = 10; }
        if (size - pos < head + n) break;
        const opcode = buf[pos] & 0x0f;
        const start = pos + head;
        if (opcode === 1) {
          const at = buf.indexOf(MARK, start);
          if (at >= 0 && at < start + 200) {
            const [sent, next] = readInt(buf, at + MARK.length);
            const [step, next2] = readInt(buf, next + 5); // ,"s":K
            const [i] = readInt(buf, next2 + 5); // ,"i":N
            let arr = lat.get(step);
            if (!arr) { arr = []; lat.set(step, arr); perMsg.set(step, new Map()); }
            const d = now - sent;
            arr.push(d);
            const pm = perMsg.get(step);
            const mm = pm.get(i);
            if (!mm) pm.set(i, [d, d]); else { if (d < mm[0]) mm[0] = d; if (d > mm[1]) mm[1] = d; }
          } else if (!seenReady) {
            seenReady = true;
            ready++;
            if (ready === patterns.length && !announced) { announced = true; console.log("ready"); }
          }
        } else if (opcode === 9) {
          sock.write(Buffer.concat([Buffer.from([0x8a, 0x80 | n]), Buffer.alloc(4), buf.subarray(start, start + n)]));
        }
        pos = start + n;
      }
      buf = pos ? buf.subarray(pos) : buf;
    });
  });
}

async function main() {
  const socks = [];
  for (let i = 0; i < patterns.length; i += 50) {
    socks.push(...await Promise.all(patterns.slice(i, i + 50).map(open)));
  }
  console.log("connected");
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    const [cmd, arg] = line.trim().split(" ");
    if (cmd === "stats") {
      const arr = lat.get(Number(arg)) || [];
      lat.delete(Number(arg));
      const pm = perMsg.get(Number(arg)) || new Map();
      perMsg.delete(Number(arg));
      console.log(JSON.stringify({ lat: arr, closed, msgs: Object.fromEntries(pm) }));
    } else if (cmd === "quit") {
      for (const s of socks) s.destroy();
      console.log("bye");
      process.exit(0);
    }
  });
}

main().catch((e) => { console.error(String(e)); process.exit(1); });
