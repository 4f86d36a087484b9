// The benchmark peer: rsmq (a Redis message queue) behind a small REST front that answers the
// same routes and shapes as ferromq's IronMQ API, so one load generator drives both.
// Env: REDIS_SOCKET (unix socket of the redis-server), PORT.
"use strict";
const http = require("http");
const redis = require("redis");
const RedisSMQ = require("rsmq");

const client = redis.createClient({ path: process.env.REDIS_SOCKET });
const rsmq = new RedisSMQ({ client, ns: "rsmq" });
const ROUTE = /^\/3\/projects\/[^/]+\/queues\/([^/?]+)(\/messages|\/reservations)?(?:\/([^/?]+))?/;

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

async function createQueue(qname) {
  try {
    await rsmq.createQueueAsync({ qname, vt: 60 });
  } catch (err) {
    if (err.name !== "queueExists") throw err;
  }
}

async function handle(method, qname, part, id, body) {
  if (!part && method === "PUT") {
    await createQueue(qname);
    return [200, { queue: { name: qname } }];
  }
  if (part === "/messages" && !id && method === "POST") {
    const ids = await Promise.all(body.messages.map((m) => rsmq.sendMessageAsync({ qname, message: m.body })));
    return [201, { ids, msg: "Messages put on queue." }];
  }
  if (part === "/reservations" && method === "POST") {
    const n = body.n || 1;
    const vt = body.timeout || 60;
    const got = await Promise.all(Array.from({ length: n }, () => rsmq.receiveMessageAsync({ qname, vt })));
    const messages = got
      .filter((m) => m && m.id)
      .map((m) => ({ id: m.id, body: m.message, reserved_count: m.rc, reservation_id: m.id }));
    return [200, { messages }];
  }
  if (part === "/messages" && id && method === "DELETE") {
    await rsmq.deleteMessageAsync({ qname, id });
    return [200, { msg: "Deleted" }];
  }
  if (part === "/messages" && !id && method === "DELETE") {
    if (body.ids) {
      await Promise.all(body.ids.map((entry) => rsmq.deleteMessageAsync({ qname, id: entry.id })));
      return [200, { msg: "Deleted" }];
    }
    await rsmq.deleteQueueAsync({ qname }).catch(() => {});
    await createQueue(qname);
    return [200, { msg: "Cleared" }];
  }
  return [404, { msg: "Not found" }];
}

http
  .createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const route = ROUTE.exec(req.url);
      if (!route) return answer(res, 404, { msg: "Not found" });
      try {
        const text = Buffer.concat(chunks).toString();
        const body = text ? JSON.parse(text) : {};
        const [status, out] = await handle(req.method, route[1], route[2], route[3], body);
        answer(res, status, out);
      } catch (err) {
        answer(res, 500, { msg: String(err) });
      }
    });
  })
  .listen(Number(process.env.PORT), "127.0.0.1");
