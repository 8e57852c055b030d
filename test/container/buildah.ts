import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
/** Git-ignored cache: buildah storage (the local base image survives between runs) and debootstrap output. */
export const CACHE_DIR = path.join(ROOT, '.cache', 'container');
/** Bump when the base image recipe changes. */
const BASE_RECIPE = 2;

/** Runs a command, returning stdout; a failure carries the command and its stderr. */
export async function sh(file: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  const child = execFileAsync(file, args, { maxBuffer: 64 * 1024 * 1024, env: options.env ?? process.env, cwd: options.cwd });
  if (options.input !== undefined) child.child.stdin!.end(options.input);
  try {
    return (await child).stdout;
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`${file} ${args.join(' ')} failed:\n${(stderr || stdout || String(error)).slice(-4000)}`);
  }
}

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Installs buildah and debootstrap from Debian when missing (root only). */
export async function ensureTools(): Promise<void> {
  const missing = ['buildah', 'debootstrap'].filter((tool) => !has(tool));
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`${missing.join(' and ')} missing; install them (apt-get install ${missing.join(' ')}) or run as root`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await sh('apt-get', ['update', '-qq'], { env });
  await sh('apt-get', ['install', '-y', '-qq', ...missing], { env });
}

/** buildah with its own storage under the cache (vfs: works on any filesystem, no fuse or overlay). */
export function buildah(args: string[], options: { input?: string } = {}): Promise<string> {
  return sh(
    'buildah',
    ['--root', path.join(CACHE_DIR, 'storage'), '--runroot', path.join(CACHE_DIR, 'runroot'), '--storage-driver', 'vfs', ...args],
    options,
  );
}

export async function imageExists(name: string): Promise<boolean> {
  return buildah(['inspect', '--type', 'image', name]).then(
    () => true,
    () => false,
  );
}

interface AptSource {
  uri: string;
  suite: string;
  components: string[];
}

/** The Debian mirror this machine's apt uses (deb822 `*.sources` and one-line `*.list` files). */
export function debianMirror(codename: string): string {
  const files = ['/etc/apt/sources.list', ...listDir('/etc/apt/sources.list.d')].filter((file) => existsSync(file));
  const sources: AptSource[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const block of text.split(/\n\s*\n/)) {
        const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'mi').exec(block)?.[1]?.trim().split(/\s+/) ?? [];
        if (!field('Types').includes('deb')) continue;
        for (const uri of field('URIs')) for (const suite of field('Suites')) sources.push({ uri, suite, components: field('Components') });
      }
    } else {
      for (const line of text.split('\n')) {
        const match = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$/.exec(line.trim());
        if (match) sources.push({ uri: match[1]!, suite: match[2]!, components: match[3]!.split(/\s+/) });
      }
    }
  }
  const mirror = sources.find((source) => source.suite === codename && source.components.includes('main'));
  if (!mirror) throw new Error(`no apt source for Debian ${codename} main in ${files.join(', ')}`);
  return mirror.uri;
}

function listDir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).map((name) => path.join(dir, name)) : [];
}

function osCodename(): string {
  const match = /^VERSION_CODENAME=(\S+)$/m.exec(readFileSync('/etc/os-release', 'utf8'));
  if (!match) throw new Error('/etc/os-release has no VERSION_CODENAME: not a Debian machine?');
  return match[1]!;
}

/** The Node 22 binary of the `node` npm package the project pins. */
function pinnedNode(): { binary: string; version: string } {
  const binary = path.join(ROOT, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(binary)) throw new Error(`${binary} missing: run npm ci first`);
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.trim();
  return { binary, version };
}

/** The npm of this machine (pure JavaScript), for the build stage. */
async function hostNpmDir(): Promise<string> {
  const root = (await sh('npm', ['root', '-g'])).trim();
  const dir = path.join(root, 'npm');
  if (!existsSync(path.join(dir, 'bin', 'npm-cli.js'))) throw new Error(`npm not found in ${root}`);
  return dir;
}

