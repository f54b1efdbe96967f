/**
 * Issue #21, item 1: a revocation is never lost to a CA's deletion. Issue a certificate, revoke it, disable its CA
 * and schedule the CA's deletion without the clock moving; then, through the whole pending window (30 days, the
 * CRL's own validity 7), the CRL at the distribution point lists the serial (openssl `verify -crl_check` refuses the
 * certificate) and the OCSP responder answers revoked. Against a started server, with the scheduled jobs run daily
 * ("on") and never run ("off"); CI runs this file on PGlite and on Postgres. Item 3: at `delete_time` the CA is
 * gone (404) for every call, whether or not the deletion job has run.
 */
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { openssl } from '../certificates/support.ts';
import { CA, CERT, startServer } from './support.ts';

const DAY_MS = 86_400_000;
// Two windows of 30 days end before the real now, so OCSP thisUpdate is never in openssl's future.
const clock = new ManualClock(Date.now() - 70 * DAY_MS);
const { harness, base, dir, call, ok } = await startServer('deletion-window', { clock });

const dn = (commonName: string) => ({
  common_name: commonName,
  country: 'CN',
  state: 'zhejiang',
  locality: 'hangzhou',
  organization: 'huawei-cloud',
  organizational_unit: 'platform',
});

async function runEveryJob(): Promise<void> {
  for (const job of harness.app.jobRunner.jobs) await harness.app.jobRunner.runOnce(job.name);
}

