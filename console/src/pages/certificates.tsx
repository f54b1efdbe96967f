/** The certificate list (search, status filter, sorting, paging) and one certificate: revoke, download, delete. */
import { useState } from 'preact/hooks';
import { call, download, json } from '../api.ts';
import { ErrorBanner, Expiry, Field, formatTime, Pager, Status, useAction, useResource, useTitle } from '../ui.tsx';

const CERTIFICATES = '/v1/private-certificates';
export const REVOCATION_REASONS = [
  'UNSPECIFIED',
  'KEY_COMPROMISE',
  'CERTIFICATE_AUTHORITY_COMPROMISE',
  'AFFILIATION_CHANGED',
  'SUPERSEDED',
  'CESSATION_OF_OPERATION',
  'CERTIFICATE_HOLD',
  'PRIVILEGE_WITHDRAWN',
  'ATTRIBUTE_AUTHORITY_COMPROMISE',
];
/**
 * The zip types the console offers. Not ISTIO: the API accepts it only for an INTERMEDIATE_CA certificate with a
 * server-made key (§10.9) and refuses it for entity certificates, and the certificate object (§5.8) does not say
 * which type a certificate is, so the console cannot tell where it would be accepted. Istio's cacerts files are
 * exported through the API.
 */
const EXPORT_TYPES = ['OTHER', 'NGINX', 'APACHE', 'IIS', 'TOMCAT'];

type Certificate = Record<string, any>;

