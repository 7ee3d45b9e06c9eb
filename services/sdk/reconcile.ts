import type { EngineContext } from './engine.js';

/** What {@link keepReconciling} answers: stops the retries (call it from the engine's `stop`). */
export interface Reconciling {
  cancel(): void;
}

/** Options of {@link keepReconciling}. */
export interface ReconcileOptions {
  /** Names the engine in the warnings logged when an attempt fails, e.g. `airflow`. */
  readonly name: string;
  /** Time between failed attempts, ms (default 60 s). */
  readonly retryMs?: number;
}

const DEFAULT_RETRY_MS = 60_000;

/**
 * Runs `reconcile` now and, while it fails, again every `retryMs` on the service's clock until one
 * attempt succeeds or the answer is cancelled. For engines that hold state in an external scheduler:
 * the engine's `start` compares what Sluice runs with what the scheduler holds, and a scheduler that is
 * down at start must not keep Sluice from serving, so the first attempt's failure is logged, not
 * thrown, and a later attempt repairs the drift.
 *
 * Resolves once the first attempt has ended (either way), so a `start` that awaits it has reconciled
 * when the scheduler answers.
 */
export async function keepReconciling(
  ctx: EngineContext,
  reconcile: () => Promise<void>,
  options: ReconcileOptions,
): Promise<Reconciling> {
  const retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
  let cancelled = false;
  let timer: { cancel(): void } | undefined;
  const attempt = async (when: 'at start' | 'again'): Promise<void> => {
    try {
      await reconcile();
    } catch (err) {
      if (cancelled) return;
      ctx.logger.warn(`${options.name}: reconcile ${when} failed; trying again`, { err, retryMs });
      timer = ctx.scheduleAt(ctx.now() + retryMs, () => {
        timer = undefined;
        if (!cancelled) void attempt('again');
      });
    }
  };
  await attempt('at start');
  return {
    cancel() {
      cancelled = true;
      timer?.cancel();
      timer = undefined;
    },
  };
}
