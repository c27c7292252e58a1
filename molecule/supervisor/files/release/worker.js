// Test worker for the supervisor scenario: no port, a loop, exits on SIGTERM.
const timer = setInterval(() => console.log(`worker ${process.pid}: tick`), 30000);
console.log(`worker ${process.pid}: started`);
process.on("SIGTERM", () => {
  clearInterval(timer);
  process.exit(0);
});