export function CertificateTable({ certificates }: { certificates: Certificate[] }) {
  if (certificates.length === 0) return <p>No certificates.</p>;
  return (
    <table class="list" data-test="certificates">
      <thead>
        <tr>
          <th>Common name</th>
          <th>Status</th>
          <th class="optional">Issuer</th>
          <th class="optional">Key</th>
          <th class="optional">Serial</th>
          <th class="optional">Created</th>
          <th>Expires</th>
        </tr>
      </thead>
      <tbody>
        {certificates.map((certificate) => (
          <tr key={certificate.certificate_id} data-test="certificate-row">
            <td>
              <a href={`#/certificates/${certificate.certificate_id}`}>
                {certificate.distinguished_name?.common_name ?? certificate.certificate_id}
              </a>
            </td>
            <td>
              <Status value={certificate.status} />
            </td>
            <td class="optional">{certificate.issuer_name}</td>
            <td class="optional">{certificate.key_algorithm}</td>
            <td class="optional">
              <code>{certificate.serial_number}</code>
            </td>
            <td class="optional">{formatTime(certificate.create_time)}</td>
            <td>
              <Expiry at={certificate.not_after} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const LIMIT = 20;

export function CertificateListPage() {
  const [filter, setFilter] = useState({ name: '', status: '', sort_key: 'create_time', sort_dir: 'DESC' });
  const [search, setSearch] = useState('');
  const [offset, setOffset] = useState(0);
  const { data, error } = useResource(
    () => json<{ total: number; certificates: Certificate[] }>('GET', CERTIFICATES, { query: { ...filter, limit: LIMIT, offset } }),
    [filter, offset],
  );
  useTitle('Certificates');
  const set = (name: string) => (event: Event) => {
    setOffset(0);
    const value = (event.target as HTMLSelectElement).value;
    // From the current state, not this render's: two changes before a re-render must both be kept.
    setFilter((current) => ({ ...current, [name]: value }));
  };
  return (
    <section>
      <h2>Certificates</h2>
      <form
        class="row filters"
        onSubmit={(event) => {
          event.preventDefault();
          setOffset(0);
          setFilter((current) => ({ ...current, name: search }));
        }}
      >
        <input
          name="search"
          aria-label="Search by common name"
          placeholder="Search by common name"
          value={search}
          onInput={(e) => setSearch((e.target as HTMLInputElement).value)}
        />
        <button type="submit">Search</button>
        <select name="status" aria-label="Status filter" value={filter.status} onChange={set('status')}>
          <option value="">any status</option>
          <option>ISSUED</option>
          <option>REVOKED</option>
          <option>EXPIRED</option>
        </select>
        <select name="sort_key" aria-label="Sort by" value={filter.sort_key} onChange={set('sort_key')}>
          <option value="create_time">sort by creation</option>
          <option value="common_name">sort by name</option>
          <option value="issuer_name">sort by issuer</option>
          <option value="not_after">sort by expiry</option>
        </select>
        <select name="sort_dir" aria-label="Sort direction" value={filter.sort_dir} onChange={set('sort_dir')}>
          <option value="DESC">descending</option>
          <option value="ASC">ascending</option>
        </select>
      </form>
      <ErrorBanner error={error} />
      {data && (
        <>
          <CertificateTable certificates={data.certificates} />
          <Pager offset={offset} limit={LIMIT} total={data.total} onPage={setOffset} />
        </>
      )}
    </section>
  );
}

/** The PEM bundle and the zips of a certificate; failures show in its page's error banner (the action's). */
function Downloads({ certificate, name, action }: { certificate: Certificate; name: string; action: ReturnType<typeof useAction> }) {
  const [type, setType] = useState('OTHER');
  const [password, setPassword] = useState('');
  /** The service holds this certificate's key. */
  const serverKey = certificate.gen_mode !== 'CSR';
  /** The keystore password applies to the types whose zip is a keystore (and only to a key the service holds). */
  const passwordApplies = serverKey && (type === 'IIS' || type === 'TOMCAT');
  /**
   * The certificate followed by its chain up to the root: what a TLS server sends. Asked for without the private key,
   * which would otherwise cross to the browser unencrypted and be audited as a key export.
   */
  const pemBundle = () =>
    action.run(async () => {
      const exported = await json<Record<string, string>>('POST', `${CERTIFICATES}/${certificate.certificate_id}/export`, {
        body: { type: 'OTHER', is_compressed: 'false', include_private_key: false },
      });
      download(`${name}-bundle.pem`, `${exported.certificate.trim()}\n${exported.certificate_chain.trim()}\n`);
    });
  const archive = () =>
    action.run(async () => {
      // Only where the field is shown: a password typed for IIS/TOMCAT must not encrypt another type's key.
      const body = { type, is_compressed: 'true', ...(passwordApplies && password ? { password } : {}) };
      const response = await call('POST', `${CERTIFICATES}/${certificate.certificate_id}/export`, { body });
      download(`${name}-${type.toLowerCase()}.zip`, await response.blob());
    });
  return (
    <div class="panel actions">
      <h3>Download</h3>
      <button type="button" onClick={pemBundle} data-test="download-bundle">
        PEM bundle (certificate + chain)
      </button>
      <span class="row">
        <select name="export_type" aria-label="Export type" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value)}>
          {EXPORT_TYPES.map((exportType) => (
            <option key={exportType}>{exportType}</option>
          ))}
        </select>
        {passwordApplies && (
          <input
            name="export_password"
            aria-label="Keystore password (optional)"
            type="password"
            placeholder="keystore password"
            value={password}
            onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
          />
        )}
        <button type="button" onClick={archive}>
          Download zip
        </button>
      </span>
    </div>
  );
}

export function CertificatePage({ id }: { id: string }) {
  const { data: certificate, error, reload } = useResource(() => json<Certificate>('GET', `${CERTIFICATES}/${id}`), [id]);
  const [reason, setReason] = useState('UNSPECIFIED');
  const action = useAction();
  const name = certificate?.distinguished_name?.common_name ?? id;
  useTitle(certificate ? name : 'Certificate');
  if (error) return <ErrorBanner error={error} />;
  if (!certificate) return <p>Loading…</p>;
  const revoke = () => {
    if (confirm(`Revoke "${name}" (${reason})? This cannot be undone.`)) {
      void action.run(() => json('POST', `${CERTIFICATES}/${id}/revoke`, { body: { reason } })).then(reload);
    }
  };
  const remove = () => {
    if (!confirm(`Delete the record of "${name}"?`)) return;
    void action
      .run(() => json('DELETE', `${CERTIFICATES}/${id}`))
      .then((ok) => {
        if (ok) location.hash = '#/certificates';
      });
  };
  return (
    <section data-test="certificate">
      <header class="bar">
        <h2>
          {name} <Status value={certificate.status} />
        </h2>
        <a href={`#/cas/${certificate.issuer_id}`}>Issuing CA</a>
      </header>
      <table class="facts">
        <tbody>
          <tr>
            <th>Serial number</th>
            <td>
              <code>{certificate.serial_number}</code>
            </td>
          </tr>
          <tr>
            <th>Issuer</th>
            <td>{certificate.issuer_name}</td>
          </tr>
          <tr>
            <th>Key / signature</th>
            <td>
              {certificate.key_algorithm} / {certificate.signature_algorithm}
            </td>
          </tr>
          <tr>
            <th>Key made by</th>
            <td>{certificate.gen_mode === 'CSR' ? 'the requester (CSR)' : 'the service'}</td>
          </tr>
          <tr>
            <th>Valid</th>
            <td>
              {formatTime(certificate.not_before)} – <Expiry at={certificate.not_after} />
            </td>
          </tr>
          <tr>
            <th>URN</th>
            <td>
              <code>{certificate.urn}</code>
            </td>
          </tr>
        </tbody>
      </table>
      {/* §4.4.5: only an ISSUED certificate exports. */}
      {certificate.status === 'ISSUED' && <Downloads certificate={certificate} name={name} action={action} />}
      <div class="panel actions">
        <h3>Lifecycle</h3>
        {certificate.status === 'ISSUED' && (
          <span class="row">
            <select
              name="reason"
              aria-label="Revocation reason"
              value={reason}
              onChange={(e) => setReason((e.target as HTMLSelectElement).value)}
            >
              {REVOCATION_REASONS.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
            <button type="button" class="danger" onClick={revoke}>
              Revoke
            </button>
          </span>
        )}
        <button type="button" class="danger" onClick={remove}>
          Delete record
        </button>
      </div>
      <Field label="">
        <ErrorBanner error={action.error} />
      </Field>
    </section>
  );
}
