/**
 * One CA: its names, URN, CRL/OCSP settings, quota, tags and certificates, the lifecycle actions (each confirmed),
 * activation of a PENDING CA (set-up of a yearly/monthly one), and issuing a certificate from a CSR or with a
 * server-made key.
 */
import { useState } from 'preact/hooks';
import { download, json } from '../api.ts';
import { chargingMode, ErrorBanner, Expiry, Field, formatTime, Prepaid, Status, useAction, useResource, useTitle } from '../ui.tsx';
import { allCas, CaFields, CAS, caSettings, KEY_ALGORITHMS, signsCas, type Ca, useCaForm } from './cas.tsx';
import { CertificateTable, REVOCATION_REASONS } from './certificates.tsx';

const CERTIFICATES = '/v1/private-certificates';

function Facts({ ca }: { ca: Ca }) {
  const dn = ca.distinguished_name ?? {};
  const [copied, setCopied] = useState(false);
  const rows: [string, unknown][] = [
    ['Common name', dn.common_name],
    ['Organization', dn.organization],
    ['Organizational unit', dn.organizational_unit],
    ['Country / state / locality', [dn.country, dn.state, dn.locality].filter(Boolean).join(' / ')],
    ['Type', ca.type],
    ['Issuer', ca.issuer_name ?? (ca.type === 'ROOT' ? 'self-signed' : '–')],
    ['Key algorithm', ca.key_algorithm],
    ['Signature hash', ca.signature_algorithm],
    ['Path length', ca.path_length],
    ['Serial number', ca.serial_number],
    ['Valid from', formatTime(ca.not_before)],
    ['Billing', chargingMode(ca.charging_mode)],
    ['Free certificates left', ca.free_quota],
  ];
  return (
    <table class="facts">
      <tbody>
        {rows.map(([label, value]) => (
          <tr key={label}>
            <th>{label}</th>
            <td>{value === null || value === undefined || value === '' ? '–' : String(value)}</td>
          </tr>
        ))}
        <tr>
          <th>Expires</th>
          <td>
            <Expiry at={ca.not_after} />
          </td>
        </tr>
        {ca.charging_mode === 0 && (
          <tr>
            <th>Paid period</th>
            <td>
              <Prepaid ca={ca} />
            </td>
          </tr>
        )}
        <tr>
          <th>URN</th>
          <td>
            <code data-test="urn">{ca.urn}</code>{' '}
            <button
              type="button"
              class="small"
              onClick={() =>
                navigator.clipboard.writeText(ca.urn).then(
                  () => setCopied(true),
                  () => setCopied(false),
                )
              }
            >
              {copied ? 'Copied' : 'Copy'}
            </button>
          </td>
        </tr>
      </tbody>
    </table>
  );
}

function Revocation({ ca, onChange }: { ca: Ca; onChange: () => void }) {
  const action = useAction();
  const crl = ca.crl_configuration ?? {};
  const [validDays, setValidDays] = useState(String(crl.valid_days ?? 7));
  const base = `${CAS}/${ca.ca_id}`;
  const toggleCrl = (event: Event) => {
    const enable = (event.target as HTMLInputElement).checked;
    void action
      .run(() =>
        enable ? json('POST', `${base}/crl/enable`, { body: { valid_days: Number(validDays) } }) : json('POST', `${base}/crl/disable`),
      )
      .then(onChange);
  };
  const ocsp = (enabled: boolean) => {
    if (confirm(`${enabled ? 'Enable' : 'Disable'} the OCSP responder for this CA?`)) {
      void action.run(() => json('POST', `${base}/ocsp/switch`, { body: { ocsp_switch: enabled } })).then(onChange);
    }
  };
  return (
    <div class="panel">
      <h3>CRL and OCSP</h3>
      <label class="switch">
        <input type="checkbox" name="crl" checked={Boolean(crl.enabled)} onChange={toggleCrl} /> CRL published
      </label>
      <Field label="CRL validity (days, 7–30)">
        <input
          name="valid_days"
          type="number"
          value={validDays}
          onInput={(event) => setValidDays((event.target as HTMLInputElement).value)}
        />
      </Field>
      {crl.crl_dis_point && (
        <p>
          Distribution point: <code>{crl.crl_dis_point}</code>
        </p>
      )}
      <p>
        OCSP responder:{' '}
        <button type="button" onClick={() => ocsp(true)}>
          Enable
        </button>{' '}
        <button type="button" onClick={() => ocsp(false)}>
          Disable
        </button>
      </p>
      <ErrorBanner error={action.error} />
    </div>
  );
}

