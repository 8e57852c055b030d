import { execFile, spawn } from 'node:child_process';
import { copyFile, cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../helpers/database.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'custos-cli-entry-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('the custos command (issue 10 #10, #12)', () => {
  it('runs the TypeScript source when it is there, even next to an older dist/ build', async () => {
    // A package layout with the real bin/custos.js, a stale build and an edited source.
    const pkg = path.join(work, 'pkg');
    await mkdir(path.join(pkg, 'bin'), { recursive: true });
    await copyFile(path.join(ROOT, 'bin/custos.js'), path.join(pkg, 'bin/custos.js'));
    await writeFile(path.join(pkg, 'package.json'), JSON.stringify({ type: 'module' }));
    await symlink(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
    await mkdir(path.join(pkg, 'dist/src/cli'), { recursive: true });
    await writeFile(path.join(pkg, 'dist/src/cli/custos.js'), "console.log('stale build');\n");
    await mkdir(path.join(pkg, 'src/cli'), { recursive: true });
    await writeFile(path.join(pkg, 'src/cli/custos.ts'), "const edited: string = 'edited source';\nconsole.log(edited);\n");

    expect((await run(process.execPath, ['bin/custos.js'], { cwd: pkg })).stdout.trim()).toBe('edited source');
    // Without src/ (an install of the built package) the build is what there is.
    await rm(path.join(pkg, 'src'), { recursive: true });
    expect((await run(process.execPath, ['bin/custos.js'], { cwd: pkg })).stdout.trim()).toBe('stale build');
  });

  it('under an older system Node (what npx runs) it re-runs itself with the pinned Node 22, exit code included', async () => {
    const systemNode = '/usr/bin/node';
    const older = await run(systemNode, ['-p', 'process.versions.node'], { cwd: work }).then(
      ({ stdout }) => Number(stdout.split('.')[0]) < 22,
      () => false,
    );
    if (!older) return; // this machine's system Node is already 22+: nothing to re-run
    const pkg = path.join(work, 'pkg-old-node');
    await mkdir(path.join(pkg, 'bin'), { recursive: true });
    await copyFile(path.join(ROOT, 'bin/custos.js'), path.join(pkg, 'bin/custos.js'));
    await writeFile(path.join(pkg, 'package.json'), JSON.stringify({ type: 'module' }));
    await symlink(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
    await mkdir(path.join(pkg, 'src/cli'), { recursive: true });
    await writeFile(path.join(pkg, 'src/cli/custos.ts'), "console.log(process.versions.node.split('.')[0]);\nprocess.exitCode = 3;\n");
    const result = await run(systemNode, ['bin/custos.js'], { cwd: pkg }).catch((error: { code: number; stdout: string }) => error);
    expect('code' in result ? result.code : 0).toBe(3);
    expect(Number(result.stdout.trim())).toBeGreaterThanOrEqual(22);
  });

  it('a bare `custos` runs `custos serve`, as its help says', async () => {
    const { stdout } = await run(process.execPath, ['bin/custos.js', '--help'], { cwd: ROOT });
    expect(stdout).toMatch(/serve\s+run the server \(default\)/);

    const database = await createTestDatabase();
    const configDir = path.join(work, 'config');
    await cp(path.join(ROOT, 'config'), configDir, { recursive: true });
    const child = spawn(process.execPath, ['bin/custos.js'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        PORT: '0',
        ADMIN_PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: database.url,
        KEYS_DIR: path.join(work, 'keys'),
        CONFIG_DIR: configDir,
        LOG_LEVEL: 'silent',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    try {
      const deadline = Date.now() + 30_000;
      while (!output.includes('Custos is running at') && child.exitCode === null && Date.now() < deadline) await sleep(50);
      expect(output).toContain('Custos is running at');
      child.kill('SIGTERM');
      // A signal death ({ code: null, signal: 'SIGTERM' }) is a SIGTERM that came before the handler.
      expect(await exited, output).toEqual({ code: 0, signal: null });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await database.drop();
    }
  }, 60_000);
});
