/** The CA hierarchy as a tree (root -> subordinates), and creating a root or subordinate CA. */
import { useRef, useState } from 'preact/hooks';
import { json } from '../api.ts';
import { chargingMode, ErrorBanner, Expiry, Field, Prepaid, Status, useAction, useEscapeCloses, useResource, useTitle } from '../ui.tsx';

export type Ca = Record<string, any>;
export const CAS = '/v1/private-certificate-authorities';
const PAGE = 100;

/** Every CA of the domain, page by page. */
export async function allCas(): Promise<Ca[]> {
  const cas: Ca[] = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await json<{ total: number; certificate_authorities: Ca[] }>('GET', CAS, { query: { limit: PAGE, offset } });
    cas.push(...page.certificate_authorities);
    if (cas.length >= page.total || page.certificate_authorities.length === 0) return cas;
  }
}

function Node({ ca, subordinates }: { ca: Ca; subordinates: Map<string, Ca[]> }) {
  const below = subordinates.get(ca.ca_id) ?? [];
  return (
    <li>
      {/* One cell per column (style.css lines them up at every depth and drops the minor ones on narrow screens). */}
      <div class="node" data-test="ca-node">
        <a class="node-name" href={`#/cas/${ca.ca_id}`}>
          {ca.distinguished_name?.common_name ?? ca.ca_id}
        </a>
        <span class="node-type muted">{ca.type}</span>
        <span class="node-status">
          <Status value={ca.status} />
        </span>
        <span class="node-key">{ca.key_algorithm ?? '–'}</span>
        <span class="node-path" title="path length">
          path {ca.path_length}
        </span>
        <span class="node-expiry">
          <Expiry at={ca.not_after} />
        </span>
        <span class="node-billing muted">{chargingMode(ca.charging_mode)}</span>
        <span class="node-prepaid">
          <Prepaid ca={ca} />
        </span>
      </div>
      {below.length > 0 && (
        <ul>
          {below.map((child) => (
            <Node key={child.ca_id} ca={child} subordinates={subordinates} />
          ))}
        </ul>
      )}
    </li>
  );
}

export const KEY_ALGORITHMS = ['EC256', 'EC384', 'EC521', 'RSA2048', 'RSA3072', 'RSA4096'];
export const HASHES = ['SHA256', 'SHA384', 'SHA512'];
const DN_FIELDS = [
  ['common_name', 'Common name'],
  ['organization', 'Organization'],
  ['organizational_unit', 'Organizational unit'],
  ['country', 'Country (2 letters)'],
  ['state', 'State'],
  ['locality', 'Locality'],
] as const;

/**
 * Whether a CA can sign a subordinate: ACTIVED, with path length left (a CA with path length 0 signs no CA), and not
 * frozen (freeze_flag 1: its paid period is over and the API refuses it as an issuer, 403 PCA.00030202).
 */
export const signsCas = (ca: Ca) => ca.status === 'ACTIVED' && ca.path_length > 0 && ca.freeze_flag !== 1;

/** A CA form as typed: every field a string, turned into a request by caSettings. */
export function useCaForm() {
  const [form, setForm] = useState<Record<string, string>>({
    type: 'ROOT',
    issuer_id: '',
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity_type: 'YEAR',
    validity_value: '10',
    path_length: '',
    country: 'CN',
  });
  const set = (name: string) => (event: Event) => setForm({ ...form, [name]: (event.target as HTMLInputElement).value });
  return { form, set };
}

/** The CA a form describes, as §4.2.1 creates it and §4.2.4 configures a yearly/monthly one. */
export function caSettings(form: Record<string, string>) {
  const subordinate = form.type === 'SUBORDINATE';
  return {
    type: form.type,
    distinguished_name: Object.fromEntries(DN_FIELDS.map(([name]) => [name, form[name] ?? ''])),
    key_algorithm: form.key_algorithm,
    signature_algorithm: form.signature_algorithm,
    validity: { type: form.validity_type, value: Number(form.validity_value) },
    ...(subordinate && form.issuer_id ? { issuer_id: form.issuer_id } : {}),
    ...(subordinate && form.path_length !== '' ? { path_length: Number(form.path_length) } : {}),
  };
}

