import { readFileSync } from 'node:fs';
import {
  credentials,
  Metadata,
  ServerCredentials,
  ServerInterceptingCall,
  type ChannelCredentials,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { silentLogger } from './logger.js';
import { type Authenticator, roleFor, tokenFingerprint } from './auth.js';
import { toServiceError } from './grpc-status.js';

/**
 * The metadata key carrying the authenticated caller's name to handlers (`token:<fingerprint>` or `certificate`),
 * set by {@link authInterceptor}; without authentication it is whatever the caller sent, if anything.
 */
export const CALLER_HEADER = 'sluice-caller';

/**
 * Sent by Sluice's own services (admin role) to name whom a call is made for, e.g. `engine:<plugin id>` when the
 * schedule service submits an engine's window; honoured from admin callers only, dropped from anyone else.
 */
export const ON_BEHALF_HEADER = 'sluice-on-behalf-of';

/**
 * The metadata key carrying the caller's role (viewer, operator, admin) to handlers, set by the server's
 * interceptor whatever the caller sent: {@link authInterceptor}'s role, or admin when authentication is off.
 */
export const ROLE_HEADER = 'sluice-caller-role';

/** The caller's role as the server's interceptor set it; undefined when no interceptor ran. */
export function callerRole(metadata: Metadata): string | undefined {
  const role = metadata.get(ROLE_HEADER)[0];
  return typeof role === 'string' ? role : undefined;
}

/** Without authentication every caller is admin: says so in {@link ROLE_HEADER}, replacing what a caller sent. */
export function openInterceptor(): ServerInterceptor {
  return (_method, call) =>
    new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, pass) {
            metadata.set(ROLE_HEADER, 'admin');
            pass(metadata);
          },
        });
      },
    });
}

/** The caller's name as handlers record it: the interceptor's, else the bearer token's fingerprint, else "grpc". */
export function callerName(metadata: Metadata): string {
  // Without authentication nothing checks either header: every caller is admin, and names itself.
  const named = metadata.get(CALLER_HEADER)[0] ?? metadata.get(ON_BEHALF_HEADER)[0];
  if (typeof named === 'string' && named !== '') return named.slice(0, 200);
  const header = metadata.get('authorization')[0];
  return tokenFingerprint(typeof header === 'string' ? header : undefined) ?? 'grpc';
}

/** Checks every call's credentials before its handler sees it; a refused call ends with its status. */
export function authInterceptor(auth: Authenticator): ServerInterceptor {
  return (method, call) =>
    new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, pass) {
            const header = metadata.get('authorization')[0];
            const cert = call.getAuthContext().sslPeerCertificate;
            let role: string;
            try {
              role = auth.authorize(
                roleFor(method.path),
                typeof header === 'string' ? header : undefined,
                cert !== undefined && Object.keys(cert).length > 0,
              );
            } catch (err) {
              const refused = toServiceError(err, silentLogger, method.path);
              call.sendStatus({
                code: refused.code!,
                details: refused.details!,
                metadata: refused.metadata ?? new Metadata(),
              });
              return;
            }
            metadata.remove('authorization'); // handlers never see, and so never log, a token
            metadata.set(ROLE_HEADER, role); // replaces whatever role the caller claimed
            // Who called, for records such as the ledger's triggered_by: never the token, and never what the caller claims.
            const behalf = metadata.get(ON_BEHALF_HEADER)[0];
            metadata.remove(ON_BEHALF_HEADER);
            metadata.set(
              CALLER_HEADER,
              role === 'admin' && typeof behalf === 'string' && behalf !== ''
                ? behalf
                : (tokenFingerprint(typeof header === 'string' ? header : undefined) ?? 'certificate'),
            );
            pass(metadata);
          },
        });
      },
    });
}

/** SLUICE_TLS_* as files: the server's certificate chain and key, and the CA its clients' certificates must chain to. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** Set: mutual TLS, a client without a certificate this CA signed is refused at the handshake. */
  readonly clientCaFile?: string;
  /** The CA this process trusts when it calls other Sluice services (defaults to the system's). */
  readonly caFile?: string;
}

export function serverCredentials(tls: TlsFiles | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(
    tls.clientCaFile ? readFileSync(tls.clientCaFile) : null,
    [{ cert_chain: readFileSync(tls.certFile), private_key: readFileSync(tls.keyFile) }],
    tls.clientCaFile !== undefined,
  );
}

/** How this process calls another Sluice service: channel credentials, and the token every call carries. */
export interface ClientSecurity {
  readonly credentials: ChannelCredentials;
  /** SLUICE_SERVICE_TOKEN (an admin token of the callee), sent as `authorization: Bearer`. */
  readonly token?: string;
}

export const INSECURE_CLIENT: ClientSecurity = { credentials: credentials.createInsecure() };

/** Over TLS when this process serves TLS itself (presenting its own certificate, for mTLS). */
export function clientSecurity(tls: TlsFiles | undefined, token: string | undefined): ClientSecurity {
  const channel = tls
    ? credentials.createSsl(
        tls.caFile ? readFileSync(tls.caFile) : null,
        readFileSync(tls.keyFile),
        readFileSync(tls.certFile),
      )
    : credentials.createInsecure();
  return { credentials: channel, ...(token ? { token } : {}) };
}

/** Fresh metadata for one call, carrying the token when there is one. */
export function callMetadata(security: ClientSecurity): Metadata {
  const md = new Metadata();
  if (security.token) md.set('authorization', `Bearer ${security.token}`);
  return md;
}
