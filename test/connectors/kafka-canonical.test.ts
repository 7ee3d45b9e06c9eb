import test from 'ava';
import { BUNDLED_PLUGINS_DIR } from '../../services/core/paths.js';
import { HookRunner } from '../../services/host/hook-runner.js';
import { loadPlugins } from '../../services/host/loader.js';

const plugins = await loadPlugins({ bundledDir: BUNDLED_PLUGINS_DIR });
const kafka = plugins.connectors.get('kafka')!;
const hooks = new HookRunner();

test('Kafka OFFSET bounds in any order and spacing have one canonical form; TIME bounds pass unchanged', async (t) => {
  const canon = (lowerBound: string, upperBound: string, boundaryType: 'TIME' | 'OFFSET' = 'OFFSET') =>
    hooks.call(kafka, 'canonicalBoundaries', { boundaries: { boundaryType, lowerBound, upperBound } });
  const a = await canon('0:10,1:12', '0:20,1:30');
  const b = await canon('1:12, 0:10', ' 1:30 ,0:20');
  t.deepEqual(a, { boundaryType: 'OFFSET', lowerBound: '0:10,1:12', upperBound: '0:20,1:30' });
  t.deepEqual(b, a);
  t.deepEqual(await canon('1000', '2000', 'TIME'), { boundaryType: 'TIME', lowerBound: '1000', upperBound: '2000' });
  const err = await t.throwsAsync(canon('0:10,0:11', '0:20'));
  t.is((err as unknown as { code: string }).code, 'INVALID_ARGUMENT');
  t.regex(err.message, /boundaries\.lower_bound/);
});