/** A CA's fields: type, issuer (of a subordinate), distinguished name, algorithms, validity and path length. */
export function CaFields({
  form,
  set,
  cas,
  noIssuer,
}: {
  form: Record<string, string>;
  set: (name: string) => (event: Event) => void;
  /** The domain's CAs: those that can sign a subordinate are offered as its issuer. */
  cas: Ca[];
  /** What choosing no issuer means. */
  noIssuer: string;
}) {
  return (
    <div class="grid">
      <Field label="Type">
        <select name="type" value={form.type} onChange={set('type')}>
          <option value="ROOT">Root</option>
          <option value="SUBORDINATE">Subordinate</option>
        </select>
      </Field>
      {form.type === 'SUBORDINATE' && (
        <Field label="Issuer">
          <select name="issuer_id" value={form.issuer_id} onChange={set('issuer_id')}>
            <option value="">{noIssuer}</option>
            {cas.filter(signsCas).map((ca) => (
              <option key={ca.ca_id} value={ca.ca_id}>
                {ca.distinguished_name?.common_name}
              </option>
            ))}
          </select>
        </Field>
      )}
      {DN_FIELDS.map(([name, label]) => (
        <Field key={name} label={label}>
          <input name={name} value={form[name] ?? ''} onInput={set(name)} />
        </Field>
      ))}
      <Field label="Key algorithm">
        <select name="key_algorithm" value={form.key_algorithm} onChange={set('key_algorithm')}>
          {KEY_ALGORITHMS.map((alg) => (
            <option key={alg}>{alg}</option>
          ))}
        </select>
      </Field>
      <Field label="Signature hash">
        <select name="signature_algorithm" value={form.signature_algorithm} onChange={set('signature_algorithm')}>
          {HASHES.map((hash) => (
            <option key={hash}>{hash}</option>
          ))}
        </select>
      </Field>
      <Field label="Validity">
        <span class="row">
          <input name="validity_value" type="number" min="1" value={form.validity_value} onInput={set('validity_value')} />
          <select name="validity_type" aria-label="Validity unit" value={form.validity_type} onChange={set('validity_type')}>
            <option>YEAR</option>
            <option>MONTH</option>
            <option>DAY</option>
          </select>
        </span>
      </Field>
      {form.type === 'SUBORDINATE' && (
        <Field label="Path length (optional)">
          <input name="path_length" type="number" min="0" value={form.path_length} onInput={set('path_length')} />
        </Field>
      )}
    </div>
  );
}

function CreateCa({ cas, onCreated }: { cas: Ca[]; onCreated: (id: string) => void }) {
  const { form, set } = useCaForm();
  const action = useAction();
  const submit = async (event: Event) => {
    event.preventDefault();
    const subordinate = form.type === 'SUBORDINATE';
    if (!confirm(`Create the ${subordinate ? 'subordinate' : 'root'} CA "${form.common_name ?? ''}"?`)) return;
    await action.run(async () => {
      const created = await json<{ ca_id: string }>('POST', CAS, { body: caSettings(form) });
      onCreated(created.ca_id);
    });
  };
  return (
    <form class="panel" onSubmit={submit} data-test="create-ca">
      <h3>Create a CA</h3>
      {/* A subordinate without an issuer waits PENDING for its certificate (CSR import or activation). */}
      <CaFields form={form} set={set} cas={cas} noIssuer="external parent (stays PENDING)" />
      <button type="submit" disabled={action.busy}>
        Create
      </button>
      <ErrorBanner error={action.error} />
    </form>
  );
}

export function CaTreePage() {
  const { data: cas, error, reload } = useResource(allCas, []);
  const [creating, setCreating] = useState(false);
  const createButton = useRef<HTMLButtonElement>(null);
  useEscapeCloses(creating, () => setCreating(false), createButton);
  useTitle('CAs');
  if (error) return <ErrorBanner error={error} />;
  if (!cas) return <p>Loading…</p>;
  const ids = new Set(cas.map((ca) => ca.ca_id));
  const subordinates = new Map<string, Ca[]>();
  for (const ca of cas) {
    if (ca.issuer_id && ids.has(ca.issuer_id)) subordinates.set(ca.issuer_id, [...(subordinates.get(ca.issuer_id) ?? []), ca]);
  }
  const roots = cas.filter((ca) => !ca.issuer_id || !ids.has(ca.issuer_id));
  return (
    <section>
      <header class="bar">
        <h2>Certificate authorities</h2>
        <button type="button" ref={createButton} aria-expanded={creating} onClick={() => setCreating(!creating)}>
          {creating ? 'Close' : 'Create CA'}
        </button>
      </header>
      {creating && (
        <CreateCa
          cas={cas}
          onCreated={() => {
            setCreating(false);
            reload();
          }}
        />
      )}
      {roots.length === 0 ? (
        <p>No CA yet: create a root CA to start.</p>
      ) : (
        <ul class="tree" data-test="ca-tree">
          {roots.map((ca) => (
            <Node key={ca.ca_id} ca={ca} subordinates={subordinates} />
          ))}
        </ul>
      )}
    </section>
  );
}
