#!/usr/bin/env node
// The `model-repo` command. The first Ctrl-C stops the running transfer cleanly (an upload can be
// resumed, see the message it prints); a second one exits at once.
import { runCli } from './cli/main.js';

const controller = new AbortController();
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(130);
  controller.abort();
});

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: controller.signal,
});
