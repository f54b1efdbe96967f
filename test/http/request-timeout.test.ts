/**
 * A body that trickles in is cut off: REQUEST_TIMEOUT_MS bounds the whole request (fastify's default, 0, let a byte
 * every few seconds hold a connection for good, and enough of them every file descriptor). A started server and a
 * raw socket; Node looks at its connections every 30 s, so the answer comes within the timeout plus that.
 */
import net from 'node:net';
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';

const harness = await createTestApp({ env: { REQUEST_TIMEOUT_MS: '2000' } });
t.teardown(() => harness.close());
const address = new URL(await harness.app.listen({ host: '127.0.0.1', port: 0 }));

t.test('a public OCSP POST whose body trickles in gets 408 and its connection closed', async (t) => {
  const socket = net.connect(Number(address.port), address.hostname);
  const trickle = setInterval(() => socket.write('0'), 500);
  t.teardown(() => {
    clearInterval(trickle);
    socket.destroy();
  });
  socket.write(`POST /ocsp/00000000-0000-4000-8000-000000000000 HTTP/1.1\r\nhost: ${address.host}\r\nx-request-id: slow-body-1\r\n`);
  socket.write('content-type: application/ocsp-request\r\ncontent-length: 1000\r\n\r\n');
  const answer = await new Promise<{ text: string; closed: boolean }>((resolve) => {
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
    });
    socket.on('close', () => resolve({ text, closed: true }));
    socket.on('error', () => undefined);
    // Far past the timeout and Node's 30 s check: without a timeout the connection would still be open here.
    setTimeout(() => resolve({ text, closed: false }), 45_000).unref();
  });
  t.ok(answer.closed, 'the server closed the connection');
  t.match(answer.text, /^HTTP\/1\.1 408 /, 'after a 408');
  t.match(answer.text, /\r\nX-Request-Id: slow-body-1\r\n/, 'the 408 carries the id of the request it cuts off, not a new one');
  t.ok(
    harness.logs.records().some((record) => record.requestId === 'slow-body-1' && record.status === 408),
    'and the log says so under that id',
  );
});
