import { type Boundaries, type BoundaryType, invalidArgument } from 'sluice/sdk';

const INTEGER = /^(0|[1-9]\d*)$/;

/** Parses a TIME bound: a non-negative safe integer of epoch milliseconds, as a decimal string. */
export function parseTimeBound(field: string, raw: string): number {
  const n = Number(raw);
  if (!INTEGER.test(raw) || !Number.isSafeInteger(n)) {
    throw invalidArgument(field, 'epoch milliseconds as a non-negative integer', raw);
  }
  return n;
}

/**
 * Checks a window before any connector sees it: a type the connector declares, TIME bounds that are
 * integers with lower <= upper, OFFSET bounds that are not empty. `prefix` names the request field.
 */
export function checkBoundaries(
  b: Boundaries,
  declared: readonly BoundaryType[],
  connectorId: string,
  prefix = 'boundaries',
): void {
  if (!declared.includes(b.boundaryType)) {
    throw invalidArgument(
      `${prefix}.boundary_type`,
      `a boundary type connector '${connectorId}' declares (${declared.join(', ')})`,
      b.boundaryType,
    );
  }
  if (b.boundaryType === 'TIME') {
    const lower = parseTimeBound(`${prefix}.lower_bound`, b.lowerBound);
    const upper = parseTimeBound(`${prefix}.upper_bound`, b.upperBound);
    if (lower > upper)
      throw invalidArgument(`${prefix}.upper_bound`, `a bound >= the lower bound ${lower}`, b.upperBound);
  } else {
    if (b.lowerBound === '')
      throw invalidArgument(`${prefix}.lower_bound`, 'a non-empty offset position', b.lowerBound);
    if (b.upperBound === '')
      throw invalidArgument(`${prefix}.upper_bound`, 'a non-empty offset position', b.upperBound);
  }
}