function Tags({ ca }: { ca: Ca }) {
  const { data, error, reload } = useResource(
    () => json<{ tags: { key: string; value: string }[] }>('GET', `${CAS}/${ca.ca_id}/tags`),
    [ca.ca_id],
  );
  const [tag, setTag] = useState({ key: '', value: '' });
  const action = useAction();
  const add = async (event: Event) => {
    event.preventDefault();
    if (await action.run(() => json('POST', `${CAS}/${ca.ca_id}/tags/create`, { body: { tags: [tag] } }))) {
      setTag({ key: '', value: '' });
      reload();
    }
  };
  return (
    <div class="panel">
      <h3>Tags</h3>
      <ErrorBanner error={error} />
      <p>{data?.tags.length ? data.tags.map((t) => <span key={t.key} class="badge">{`${t.key}=${t.value}`}</span>) : 'No tags'}</p>
      {/* §6.1: a DELETED CA's tags are read-only until it is restored. */}
      {ca.status !== 'DELETED' && (
        <form class="row" onSubmit={add}>
          <input
            placeholder="key"
            aria-label="Tag key"
            value={tag.key}
            onInput={(e) => setTag({ ...tag, key: (e.target as HTMLInputElement).value })}
          />
          <input
            placeholder="value"
            aria-label="Tag value"
            value={tag.value}
            onInput={(e) => setTag({ ...tag, value: (e.target as HTMLInputElement).value })}
          />
          <button type="submit">Add tag</button>
        </form>
      )}
      <ErrorBanner error={action.error} />
    </div>
  );
}

