import type { TestFn } from 'ava';

/** Whether integration tests must run (CI sets it): an absent service is then a failure, not a skip. */
export const REQUIRE_INTEGRATION = process.env.SLUICE_REQUIRE_INTEGRATION === '1';

export type Probe = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Runs a probe (connect, ping) and turns any error into a reason. */
export async function probe(what: string, check: () => Promise<unknown>, timeoutMs = 5000): Promise<Probe> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `${what}: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The test function to declare a file's integration tests with. When the service is there, `test`
 * itself. When it is not: with SLUICE_REQUIRE_INTEGRATION=1, one failing test that names the reason
 * (and the rest skipped); otherwise every test skipped, with the reason printed.
 */
export function gate<C>(test: TestFn<C>, status: Probe): TestFn<C> {
  if (status.ok) return test;
  if (REQUIRE_INTEGRATION) {
    test(`integration service available (SLUICE_REQUIRE_INTEGRATION=1)`, (t) => t.fail(status.reason));
  } else {
    process.stderr.write(`skipping integration tests: ${status.reason}\n`);
  }
  const skipped = test.skip as unknown as TestFn<C>;
  // Hooks would touch the absent service: make them no-ops along with the tests.
  const noop = Object.assign(() => {}, { always: () => {}, skip: () => {}, serial: () => {} });
  return Object.assign(skipped, {
    before: noop,
    after: noop,
    beforeEach: noop,
    afterEach: noop,
    serial: skipped,
  }) as TestFn<C>;
}
