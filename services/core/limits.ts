/**
 * Every request limit in one place (docs/security.md lists them). A request past one is refused with
 * INVALID_ARGUMENT naming the field; the gRPC message size is enforced by the transport (RESOURCE_EXHAUSTED).
 */

/** Largest gRPC request accepted, in bytes. */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
