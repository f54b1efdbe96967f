/**
 * Issue #19's acceptance scenario, in the shape of Istio with cert-manager, against a started server: a mesh CA
 * whose CSR carries name constraints (cert-manager's `nameConstraints` on an `isCA` Certificate) can only sign
 * its own trust domain. The issuing subordinate has a policy requiring constrained CAs within its trust domain.
 * openssl shows the constraints; a workload certificate that istiod would sign (here: openssl, outside the service)
 * for spiffe://cluster.local/ns/a/sa/b verifies, one for evil.example.com fails `openssl verify` with a name
 * constraints error.
 */
import t from 'tap';
import { KEY_ARGS, certificateText, openssl, opensslCsr, opensslSign, pemBlocks } from '../certificates/support.ts';
import { CA, CERT, createHierarchy, startServer } from './support.ts';

const server = await startServer('mesh-name-constraints');
const { dir, call, ok } = server;

t.test('a mesh CA issued from a CSR with name constraints can only sign its own trust domain', async (t) => {
  const { subId } = await createHierarchy(server, 'asm');
  await ok('PUT', `${CA}/${subId}/issuance-policy`, {
    allowed: { dns: ['*.cluster.local'], uri: ['spiffe://cluster.local/*'] },
    require_name_constraints_for_cas: true,
  });

  // cert-manager: isCA true, commonName mesh-ca, nameConstraints permitted dnsDomains [.cluster.local], uriDomains
  // [cluster.local], emailAddresses [.invalid]; excluded ipRanges [0.0.0.0/0, ::/0] (the policy allows no IP or email).
  const meshCsr = (name: string, constraints: string) =>
    opensslCsr(
      dir,
      name,
      [...KEY_ARGS.p256],
      [
        '-subj',
        '/O=cluster.local/CN=mesh-ca',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign',
        '-addext',
        `nameConstraints=critical,${constraints}`,
      ],
    );
  const request = { issuer_id: subId, validity: { type: 'HOUR', value: 7200 }, type: 'INTERMEDIATE_CA' };

  const unconstrained = await opensslCsr(
    dir,
    'mesh-unconstrained',
    [...KEY_ARGS.p256],
    ['-subj', '/O=cluster.local/CN=mesh-ca', '-addext', 'basicConstraints=critical,CA:TRUE'],
  );
  const refusedBare = await call('POST', `${CERT}/csr`, { ...request, csr: unconstrained.csr });
  t.equal(refusedBare.status, 400);
  t.match(
    refusedBare.body,
    { error_code: 'PCA.00020001', error_msg: /csr nameConstraints must permit at least one subtree/ },
    'the policy requires constrained CAs',
  );
  const tooWide = await meshCsr('mesh-too-wide', 'permitted;DNS:.cluster.local,permitted;DNS:.example.com');
  const refusedWide = await call('POST', `${CERT}/csr`, { ...request, csr: tooWide.csr });
  t.match(refusedWide, {
    status: 400,
    body: {
      error_code: 'PCA.00020001',
      error_msg:
        /csr nameConstraints\.permitted\.dns\[1\] '\.example\.com' reaches names that the issuing CA's issuance policy does not allow/,
    },
  });

  // A CA constraining only DNS and URI names could sign any IP address or mailbox.
  const open = await meshCsr('mesh-open', 'permitted;DNS:.cluster.local,permitted;URI:cluster.local');
  t.match(await call('POST', `${CERT}/csr`, { ...request, csr: open.csr }), {
    status: 400,
    body: {
      error_code: 'PCA.00020001',
      error_msg:
        /csr nameConstraints must constrain IP names: the issuing CA's issuance policy allows none; exclude 0\.0\.0\.0\/0 and ::\/0/,
    },
  });

  const { csr, keyFile } = await meshCsr(
    'mesh-ca',
    'permitted;DNS:.cluster.local,permitted;URI:cluster.local,permitted;email:.invalid,excluded;IP:0.0.0.0/0.0.0.0,excluded;IP:::/::',
  );
  const { certificate_id: meshId } = await ok('POST', `${CERT}/csr`, { ...request, csr });
  const exported = (await ok('POST', `${CA}/${meshId}/export`)) as { certificate: string; certificate_chain: string };
  const text = await certificateText(dir, exported.certificate);
  t.match(
    text,
    /X509v3 Name Constraints: critical\s+Permitted:\s+DNS:\.cluster\.local\s+URI:cluster\.local\s+email:\.invalid\s+Excluded:\s+IP:0\.0\.0\.0\/0\.0\.0\.0\s+IP:0:0:0:0:0:0:0:0\/0:0:0:0:0:0:0:0\s/,
    'openssl shows the constraints, critical',
  );
  t.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);

  // istiod's cacerts, and workload certificates it signs with the mesh-ca key (outside the service).
  const chain = pemBlocks(exported.certificate_chain);
  const caCert = await dir.write('ca-cert.pem', exported.certificate);
  const rootCert = await dir.write('root-cert.pem', chain.at(-1)!);
  const untrusted = await dir.write('untrusted.pem', `${chain.slice(0, -1).join('\n')}\n${exported.certificate}`);
  await opensslCsr(dir, 'workload', [...KEY_ARGS.p256], ['-subj', '/O=cluster.local']);
  const workload = async (name: string, san: string) => {
    const ext = await dir.write(
      `${name}.ext`,
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth,clientAuth',
        'authorityKeyIdentifier=keyid',
        `subjectAltName=critical,${san}`,
      ].join('\n'),
    );
    const signed = await opensslSign({
      csr: dir.file('workload.csr'),
      ca: caCert,
      caKey: keyFile,
      extFile: ext,
      out: dir.file(`${name}.pem`),
      serial: String(Date.now()),
    });
    if (!signed.ok) throw new Error(signed.stderr);
    return openssl(['verify', '-CAfile', rootCert, '-untrusted', untrusted, dir.file(`${name}.pem`)]);
  };
  const inside = await workload('workload-spiffe', 'URI:spiffe://cluster.local/ns/a/sa/b');
  t.ok(inside.ok, `spiffe://cluster.local/ns/a/sa/b verifies: ${inside.stdout}${inside.stderr}`);
  const service = await workload('workload-dns', 'DNS:productpage.default.svc.cluster.local');
  t.ok(service.ok, `a cluster.local service name verifies: ${service.stderr}`);
  const evil = await workload('workload-evil', 'DNS:evil.example.com');
  t.notOk(evil.ok, 'evil.example.com does not verify');
  t.match(
    `${evil.stdout}${evil.stderr}`,
    /permitted subtree violation/,
    `with openssl's name constraints error: ${evil.stdout}${evil.stderr}`,
  );
  const evilUri = await workload('workload-evil-uri', 'URI:spiffe://evil.example.com/ns/a/sa/b');
  t.match(`${evilUri.stdout}${evilUri.stderr}`, /permitted subtree violation/, 'nor does a SPIFFE id of another trust domain');
  const address = await workload('workload-ip', 'URI:spiffe://cluster.local/ns/a/sa/b,IP:10.0.0.1');
  t.match(`${address.stdout}${address.stderr}`, /excluded subtree violation/, 'nor does an IP address');
  const mailbox = await workload('workload-email', 'URI:spiffe://cluster.local/ns/a/sa/b,email:ops@example.com');
  t.match(`${mailbox.stdout}${mailbox.stderr}`, /permitted subtree violation/, 'nor does a mailbox');

  const meshCa = await ok('GET', `${CA}/${meshId}`);
  t.same(
    meshCa.name_constraints,
    {
      permitted: { dns: ['.cluster.local'], ip: [], uri: ['cluster.local'], email: ['.invalid'] },
      excluded: { dns: [], ip: ['0.0.0.0/0', '::/0'], uri: [], email: [] },
    },
    'the CA object shows them',
  );
});
