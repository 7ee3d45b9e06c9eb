/**
 * ApproveGroup of a group whose hourly schedule starts ~8,000 hours back with catch-up ALL answers within
 * a few seconds: the missed windows are fired after it, in the background, in bounded batches.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUNNER_FIXTURES, datagenToFile, schedule } from '../helpers/operator.js';
import { startTestSluice } from '../helpers/sluice.js';

const HOUR = 3_600_000;
const WINDOWS = 8_000;

test.serial('ApproveGroup answers within a few seconds for ~8,000 missed hourly windows (catch-up ALL)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-approve-catch-up-'));
  const s = await startTestSluice({ SLUICE_PLUGIN_PATH: RUNNER_FIXTURES, SLUICE_FILE_ROOTS: dir });
  t.teardown(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });
  const operator = s.sluice.operator!;
  const start = Math.floor(Date.now() / HOUR) * HOUR - WINDOWS * HOUR;
  await operator.createGroup(
    datagenToFile('far-back', join(dir, 'out'), {
      schedule: { ...schedule('far-back'), startTime: start, endTime: start + 2 * WINDOWS * HOUR },
    }),
  );
  const began = performance.now();
  await operator.approveGroup('far-back', 0);
  const tookMs = performance.now() - began;
  t.log(`ApproveGroup answered in ${Math.round(tookMs)} ms`);
  t.true(tookMs < 5_000, `ApproveGroup took ${Math.round(tookMs)} ms`);
  // The service keeps answering while the catch-up runs.
  const readBegan = performance.now();
  t.is((await operator.getGroup('far-back')).status, 'REGISTERED');
  t.true(performance.now() - readBegan < 5_000);
});
