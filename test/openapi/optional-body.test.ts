/**
 * The committed document says which request bodies may be left out: certificate export takes none, or null, as {}
 * (§4.4.5: every field has a default; test/certificates/management.test.ts sends it so), while every other body stays
 * required (revoke refuses a missing one, §4.4.6). The route marker behind it does not reach the document.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';

type Operation = { operationId: string; requestBody?: { required?: boolean } };
const text = readFileSync('openapi/openapi.yaml', 'utf8');
const document = parse(text) as { paths: Record<string, Record<string, Operation>> };
const operations = Object.values(document.paths).flatMap((methods) => Object.values(methods));
const withBody = operations.filter((operation) => operation.requestBody);

t.test('exportCertificate documents its body as optional, and only it', async (t) => {
  const optional = withBody.filter((operation) => operation.requestBody!.required !== true).map((operation) => operation.operationId);
  t.same(optional, ['exportCertificate']);
  const byId = new Map(operations.map((operation) => [operation.operationId, operation]));
  t.equal(byId.get('exportCertificate')!.requestBody!.required, false);
  t.equal(byId.get('revokeCertificate')!.requestBody!.required, true, 'revoke still requires its body');
  t.ok(withBody.length > 20, `${withBody.length} operations with a body`);
  t.notMatch(text, /x-optional-body/, 'the route marker is not left in the document');
});
