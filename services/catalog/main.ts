/** The catalog service alone: `node dist/services/catalog/main.js`. */
import { runMain } from '../core/main.js';

await runMain(['catalog']);
