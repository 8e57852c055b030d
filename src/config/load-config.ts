import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, describeIssues } from './config-error.js';
import { envSchema, type Env } from './env.js';
import { configFilesSchema, type ConfigFiles } from './files.js';

/** The validated configuration the composition root hands to every room. */
export interface AppConfig {
  env: Env;
  production: boolean;
  /** ISSUER, when set; otherwise `https://localhost:<bound port>` once the listener is up. */
  issuer?: string;
  keysDir: string;
  configDir: string;
  files: ConfigFiles;
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
 * (a key may appear in one file only), then validates the whole with zod.
 */
export function loadConfigFiles(dir: string): { files: ConfigFiles; sources: Record<string, string> } {
  if (!existsSync(dir)) throw new ConfigError([`CONFIG_DIR: directory ${dir} does not exist`]);
  const merged: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  const problems: string[] = [];
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
  return { files: result.data, sources };
}

/** Where signing keys and the dev PKI live: KEYS_DIR, or `keys/dev` outside production. */
export function resolveKeysDir(env: Env, cwd: string): string {
  return resolve(cwd, env.KEYS_DIR ?? 'keys/dev');
}

/** Loads and cross-checks environment and config files; throws {@link ConfigError}. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): AppConfig {
  const env = loadEnv(source);
  const production = env.NODE_ENV === 'production';
  const problems: string[] = [];
  if (production) {
    if (!env.KEYS_DIR) problems.push('environment variable KEYS_DIR: required in production (signing keys are never generated there)');
    if (!env.ISSUER) problems.push('environment variable ISSUER: required in production');
    if (!env.COOKIE_KEYS) problems.push('environment variable COOKIE_KEYS: required in production');
    if (!env.TLS_CERT_FILE || !env.TLS_KEY_FILE) problems.push('environment variables TLS_CERT_FILE and TLS_KEY_FILE: required in production');
    if (!env.TLS_CLIENT_CA_FILE) problems.push('environment variable TLS_CLIENT_CA_FILE: required in production (CA bundle for client certificates)');
    if (!env.DATABASE_URL) problems.push('environment variable DATABASE_URL: required in production (the embedded PostgreSQL is for development)');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const configDir = resolve(cwd, env.CONFIG_DIR);
  const { files, sources } = loadConfigFiles(configDir);
  if (production && files.demo) {
    throw new ConfigError([`${sources.demo}: demo: true — the demo configuration is refused in production`]);
  }
  return {
    env,
    production,
    issuer: env.ISSUER,
    keysDir: resolveKeysDir(env, cwd),
    configDir,
    files,
    sources,
  };
}
