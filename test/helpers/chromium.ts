/**
 * Where the page tests' browser is and whether this machine can run them; no browser library
 * is loaded here, so the test set-up can ask too.
 */
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Whether `CI` names a CI run (`CI=true`, `CI=1`; unset, empty, `false` and `0` do not). */
export function isCi(env: NodeJS.ProcessEnv): boolean {
  const value = env.CI?.trim().toLowerCase();
  return !!value && value !== 'false' && value !== '0';
}

/**
 * Why page tests cannot run here (undefined when they can; `describe.skipIf(...)` takes it):
 * `executable` is missing. Under CI a missing browser is an error, not a skip, as
 * `CUSTOS_REQUIRE_PULSAR=1` makes a missing broker one.
 */
export function browserUnavailable(executable: string, env: NodeJS.ProcessEnv): string | undefined {
  if (existsSync(executable)) return undefined;
  const reason = `${executable} not found: install Debian's chromium package (apt-get install -y chromium) or set CHROMIUM_PATH`;
  if (isCi(env)) throw new Error(`CI=${env.CI} but the browser tests cannot run: ${reason}`);
  return reason;
}
