import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cookieKeysFile } from '../keys/cookie-keys.js';
import { ConfigError, describeIssues } from './config-error.js';
import { withDemoBffPort } from './demo-bff-port.js';
import { envSchema, type Env } from './env.js';
import { configFilesSchema, type ConfigFiles } from './files.js';
import { ssfReceiverProductionProblems } from './ssf-receiver.js';

/** The validated configuration the composition root hands to every room. */
export interface AppConfig {
  env: Env;
  production: boolean;
  /** ISSUER, when set; otherwise `https://localhost:<bound port>` once the listener is up. */
  issuer?: string;
  keysDir: string;
  configDir: string;
  files: ConfigFiles;
  /**
   * Whether demo data (the demo user, its role) may be created at start: only in development
   * (never in production, nor in tests) and only with the demo configuration. The one switch for
   * any demo seeding: production never creates users or clients by itself.
   */
  seedDemoData: boolean;
  /** Which file each top-level config key came from, for error messages. */
  sources: Record<string, string>;
}

/** Validates environment variables; the only function that reads `process.env`. */
export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const known = Object.keys(envSchema.shape);
  const picked = Object.fromEntries(
    known.filter((key) => source[key] !== undefined && source[key] !== '').map((key) => [key, source[key]]),
  );
  const result = envSchema.safeParse(picked);
  if (!result.success) {
    throw new ConfigError(describeIssues(result.error.issues, (path) => `environment variable ${String(path[0])}`));
  }
  return result.data;
}

/**
 * Reads every `*.json` file in the config directory and merges their top-level keys
 * (a key may appear in one file only, except `demo`: every demo file carries it, and
 * `demoFiles` lists those marked `"demo": true`), then validates the whole with zod.
 */