const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/**
 * A local stand-in for `node:22-bookworm-slim` (no registry is reachable here): Debian minbase from
 * this machine's mirror, the pinned Node 22 binary in /usr/local/bin, this machine's npm for the
 * build stage, and this machine's CA bundle so npm reaches the registry through a TLS-inspecting
 * egress proxy (npm only: Node's own store is untouched). Built once and cached by content tag.
 */
export async function ensureBaseImage(log: (message: string) => void): Promise<string> {
  const codename = osCodename();
  const node = pinnedNode();
  const npmDir = await hostNpmDir();
  const npmVersion = JSON.parse(readFileSync(path.join(npmDir, 'package.json'), 'utf8')).version as string;
  const caBundle = existsSync(CA_BUNDLE) ? readFileSync(CA_BUNDLE) : undefined;
  const hash = createHash('sha256').update(`${BASE_RECIPE} ${codename} ${node.version} ${npmVersion}`).update(caBundle ?? '').digest('hex').slice(0, 12);
  const tag = `localhost/custos-test-base:${node.version.replace(/^v/, '')}-${codename}-${hash}`;
  if (await imageExists(tag)) {
    log(`base image ${tag} (cached)`);
    return tag;
  }
  const mirror = debianMirror(codename);
  await mkdir(CACHE_DIR, { recursive: true });
  const rootfs = await mkdtemp(path.join(CACHE_DIR, 'rootfs-'));
  let container: string | undefined;
  try {
    log(`debootstrap --variant=minbase ${codename} from ${mirror}`);
    await sh('debootstrap', ['--variant=minbase', codename, rootfs, mirror]);
    // What a slim image leaves out: package caches and lists, documentation.
    for (const dir of ['var/cache/apt', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/info']) {
      await rm(path.join(rootfs, dir), { recursive: true, force: true });
    }
    await mkdir(path.join(rootfs, 'var/lib/apt/lists/partial'), { recursive: true });
    await cp(node.binary, path.join(rootfs, 'usr/local/bin/node'));
    await chmod(path.join(rootfs, 'usr/local/bin/node'), 0o755);
    await mkdir(path.join(rootfs, 'usr/local/lib/node_modules'), { recursive: true });
    await cp(npmDir, path.join(rootfs, 'usr/local/lib/node_modules/npm'), { recursive: true });
    await symlink('../lib/node_modules/npm/bin/npm-cli.js', path.join(rootfs, 'usr/local/bin/npm'));
    await symlink('../lib/node_modules/npm/bin/npx-cli.js', path.join(rootfs, 'usr/local/bin/npx'));
    if (caBundle) {
      await mkdir(path.join(rootfs, 'etc/ssl/certs'), { recursive: true });
      await writeFile(path.join(rootfs, 'etc/ssl/certs/ca-certificates.crt'), caBundle);
      await mkdir(path.join(rootfs, 'usr/local/etc'), { recursive: true });
      await writeFile(path.join(rootfs, 'usr/local/etc/npmrc'), 'cafile=/etc/ssl/certs/ca-certificates.crt\n');
    }
    container = (await buildah(['from', 'scratch'])).trim();
    const mount = (await buildah(['mount', container])).trim();
    await sh('cp', ['-a', `${rootfs}/.`, `${mount}/`]);
    await buildah(['umount', container]);
    await buildah(['config', '--env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '--cmd', 'node', container]);
    await buildah(['commit', '--rm', container, tag]);
    container = undefined;
    // Bases of older recipes or Node versions are not needed any more.
    const stale = (await buildah(['images', '--format', '{{.Name}}:{{.Tag}}'])).split('\n').filter((name) => name.startsWith('localhost/custos-test-base:') && name !== tag);
    if (stale.length > 0) await buildah(['rmi', ...stale]).catch(() => {});
    log(`base image ${tag} committed`);
    return tag;
  } finally {
    if (container) await buildah(['rm', container]).catch(() => {});
    await rm(rootfs, { recursive: true, force: true });
  }
}
