import { parseArgs, type ParseArgsConfig } from 'node:util';
import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { createModelRepositoryClient, type ModelRepositoryClient } from '../client.js';
import { isAbortError, ModelRepositoryError, ModelRepositoryNetworkError } from '../errors.js';
import type { EventListFilters, ModelListFilters } from '../pagination.js';
import type { RetryOptions } from '../retry.js';
import type { UploadArtifactOptions } from '../upload.js';
import type { ArtifactUploadSession, Event, ModelArtifact, ModelSummary, Webhook, WebhookCreate, WebhookDelivery } from '../types.js';
import { jsonForTerminal, terminalSafe } from './terminal.js';
import { sdkVersion } from '../version.js';
import { formatBytes, ProgressBar, type ProgressStream } from './progress.js';

export interface CliIO {
  stdout: ProgressStream;
  stderr: ProgressStream;
  env: Record<string, string | undefined>;
  /** Aborts the running command (the bin wires it to SIGINT). */
  signal?: AbortSignal;
  /** For tests: the fetch and retry policy the client uses. */
  fetch?: (request: Request) => Promise<Response>;
  retry?: RetryOptions;
  cwd?: string;
}

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

const globalOptions = {
  url: { type: 'string' },
  'api-key': { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} satisfies Options;

const commandOptions = {
  upload: {
    kind: { type: 'string' },
    'version-label': { type: 'string' },
    current: { type: 'boolean' },
    'content-type': { type: 'string' },
    name: { type: 'string' },
    metadata: { type: 'string' },
    sha256: { type: 'string' },
    'product-version': { type: 'string' },
    'training-run': { type: 'string' },
    'external-uri': { type: 'string' },
    concurrency: { type: 'string' },
    resume: { type: 'string' },
  },
  download: {
    output: { type: 'string', short: 'o' },
    resume: { type: 'boolean' },
    force: { type: 'boolean' },
  },
  'models list': {
    space: { type: 'string' },
    org: { type: 'string' },
    q: { type: 'string' },
    family: { type: 'string' },
    type: { type: 'string', multiple: true },
    'deployment-status': { type: 'string' },
    'task-type': { type: 'string' },
    risk: { type: 'string' },
    'include-archived': { type: 'boolean' },
    limit: { type: 'string' },
    'page-size': { type: 'string' },
  },
  'artifacts list': {},
  inspect: {
    refresh: { type: 'boolean' },
  },
  'alias set': {
    reason: { type: 'string' },
    'if-match': { type: 'string' },
  },
  'alias ls': {},
  'alias history': {},
  'alias rm': {
    'if-match': { type: 'string' },
  },
  review: {
    approve: { type: 'boolean' },
    reject: { type: 'boolean' },
    comment: { type: 'string' },
  },
  events: {
    product: { type: 'string' },
    space: { type: 'string' },
    type: { type: 'string', multiple: true },
    since: { type: 'string' },
    limit: { type: 'string' },
    'page-size': { type: 'string' },
  },
  'webhooks ls': { space: { type: 'string' } },
  'webhooks create': {
    space: { type: 'string' },
    target: { type: 'string' },
    event: { type: 'string', multiple: true },
    description: { type: 'string' },
    inactive: { type: 'boolean' },
  },
  'webhooks delete': { space: { type: 'string' } },
  'webhooks ping': { space: { type: 'string' } },
  'webhooks deliveries': { space: { type: 'string' }, limit: { type: 'string' } },
  'webhooks redeliver': { space: { type: 'string' } },
  'webhooks rotate': { space: { type: 'string' } },
} satisfies Record<string, Options>;

const WEBHOOK_COMMANDS = ['ls', 'create', 'delete', 'ping', 'deliveries', 'redeliver', 'rotate'] as const;

type Command = keyof typeof commandOptions;

const usage = `Usage: model-repo <command> [options]

Commands:
  upload <product-id> <file>             Upload a file as a new artifact (chunked, verified, resumable)
  download <product-id> <artifact-id>    Download an artifact and verify its size and SHA-256
  models list --space <slug> | --org <slug>
                                         List model records
  artifacts list <product-id>            List a model's artifacts
  inspect <product-id> <artifact-id>     What a weight file holds: tensors, parameters, dtypes, pickle imports
  alias set <product-id> <alias> <version>
                                         Point an alias (production, staging, …) at a version
  alias ls <product-id>                  List a model's aliases
  alias history <product-id> <alias>     Every change of an alias, newest first
  alias rm <product-id> <alias>          Delete an alias
  review <product-id> <version> --approve | --reject [--comment <text>]
                                         Approve or reject a version
  events --product <id> | --space <slug> The audit trail, newest first
  webhooks ls|create|delete|ping|deliveries|redeliver|rotate --space <slug> …
                                         Manage a space's webhooks (see model-repo webhooks <cmd> --help)

Options for every command:
  --url <url>          Server URL (default: $MODEL_REPO_URL)
  --api-key <key>      API key (default: $MODEL_REPO_API_KEY)
  --json               Print JSON on stdout instead of text
  -q, --quiet          No progress bar
  -h, --help           Show help (also: model-repo <command> --help)
  --version            Show the version

Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted.`;

const commandUsage: Record<Command, string> = {
  upload: `Usage: model-repo upload <product-id> <file> [options]

  --kind <kind>              artifact_kind (model_binary, weights, checkpoint, adapter, tokenizer,
                             prompt_bundle, eval_report, model_card, other; default model_binary)
  --version-label <label>    Human-readable version label
  --current                  Make it the model's current artifact
  --content-type <type>      MIME type (default: from the file extension)
  --name <file-name>         File name to record (default: the file's base name)
  --metadata <json>          Metadata object, as JSON
  --sha256 <hex>             Expected SHA-256 (the upload fails if the bytes differ)
  --product-version <id>     Version of the model to attach the artifact to
  --training-run <id>        Training run reference
  --external-uri <uri>       External URI to record
  --concurrency <n>          Chunks sent in parallel (default 4)
  --resume <upload-id>       Continue an interrupted upload (its id is printed when interrupted)`,
  download: `Usage: model-repo download <product-id> <artifact-id> [options]

  -o, --output <path>        File or directory to write to (default: the artifact's file name)
  --resume                   Continue from <path>.part left by an interrupted download, and keep
                             it if this one is interrupted too
  --force                    Overwrite an existing file`,
  'models list': `Usage: model-repo models list (--space <slug> | --org <slug>) [filters]

  --q <text>                 Search name, slug, description, provider, …
  --family <family>          model_family
  --type <product-type>      Product type; repeat for several ("ML Model", "AI System", …)
  --deployment-status <s>    development, staging, production, retired
  --task-type <type>         model_task_type
  --risk <class>             risk_classification
  --include-archived         Include archived models
  --limit <n>                Stop after n models (default: all)
  --page-size <n>            Models per request (default 100)`,
  'artifacts list': `Usage: model-repo artifacts list <product-id>`,
  inspect: `Usage: model-repo inspect <product-id> <artifact-id> [--refresh]

  Shows what the server read from the artifact's header when it was stored: format, parameter
  and tensor counts, element types, architecture and quantization (GGUF), and for pickles and
  PyTorch checkpoints the imported globals and their warnings.

  --refresh                  Have the server read the header again first (needs edit access)`,
  'alias set': `Usage: model-repo alias set <product-id> <alias> <version> [options]

  <version> is a version id, a version number or another alias; the alias then points at it.
  Prints the alias and its ETag.

  --reason <text>            Why (kept in the alias history)
  --if-match <etag>          Only if the alias still has this ETag (else the server answers 412)`,
  'alias ls': `Usage: model-repo alias ls <product-id>`,
  'alias history': `Usage: model-repo alias history <product-id> <alias>`,
  'alias rm': `Usage: model-repo alias rm <product-id> <alias> [--if-match <etag>]`,
  review: `Usage: model-repo review <product-id> <version> (--approve | --reject) [--comment <text>]

  <version> is a version id, a version number or an alias. Reviewers are space admins and
  organization owners and admins; nobody approves a version they created.

  --approve                  Approve the version
  --reject                   Reject it
  --comment <text>           Why (up to 5000 characters)`,
  events: `Usage: model-repo events (--product <id> | --space <slug>) [filters]

  Every change to a model record (or to all of a space's, for space admins and organization
  owners and admins), newest first: who made it, when, and for updates which fields changed.

  --type <event-type>        Only this type; repeat for several (model.created, model.updated,
                             model.archived, version.created, version.reviewed, alias.set,
                             alias.deleted, artifact.created, artifact.deleted)
  --since <date-time>        Only events at or after this instant, e.g. 2026-10-01T00:00:00Z
  --limit <n>                Stop after n events (default: all)
  --page-size <n>            Events per request (default 100)`,
  'webhooks ls': `Usage: model-repo webhooks ls --space <slug>`,
  'webhooks create': `Usage: model-repo webhooks create --space <slug> --target <url> [--event <type>]… [options]

  --target <url>             Where deliveries are POSTed (http or https, a public address)
  --event <type>             Event type to deliver (model.created, alias.set, …); repeat for several;
                             default: every type (*)
  --description <text>       What the webhook is for
  --inactive                 Create it paused

  Prints the signing secret once: store it for your receiver.`,
  'webhooks delete': `Usage: model-repo webhooks delete <webhook-id> --space <slug>`,
  'webhooks ping': `Usage: model-repo webhooks ping <webhook-id> --space <slug>`,
  'webhooks deliveries': `Usage: model-repo webhooks deliveries <webhook-id> --space <slug> [--limit <n>]

  --limit <n>                How many of the newest deliveries to show (default 50)`,
  'webhooks redeliver': `Usage: model-repo webhooks redeliver <webhook-id> <delivery-id> --space <slug>`,
  'webhooks rotate': `Usage: model-repo webhooks rotate <webhook-id> --space <slug>

  Replaces the signing secret and prints the new one once.`,
};

/** Runs the CLI; returns the exit status. Never throws. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const say = (stream: ProgressStream, text: string) => stream.write(terminalSafe(text.endsWith('\n') ? text : `${text}\n`));
  let command: Command | null = null;
  try {
    const first = parseArgs({ args: argv, options: globalOptions, allowPositionals: true, strict: false });
    const [word1, word2] = first.positionals;
    if (first.values.version === true && !word1) {
      say(io.stdout, sdkVersion);
      return 0;
    }
    if (!word1) {
      say(first.values.help === true ? io.stdout : io.stderr, usage);
      return first.values.help === true ? 0 : 2;
    }
    command = resolveCommand(word1, word2);
    const parsed = parseArgs({
      args: argv,
      options: { ...globalOptions, ...commandOptions[command] },
      allowPositionals: true,
      strict: true,
    });
    const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
    if (values.help === true) {
      say(io.stdout, commandUsage[command]);
      return 0;
    }
    const args = parsed.positionals.slice(command.includes(' ') ? 2 : 1);
    expectArgs(args, commandArgs[command]);
    const url = (values.url as string | undefined) ?? io.env.MODEL_REPO_URL;
    const apiKey = (values['api-key'] as string | undefined) ?? io.env.MODEL_REPO_API_KEY;
    if (!url) throw new UsageError('no server URL: set MODEL_REPO_URL or pass --url');
    if (!apiKey) throw new UsageError('no API key: set MODEL_REPO_API_KEY or pass --api-key');
    const client = createModelRepositoryClient({
      baseUrl: url,
      apiKey,
      userAgent: `model-repo-cli/${sdkVersion} node/${process.versions.node}`,
      ...(io.fetch ? { fetch: io.fetch } : {}),
      ...(io.retry ? { retry: io.retry } : {}),
    });
    const ctx: CommandContext = { client, io, values, args, json: values.json === true, quiet: values.quiet === true };
    switch (command) {
      case 'upload':
        return await upload(ctx);
      case 'download':
        return await download(ctx);
      case 'models list':
        return await listModels(ctx);
      case 'artifacts list':
        return await listArtifacts(ctx);
      case 'inspect':
        return await inspect(ctx);
      case 'alias set':
        return await setAlias(ctx);
      case 'alias ls':
        return await listAliases(ctx);
      case 'alias history':
        return await aliasHistory(ctx);
      case 'alias rm':
        return await removeAlias(ctx);
      case 'review':
        return await review(ctx);
      case 'events':
        return await listEvents(ctx);
      default:
        return await webhooks(ctx, command);
    }
  } catch (error) {
    if (error instanceof UsageError || isParseArgsError(error)) {
      say(io.stderr, `model-repo: ${(error as Error).message}`);
      say(io.stderr, command ? `Run 'model-repo ${command} --help' for its options.` : `Run 'model-repo --help' for usage.`);
      return 2;
    }
    if (isAbortError(error, io.signal)) {
      say(io.stderr, 'model-repo: interrupted');
      return 130;
    }
    say(io.stderr, describeError(error));
    return 1;
  }
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

function resolveCommand(word1: string, word2: string | undefined): Command {
  if (word1 === 'upload' || word1 === 'download' || word1 === 'inspect' || word1 === 'review' || word1 === 'events') return word1;
  if (word1 === 'alias') {
    if (word2 === 'set' || word2 === 'ls' || word2 === 'history' || word2 === 'rm') return `alias ${word2}`;
    throw new UsageError(`'alias' needs a subcommand: alias set | ls | history | rm`);
  }
  if (word1 === 'models' || word1 === 'artifacts') {
    if (word2 === 'list') return `${word1} list`;
    throw new UsageError(`'${word1}' needs a subcommand: ${word1} list`);
  }
  if (word1 === 'webhooks') {
    if ((WEBHOOK_COMMANDS as readonly string[]).includes(word2 ?? '')) return `webhooks ${word2 as (typeof WEBHOOK_COMMANDS)[number]}`;
    throw new UsageError(`'webhooks' needs a subcommand: ${WEBHOOK_COMMANDS.join(', ')}`);
  }
  throw new UsageError(`unknown command '${word1}'`);
}

export function describeError(error: unknown): string {
  if (error instanceof ModelRepositoryNetworkError) {
    return `model-repo: cannot reach the server: ${error.detail}`;
  }
  if (error instanceof ModelRepositoryError) {
    const lines = [`model-repo: error: ${error.message}`];
    for (const fieldError of error.errors) lines.push(`  ${fieldError.loc.join('.')}: ${fieldError.msg}`);
    return lines.join('\n');
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof Error) return `model-repo: error: ${error.message}${typeof code === 'string' && !error.message.includes(code) ? ` (${code})` : ''}`;
  return `model-repo: error: ${String(error)}`;
}

interface CommandContext {
  client: ModelRepositoryClient;
  io: CliIO;
  values: Record<string, string | boolean | string[] | undefined>;
  args: string[];
  json: boolean;
  quiet: boolean;
}

const commandArgs: Record<Command, string[]> = {
  upload: ['product-id', 'file'],
  download: ['product-id', 'artifact-id'],
  'models list': [],
  'artifacts list': ['product-id'],
  inspect: ['product-id', 'artifact-id'],
  'alias set': ['product-id', 'alias', 'version'],
  'alias ls': ['product-id'],
  'alias history': ['product-id', 'alias'],
  'alias rm': ['product-id', 'alias'],
  review: ['product-id', 'version'],
  events: [],
  'webhooks ls': [],
  'webhooks create': [],
  'webhooks delete': ['webhook-id'],
  'webhooks ping': ['webhook-id'],
  'webhooks deliveries': ['webhook-id'],
  'webhooks redeliver': ['webhook-id', 'delivery-id'],
  'webhooks rotate': ['webhook-id'],
};

function expectArgs(args: string[], names: string[]): void {
  if (args.length === names.length) return;
  const wanted = names.length === 0 ? 'no arguments' : names.map((n) => `<${n}>`).join(' ');
  const got = args.length === 0 ? 'nothing' : args.map((a) => `'${a}'`).join(' ');
  throw new UsageError(`expected ${wanted}, got ${got}`);
}

function positiveInt(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got '${String(value)}'`);
  return n;
}

/** Human-readable text, made safe for a terminal (server data in it cannot control the terminal). */
function writeText(stream: ProgressStream, text: string): void {
  stream.write(terminalSafe(text));
}

function printJson(ctx: CommandContext, value: unknown): void {
  ctx.io.stdout.write(`${jsonForTerminal(JSON.stringify(value, null, 2))}\n`);
}

function progressBar(ctx: CommandContext, label: string, total: number): ProgressBar | null {
  if (ctx.quiet) return null;
  const bar = new ProgressBar(ctx.io.stderr, label, total);
  return bar.enabled ? bar : null;
}

async function upload(ctx: CommandContext): Promise<number> {
  const [productId, file] = ctx.args as [string, string];
  const v = ctx.values;
  let metadata: Record<string, unknown> | undefined;
  if (typeof v.metadata === 'string') {
    try {
      metadata = JSON.parse(v.metadata) as Record<string, unknown>;
    } catch {
      throw new UsageError('--metadata must be a JSON object');
    }
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) throw new UsageError('--metadata must be a JSON object');
  }
  const fileStats = await stat(file);
  if (!fileStats.isFile()) throw new UsageError(`${file} is not a file`);
  const bar = progressBar(ctx, basename(file), fileStats.size);
  let session: ArtifactUploadSession | undefined;
  const options: UploadArtifactOptions = {
    ...(v.kind !== undefined ? { artifact_kind: v.kind as UploadArtifactOptions['artifact_kind'] } : {}),
    ...(v['version-label'] !== undefined ? { version_label: v['version-label'] as string } : {}),
    ...(v.current === true ? { is_current: true } : {}),
    ...(v['content-type'] !== undefined ? { content_type: v['content-type'] as string } : {}),
    ...(v.name !== undefined ? { file_name: v.name as string } : {}),
    ...(metadata !== undefined ? { metadata } : {}),
    ...(v.sha256 !== undefined ? { sha256: v.sha256 as string } : {}),
    ...(v['product-version'] !== undefined ? { product_version_id: v['product-version'] as string } : {}),
    ...(v['training-run'] !== undefined ? { training_run_id: v['training-run'] as string } : {}),
    ...(v['external-uri'] !== undefined ? { external_uri: v['external-uri'] as string } : {}),
    ...(v.resume !== undefined ? { resume: v.resume as string } : {}),
    concurrency: positiveInt(v.concurrency, '--concurrency') ?? 4,
    ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
    onSession: (s) => (session = s),
    onProgress: ({ uploadedBytes, totalBytes }) => bar?.update(uploadedBytes, totalBytes),
  };
  let artifact: ModelArtifact;
  try {
    artifact = await ctx.client.uploadArtifact(productId, file, options);
  } catch (error) {
    bar?.clear();
    if (session && session.status !== 'completed' && !(error instanceof ModelRepositoryError && error.status >= 400 && error.status < 500)) {
      // The session survives an interruption or a network failure: say how to continue it.
      writeText(ctx.io.stderr, `model-repo: upload ${session.id} is unfinished; continue it with:\n  model-repo upload ${productId} ${file} --resume ${session.id}\n`);
    }
    throw error;
  }
  bar?.finish();
  if (ctx.json) printJson(ctx, artifact);
  else {
    writeText(ctx.io.stdout, 
      `Uploaded ${file} as artifact ${artifact.id}\n  ${formatBytes(artifact.size_bytes)}, sha256 ${artifact.sha256}${artifact.is_current ? ', current' : ''}\n`,
    );
  }
  return 0;
}

