/** The schedule service alone: `node dist/services/schedule/main.js`. */
import { runMain } from '../core/main.js';

await runMain(['schedule']);