function Lifecycle({ ca, onChange }: { ca: Ca; onChange: () => void }) {
  const action = useAction();
  const [pendingDays, setPendingDays] = useState('7');
  const [reason, setReason] = useState('UNSPECIFIED');
  const base = `${CAS}/${ca.ca_id}`;
  const act = (question: string, request: () => Promise<unknown>) => {
    if (confirm(question)) void action.run(request).then(onChange);
  };
  const exportCa = () =>
    action.run(async () => {
      const { certificate, certificate_chain } = await json<{ certificate: string; certificate_chain: string }>('POST', `${base}/export`);
      // A root's chain is the root itself (§4.2.6): written once.
      const pem =
        certificate_chain.trim() === certificate.trim() ? certificate.trim() : `${certificate.trim()}\n${certificate_chain.trim()}`;
      download(`${ca.distinguished_name?.common_name ?? ca.ca_id}-ca.pem`, `${pem}\n`);
    });
  return (
    <div class="panel actions">
      <h3>Lifecycle</h3>
      {ca.status === 'ACTIVED' && (
        <button type="button" onClick={() => act('Disable this CA? It stops issuing.', () => json('POST', `${base}/disable`))}>
          Disable
        </button>
      )}
      {ca.status === 'DISABLED' && (
        <button type="button" onClick={() => act('Enable this CA?', () => json('POST', `${base}/enable`))}>
          Enable
        </button>
      )}
      {ca.status === 'DELETED' && (
        <button type="button" onClick={() => act('Restore this CA?', () => json('POST', `${base}/restore`))}>
          Restore
        </button>
      )}
      {['ACTIVED', 'EXPIRED'].includes(ca.status) && (
        <button type="button" onClick={exportCa}>
          Download certificate and chain
        </button>
      )}
      {ca.status === 'PENDING' && (
        <button
          type="button"
          class="danger"
          onClick={() => {
            // §4.2.8: a PENDING CA has no certificate and is removed at once, not scheduled.
            if (confirm('Delete this pending CA now? It has no certificate yet; it is removed at once.'))
              void action
                .run(() => json('DELETE', base))
                .then((done) => {
                  if (done) location.hash = '#/cas';
                });
          }}
        >
          Delete
        </button>
      )}
      {['DISABLED', 'EXPIRED'].includes(ca.status) && (
        <span class="row">
          <input
            name="pending_days"
            aria-label="Days until deletion (7-30)"
            type="number"
            min="7"
            max="30"
            value={pendingDays}
            onInput={(e) => setPendingDays((e.target as HTMLInputElement).value)}
          />
          <button
            type="button"
            class="danger"
            onClick={() =>
              act(`Schedule the deletion of this CA in ${pendingDays} days?`, () =>
                json('DELETE', base, { query: { pending_days: pendingDays } }),
              )
            }
          >
            Schedule deletion
          </button>
        </span>
      )}
      {ca.type === 'SUBORDINATE' && ['ACTIVED', 'DISABLED', 'EXPIRED'].includes(ca.status) && (
        <span class="row">
          <select
            name="ca_reason"
            aria-label="CA revocation reason"
            value={reason}
            onChange={(e) => setReason((e.target as HTMLSelectElement).value)}
          >
            {REVOCATION_REASONS.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
          <button
            type="button"
            class="danger"
            onClick={() =>
              act('Revoke this subordinate CA? This cannot be undone.', () => json('POST', `${base}/revoke`, { body: { reason } }))
            }
          >
            Revoke CA
          </button>
        </span>
      )}
      {ca.delete_time && <p class="warn">Deletion scheduled for {formatTime(ca.delete_time)}</p>}
      <ErrorBanner error={action.error} />
    </div>
  );
}

/** A PENDING CA: its CSR signed outside and imported, or activation under one of this service's CAs. */
function Activation({ ca, onChange }: { ca: Ca; onChange: () => void }) {
  const csr = useResource(() => json<{ csr: string }>('GET', `${CAS}/${ca.ca_id}/csr`), [ca.ca_id]);
  const issuers = useResource(allCas, []);
  const [certificate, setCertificate] = useState('');
  const [chain, setChain] = useState('');
  const [issuer, setIssuer] = useState('');
  const action = useAction();
  const importSigned = (event: Event) => {
    event.preventDefault();
    if (confirm('Import this certificate and activate the CA?')) {
      void action.run(() => json('POST', `${CAS}/${ca.ca_id}/import`, { body: { certificate, certificate_chain: chain } })).then(onChange);
    }
  };
  const activate = () => {
    if (confirm('Sign this CA under the chosen issuer and activate it?')) {
      void action
        .run(() =>
          json('POST', `${CAS}/${ca.ca_id}/activate`, {
            body: { issuer_id: issuer, signature_algorithm: 'SHA256', validity: { type: 'YEAR', value: 1 } },
          }),
        )
        .then(onChange);
    }
  };
  return (
    <div class="panel">
      <h3>Activate this pending CA</h3>
      <ErrorBanner error={csr.error} />
      {csr.data && (
        <p>
          <button type="button" onClick={() => download(`${ca.ca_id}.csr`, csr.data!.csr)}>
            Download CSR
          </button>
        </p>
      )}
      <form onSubmit={importSigned}>
        <Field label="Signed certificate (PEM)">
          <textarea
            name="import_certificate"
            rows={5}
            value={certificate}
            onInput={(e) => setCertificate((e.target as HTMLTextAreaElement).value)}
          />
        </Field>
        <Field label="Chain up to the root (PEM)">
          <textarea name="import_chain" rows={5} value={chain} onInput={(e) => setChain((e.target as HTMLTextAreaElement).value)} />
        </Field>
        <button type="submit">Import and activate</button>
      </form>
      <p class="row">
        or sign it here under
        <select name="activate_issuer" value={issuer} onChange={(e) => setIssuer((e.target as HTMLSelectElement).value)}>
          <option value="">choose an issuer</option>
          {(issuers.data ?? []).filter(signsCas).map((other) => (
            <option key={other.ca_id} value={other.ca_id}>
              {other.distinguished_name?.common_name}
            </option>
          ))}
        </select>
        <button type="button" onClick={activate}>
          Activate (1 year)
        </button>
      </p>
      <ErrorBanner error={action.error} />
    </div>
  );
}

/**
 * A yearly/monthly CA bought (§4.2.2) and not set up yet: no type, name or key, so no CSR to export or certificate to
 * import; only an activation that names them configures it (§4.2.4).
 */
const unconfigured = (ca: Ca) => ca.status === 'PENDING' && ca.charging_mode === 0 && ca.type === null;

function SetUp({ ca, onChange }: { ca: Ca; onChange: () => void }) {
  const cas = useResource(allCas, []);
  const { form, set } = useCaForm();
  const action = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    if (confirm(`Set this CA up as the ${form.type === 'SUBORDINATE' ? 'subordinate' : 'root'} CA "${form.common_name ?? ''}"?`)) {
      void action.run(() => json('POST', `${CAS}/${ca.ca_id}/activate`, { body: caSettings(form) })).then(onChange);
    }
  };
  return (
    <form class="panel" onSubmit={submit} data-test="set-up-ca">
      <h3>Set up this yearly/monthly CA</h3>
      <ErrorBanner error={cas.error} />
      <CaFields form={form} set={set} cas={cas.data ?? []} noIssuer="choose an issuer" />
      <button type="submit" disabled={action.busy}>
        Set up and activate
      </button>
      <ErrorBanner error={action.error} />
    </form>
  );
}

