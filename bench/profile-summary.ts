/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, e.g. from `npm run bench -- --profile`):
 * self time by package / Custos source / Node internals, and the top functions by self and by
 * inclusive time. Run: `npx tsx bench/profile-summary.ts bench/.work/profiles/<file>.cpuprofile [top]`.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [top]');
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number };
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const totalHits = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
const idle = profile.nodes.filter((node) => ['(idle)', '(program)', '(garbage collector)'].includes(node.callFrame.functionName));

function area(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('/src/')) return `custos ${url.slice(url.indexOf('/src/') + 1)}`;
  return url;
}

const label = (node: ProfileNode) => `${node.callFrame.functionName || '(anonymous)'} ${area(node.callFrame.url, node.callFrame.functionName)}:${node.callFrame.lineNumber + 1}`;
const pct = (hits: number) => `${((hits / totalHits) * 100).toFixed(1).padStart(5)}%`;

const selfByArea = new Map<string, number>();
const selfByFunction = new Map<string, number>();
for (const node of profile.nodes) {
  const hits = node.hitCount ?? 0;
  const key = area(node.callFrame.url, node.callFrame.functionName);
  selfByArea.set(key.startsWith('custos ') ? 'custos (src/)' : key, (selfByArea.get(key.startsWith('custos ') ? 'custos (src/)' : key) ?? 0) + hits);
  selfByFunction.set(label(node), (selfByFunction.get(label(node)) ?? 0) + hits);
}

// Inclusive hits per function (each function counted once per stack).
const inclusive = new Map<string, number>();
function walk(node: ProfileNode, onStack: Set<string>): number {
  let hits = node.hitCount ?? 0;
  const key = label(node);
  const fresh = !onStack.has(key);
  if (fresh) onStack.add(key);
  for (const child of node.children ?? []) hits += walk(byId.get(child)!, onStack);
  if (fresh) {
    onStack.delete(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + hits);
  }
  return hits;
}
walk(profile.nodes[0]!, new Set());

const print = (title: string, map: Map<string, number>, n: number) => {
  console.log(`\n${title}`);
  for (const [key, hits] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(hits)}  ${key}`);
};
console.log(`${file}: ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s, ${totalHits} samples, idle/program/gc ${pct(idle.reduce((s, n) => s + (n.hitCount ?? 0), 0))}`);
print('self time by area', selfByArea, top);
print('self time by function', selfByFunction, top);
print('inclusive time by function', inclusive, top);
