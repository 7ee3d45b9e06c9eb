import { SpanStatusCode, trace, type SpanOptions, type Tracer } from '@opentelemetry/api';
import { ERROR_CODES, SluiceError, isSluiceError, type HookContext, type Logger } from 'sluice/sdk';
import { silentLogger } from '../core/logger.js';
import { instruments } from '../core/metrics.js';
import type { LoadedPlugin } from './loader.js';

export interface HookRunnerOptions {
  /** Default timeout of one hook call (ms). */
  readonly timeoutMs?: number;
  /** Per-hook overrides, e.g. { openReader: 60_000 }. */
  readonly hookTimeoutsMs?: Readonly<Record<string, number>>;
  readonly logger?: Logger;
  readonly tracer?: Tracer;
  /**
   * Where hook measurements go; default: this thread's instruments (recordHookMeasurement). A worker thread
   * has no meter provider of its own, so the job worker sends them to the service's thread instead.
   */
  readonly measure?: (m: HookMeasurement) => void;
}

/** One hook call's duration, or one failure, for sluice.plugin.hook.duration / .failures. */
export type HookMeasurement =
  | {
      readonly kind: 'duration';
      readonly pluginId: string;
      readonly hook: string;
      readonly seconds: number;
      readonly errorType?: string;
    }
  | { readonly kind: 'failure'; readonly pluginId: string; readonly hook: string; readonly errorType: string };

/** Records a hook measurement on this thread's instruments. */
export function recordHookMeasurement(m: HookMeasurement): void {
  const attributes = m.errorType
    ? { ...hookAttributes(m.pluginId, m.hook), 'error.type': m.errorType }
    : hookAttributes(m.pluginId, m.hook);
  if (m.kind === 'duration') instruments().hookDuration.record(m.seconds, attributes);
  else instruments().hookFailures.add(1, attributes);
}

export interface CallOptions<R = unknown> {
  readonly timeoutMs?: number;
  /**
   * Cancels the call: the hook sees ctx.signal aborted, and the call rejects at once with the
   * signal's reason (not wrapped: the caller knows why it cancelled).
   */
  readonly signal?: AbortSignal;
  /** Extra context fields given to the hook (e.g. an engine's submitOfflineJob). */
  readonly context?: Readonly<Record<string, unknown>>;
  /**
   * Called with what the hook answers after the call has already rejected (cancelled, timed out): nobody else
   * holds it, so whatever it opened is closed here (a reader, a writer). Its own failure is ignored.
   */
  readonly onLate?: (result: R) => unknown;
}

type HookOf<P> = { [K in keyof P]-?: NonNullable<P[K]> extends (...args: never[]) => unknown ? K : never }[keyof P] &
  string;
type Fn<P, K extends keyof P> =
  NonNullable<P[K]> extends (...args: infer A) => infer R ? { input: InputOf<A>; result: Awaited<R> } : never;
/** A hook's input is its first argument; hooks whose only argument is the context take none. */
type InputOf<A extends unknown[]> = A extends [infer I, HookContext]
  ? I
  : A extends [HookContext] | []
    ? undefined
    : A[0];

/** The options of a call that gives none: shared, not a new object per hook call. */
const NO_OPTIONS: CallOptions = Object.freeze({});

/** Freezes a value deeply so a plugin cannot change the service's objects through its inputs. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * The one way services call plugin hooks. It owns the timeout, gives each call a context with an abort
 * signal, opens one span per call, and wraps whatever the hook throws with the plugin id and hook name.
 */
export class HookRunner {
  readonly #timeoutMs: number;
  readonly #hookTimeouts: Readonly<Record<string, number>>;
  readonly #logger: Logger;
  readonly #tracer: Tracer;

  constructor(options: HookRunnerOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#hookTimeouts = options.hookTimeoutsMs ?? {};
    this.#logger = options.logger ?? silentLogger;
    this.#tracer = options.tracer ?? trace.getTracer('sluice.plugins');
    this.#measure = options.measure ?? recordHookMeasurement;
  }

  readonly #measure: (m: HookMeasurement) => void;

  /** True when the plugin defines the hook. */
  has<P extends object>(loaded: LoadedPlugin<P>, hook: HookOf<P>): boolean {
    return typeof (loaded.plugin as Record<string, unknown>)[hook] === 'function';
  }

