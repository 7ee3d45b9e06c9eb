import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root: the nearest folder above this module whose package.json is Sluice's. */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'sluice') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the Sluice project root (package.json named "sluice")');
    dir = up;
  }
}

export const PROJECT_ROOT = findRoot();
/** Whether this module runs from the compiled tree (dist/) rather than from sources. */
const compiled = fileURLToPath(import.meta.url).includes(`${join(PROJECT_ROOT, 'dist')}/`);
/** The bundled plugins: dist/plugins when running compiled, plugins/ when running from sources. */
export const BUNDLED_PLUGINS_DIR = compiled ? join(PROJECT_ROOT, 'dist', 'plugins') : join(PROJECT_ROOT, 'plugins');
/** The protobuf descriptor sets served by reflection: Sluice's contracts, and grpc.health.v1. */
export const DESCRIPTOR_SET = join(PROJECT_ROOT, 'proto', 'gen', 'sluice.binpb');
export const HEALTH_DESCRIPTOR_SET = join(PROJECT_ROOT, 'proto', 'gen', 'health.binpb');
/** The dashboard's static files (plain HTML, CSS and JS modules), served at /ui. */
export const UI_DIR = join(PROJECT_ROOT, 'ui');
