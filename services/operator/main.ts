/** The operator service alone: `node dist/services/operator/main.js`. */
import { runMain } from '../core/main.js';

await runMain(['operator']);
