/**
 * Conformance harness of the Pulsar source: data-free checks only. No Pulsar broker can run here, and
 * the embedded reader needs pulsar-client's native binding, so there is no `source` to seed and read
 * back. What the harness adds over the schema's examples is a sample OFFSET window in Pulsar's message
 * id format, so the purity check runs for OFFSET windows too (not only TIME).
 *
 * `available()` is ok: it is only consulted for a harness with a source or sink, and with neither the
 * suite never asks. A harness saying "unavailable" would instead turn into a failure under
 * SLUICE_REQUIRE_INTEGRATION=1 the day a source is added. When a broker is available, add a `source`
 * that produces the records with pulsar-client's Producer and probe the broker in `available()`.
 */
import type { ConformanceHarness } from '../harness.js';

const harness: ConformanceHarness = {
  connectorId: 'pulsar',
  available: async () => ({ ok: true }),
  sampleSourceOptions: {
    serviceUrl: 'pulsar://localhost:6650',
    topic: 'persistent://public/default/sluice-conformance',
  },
  sampleBoundaries: {
    OFFSET: { boundaryType: 'OFFSET', lowerBound: '12:2:-1', upperBound: '12:40:-1:3' },
  },
  cleanup: async () => {},
};

export default harness;
