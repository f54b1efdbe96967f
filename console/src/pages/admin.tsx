/** Billing records with the month's summary and a CSV download; access keys; audit events. */
import { useState } from 'preact/hooks';
import { call, download, json } from '../api.ts';
import { chargingMode, ErrorBanner, Field, formatTime, Pager, useAction, useResource, useTitle } from '../ui.tsx';

const LIMIT = 20;

/** The month's records: the API's end_time is exclusive. A cleared month field means no bounds at all. */
function monthBounds(month: string): { start_time?: number; end_time?: number } {
  const [year, index] = month.split('-').map(Number);
  if (!year || !index) return {};
  return { start_time: Date.UTC(year, index - 1, 1), end_time: Date.UTC(year, index, 1) };
}

export function BillingPage() {
  const [month, setMonth] = useState(new Date().toISOString().slice(0, 7));
  const [offset, setOffset] = useState(0);
  const bounds = monthBounds(month);
  const summary = useResource(() => json('GET', '/v1/billing-records/summary', { query: bounds }), [month]);
  const records = useResource(() => json('GET', '/v1/billing-records', { query: { ...bounds, limit: LIMIT, offset } }), [month, offset]);
  const action = useAction();
  useTitle('Billing');
  /** Every record of the month as the API writes it (Accept: text/csv): one CSV, formula-like cells neutralised. */
  const csv = () =>
    action.run(async () => {
      const response = await call('GET', '/v1/billing-records', { query: bounds, accept: 'text/csv' });
      download(`billing-${month || 'all'}.csv`, await response.blob(), 'text/csv');
    });
  return (
    <section>
      <header class="bar">
        <h2>Billing</h2>
        <span class="row">
          <input
            name="month"
            aria-label="Billing month"
            type="month"
            value={month}
            onInput={(e) => {
              setOffset(0);
              setMonth((e.target as HTMLInputElement).value);
            }}
          />
          <button type="button" onClick={csv}>
            Download CSV
          </button>
        </span>
      </header>
      <ErrorBanner error={summary.error ?? records.error ?? action.error} />
      {summary.data && (
        <div class="panel" data-test="billing-summary">
          <h3>
            {month || 'All months'}: {summary.data.total_amount} {summary.data.currency}
          </h3>
          <table class="list">
            <thead>
              <tr>
                <th>Resource</th>
                <th>Usage</th>
                <th class="optional">Records</th>
                <th class="optional">Amount of usage</th>
                <th>Amount</th>
              </tr>
            </thead>
            <tbody>
              {summary.data.totals.map((total: any) => (
                <tr key={`${total.resource_type}/${total.usage_type}/${total.currency}`}>
                  <td>{total.resource_type}</td>
                  <td>{total.usage_type}</td>
                  <td class="optional">{total.record_count}</td>
                  <td class="optional">{total.usage_amount}</td>
                  <td>
                    {total.amount} {total.currency}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {records.data && (
        <>
          <table class="list" data-test="billing-records">
            <thead>
              <tr>
                <th>Time</th>
                <th>Resource</th>
                <th class="optional">Usage</th>
                <th class="optional">Mode</th>
                <th class="optional">Quantity</th>
                <th class="optional">Unit price</th>
                <th>Amount</th>
              </tr>
            </thead>
            <tbody>
              {records.data.records.map((record: any) => (
                <tr key={record.record_id}>
                  <td>{formatTime(record.usage_start)}</td>
                  <td>
                    {record.resource_type} <code>{record.resource_id.slice(0, 8)}</code>
                  </td>
                  <td class="optional">{record.usage_type}</td>
                  <td class="optional">{chargingMode(record.charging_mode)}</td>
                  <td class="optional">{record.usage_amount}</td>
                  <td class="optional">{record.unit_price}</td>
                  <td>
                    {record.amount} {record.currency}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager offset={offset} limit={LIMIT} total={records.data.total} onPage={setOffset} />
        </>
      )}
    </section>
  );
}

export function AccessKeysPage() {
  const { data, error, reload } = useResource(() => json('GET', '/v1/access-keys'), []);
  const [description, setDescription] = useState('');
  const [created, setCreated] = useState<{ access: string; secret: string } | null>(null);
  const action = useAction();
  useTitle('Access keys');
  const create = async (event: Event) => {
    event.preventDefault();
    await action.run(async () => {
      const { credential } = await json('POST', '/v1/access-keys', { body: { description } });
      setCreated({ access: credential.access, secret: credential.secret });
      setDescription('');
      reload();
    });
  };
  const remove = (access: string) => {
    if (confirm(`Delete the access key ${access}? Clients signing with it stop working.`))
      void action.run(() => json('DELETE', `/v1/access-keys/${access}`)).then(reload);
  };
  return (
    <section>
      <h2>Access keys</h2>
      <form class="row" onSubmit={create}>
        <input
          name="description"
          aria-label="Access key description"
          placeholder="Description"
          value={description}
          onInput={(e) => setDescription((e.target as HTMLInputElement).value)}
        />
        <button type="submit">Create access key</button>
      </form>
      {created && (
        <div class="panel secret" data-test="new-secret">
          <p>Copy the secret now: it is shown only this once.</p>
          <p>
            Access key: <code>{created.access}</code>
          </p>
          <p>
            Secret: <code>{created.secret}</code>
          </p>
          <button type="button" onClick={() => setCreated(null)}>
            Done
          </button>
        </div>
      )}
      <ErrorBanner error={error ?? action.error} />
      {data && (
        <table class="list" data-test="access-keys">
          <thead>
            <tr>
              <th>Access key</th>
              <th>Description</th>
              <th class="optional">Actions</th>
              <th class="optional">Created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {data.credentials.map((key: any) => (
              <tr key={key.access}>
                <td>
                  <code>{key.access}</code>
                </td>
                <td>{key.description}</td>
                <td class="optional">{key.actions.length} actions</td>
                <td class="optional">{formatTime(key.create_time)}</td>
                <td>
                  <button type="button" class="danger small" onClick={() => remove(key.access)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function AuditPage() {
  const [filter, setFilter] = useState({ outcome: '', resource_type: '', action: '' });
  const [offset, setOffset] = useState(0);
  const { data, error } = useResource(
    () => json('GET', '/v1/audit-events', { query: { ...filter, limit: LIMIT, offset } }),
    [filter, offset],
  );
  useTitle('Audit events');
  const set = (name: string) => (event: Event) => {
    setOffset(0);
    const value = (event.target as HTMLInputElement).value;
    setFilter((current) => ({ ...current, [name]: value }));
  };
  return (
    <section>
      <h2>Audit events</h2>
      <div class="row filters">
        <Field label="Action">
          <input name="audit_action" placeholder="pca:ca:create" value={filter.action} onChange={set('action')} />
        </Field>
        <Field label="Resource">
          <select name="resource_type" value={filter.resource_type} onChange={set('resource_type')}>
            <option value="">any</option>
            <option>CA</option>
            <option>CERTIFICATE</option>
            <option>ACCESS_KEY</option>
            <option>ORDER</option>
          </select>
        </Field>
        <Field label="Outcome">
          <select name="outcome" value={filter.outcome} onChange={set('outcome')}>
            <option value="">any</option>
            <option>SUCCESS</option>
            <option>FAILURE</option>
          </select>
        </Field>
      </div>
      <ErrorBanner error={error} />
      {data && (
        <>
          <table class="list" data-test="audit-events">
            <thead>
              <tr>
                <th>Time</th>
                <th class="optional">Actor</th>
                <th>Action</th>
                <th class="optional">Resource</th>
                <th>Outcome</th>
                <th class="optional">Request</th>
              </tr>
            </thead>
            <tbody>
              {data.audit_events.map((event: any) => (
                <tr key={event.id}>
                  <td>{formatTime(event.create_time)}</td>
                  <td class="optional">{event.actor}</td>
                  <td>{event.action}</td>
                  <td class="optional">
                    {event.resource_type} <code>{event.resource_id?.slice(0, 8)}</code>
                  </td>
                  <td class={event.outcome === 'FAILURE' ? 'warn' : ''}>{event.outcome}</td>
                  <td class="optional">
                    <code>{event.request_id.slice(0, 12)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager offset={offset} limit={LIMIT} total={data.total} onPage={setOffset} />
        </>
      )}
    </section>
  );
}
