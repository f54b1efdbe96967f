/**
 * What the issuance policy costs per certificate: the evaluator (src/services/policy/) on a typical request, next to
 * the peer it rides on in the same process and run — building and signing the P-256 certificate itself.
 *
 *   npx tsx bench/policy/run.ts [seconds-per-row=2]
 *
 * Each row alternates the evaluation with the peer in slices, so the ratio holds on a loaded machine. Rows: a request with no rules (what every issuance without a policy pays), the example policy with
 * 40 allowed and 10 denied DNS patterns, the same plus the chain's name constraints, a 20-SAN request under it,
 * and a subordinate CA judged under require_name_constraints_for_cas. Prints a markdown table.
 */
import os from 'node:os';
import { evaluateIssuance, parseIssuancePolicy, type IssuanceFacts, type IssuerRules } from '../../src/services/policy/index.ts';
import { buildCertificate, randomSerial } from '../../src/x509/certificate.ts';
import { validateNameConstraints } from '../../src/services/request-fields.ts';
import { encodeName } from '../../src/x509/name.ts';
import { generateTestKey } from '../../test/x509/support.ts';

const seconds = Number(process.argv[2] ?? 2);

const policy = parseIssuancePolicy({
  allowed: {
    dns: [...Array.from({ length: 39 }, (_, i) => `*.team-${i}.example.internal`), '*.svc.cluster.local'],
    ip: ['10.0.0.0/8'],
    uri: ['spiffe://cluster.local/*'],
  },
  denied: { dns: Array.from({ length: 10 }, (_, i) => `*.prod-${i}.svc.cluster.local`) },
  max_validity_days: 90,
  key_algorithms: ['EC256', 'RSA2048'],
  allowed_ekus: ['serverAuth', 'clientAuth'],
  require_name_constraints_for_cas: true,
})!;
const chain = validateNameConstraints({
  permitted: { dns: ['.cluster.local', '.example.internal'], uri: ['cluster.local'] },
  excluded: { dns: ['kube-system.svc.cluster.local'] },
})!;

const facts = (names: IssuanceFacts['names'], extra: Partial<IssuanceFacts> = {}): IssuanceFacts => ({
  kind: 'ENTITY',
  names,
  notBefore: new Date(0),
  notAfter: new Date(30 * 86_400_000),
  keyAlgorithm: 'EC256',
  extendedKeyUsages: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'],
  ...extra,
});
const workload = facts([
  { type: 'DNS', value: 'web.default.svc.cluster.local', field: 'csr subjectAltName[0]' },
  { type: 'URI', value: 'spiffe://cluster.local/ns/default/sa/web', field: 'csr subjectAltName[1]' },
]);
const twentyNames = facts(
  Array.from({ length: 20 }, (_, i) => ({
    type: 'DNS' as const,
    value: `svc-${i}.team-${i % 39}.example.internal`,
    field: `subject_alternative_names[${i}]`,
  })),
);
const subordinate = facts([], {
  kind: 'CA',
  extendedKeyUsages: [],
  nameConstraints: validateNameConstraints({
    permitted: { dns: ['.team-3.example.internal', '.svc.cluster.local'] },
    excluded: {
      dns: [
        '.prod-0.svc.cluster.local',
        '.prod-1.svc.cluster.local',
        '.prod-2.svc.cluster.local',
        '.prod-3.svc.cluster.local',
        '.prod-4.svc.cluster.local',
        '.prod-5.svc.cluster.local',
        '.prod-6.svc.cluster.local',
        '.prod-7.svc.cluster.local',
        '.prod-8.svc.cluster.local',
        '.prod-9.svc.cluster.local',
      ],
    },
  }),
});

/**
 * Microseconds per call of `step` and of the peer, measured in alternating slices of 50 calls each for `seconds`,
 * so that a machine whose load changes during the run slows both alike and their ratio stays meaningful.
 */
async function interleaved(step: () => unknown, peerStep: () => Promise<unknown>): Promise<{ stepUs: number; peerUs: number }> {
  for (let i = 0; i < 200; i++) step(); // warm-up: JIT, caches of compiled rules
  let stepMs = 0;
  let peerMs = 0;
  let slices = 0;
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline) {
    let start = performance.now();
    for (let i = 0; i < 50; i++) step();
    stepMs += performance.now() - start;
    start = performance.now();
    for (let i = 0; i < 50; i++) await peerStep();
    peerMs += performance.now() - start;
    slices++;
  }
  return { stepUs: (stepMs * 1000) / (slices * 50), peerUs: (peerMs * 1000) / (slices * 50) };
}

function check(rules: IssuerRules, request: IssuanceFacts): () => void {
  const violation = evaluateIssuance(rules, request);
  if (violation) throw new Error(`the benchmark request must pass: ${violation.message}`);
  return () => evaluateIssuance(rules, request);
}

const key = await generateTestKey('EC256');
const subject = encodeName({ common_name: 'web.default.svc.cluster.local', organization: 'cluster.local' });
const peer = () =>
  buildCertificate(
    {
      serialNumber: randomSerial(),
      subject,
      issuer: subject,
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 86_400_000),
      spki: key.spki,
      hash: 'SHA256',
      basicConstraints: { ca: false },
      keyUsages: ['digitalSignature'],
      extendedKeyUsages: ['1.3.6.1.5.5.7.3.1'],
      subjectAltNames: [{ type: 'URI', value: 'spiffe://cluster.local/ns/default/sa/web' }],
    },
    key.signer,
  );

const load = os.loadavg()[0].toFixed(2);
const rows: [string, () => void][] = [
  ['no policy, no constraints (every issuance pays this)', check({ policies: [], chainConstraints: [] }, workload)],
  ['example policy (40 allowed, 10 denied DNS), 2 SANs', check({ policies: [policy], chainConstraints: [] }, workload)],
  ['policy + chain name constraints, 2 SANs', check({ policies: [policy], chainConstraints: [chain] }, workload)],
  ['policy + chain name constraints, 20 SANs', check({ policies: [policy], chainConstraints: [chain] }, twentyNames)],
  ['subordinate CA under require_name_constraints_for_cas', check({ policies: [policy], chainConstraints: [chain] }, subordinate)],
];
console.log(
  `Node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model}), load average ${load} at the start; ${seconds} s per row.\n`,
);
console.log('| evaluation | µs each | peer µs (build + sign one P-256 certificate), same slices | evaluation / peer |');
console.log('|---|---|---|---|');
for (const [what, step] of rows) {
  const { stepUs, peerUs } = await interleaved(step, peer);
  console.log(`| ${what} | ${stepUs.toFixed(2)} | ${peerUs.toFixed(1)} | ${((stepUs / peerUs) * 100).toFixed(1)} % |`);
}
