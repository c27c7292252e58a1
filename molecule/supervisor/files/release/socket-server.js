// Test socket server for the supervisor scenario: listens on HOSTNAME:PORT, exits on SIGTERM.
const http = require("node:http");

const port = Number(process.env.PORT);
const host = process.env.HOSTNAME;
const server = http.createServer((req, res) => res.end("socket test server\n"));
server.listen(port, host, () => console.log(`socket ${process.pid}: listening on ${host}:${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