function Issue({ ca, onIssued }: { ca: Ca; onIssued: (id: string) => void }) {
  const [mode, setMode] = useState<'csr' | 'server'>('csr');
  const [form, setForm] = useState<Record<string, string>>({
    csr: '',
    common_name: '',
    san: '',
    key_algorithm: 'EC256',
    validity_value: '30',
    validity_type: 'DAY',
  });
  const action = useAction();
  const set = (name: string) => (event: Event) => setForm({ ...form, [name]: (event.target as HTMLInputElement).value });
  const submit = async (event: Event) => {
    event.preventDefault();
    const validity = { type: form.validity_type, value: Number(form.validity_value) };
    await action.run(async () => {
      const sans = form.san
        .split(',')
        .map((name) => name.trim())
        .filter(Boolean)
        .map((value) => ({ type: 'DNS', value }));
      const { certificate_id } =
        mode === 'csr'
          ? await json<{ certificate_id: string }>('POST', `${CERTIFICATES}/csr`, {
              body: { issuer_id: ca.ca_id, csr: form.csr, validity },
            })
          : await json<{ certificate_id: string }>('POST', CERTIFICATES, {
              body: {
                issuer_id: ca.ca_id,
                distinguished_name: { common_name: form.common_name },
                key_algorithm: form.key_algorithm,
                validity,
                ...(sans.length ? { subject_alternative_names: sans } : {}),
              },
            });
      onIssued(certificate_id);
    });
  };
  return (
    <form class="panel" onSubmit={submit} data-test="issue">
      <h3>Issue a certificate</h3>
      <p class="row">
        <label>
          <input type="radio" name="mode" checked={mode === 'csr'} onChange={() => setMode('csr')} /> from a CSR
        </label>
        <label>
          <input type="radio" name="mode" checked={mode === 'server'} onChange={() => setMode('server')} /> with a server-made key
        </label>
      </p>
      {mode === 'csr' ? (
        <Field label="CSR (PEM)">
          <textarea name="csr" rows={8} value={form.csr} onInput={set('csr')} />
        </Field>
      ) : (
        <div class="grid">
          <Field label="Common name">
            <input name="common_name" value={form.common_name} onInput={set('common_name')} />
          </Field>
          <Field label="DNS names (comma-separated)">
            <input name="san" value={form.san} onInput={set('san')} />
          </Field>
          <Field label="Key algorithm">
            <select name="cert_key_algorithm" value={form.key_algorithm} onChange={set('key_algorithm')}>
              {KEY_ALGORITHMS.map((alg) => (
                <option key={alg}>{alg}</option>
              ))}
            </select>
          </Field>
        </div>
      )}
      <Field label="Validity">
        <span class="row">
          <input name="cert_validity_value" type="number" min="1" value={form.validity_value} onInput={set('validity_value')} />
          <select name="cert_validity_type" aria-label="Validity unit" value={form.validity_type} onChange={set('validity_type')}>
            <option>DAY</option>
            <option>MONTH</option>
            <option>YEAR</option>
            <option>HOUR</option>
          </select>
        </span>
      </Field>
      <button type="submit" disabled={action.busy}>
        Issue
      </button>
      <ErrorBanner error={action.error} />
    </form>
  );
}