/** A file name from the server that is safe to create in the working directory. */
function safeFileName(name: string, fallback: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const cleaned = base.replace(/[\x00-\x1f\x7f]/g, '').trim();
  return cleaned === '' || cleaned === '.' || cleaned === '..' ? fallback : cleaned;
}

async function download(ctx: CommandContext): Promise<number> {
  const [productId, artifactId] = ctx.args as [string, string];
  const cwd = ctx.io.cwd ?? process.cwd();
  const signal = ctx.io.signal;
  const record = await ctx.client.getArtifact(productId, artifactId, signal ? { signal } : {});
  const defaultName = safeFileName(record.file_name, `artifact-${record.id}`);
  let target = resolve(cwd, typeof ctx.values.output === 'string' ? ctx.values.output : defaultName);
  const existing = await stat(target).catch(() => null);
  if (existing?.isDirectory()) target = join(target, defaultName);
  if (ctx.values.force !== true && (await stat(target).catch(() => null))) {
    throw new UsageError(`${target} exists; pass --force to overwrite it`);
  }
  const bar = progressBar(ctx, defaultName, record.size_bytes);
  const resume = ctx.values.resume === true;
  let artifact: ModelArtifact;
  try {
    artifact = await ctx.client.downloadArtifact(productId, artifactId, {
      to: target,
      resume,
      ...(signal ? { signal } : {}),
      onProgress: ({ downloadedBytes, totalBytes }) => bar?.update(downloadedBytes, totalBytes),
    });
  } catch (error) {
    bar?.clear();
    if (resume && isAbortError(error, signal)) {
      writeText(ctx.io.stderr, `model-repo: partial download kept in ${target}.part; run the same command again to continue\n`);
    }
    throw error;
  }
  bar?.finish();
  if (ctx.json) printJson(ctx, { path: target, artifact });
  else writeText(ctx.io.stdout, `Downloaded ${artifact.file_name} to ${target}\n  ${formatBytes(artifact.size_bytes)}, sha256 ${artifact.sha256} verified\n`);
  return 0;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  return rows.map((row) => row.map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ')).join('\n') + '\n';
}

async function listModels(ctx: CommandContext): Promise<number> {
  const v = ctx.values;
  const space = v.space as string | undefined;
  const organization = v.org as string | undefined;
  if ((space === undefined) === (organization === undefined)) throw new UsageError('give exactly one of --space <slug> or --org <slug>');
  const max = positiveInt(v.limit, '--limit');
  const pageSize = positiveInt(v['page-size'], '--page-size');
  const filters: ModelListFilters = {
    ...(v.q !== undefined ? { q: v.q as string } : {}),
    ...(v.family !== undefined ? { model_family: v.family as ModelListFilters['model_family'] } : {}),
    ...(v.type !== undefined ? { types: v.type as NonNullable<ModelListFilters['types']> } : {}),
    ...(v['deployment-status'] !== undefined ? { deployment_status: v['deployment-status'] as ModelListFilters['deployment_status'] } : {}),
    ...(v['task-type'] !== undefined ? { model_task_type: v['task-type'] as string } : {}),
    ...(v.risk !== undefined ? { risk_classification: v.risk as ModelListFilters['risk_classification'] } : {}),
    ...(v['include-archived'] === true ? { include_archived: true } : {}),
    limit: Math.min(pageSize ?? 100, max ?? Infinity),
  };
  const scope = space !== undefined ? { space } : { organization: organization! };
  const models: ModelSummary[] = [];
  for await (const model of ctx.client.listModels(scope, filters, ctx.io.signal ? { signal: ctx.io.signal } : {}).items()) {
    models.push(model);
    if (max !== undefined && models.length >= max) break;
  }
  if (ctx.json) printJson(ctx, models);
  else if (models.length === 0) writeText(ctx.io.stdout, 'No models.\n');
  else {
    writeText(ctx.io.stdout, 
      table([
        ['ID', 'SLUG', 'TYPE', 'DEPLOYMENT', 'UPDATED', 'NAME'],
        ...models.map((m) => [m.id, m.slug, m.product_type, m.deployment_status, m.updated_at, m.name]),
      ]),
    );
  }
  return 0;
}

async function listArtifacts(ctx: CommandContext): Promise<number> {
  const [productId] = ctx.args as [string];
  const artifacts = await ctx.client.listArtifacts(productId, ctx.io.signal ? { signal: ctx.io.signal } : {});
  if (ctx.json) printJson(ctx, artifacts);
  else if (artifacts.length === 0) writeText(ctx.io.stdout, 'No artifacts.\n');
  else {
    writeText(ctx.io.stdout, 
      table([
        ['ID', 'KIND', 'SIZE', 'CURRENT', 'UPLOADED', 'FILE'],
        ...artifacts.map((a) => [a.id, a.artifact_kind, formatBytes(a.size_bytes), a.is_current ? 'yes' : '', a.uploaded_at, a.file_name]),
      ]),
    );
  }
  return 0;
}

async function inspect(ctx: CommandContext): Promise<number> {
  const [productId, artifactId] = ctx.args as [string, string];
  const options = ctx.io.signal ? { signal: ctx.io.signal } : {};
  const artifact =
    ctx.values.refresh === true ? await ctx.client.inspectArtifact(productId, artifactId, options) : await ctx.client.getArtifact(productId, artifactId, options);
  if (ctx.json) {
    printJson(ctx, { artifact_id: artifact.id, file_name: artifact.file_name, inspection: artifact.inspection });
    return 0;
  }
  const i = artifact.inspection;
  if (!i) {
    writeText(ctx.io.stdout, `${artifact.file_name}: not a recognised weight format (or not inspected yet)\n`);
    return 0;
  }
  const rows: string[][] = [];
  const count = (n: number) => n.toLocaleString('en-US');
  if (i.parameter_count !== null) rows.push(['parameters', count(i.parameter_count)]);
  if (i.tensor_count !== null) {
    const dtypes = Object.entries(i.dtypes ?? {}).map(([dtype, n]) => `${dtype} ${count(n)}`);
    rows.push(['tensors', `${count(i.tensor_count)}${dtypes.length > 0 ? ` (${dtypes.join(', ')})` : ''}`]);
  }
  if (i.architecture !== null) rows.push(['architecture', i.architecture]);
  if (i.quantization !== null) rows.push(['quantization', i.quantization]);
  const globals = i.metadata?.globals;
  if (Array.isArray(globals) && globals.length > 0) rows.push(['imports', globals.join(', ')]);
  for (const w of i.warnings) rows.push(['warning', WARNINGS[w] ?? w]);
  if (i.error !== null) rows.push(['error', i.error]);
  writeText(ctx.io.stdout, `${artifact.file_name}: ${i.format}\n${rows.length > 0 ? table(rows.map(([k, v]) => [`  ${k}`, v!])) : ''}`);
  return 0;
}

async function listEvents(ctx: CommandContext): Promise<number> {
  const v = ctx.values;
  const product = v.product as string | undefined;
  const space = v.space as string | undefined;
  if ((product === undefined) === (space === undefined)) throw new UsageError('give exactly one of --product <id> or --space <slug>');
  const max = positiveInt(v.limit, '--limit');
  const pageSize = positiveInt(v['page-size'], '--page-size');
  const filters: EventListFilters = {
    ...(v.type !== undefined ? { types: v.type as NonNullable<EventListFilters['types']> } : {}),
    ...(v.since !== undefined ? { since: v.since as string } : {}),
    limit: Math.min(pageSize ?? 100, max ?? Infinity),
  };
  const scope = product !== undefined ? { product } : { space: space! };
  const events: Event[] = [];
  for await (const event of ctx.client.listEvents(scope, filters, ctx.io.signal ? { signal: ctx.io.signal } : {}).items()) {
    events.push(event);
    if (max !== undefined && events.length >= max) break;
  }
  if (ctx.json) printJson(ctx, events);
  else if (events.length === 0) writeText(ctx.io.stdout, 'No events.\n');
  else {
    writeText(ctx.io.stdout, 
      table([
        ['OCCURRED', 'TYPE', 'ACTOR', 'SUBJECT', 'CHANGES'],
        ...events.map((e) => [e.occurred_at, e.type, e.actor_id ?? '-', e.subject_id ?? '-', changedFields(e)]),
      ]),
    );
  }
  return 0;
}

/** "description, framework" for an update; '' for the other types. */
function changedFields(e: Event): string {
  const changes = e.data.changes;
  return changes !== null && typeof changes === 'object' ? Object.keys(changes).join(', ') : '';
}

const WARNINGS: Record<string, string> = {
  pickle_code_execution: 'loading this file runs a pickle, which can execute code',
  pickle_dangerous_global: 'the pickle imports a known code-execution entry point',
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A version id as given, else the id of the version a number or an alias names. */
async function versionIdOf(ctx: CommandContext, productId: string, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  return (await ctx.client.getVersion(productId, ref, ctx.io.signal ? { signal: ctx.io.signal } : {})).id;
}

async function setAlias(ctx: CommandContext): Promise<number> {
  const [productId, name, ref] = ctx.args as [string, string, string];
  const signal = ctx.io.signal ? { signal: ctx.io.signal } : {};
  const versionId = await versionIdOf(ctx, productId, ref);
  const reason = ctx.values.reason as string | undefined;
  const ifMatch = ctx.values['if-match'] as string | undefined;
  const result = await ctx.client.setAlias(productId, name, versionId, {
    ...signal,
    ...(reason === undefined ? {} : { reason }),
    ...(ifMatch === undefined ? {} : { ifMatch }),
  });
  if (ctx.json) printJson(ctx, { ...result.alias, etag: result.etag, created: result.created });
  else {
    const a = result.alias;
    writeText(ctx.io.stdout, `${a.name} → version ${a.version_number} (${a.version_id})${result.created ? ' [new]' : ''}\nETag: ${result.etag}\n`);
  }
  return 0;
}

async function listAliases(ctx: CommandContext): Promise<number> {
  const [productId] = ctx.args as [string];
  const aliases = await ctx.client.listAliases(productId, ctx.io.signal ? { signal: ctx.io.signal } : {});
  if (ctx.json) printJson(ctx, aliases);
  else if (aliases.length === 0) writeText(ctx.io.stdout, 'No aliases.\n');
  else {
    writeText(ctx.io.stdout, 
      table([['ALIAS', 'VERSION', 'VERSION ID', 'UPDATED'], ...aliases.map((a) => [a.name, String(a.version_number), a.version_id, a.updated_at])]),
    );
  }
  return 0;
}

async function aliasHistory(ctx: CommandContext): Promise<number> {
  const [productId, name] = ctx.args as [string, string];
  const changes = await ctx.client.aliasHistory(productId, name, ctx.io.signal ? { signal: ctx.io.signal } : {});
  if (ctx.json) printJson(ctx, changes);
  else {
    writeText(ctx.io.stdout, 
      table([
        ['CHANGED', 'TO', 'FROM', 'BY', 'REASON'],
        ...changes.map((c) => [c.changed_at, c.version_id ?? '(deleted)', c.previous_version_id ?? '', c.changed_by_id ?? '', c.reason ?? '']),
      ]),
    );
  }
  return 0;
}

async function removeAlias(ctx: CommandContext): Promise<number> {
  const [productId, name] = ctx.args as [string, string];
  const ifMatch = ctx.values['if-match'] as string | undefined;
  await ctx.client.deleteAlias(productId, name, { ...(ctx.io.signal ? { signal: ctx.io.signal } : {}), ...(ifMatch === undefined ? {} : { ifMatch }) });
  if (ctx.json) printJson(ctx, { deleted: name });
  else writeText(ctx.io.stdout, `Deleted alias ${name}.\n`);
  return 0;
}

async function review(ctx: CommandContext): Promise<number> {
  const [productId, ref] = ctx.args as [string, string];
  const approve = ctx.values.approve === true;
  const reject = ctx.values.reject === true;
  if (approve === reject) throw new UsageError('give exactly one of --approve and --reject');
  const comment = ctx.values.comment as string | undefined;
  const versionId = await versionIdOf(ctx, productId, ref);
  const result = await ctx.client.reviewVersion(
    productId,
    versionId,
    { decision: approve ? 'approved' : 'rejected', ...(comment === undefined ? {} : { comment }) },
    ctx.io.signal ? { signal: ctx.io.signal } : {},
  );
  if (ctx.json) printJson(ctx, result);
  else writeText(ctx.io.stdout, `Version ${result.version_id}: ${result.decision} (review ${result.id}).\n`);
  return 0;
}

function webhookLine(w: Webhook): string[] {
  return [w.id, w.active ? 'active' : 'paused', w.events.join(','), w.url];
}

function deliveryLine(d: WebhookDelivery): string[] {
  return [d.id, d.event_type, d.status, String(d.attempts), d.last_status_code === null ? '-' : String(d.last_status_code), d.created_at, d.last_error ?? ''];
}

async function webhooks(ctx: CommandContext, command: Extract<Command, `webhooks ${string}`>): Promise<number> {
  const v = ctx.values;
  const space = v.space as string | undefined;
  if (!space) throw new UsageError('--space <slug> is required');
  const options = ctx.io.signal ? { signal: ctx.io.signal } : {};
  const [id, deliveryId] = ctx.args as [string, string];
  const out = (value: unknown, text: string) => (ctx.json ? printJson(ctx, value) : writeText(ctx.io.stdout, text.endsWith('\n') ? text : `${text}\n`));
  switch (command) {
    case 'webhooks ls': {
      const hooks = await ctx.client.listWebhooks(space, options);
      out(hooks, hooks.length === 0 ? 'No webhooks.' : table([['ID', 'STATE', 'EVENTS', 'URL'], ...hooks.map(webhookLine)]));
      return 0;
    }
    case 'webhooks create': {
      if (typeof v.target !== 'string') throw new UsageError('--target <url> is required');
      const body: WebhookCreate = {
        url: v.target,
        events: (v.event as WebhookCreate['events'] | undefined) ?? ['*'],
        ...(typeof v.description === 'string' ? { description: v.description } : {}),
        ...(v.inactive === true ? { active: false } : {}),
      };
      const hook = await ctx.client.createWebhook(space, body, options);
      out(hook, `Created webhook ${hook.id} (${hook.events.join(', ')} → ${hook.url})\n  secret: ${hook.secret}\n  (shown once: store it for your receiver)`);
      return 0;
    }
    case 'webhooks delete':
      await ctx.client.deleteWebhook(space, id, options);
      out({ deleted: id }, `Deleted webhook ${id}`);
      return 0;
    case 'webhooks ping': {
      const delivery = await ctx.client.pingWebhook(space, id, options);
      out(delivery, `Queued ping delivery ${delivery.id}`);
      return 0;
    }
    case 'webhooks deliveries': {
      const list = await ctx.client.listWebhookDeliveries(space, id, { limit: positiveInt(v.limit, '--limit') ?? 50 }, options);
      out(list, list.length === 0 ? 'No deliveries.' : table([['ID', 'EVENT', 'STATUS', 'ATTEMPTS', 'HTTP', 'CREATED', 'LAST ERROR'], ...list.map(deliveryLine)]));
      return 0;
    }
    case 'webhooks redeliver': {
      const delivery = await ctx.client.redeliverWebhookDelivery(space, id, deliveryId, options);
      out(delivery, `Queued delivery ${delivery.id} again`);
      return 0;
    }
    case 'webhooks rotate': {
      const hook = await ctx.client.rotateWebhookSecret(space, id, options);
      out(hook, `New secret of webhook ${hook.id}: ${hook.secret}\n  (shown once: store it for your receiver)`);
      return 0;
    }
  }
}
