/** The action catalogue of §10.7: what a credential may do. */
export const ACTIONS = [
  'pca:ca:create',
  'pca:ca:get',
  'pca:ca:list',
  'pca:ca:export',
  'pca:ca:import',
  'pca:ca:delete',
  'pca:ca:issueCert',
  'pca:ca:quota',
  'pca:cert:quota',
  'pca:cert:get',
  'pca:cert:list',
  'pca:cert:export',
  'pca:cert:revoke',
  'pca:cert:delete',
  'pca:billing:list',
  /** Extension (issue #16): create, list and revoke ACME External Account Binding keys. */
  'pca:acme:eab',
] as const;
export type Action = (typeof ACTIONS)[number];

export function isAction(value: string): value is Action {
  return (ACTIONS as readonly string[]).includes(value);
}

/** Who is calling: established by authentication, carried on the request. */
export interface Principal {
  domainId: string;
  /** Access key id (AK/SK, or the key a JWT was issued for), or the dev subject for development tokens. */
  subject: string;
  actions: ReadonlySet<string>;
  via: 'jwt' | 'aksk';
  /** Set for a temporary access key (X-Security-Token): the permanent key that issued it. */
  issuer?: string;
  /** Set for a token exchanged for an access key: that key, which may have been deleted since. */
  exchangedFor?: string;
}
