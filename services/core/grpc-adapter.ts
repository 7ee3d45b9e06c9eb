import type { handleUnaryCall, sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { ERROR_CODES, SluiceError, invalidArgument, type Boundaries, type BoundaryType, type Logger } from 'sluice/sdk';
import {
  BoundaryType as PbBoundaryType,
  type Boundaries as PbBoundaries,
} from '../../proto/gen/sluice/common/v1/common.js';
import { toServiceError } from './grpc-status.js';

/**
 * Wraps one use case as a unary handler: the handler decodes, calls, encodes; anything it throws is
 * mapped to a gRPC status in one place.
 */
export function unary<Req, Res>(
  logger: Logger,
  method: string,
  handler: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    Promise.resolve()
      .then(() => handler(call.request, call))
      .then(
        (response) => callback(null, response),
        (err: unknown) => callback(toServiceError(err, logger, method)),
      );
  };
}

/**
 * Aborted when the client cancels the call or its deadline passes, so long work can stop there
 * instead of finishing for nobody.
 */
export function callSignal(call: { on(event: 'cancelled', listener: () => void): unknown }): AbortSignal {
  const controller = new AbortController();
  call.on('cancelled', () =>
    controller.abort(new SluiceError(ERROR_CODES.UNAVAILABLE, 'the call was cancelled or its deadline passed')),
  );
  return controller.signal;
}

export function decodeBoundaryType(value: PbBoundaryType, field: string): BoundaryType {
  if (value === PbBoundaryType.BOUNDARY_TYPE_TIME) return 'TIME';
  if (value === PbBoundaryType.BOUNDARY_TYPE_OFFSET) return 'OFFSET';
  throw invalidArgument(field, 'BOUNDARY_TYPE_TIME or BOUNDARY_TYPE_OFFSET', PbBoundaryType[value] ?? value);
}

export function encodeBoundaryType(value: BoundaryType): PbBoundaryType {
  return value === 'TIME' ? PbBoundaryType.BOUNDARY_TYPE_TIME : PbBoundaryType.BOUNDARY_TYPE_OFFSET;
}

export function decodeBoundaries(value: PbBoundaries | undefined, field: string): Boundaries {
  if (!value) throw invalidArgument(field, 'boundaries {boundary_type, lower_bound, upper_bound}', undefined);
  return {
    boundaryType: decodeBoundaryType(value.boundaryType, `${field}.boundary_type`),
    lowerBound: value.lowerBound,
    upperBound: value.upperBound,
  };
}

export function encodeBoundaries(value: Boundaries): PbBoundaries {
  return {
    boundaryType: encodeBoundaryType(value.boundaryType),
    lowerBound: value.lowerBound,
    upperBound: value.upperBound,
  };
}
