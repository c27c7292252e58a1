// Test web server for the supervisor scenario. It answers HTTP on HOSTNAME:PORT (both from
// supervisor), and runs a child that ignores SIGTERM. On SIGTERM it stops listening and waits
// for that child, which never exits: only killasgroup's SIGKILL to the group ends them both.
const http = require("node:http");
const { spawn } = require("node:child_process");

const port = Number(process.env.PORT);
const host = process.env.HOSTNAME;
const child = spawn(
  process.execPath,
  [
    "-e",
    "process.on('SIGTERM', () => console.log(`child ${process.pid}: ignoring SIGTERM`));" +
      "setInterval(() => {}, 60000);",
  ],
  { stdio: "inherit" },
);

const server = http.createServer((req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ pid: process.pid, child: child.pid, port }));
});
server.listen(port, host, () => console.log(`server ${process.pid}: listening on ${host}:${port}`));

process.on("SIGTERM", () => {
  console.log(`server ${process.pid}: SIGTERM, closing; waiting for child ${child.pid}`);
  server.close();
});
