import { tmpdir } from 'node:os';

// Test output goes to fresh folders under the system's temp folder: that is the tests' file root.
process.env.SLUICE_FILE_ROOTS ??= tmpdir();
