/**
 * Which hosts SSF push receivers may name as `endpoint_url` (SSF_PUSH_ALLOWED_HOSTS): exact host
 * names or IP literals, and `*.example.com` for any name under example.com. No list: any host.
 * Without one, any receiver with `ssf:manage` can have Custos POST to any https URL it can reach.
 */
export function createPushHostAllowList(patterns: readonly string[] | undefined): (host: string) => boolean {
  if (!patterns || patterns.length === 0) return () => true;
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const pattern of patterns.map((p) => p.toLowerCase())) {
    if (pattern.startsWith('*.')) suffixes.push(pattern.slice(1));
    else exact.add(pattern);
  }
  return (host) => {
    const name = host.toLowerCase().replace(/^\[|\]$/g, '');
    return exact.has(name) || suffixes.some((suffix) => name.endsWith(suffix) && name.length > suffix.length);
  };
}
