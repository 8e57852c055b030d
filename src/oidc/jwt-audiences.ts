/**
 * oidc-provider gives a JWT access token the single audience of its resource server. Custom
 * grants that address several audiences (token exchange: one event, several consumers) put the
 * list in `token.extra` under this key; the JWT customizer moves it into `aud` (RFC 7519 §4.1.3).
 */
export const AUDIENCES_EXTRA = 'custos_audiences';

/** `formats.customizers.jwt`: apply {@link AUDIENCES_EXTRA} to the JWT payload. */
export async function multiAudienceCustomizer(
  _ctx: unknown,
  _token: unknown,
  jwt: { payload: Record<string, unknown> },
): Promise<void> {
  const audiences = jwt.payload[AUDIENCES_EXTRA];
  if (audiences === undefined) return;
  delete jwt.payload[AUDIENCES_EXTRA];
  if (Array.isArray(audiences) && audiences.length > 0 && audiences.every((aud) => typeof aud === 'string')) {
    jwt.payload.aud = audiences.length === 1 ? audiences[0] : audiences;
  }
}
