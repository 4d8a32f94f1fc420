/**
 * The admin CLI's commands (commander). Contract: exactly one JSON object on stdout for a
 * successful command, nothing else there; logs, usage errors and failures on stderr with a
 * non-zero exit (1 = the command failed, 2 = invalid configuration or usage).
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { isAppError } from '../errors.ts';
import { createLogger, type Logger } from '../logger.ts';
import type { Em } from '../persistence/orm.ts';

// The ORM and the services load only when a command runs: usage errors and --help answer
// at once (MikroORM takes most of the start-up time).
type AdminServices = typeof import('../services/admin.ts');

/** C0 controls but tab and newline, DEL, C1 controls, bidi overrides: what a terminal would act on. */
// eslint-disable-next-line no-control-regex
const TERMINAL_UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const TERMINAL_UNSAFE_IN_JSON = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const unicodeEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** Text for stderr with data from the database in it: unsafe characters shown as `\uXXXX`. */
export const terminalSafe = (text: string): string => text.replace(TERMINAL_UNSAFE, unicodeEscape);

/** JSON.stringify's output (C0 already escaped) with DEL, C1 and bidi overrides escaped too: the same JSON value. */
export const jsonForTerminal = (json: string): string => json.replace(TERMINAL_UNSAFE_IN_JSON, unicodeEscape);

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const defaultIo: CliIo = {
  env: process.env,
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** `env`: the configuration and logger, for commands that need more than the database. */
type Action = (em: Em, admin: AdminServices, env: { config: Config; logger: Logger }) => Promise<Record<string, unknown>>;

function parseCount(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number.');
  return Number(value);
}

/** 'none' stays a string: commander turns a parser's null into ''. */
function parseLimit(value: string): number | 'none' {
  if (value === 'none') return 'none';
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number or "none".');
  return Number(value);
}

function buildProgram(run: (action: Action) => Promise<void>, io: CliIo): Command {
  const program = new Command('admin')
    .description('Administer a model repository installation (same environment variables as the server).')
    .exitOverride()
    .configureOutput({ writeOut: io.stderr, writeErr: io.stderr })
    .showSuggestionAfterError()
    .allowExcessArguments(false);

  program
    .command('bootstrap')
    .description('Create whatever is missing (organization, space, user as organization owner) and a new API key.')
    .requiredOption('--org <slug>', 'organization slug')
    .requiredOption('--space <slug>', 'space slug')
    .requiredOption('--email <email>', 'owner email')
    .option('--org-name <name>', 'organization display name (default: the slug)')
    .option('--space-name <name>', 'space display name (default: the slug)')
    .action((o: { org: string; space: string; email: string; orgName?: string; spaceName?: string }) =>
      run(async (em, a) => {
        const r = await a.bootstrap(em, o);
        return {
          organization: a.adminJson.organization(r.organization),
          space: a.adminJson.space(r.space),
          user: a.adminJson.user(r.user),
          api_key: r.api_key,
          api_key_id: r.api_key_record.id,
          created: r.created,
        };
      }),
    );

  program
    .command('create-space')
    .description('Create a space in an organization.')
    .requiredOption('--org <slug>', 'organization slug')
    .requiredOption('--space <slug>', 'space slug (unique across the installation)')
    .option('--name <name>', 'display name (default: the slug)')
    .option('--product-limit <n>', 'catalog capacity (default: unlimited)', parseCount)
    .action((o: { org: string; space: string; name?: string; productLimit?: number }) =>
      run(async (em, a) => a.adminJson.space(await a.createSpace(em, o))),
    );

  program
    .command('create-user')
    .description('Create a user.')
    .requiredOption('--email <email>', 'email (stored lowercased)')
    .option('--name <name>', 'display name')
    .action((o: { email: string; name?: string }) => run(async (em, a) => a.adminJson.user(await a.createUser(em, o))));

  program
    .command('add-member')
    .description('Give a user a role in an organization (--org: owner|admin|member) or a space (--space: admin|editor|viewer).')
    .requiredOption('--email <email>', 'user email')
    .option('--org <slug>', 'organization slug')
    .option('--space <slug>', 'space slug')
    .requiredOption('--role <role>', 'owner|admin|member for --org; admin|editor|viewer for --space')
    .action((o: { email: string; org?: string; space?: string; role: string }, cmd: Command) => {
      if ((o.org === undefined) === (o.space === undefined)) {
        cmd.error('error: add-member needs exactly one of --org <slug> or --space <slug>', { exitCode: 2, code: 'admin.usage' });
      }
      return run(async (em, a) => {
        if (o.org !== undefined) {
          const r = await a.addOrgMember(em, { email: o.email, org: o.org, role: o.role });
          return a.adminJson.organizationMembership(r.membership, r.created);
        }
        const r = await a.addSpaceMember(em, { email: o.email, space: o.space!, role: o.role });
        return a.adminJson.spaceMembership(r.membership, r.created);
      });
    });

  program
    .command('grant')
    .description('Grant a user view or edit access to one product.')
    .requiredOption('--email <email>', 'user email')
    .requiredOption('--product <uuid>', 'product id')
    .requiredOption('--access <access>', 'view|edit')
    .action((o: { email: string; product: string; access: string }) =>
      run(async (em, a) => {
        const r = await a.grant(em, { email: o.email, productId: o.product, access: o.access });
        return a.adminJson.productGrant(r.membership, r.created);
      }),
    );

  program
    .command('create-api-key')
    .description('Issue a new API key for a user (printed once).')
    .requiredOption('--email <email>', 'user email')
    .option('--name <name>', 'a label for the key')
    .action((o: { email: string; name?: string }) =>
      run(async (em, a) => {
        const r = await a.createApiKey(em, o);
        return { api_key: r.api_key, id: r.api_key_record.id };
      }),
    );

  program
    .command('revoke-api-key')
    .description('Revoke an API key.')
    .requiredOption('--id <id>', 'API key id')
    .action((o: { id: string }) => run(async (em, a) => a.adminJson.apiKey(await a.revokeApiKey(em, o))));

  program
    .command('set-product-limit')
    .description("Set a space's catalog capacity.")
    .requiredOption('--space <slug>', 'space slug')
    .requiredOption('--limit <n|none>', 'maximum number of products, or none', parseLimit)
    .action((o: { space: string; limit: number | 'none' }) =>
      run(async (em, a) => a.adminJson.space(await a.setProductLimit(em, { space: o.space, limit: o.limit === 'none' ? null : o.limit }))),
    );

  program
    .command('set-promotion-policy')
    .description("Set what promoting a space's models to production requires: none, or risk_based.")
    .requiredOption('--space <slug>', 'space slug')
    .requiredOption('--policy <none|risk_based>', 'none (nothing gated) or risk_based (gated by risk classification)')
    .action((o: { space: string; policy: string }) =>
      run(async (em, a) => a.adminJson.space(await a.setPromotionPolicy(em, o))),
    );

  program
    .command('dedup-storage')
    .description(
      'Store the bytes of each SHA-256 once: point every artifact at one copy and remove the others (safe while the server runs). Prints what was freed.',
    )
    .option(
      '--grace-seconds <n>',
      'wait this long before removing the duplicate copies (default: 300 on S3 in redirect mode, for presigned URLs already handed out; else 0)',
      parseCount,
    )
    .action((o: { graceSeconds?: number }) =>
      run(async (em, _a, { config, logger }) => {
        const [{ dedupStorage }, { openBlobStore }, { storageOptions }] = await Promise.all([
          import('../services/dedup-storage.ts'),
          import('../storage/index.ts'),
          import('../services/index.ts'),
        ]);
        const storage = await openBlobStore(storageOptions(config));
        try {
          const redirect = config.storageBackend === 's3' && config.s3?.downloadMode === 'redirect';
          const report = await dedupStorage(em, { storage, logger }, { graceSeconds: o.graceSeconds ?? (redirect ? 300 : 0) });
          return { ...report };
        } finally {
          await storage.close();
        }
      }),
    );

  return program;
}

/** Runs the CLI; resolves to the exit code (never calls process.exit). */
export async function runCli(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const run = async (action: Action) => {
    const config: Config = loadConfig(io.env);
    const logger: Logger = createLogger(config, { destination: 'stderr' });
    const [{ openOrm }, admin] = await Promise.all([import('../persistence/orm.ts'), import('../services/admin.ts')]);
    const orm = await openOrm({ databaseUrl: config.databaseUrl, logger });
    try {
      const result = await action(orm.em.fork(), admin, { config, logger });
      io.stdout(`${jsonForTerminal(JSON.stringify(result))}\n`);
    } finally {
      await orm.close();
    }
  };

  const program = buildProgram(run, io);
  if (argv.length === 0) {
    io.stderr(program.helpInformation());
    return 2;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed its message (to stderr). Help is not an error.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version'
        ? 0
        : err.exitCode === 0
          ? 0
          : 2;
    }
    if (err instanceof ConfigError) {
      io.stderr(terminalSafe(`model-repository: ${err.message}\n`));
      return 2;
    }
    if (isAppError(err)) {
      const fieldErrors = err.errors ?? [];
      const details = fieldErrors.length > 1 ? fieldErrors.map((e) => `\n  ${e.loc.join('.')}: ${e.msg}`).join('') : '';
      io.stderr(terminalSafe(`error: ${err.detail}${details}\n`));
      return 1;
    }
    io.stderr(terminalSafe(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`));
    return 1;
  }
}
