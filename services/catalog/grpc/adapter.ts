import { capFieldErrors, invalidArgument, type ConnectorRole, type Logger } from 'sluice/sdk';
import {
  CatalogServiceService,
  ConnectorRole as PbRole,
  type CatalogServiceServer,
  type Connector,
} from '../../../proto/gen/sluice/catalog/v1/catalog.js';
import { decodeBoundaries, encodeBoundaries, encodeBoundaryType, unary } from '../../core/grpc-adapter.js';
import type { Catalog, ConnectorInfo } from '../domain/catalog.js';

function decodeRole(role: PbRole, field: string, optional: boolean): ConnectorRole | undefined {
  if (role === PbRole.CONNECTOR_ROLE_SOURCE) return 'source';
  if (role === PbRole.CONNECTOR_ROLE_SINK) return 'sink';
  if (optional && role === PbRole.CONNECTOR_ROLE_UNSPECIFIED) return undefined;
  throw invalidArgument(field, 'CONNECTOR_ROLE_SOURCE or CONNECTOR_ROLE_SINK', PbRole[role] ?? role);
}

function encodeConnector(c: ConnectorInfo): Connector {
  return {
    id: c.id,
    version: c.version,
    description: c.description,
    roles: c.roles.map((r) => (r === 'source' ? PbRole.CONNECTOR_ROLE_SOURCE : PbRole.CONNECTOR_ROLE_SINK)),
    boundaryTypes: c.boundaryTypes.map(encodeBoundaryType),
    sourceOptionsSchema: c.sourceOptionsSchema as Record<string, unknown> | undefined,
    sinkOptionsSchema: c.sinkOptionsSchema as Record<string, unknown> | undefined,
    reader: { available: c.reader.available, reason: c.reader.reason ?? '' },
    writer: { available: c.writer.available, reason: c.writer.reason ?? '' },
    pluginPath: c.pluginPath,
    settingsSchema: c.settingsSchema as Record<string, unknown> | undefined,
  };
}

/** The CatalogService gRPC adapter: decode, call one use case, encode. */
export function catalogGrpc(
  catalog: Catalog,
  logger: Logger,
): { definition: typeof CatalogServiceService; implementation: CatalogServiceServer } {
  const implementation: CatalogServiceServer = {
    listConnectors: unary(logger, 'ListConnectors', async (req) => {
      const role = decodeRole(req.role, 'role', true);
      const page = await catalog.listConnectors({
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        ...(role ? { role } : {}),
      });
      return { connectors: page.items.map(encodeConnector), nextPageToken: page.nextPageToken };
    }),
    getConnector: unary(logger, 'GetConnector', async (req) => ({
      connector: encodeConnector(await catalog.getConnector(req.connectorId)),
    })),
    validateOptions: unary(logger, 'ValidateOptions', async (req) => {
      const errors = await catalog.validateOptions(
        req.connectorId,
        decodeRole(req.role, 'role', false)!,
        req.options ?? {},
      );
      return { valid: errors.length === 0, errors: capFieldErrors(errors, 'options') };
    }),
    resolveBoundaries: unary(logger, 'ResolveBoundaries', async (req) => {
      const result = await catalog.resolveBoundaries(
        req.connectorId,
        req.options ?? {},
        decodeBoundaries(req.boundaries, 'boundaries'),
      );
      return { boundedOptions: { ...result.boundedOptions }, boundaries: encodeBoundaries(result.boundaries) };
    }),
    listEngines: unary(logger, 'ListEngines', async (req) => {
      const page = await catalog.listEngines({ pageSize: req.pageSize, pageToken: req.pageToken });
      return {
        engines: page.items.map((e) => ({
          id: e.id,
          version: e.version,
          description: e.description,
          pluginPath: e.pluginPath,
          availability: { available: e.availability.available, reason: e.availability.reason ?? '' },
          remote: e.remote ?? '',
          settingsSchema: e.settingsSchema as Record<string, unknown> | undefined,
        })),
        nextPageToken: page.nextPageToken,
      };
    }),
    listPluginProblems: unary(logger, 'ListPluginProblems', () => ({
      problems: catalog.listPluginProblems().map((p) => ({
        path: p.path,
        pluginId: p.pluginId ?? '',
        code: p.code,
        expected: p.expected,
        found: p.found,
        message: p.message,
      })),
    })),
  };
  return { definition: CatalogServiceService, implementation };
}
