/** All three services in one process: the embedded default (`npm start`). */
import { runMain } from './core/main.js';
import { ALL_SERVICES } from './runtime.js';

await runMain(ALL_SERVICES);
