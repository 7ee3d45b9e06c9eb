import type { Metadata, ServiceError } from '@grpc/grpc-js';
import { callMetadata, type ClientSecurity, INSECURE_CLIENT } from '../../core/grpc-auth.js';
import type { ScheduleInfo } from 'sluice/sdk';
import {
  InstanceState,
  ScheduleServiceClient,
  type ClaimWindowResponse,
  type FireDueResponse,
} from '../../../proto/gen/sluice/schedule/v1/schedule.js';
import { encodeInfo } from '../../schedule/grpc/adapter.js';
import type { ClaimedWindow, FireDueAnswer, SchedulePort } from '../domain/service.js';
import { encodeBoundaries } from '../../core/grpc-adapter.js';
import { fromServiceError } from '../../core/grpc-status.js';

type Unary<Req, Res> = (
  req: Req,
  md: Metadata,
  opts: { deadline: number },
  cb: (err: ServiceError | null, res: Res) => void,
) => unknown;

/** The schedule service over gRPC, as the operator needs it. Failures come back as Sluice errors. */
export class GrpcSchedulePort implements SchedulePort {
  readonly #client: ScheduleServiceClient;

  constructor(
    address: string,
    private readonly timeoutMs = 30_000,
    private readonly security: ClientSecurity = INSECURE_CLIENT,
  ) {
    this.#client = new ScheduleServiceClient(address, security.credentials);
  }

  #call<Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      fn.call(this.#client, req, callMetadata(this.security), { deadline: Date.now() + this.timeoutMs }, (err, res) =>
        err ? reject(fromServiceError(err)) : resolve(res),
      );
    });
  }

  async register(info: ScheduleInfo): Promise<void> {
    await this.#call(this.#client.registerSchedule as Unary<unknown, unknown>, { info: encodeInfo(info, 0) });
  }

  async update(info: ScheduleInfo): Promise<void> {
    const current = (
      await this.#call(this.#client.getSchedule as Unary<unknown, { schedule?: { info?: { version: number } } }>, {
        groupId: info.groupId,
      })
    ).schedule;
    await this.#call(this.#client.updateSchedule as Unary<unknown, unknown>, {
      info: encodeInfo(info, current?.info?.version ?? 0),
    });
  }

  async unregister(groupId: string): Promise<void> {
    try {
      await this.#call(this.#client.unregisterSchedule as Unary<unknown, unknown>, { groupId });
    } catch (err) {
      if ((err as { code?: string }).code !== 'NOT_FOUND') throw err;
    }
  }

  async fireDue(groupId: string, asOf: number): Promise<FireDueAnswer> {
    const res = await this.#call(this.#client.fireDue as Unary<unknown, FireDueResponse>, { groupId, asOf });
    return {
      instances: res.instances.map((i) => ({
        instanceId: i.instanceId,
        windowStart: i.window?.start ?? 0,
        windowEnd: i.window?.end ?? 0,
        state: (InstanceState[i.state] ?? '').replace(/^INSTANCE_STATE_/, ''),
      })),
      ...(res.nextDueTime > 0 ? { nextDueTime: res.nextDueTime } : {}),
    };
  }

  async claimWindow(input: Parameters<SchedulePort['claimWindow']>[0]): Promise<ClaimedWindow> {
    const res = await this.#call(this.#client.claimWindow as Unary<unknown, ClaimWindowResponse>, {
      groupId: input.groupId,
      boundaries: encodeBoundaries(input.boundaries),
      triggeredBy: input.triggeredBy,
      rerun: input.rerun,
    });
    if (!res.instance) throw new Error('ClaimWindow answered no instance');
    return { instance: res.instance, created: res.created };
  }

  close(): void {
    this.#client.close();
  }
}
