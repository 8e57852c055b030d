import { spawn, type ChildProcess } from 'node:child_process';
import { buildah } from './buildah.js';

/** The run-time parts of an image's configuration (`buildah inspect`). */
export interface ImageConfig {
  User: string;
  Env: string[];
  Entrypoint: string[];
  Cmd: string[];
  WorkingDir: string;
  ExposedPorts?: Record<string, unknown>;
  Volumes?: Record<string, unknown>;
  Labels?: Record<string, string>;
  Healthcheck?: { Test: string[] };
  StopSignal?: string;
}

export async function imageConfig(image: string): Promise<ImageConfig> {
  const inspected = JSON.parse(await buildah(['inspect', '--type', 'image', image])) as { Docker: { config: ImageConfig } };
  return inspected.Docker.config;
}

/** A bind mount into the container: host path, container path, read-only or not. */
export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

/** An image's root filesystem, checked out as a working container (removed by `remove`). */
export interface Rootfs {
  path: string;
  config: ImageConfig;
  /**
   * Starts `command` (default: the image's entrypoint + cmd) as the image's user, in a private
   * mount namespace where the root filesystem is read-only, `/tmp` a tmpfs and `mounts` bound in.
   * The host network is shared (like `--network host`). The returned process is the command itself.
   */
  spawn(options: { env?: Record<string, string>; mounts?: Mount[]; command?: string[]; input?: string }): ChildProcess;
  run(options: { env?: Record<string, string>; mounts?: Mount[]; command?: string[]; input?: string }): Promise<{ code: number | null; stdout: string; stderr: string }>;
  remove(): Promise<void>;
}

// Runs in the new mount namespace as root, then enters the rootfs as the image's user.
const ENTER = `
set -eu
root=$1 wd=$2 uid=$3 gid=$4; shift 4
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777,size=64m tmpfs "$root/tmp"
while [ "$1" != -- ]; do
  mount --bind "$1" "$root$2"
  [ "$3" = ro ] && mount -o remount,bind,ro "$root$2"
  shift 3
done
shift
exec unshare --root="$root" --wd="$wd" --setuid "$uid" --setgid "$gid" -- "$@"
`;

export async function checkoutImage(image: string): Promise<Rootfs> {
  const config = await imageConfig(image);
  const container = (await buildah(['from', '--pull-never', image])).trim();
  const path = (await buildah(['mount', container])).trim();
  const [uid = '0', gid = uid] = (config.User || '0').split(':');
  const start: Rootfs['spawn'] = ({ env = {}, mounts = [], command = [...config.Entrypoint, ...config.Cmd] }) => {
    const imageEnv = Object.fromEntries(config.Env.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
    const mountArgs = mounts.flatMap((mount) => [mount.source, mount.target, mount.readOnly ? 'ro' : 'rw']);
    return spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', ENTER, 'enter', path, config.WorkingDir || '/', uid, gid, ...mountArgs, '--', ...command], {
      env: { ...imageEnv, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  };
  return {
    path,
    config,
    spawn: start,
    run(options) {
      const child = start(options);
      child.stdin!.end(options.input ?? '');
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (chunk) => (stdout += chunk));
      child.stderr!.on('data', (chunk) => (stderr += chunk));
      return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
    },
    async remove() {
      await buildah(['umount', container]).catch(() => {});
      await buildah(['rm', container]);
    },
  };
}
