/**
 * Admin CLI entry: `npm run -s admin -- <command> [flags]` (or
 * `node --import tsx server/src/cli/main.ts …`). See program.ts for the commands and the
 * stdout/stderr/exit-code contract.
 */
import { runCli } from './program.ts';

process.exitCode = await runCli(process.argv.slice(2));