export function loadConfigFiles(dir: string): { files: ConfigFiles; sources: Record<string, string>; demoFiles: string[] } {
  if (!existsSync(dir)) throw new ConfigError([`CONFIG_DIR: directory ${dir} does not exist`]);
  const merged: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  const problems: string[] = [];
  const demoFiles: string[] = [];
  for (const name of readdirSync(dir).filter((file) => file.endsWith('.json')).sort()) {
    const path = join(dir, name);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      problems.push(`${path}: not valid JSON (${(error as Error).message})`);
      continue;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      problems.push(`${path}: expected a JSON object`);
      continue;
    }
    for (const [key, value] of Object.entries(parsed)) {
      if (key === '$schema' || key === '$comment') continue;
      if (key in merged && key !== 'demo') {
        problems.push(`${path}: key "${key}" is already defined in ${sources[key]}`);
        continue;
      }
      merged[key] = key === 'demo' ? Boolean(merged.demo) || value : value;
      sources[key] ??= path;
      if (key === 'demo' && value === true) demoFiles.push(path);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const result = configFilesSchema.safeParse(merged);
  if (!result.success) {
    throw new ConfigError(
      describeIssues(result.error.issues, (path) => {
        const file = sources[String(path[0])] ?? dir;
        return `${file}: ${path.map(String).join('.') || '(root)'}`;
      }),
    );
  }
  return { files: result.data, sources, demoFiles };
}

/** Where development bootstrap writes keys (git-ignored). */
const DEV_KEYS_DIR = 'keys/dev';

/** Where signing keys and the dev PKI live: KEYS_DIR, or `keys/dev` outside production. */
export function resolveKeysDir(env: Env, cwd: string): string {
  return resolve(cwd, env.KEYS_DIR ?? DEV_KEYS_DIR);
}

/** Loads and cross-checks environment and config files; throws {@link ConfigError}. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): AppConfig {
  const env = loadEnv(source);
  const production = env.NODE_ENV === 'production';
  const problems: string[] = [];
  if (production) problems.push(...productionProblems(env, cwd));
  else problems.push(...partialTlsProblems(env));
  if (problems.length > 0) throw new ConfigError(problems);
  const configDir = resolve(cwd, env.CONFIG_DIR);
  const { files, sources, demoFiles } = loadConfigFiles(configDir);
  if (production && files.demo && !env.ALLOW_DEV_KEYS_IN_PRODUCTION) {
    throw new ConfigError(
      demoFiles.map(
        (file) => `${file}: demo: true — the demo configuration (and its well-known client secrets) is refused in production; register your own clients in CONFIG_DIR`,
      ),
    );
  }
  if (production && !env.ALLOW_DEV_KEYS_IN_PRODUCTION) {
    const receiverProblems = ssfReceiverProductionProblems(files.ssf_receiver, sources.ssf_receiver ?? configDir);
    if (receiverProblems.length > 0) throw new ConfigError(receiverProblems);
  }
  const seedDemoData = env.NODE_ENV === 'development' && files.demo;
  return {
    env,
    production,
    seedDemoData,
    issuer: env.ISSUER,
    keysDir: resolveKeysDir(env, cwd),
    configDir,
    files: seedDemoData && env.BFF_PORT ? withDemoBffPort(files, env.BFF_PORT) : files,
    sources,
  };
}

/**
 * Outside production the TLS files are optional (the development PKI serves instead), but only
 * all three together: one without the others would be ignored without a word.
 */
function partialTlsProblems(env: Env): string[] {
  const files = { TLS_CERT_FILE: env.TLS_CERT_FILE, TLS_KEY_FILE: env.TLS_KEY_FILE, TLS_CLIENT_CA_FILE: env.TLS_CLIENT_CA_FILE };
  const set = Object.keys(files).filter((name) => files[name as keyof typeof files]);
  if (set.length === 0 || set.length === 3) return [];
  const missing = Object.keys(files).filter((name) => !set.includes(name));
  const variables = missing.length === 1 ? 'environment variable' : 'environment variables';
  return [
    `${variables} ${missing.join(' and ')}: required with ${set.join(' and ')} (set all of TLS_CERT_FILE, TLS_KEY_FILE and TLS_CLIENT_CA_FILE, or none for the development certificates)`,
  ];
}

/**
 * What production requires and never generates: each missing item with how to provide it.
 * (An `http` ISSUER is already refused by the schema.)
 */
function productionProblems(env: Env, cwd: string): string[] {
  const problems: string[] = [];
  const missing = (name: string, how: string) => problems.push(`environment variable ${name}: required in production — ${how}`);
  if (!env.KEYS_DIR) missing('KEYS_DIR', 'the directory of the signing keys (signing/current.jwk.json, signing/next.jwk.json); create them with `custos keys init` (production never generates keys)');
  if (!env.ISSUER) missing('ISSUER', 'the public https URL of this server, e.g. https://auth.example.com (every URL in metadata and tokens derives from it)');
  if (!env.TLS_CERT_FILE) missing('TLS_CERT_FILE', 'PEM server certificate (chain) for the public listener; `custos pki issue --usage server --dns <host> --out <dir>` makes one from an internal CA');
  if (!env.TLS_KEY_FILE) missing('TLS_KEY_FILE', 'PEM private key of TLS_CERT_FILE');
  if (!env.TLS_CLIENT_CA_FILE) missing('TLS_CLIENT_CA_FILE', 'PEM bundle of the CA(s) client certificates must chain to (mutual TLS); `custos pki init` creates an internal CA');
  if (!env.DATABASE_URL) missing('DATABASE_URL', 'postgres://user:password@host:5432/custos (the embedded PostgreSQL is for development only)');
  if (!env.COOKIE_KEYS) {
    const file = env.KEYS_DIR ? cookieKeysFile(resolveKeysDir(env, cwd)) : undefined;
    if (!file || !existsSync(file)) {
      missing('COOKIE_KEYS', `comma-separated keys of at least 32 characters, or the file ${file ?? 'cookie-keys.json in the keys directory'} that \`custos keys init\` creates`);
    }
  }
  if (env.KEYS_DIR && resolveKeysDir(env, cwd) === resolve(cwd, DEV_KEYS_DIR) && !env.ALLOW_DEV_KEYS_IN_PRODUCTION) {
    problems.push(`environment variable KEYS_DIR: ${DEV_KEYS_DIR} holds development keys and is refused in production (ALLOW_DEV_KEYS_IN_PRODUCTION=true only for benchmarks)`);
  }
  return problems;
}