  /**
   * Calls `hook` on the plugin with `input` (deep-frozen) and a HookContext as the last argument.
   * Throws SluiceError: the hook's own SluiceError (message prefixed with plugin and hook), PLUGIN_TIMEOUT,
   * or PLUGIN_FAILED for anything else.
   */
  call<P extends object, K extends HookOf<P>>(
    loaded: LoadedPlugin<P>,
    hook: K,
    input: Fn<P, K>['input'],
    options: CallOptions<Fn<P, K>['result']> = NO_OPTIONS,
  ): Promise<Fn<P, K>['result']> {
    // Not an async function: the span's callback already answers a promise, and wrapping it in another
    // cost two more promises per hook call (three hook calls per registration). Never throws: rejects.
    try {
      return this.#call(loaded, hook, input, options);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  #call<P extends object, K extends HookOf<P>>(
    loaded: LoadedPlugin<P>,
    hook: K,
    input: Fn<P, K>['input'],
    options: CallOptions<Fn<P, K>['result']>,
  ): Promise<Fn<P, K>['result']> {
    const fn = (loaded.plugin as Record<string, unknown>)[hook];
    if (typeof fn !== 'function') {
      throw new SluiceError(ERROR_CODES.FAILED_PRECONDITION, `plugin '${loaded.id}' has no hook '${hook}'`, {
        pluginId: loaded.id,
        hook,
      });
    }
    const timeoutMs = options.timeoutMs ?? this.#hookTimeouts[hook] ?? this.#timeoutMs;
    const controller = new AbortController();
    const onOuterAbort = () => controller.abort(options.signal?.reason);
    if (options.signal?.aborted) controller.abort(options.signal.reason);
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    const ctx: HookContext = {
      ...options.context,
      signal: controller.signal,
      pluginId: loaded.id,
      logger: this.#logger,
      settings: loaded.settings?.values ?? {},
    };
    const span = spanOf(loaded, hook);
    return this.#tracer.startActiveSpan(span.name, span.options, async (span) => {
      let timer: NodeJS.Timeout | undefined;
      const started = performance.now();
      let failure: string | undefined;
      // The hook's own promise, which goes on when the call rejects on a cancel or a timeout.
      let pending: PromiseLike<unknown> | undefined;
      try {
        const frozen = input === undefined ? input : deepFreeze(structuredCloneSafe(input));
        // Hooks without input (start, stop, availability) take the context as their only argument.
        const args = input === undefined ? [ctx] : [frozen, ctx];
        if (controller.signal.aborted) throw new CallerAbort(options.signal?.reason);
        // The caller's cancellation ends the call at once, whether or not the hook watches its signal.
        // Listening before the hook runs makes this rejection win over whatever the hook does on abort.
        const cancelled = options.signal
          ? new Promise<never>((_, reject) => {
              controller.signal.addEventListener('abort', () => reject(new CallerAbort(options.signal?.reason)), {
                once: true,
              });
            })
          : undefined;
        cancelled?.catch(() => {});
        const value = (fn as (...a: unknown[]) => unknown).apply(loaded.plugin, args);
        // A hook that returned synchronously is done: there is nothing left to time out or cancel,
        // so the hot synchronous hooks (validate, fillInBoundaries) cost no timer and no race.
        if (!isThenable(value)) return value as Fn<P, K>['result'];
        pending = value;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            // Settle first, then tell the hook: its reaction to the abort must not win the race.
            reject(
              new SluiceError(
                ERROR_CODES.PLUGIN_TIMEOUT,
                `plugin '${loaded.id}' hook '${hook}' did not finish within ${timeoutMs} ms`,
                { pluginId: loaded.id, hook },
              ),
            );
            controller.abort(new Error('hook timeout'));
          }, timeoutMs);
        });
        const result = await Promise.race(cancelled ? [value, timeout, cancelled] : [value, timeout]);
        return result as Fn<P, K>['result'];
      } catch (err) {
        const { onLate } = options;
        if (pending && onLate && (err instanceof CallerAbort || controller.signal.aborted))
          Promise.resolve(pending)
            .then((late) => onLate(late as Fn<P, K>['result']))
            .catch(() => {});
        if (err instanceof CallerAbort) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'cancelled' });
          throw err.reason;
        }
        const wrapped = this.#wrap(loaded, hook, err);
        failure = wrapped.code;
        span.recordException(wrapped);
        span.setStatus({ code: SpanStatusCode.ERROR, message: wrapped.code });
        throw wrapped;
      } finally {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onOuterAbort);
        span.end();
        const seconds = (performance.now() - started) / 1000;
        this.#measure(
          failure
            ? { kind: 'duration', pluginId: loaded.id, hook, seconds, errorType: failure }
            : { kind: 'duration', pluginId: loaded.id, hook, seconds },
        );
      }
    });
  }

  /**
   * Wraps an error thrown by an object a hook returned (a reader's batches, a writer's commit) the
   * way a hook's own failure is wrapped, naming e.g. `openWriter.commit`.
   */
  wrapError(loaded: LoadedPlugin<unknown>, hook: string, err: unknown): SluiceError {
    return this.#wrap(loaded, hook, err);
  }

  #wrap(loaded: LoadedPlugin<unknown>, hook: string, err: unknown): SluiceError {
    const wrapped = this.#wrapped(loaded, hook, err);
    this.#measure({ kind: 'failure', pluginId: loaded.id, hook, errorType: wrapped.code });
    return wrapped;
  }

  #wrapped(loaded: LoadedPlugin<unknown>, hook: string, err: unknown): SluiceError {
    if (isSluiceError(err)) {
      if (err.details.pluginId) return err;
      return new SluiceError(
        err.code,
        `plugin '${loaded.id}' ${hook}: ${err.message}`,
        { ...err.details, pluginId: loaded.id, hook },
        { cause: err },
      );
    }
    const wrapped = new SluiceError(
      ERROR_CODES.PLUGIN_FAILED,
      // What the plugin threw (paths, hosts, its own messages) goes to the log only: callers learn which hook failed.
      `plugin '${loaded.id}' hook '${hook}' failed; the service log has the details`,
      { pluginId: loaded.id, hook },
      { cause: err },
    );
    // Whatever the plugin threw (a cycle, a BigInt, a throwing getter), logging it must not replace the
    // PLUGIN_FAILED the caller is owed.
    try {
      this.#logger.error('plugin hook failed', { pluginId: loaded.id, hook, err });
    } catch {
      // The logger gave up on this value; the error still reaches the caller with its cause.
    }
    return wrapped;
  }
}

