/**
 * The script the tests start as `scimd`: the bundle of src/cli/main.ts that scripts/run-tests.mjs
 * builds once per run (about a second faster per start than compiling through tsx), or
 * bin/scimd.js when a test file is run on its own. test/e2e/start.test.ts always starts
 * bin/scimd.js, the entry users run.
 */
export const SCIMD_ENTRY = process.env.SCIMD_TEST_ENTRY ?? 'bin/scimd.js';
