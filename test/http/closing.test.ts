/**
 * A graceful close: from its start, a request that still reaches the server (a kept-alive connection, or one accepted
 * before the listener closes) gets 503 in the contract's format, with Retry-After and X-Request-Id, and its connection
 * closed; a request already running completes. The test holds the close between its start and the listener's close
 * (a preClose hook of its own, run after the app's), so the request is sent inside that window, not hoped into it.
 */
import t from 'tap';
import type net from 'node:net';
import { createTestApp } from '../helpers/app.ts';

const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
};
const slowEntered = gate();
const slowReleased = gate();
const closeStarted = gate();
const listenerMayClose = gate();
const harness = await createTestApp({
  extraRoutes: (app) => {
    app.get('/test/slow', { config: { public: true } }, async () => {
      slowEntered.open();
      await slowReleased.opened;
      return { done: true };
    });
    app.addHook('preClose', async () => {
      closeStarted.open();
      await listenerMayClose.opened;
    });
  },
});
const { app } = harness;
t.teardown(() => harness.close());
await app.listen({ host: '127.0.0.1', port: 0 });
const base = `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`;

t.test('once the close has begun: 503 in the contract format; the request already running completes', async (t) => {
  const running = fetch(`${base}/test/slow`);
  await slowEntered.opened;
  const closed = app.close();
  await closeStarted.opened;

  const refused = await fetch(`${base}/health`, { headers: { 'x-request-id': 'after-the-close-began' } });
  t.equal(refused.status, 503);
  t.equal(refused.headers.get('retry-after'), '5');
  t.equal(refused.headers.get('x-request-id'), 'after-the-close-began');
  t.equal(refused.headers.get('connection'), 'close');
  t.match(await refused.json(), { error_code: 'PCA.00050002', error_msg: /the server is shutting down/ });
  // The readiness probe's 503 schema carries its checks; this 503 has none, and must still be answered as such.
  const ready = await fetch(`${base}/ready`);
  t.equal(ready.status, 503, 'a readiness probe: 503, not a 500 from serialising the refusal');
  t.match(await ready.json(), { error_code: 'PCA.00050002', error_msg: /the server is shutting down/ });

  slowReleased.open();
  const completed = await running;
  t.equal(completed.status, 200, 'the running request completes');
  t.same(await completed.json(), { done: true });
  listenerMayClose.open();
  await closed;
});
