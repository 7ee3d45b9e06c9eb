/**
 * Conformance harness of the datagen source: data-free checks only (its rows are a function of their id, so
 * there is nothing to seed). It gives a sample OFFSET window, in datagen's positions (row ids), so the purity
 * check runs for OFFSET windows too.
 */
import type { ConformanceHarness } from '../harness.js';

const harness: ConformanceHarness = {
  connectorId: 'datagen',
  available: async () => ({ ok: true }),
  sampleBoundaries: { OFFSET: { boundaryType: 'OFFSET', lowerBound: '100', upperBound: '250' } },
  cleanup: async () => {},
};

export default harness;
