import tls from 'node:tls';
import type { TestApp } from './app.js';

/** A TLS connection to the test app, for requests no HTTP client library would send. */
export function connectTls(app: TestApp): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: app.custos.port, ca: app.custos.tls.clientCaPem, servername: 'localhost' }, () =>
      resolve(socket),
    );
    socket.once('error', reject);
  });
}

/**
 * Sends `head` (request line and header lines, without the blank line) and `body` exactly as
 * given over a fresh TLS connection, with `Connection: close`; resolves with the response.
 */
export async function rawRequest(app: TestApp, head: string, body = ''): Promise<{ status: number; headers: string; body: string }> {
  const socket = await connectTls(app);
  const payload = Buffer.from(body, 'utf8');
  const text = `${head}\r\nContent-Length: ${payload.length}\r\nConnection: close\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', reject);
    socket.once('close', () => {
      const response = Buffer.concat(chunks).toString('utf8');
      const split = response.indexOf('\r\n\r\n');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(response);
      if (!status) reject(new Error(`no HTTP response to ${JSON.stringify(head)}: ${JSON.stringify(response.slice(0, 200))}`));
      else resolve({ status: Number(status[1]), headers: response.slice(0, split), body: response.slice(split + 4) });
    });
    // Not end(): the server closes a half-closed connection before a slower response is written.
    socket.write(Buffer.concat([Buffer.from(text, 'latin1'), payload]));
  });
}