/** Plugin ids come from the loaded plugins and hook names from the SDK: a bounded set of series. */
type HookAttributes = Readonly<Record<'sluice.plugin.id' | 'sluice.plugin.hook', string>>;
/**
 * Made once per plugin and hook, not per call (a registration calls two hooks, and every call used to
 * build its attributes twice over); frozen, as they are shared.
 */
const HOOK_ATTRIBUTES = new Map<string, Map<string, HookAttributes>>();

function hookAttributes(pluginId: string, hook: string): HookAttributes {
  let byHook = HOOK_ATTRIBUTES.get(pluginId);
  if (!byHook) HOOK_ATTRIBUTES.set(pluginId, (byHook = new Map()));
  let attributes = byHook.get(hook);
  if (!attributes)
    byHook.set(hook, (attributes = Object.freeze({ 'sluice.plugin.id': pluginId, 'sluice.plugin.hook': hook })));
  return attributes;
}

/** A hook call's span name and options, made once per loaded plugin and hook for the same reason. */
interface HookSpan {
  readonly name: string;
  readonly options: SpanOptions;
}
const HOOK_SPANS = new WeakMap<LoadedPlugin<unknown>, Map<string, HookSpan>>();

function spanOf(loaded: LoadedPlugin<unknown>, hook: string): HookSpan {
  let byHook = HOOK_SPANS.get(loaded);
  if (!byHook) HOOK_SPANS.set(loaded, (byHook = new Map()));
  let span = byHook.get(hook);
  if (!span) {
    const attributes = { 'sluice.plugin.id': loaded.id, 'sluice.plugin.kind': loaded.kind, 'sluice.plugin.hook': hook };
    span = Object.freeze({
      name: `plugin ${loaded.id}.${hook}`,
      options: Object.freeze({ attributes: Object.freeze(attributes) }),
    });
    byHook.set(hook, span);
  }
  return span;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** Marks a rejection caused by the caller's own signal, so it is passed back as the caller's reason. */
class CallerAbort {
  constructor(readonly reason: unknown) {}
}

/** Copies plain data so freezing it cannot freeze the caller's objects; leaves other values (functions, class instances) as they are. */
function structuredCloneSafe<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  const copy = copyPlain(value);
  if (copy !== NOT_PLAIN) return copy as T;
  try {
    return structuredClone(value);
  } catch {
    return value;
  }
}

const NOT_PLAIN = Symbol('not plain');
/** Larger inputs (or one with a cycle, or shared parts copied over and over) go to structuredClone. */
const PLAIN_COPY_VALUES = 10_000;

/**
 * The common input (a schedule, a request: plain objects, arrays and primitives) copied directly, as
 * structuredClone would copy it, at a fraction of its cost; anything else answers NOT_PLAIN.
 */
function copyPlain(value: unknown, budget = { left: PLAIN_COPY_VALUES }): unknown {
  if (--budget.left < 0) return NOT_PLAIN;
  if (typeof value !== 'object' || value === null)
    return typeof value === 'function' || typeof value === 'symbol' ? NOT_PLAIN : value;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (Array.isArray(value)) {
    if (proto !== Array.prototype) return NOT_PLAIN;
    const out: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) return NOT_PLAIN;
      const v = copyPlain(value[i], budget);
      if (v === NOT_PLAIN) return NOT_PLAIN;
      out[i] = v;
    }
    return out;
  }
  if (proto !== Object.prototype && proto !== null) return NOT_PLAIN;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    if (key === '__proto__') return NOT_PLAIN;
    const v = copyPlain((value as Record<string, unknown>)[key], budget);
    if (v === NOT_PLAIN) return NOT_PLAIN;
    out[key] = v;
  }
  return out;
}