/** The CA page lists its newest certificates; the certificate list pages through all. */
const SHOWN_CERTIFICATES = 100;

export function CaDetailPage({ id }: { id: string }) {
  const { data: ca, error, reload } = useResource(() => json<Ca>('GET', `${CAS}/${id}`), [id]);
  const quotas = useResource(
    () => json<{ quotas: { resources: { type: string; used: number; quota: number }[] } }>('GET', `${CAS}/quotas`),
    [],
  );
  const certificates = useResource(
    () =>
      json<{ total: number; certificates: Record<string, any>[] }>('GET', CERTIFICATES, {
        query: { issuer_id: id, limit: SHOWN_CERTIFICATES, sort_key: 'create_time', sort_dir: 'DESC' },
      }),
    [id],
  );
  const name = ca?.distinguished_name?.common_name ?? ca?.ca_id;
  useTitle(name ?? 'CA');
  if (error) return <ErrorBanner error={error} />;
  if (!ca) return <p>Loading…</p>;
  const refresh = () => {
    reload();
    certificates.reload();
  };
  return (
    <section data-test="ca-detail">
      <header class="bar">
        <h2>
          {name} <Status value={ca.status} />
        </h2>
        <a href="#/cas">All CAs</a>
      </header>
      <div class="columns">
        <div>
          <Facts ca={ca} />
          {quotas.data && (
            <p class="muted">
              Domain quota:{' '}
              {quotas.data.quotas.resources.map((resource) => `${resource.type} ${resource.used}/${resource.quota}`).join(', ')}
            </p>
          )}
          {/* A CSR-issued CA has no tags (§4.4.2). */}
          {ca.gen_mode !== 'CSR' && <Tags ca={ca} />}
        </div>
        <div>
          <Lifecycle ca={ca} onChange={refresh} />
          {unconfigured(ca) ? <SetUp ca={ca} onChange={refresh} /> : ca.status === 'PENDING' && <Activation ca={ca} onChange={refresh} />}
          {/* §6.1: settable in every status but DELETED, a yearly/monthly CA not set up yet included (the API takes them). */}
          {/* Keyed by status: a refusal shown for one status is gone once the CA has changed (restored, say). */}
          {ca.gen_mode !== 'CSR' && ca.status !== 'DELETED' && <Revocation key={ca.status} ca={ca} onChange={reload} />}
        </div>
      </div>
      {ca.status === 'ACTIVED' &&
        (ca.freeze_flag === 1 ? (
          <p class="panel warn" data-test="frozen">
            Frozen: renew to issue. The paid period is over; the API refuses certificates and subordinate CAs from this CA until it is
            renewed.
          </p>
        ) : (
          <Issue ca={ca} onIssued={(certificateId) => (location.hash = `#/certificates/${certificateId}`)} />
        ))}
      <h3>Certificates issued by this CA</h3>
      <ErrorBanner error={certificates.error} />
      {certificates.data && certificates.data.total > certificates.data.certificates.length && (
        <p class="muted">
          The newest {certificates.data.certificates.length} of {certificates.data.total}.
        </p>
      )}
      <CertificateTable certificates={certificates.data?.certificates ?? []} />
    </section>
  );
}
