// Test-only queue consumer for tests/integration/test_wrangler_dev.py. The generated Worker
// spreads this default export and adds scheduled(), so one Worker under `wrangler dev`
// both sends (scheduled) and receives (queue) the messages.
//   GET /       -> every message body received so far, as JSON
//   GET /reset  -> forget them first
const received = [];

export default {
  async queue(batch) {
    for (const message of batch.messages) {
      received.push(message.body);
      message.ack();
    }
  },

  async fetch(request) {
    if (new URL(request.url).pathname === "/reset") received.length = 0;
    return Response.json(received);
  },
};
