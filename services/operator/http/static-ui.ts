import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';

/** Where the dashboard lives on Sluice's HTTP server. */
export const UI_PREFIX = '/ui';

/**
 * The dashboard's URL, for the start-up log: under SLUICE_PUBLIC_HTTP_URL when it is set (how others reach the
 * server), else on the address the server listens on, a wildcard one (0.0.0.0, ::) as this machine's loopback.
 */
export function dashboardUrl(listen: { host: string; port: number; tls: boolean }, publicHttpUrl?: string): string {
  if (publicHttpUrl) return `${publicHttpUrl.replace(/\/+$/, '')}${UI_PREFIX}/`;
  const host =
    listen.host === '' || listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  const shown = host.includes(':') ? `[${host}]` : host;
  return `${listen.tls ? 'https' : 'http'}://${shown}:${listen.port}${UI_PREFIX}/`;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Serves the dashboard's files from one flat folder. They hold no data: the page asks for a token and
 * every call it makes to /sluice/v1 carries it, so the files themselves need none. Only plain names
 * of known types are served (no sub-folders, no dot files), so nothing outside the folder can be named.
 * Returns false when the path is not the dashboard's.
 */
export async function serveUi(req: IncomingMessage, res: ServerResponse, path: string, dir: string): Promise<boolean> {
  if (path !== UI_PREFIX && !path.startsWith(`${UI_PREFIX}/`)) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return true;
  }
  // Paths arrive without a trailing slash: /ui and /ui/ are both the page (it names its files from /ui/).
  const name = path.slice(UI_PREFIX.length + 1) || 'index.html';
  const type = TYPES[extname(name)];
  if (!/^[a-z0-9][a-z0-9_-]*\.[a-z]+$/.test(name) || !type) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`no such file: ${name}\n`);
    return true;
  }
  let body: Buffer;
  try {
    body = await readFile(join(dir, name));
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`no such file: ${name}\n`);
    return true;
  }
  res.writeHead(200, {
    'content-type': type,
    'content-length': body.length,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    // Scripts and styles only from this server; the page talks to nothing but /sluice/v1.
    'content-security-policy':
      "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    'referrer-policy': 'no-referrer',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