for (const jobs of ['off', 'on'] as const) {
  t.test(`jobs ${jobs}: revoked, disabled, deletion scheduled in one instant; revoked all through the window`, async (t) => {
    const rootId = (
      await ok('POST', CA, {
        type: 'ROOT',
        key_algorithm: 'EC256',
        signature_algorithm: 'SHA256',
        distinguished_name: dn(`window-root-${jobs}`),
        validity: { type: 'YEAR', value: 5 },
      })
    ).ca_id as string;
    const subId = (
      await ok('POST', CA, {
        type: 'SUBORDINATE',
        issuer_id: rootId,
        key_algorithm: 'EC256',
        signature_algorithm: 'SHA256',
        distinguished_name: dn(`window-sub-${jobs}`),
        validity: { type: 'YEAR', value: 2 },
        crl_configuration: { enabled: true, valid_days: 7 },
      })
    ).ca_id as string;
    await ok('POST', `${CA}/${subId}/ocsp/switch`, { ocsp_switch: true }, { status: 204 });
    const rootFile = await dir.write(`root-${jobs}.pem`, (await ok('POST', `${CA}/${rootId}/export`)).certificate);
    const subFile = await dir.write(`sub-${jobs}.pem`, (await ok('POST', `${CA}/${subId}/export`)).certificate);
    const chainFile = await dir.write(`chain-${jobs}.pem`, `${await dir.read(`sub-${jobs}.pem`)}\n${await dir.read(`root-${jobs}.pem`)}\n`);

    // One instant: issue, revoke, disable, schedule deletion (nothing else runs in between).
    const certificateId = (
      await ok('POST', CERT, {
        issuer_id: subId,
        key_algorithm: 'EC256',
        signature_algorithm: 'SHA256',
        distinguished_name: dn(`window-leaf-${jobs}`),
        validity: { type: 'DAY', value: 300 },
      })
    ).certificate_id as string;
    const leafPem = (await ok('POST', `${CERT}/${certificateId}/export`, { is_compressed: 'false', type: 'OTHER' })).certificate;
    const leafFile = await dir.write(`leaf-${jobs}.pem`, leafPem);
    await ok('POST', `${CERT}/${certificateId}/revoke`, { reason: 'KEY_COMPROMISE' }, { status: 204 });
    await ok('POST', `${CA}/${subId}/disable`, undefined, { status: 204 });
    await ok('DELETE', `${CA}/${subId}?pending_days=30`, undefined, { status: 204 });
    const deleteTime = (await ok('GET', `${CA}/${subId}`)).delete_time as number;
    t.equal(deleteTime, clock.now().getTime() + 30 * DAY_MS, 'DELETED, removal in 30 days');
    const serial = (await openssl(['x509', '-in', leafFile, '-noout', '-serial'])).stdout.trim().split('=')[1];

    const start = clock.now().getTime();
    // Before and after the first CRL's nextUpdate (7 days), mid-window, and one second before removal.
    const checkpoints = [0, 6, 8, 15, 30 - 1 / 86_400];
    for (let day = 0; day < 30; day++) {
      const due = checkpoints.filter((point) => point >= day && point < day + 1);
      for (const point of due) {
        clock.set(start + point * DAY_MS);
        if (jobs === 'on') await runEveryJob();
        const when = `day ${point.toFixed(point % 1 ? 5 : 0)}`;

        const crl = await fetch(`${base}/crl/${subId}.crl`);
        t.equal(crl.status, 200, `${when}: the CRL is served`);
        const crlFile = await dir.write(`${jobs}.crl`, new Uint8Array(await crl.arrayBuffer()));
        const text = (await openssl(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text'])).stdout;
        t.match(text, new RegExp(`Serial Number: ${serial}`, 'i'), `${when}: the CRL lists the revoked serial`);
        const crlPem = dir.file(`${jobs}-crl.pem`);
        await openssl(['crl', '-inform', 'DER', '-in', crlFile, '-out', crlPem]);
        const attime = String(Math.floor(clock.now().getTime() / 1000));
        const verdict = await openssl([
          'verify',
          '-attime',
          attime,
          '-crl_check',
          '-CAfile',
          rootFile,
          '-untrusted',
          subFile,
          '-CRLfile',
          crlPem,
          leafFile,
        ]);
        t.notOk(verdict.ok, `${when}: openssl verify -crl_check refuses the certificate`);
        t.match(verdict.stdout + verdict.stderr, /certificate revoked/, `${when}: because it is revoked (the CRL is current)`);

        const ocsp = await openssl(['ocsp', '-issuer', subFile, '-CAfile', chainFile, '-cert', leafFile, '-url', `${base}/ocsp/${subId}`]);
        t.match(ocsp.stdout + ocsp.stderr, /Response verify OK/, `${when}: OCSP answer signed by the CA`);
        t.match(ocsp.stdout, new RegExp(`${leafFile}: revoked`), `${when}: OCSP says revoked`);
      }
      // The timers of server mode, as the clock passes each day of the window.
      if (jobs === 'on' && due.length === 0) {
        clock.set(start + day * DAY_MS);
        await runEveryJob();
      }
    }
    t.equal((await call('GET', `${CA}/${subId}`)).body.status, 'DELETED', 'still pending at the end of the window');
    const quotaBefore = (await ok('GET', `${CA}/quotas`)).quotas.resources[0].used as number;

    // Item 3: at delete_time the CA is gone for every call, whether or not the deletion job has run.
    clock.set(deleteTime);
    if (jobs === 'on') await runEveryJob();
    for (const [method, url, body] of [
      ['GET', `${CA}/${subId}`],
      ['POST', `${CA}/${subId}/restore`],
      ['GET', `${CA}/${subId}/tags`],
      ['GET', `${CA}/${subId}/crl`],
      ['POST', `${CA}/${subId}/crl/enable`, { valid_days: 7 }],
    ] as const) {
      const response = await call(method, url, body);
      t.equal(response.status, 404, `${method} ${url.replace(subId, '{sub}')} at delete_time: 404`);
      t.equal(response.body.error_code, 'PCA.10010002');
    }
    t.equal((await fetch(`${base}/crl/${subId}.crl`)).status, 404, 'the public CRL: 404');
    t.equal((await fetch(`${base}/ca/${subId}.crt`)).status, 404, 'the public CA certificate: 404');
    const listed = (await ok('GET', `${CA}?limit=100`)).certificate_authorities as { ca_id: string }[];
    t.notOk(
      listed.some((ca) => ca.ca_id === subId),
      'not listed',
    );
    t.equal((await ok('GET', `${CA}/quotas`)).quotas.resources[0].used, quotaBefore - 1, 'no longer counted against the quota');
    clock.set(start + 31 * DAY_MS);
  });
}
