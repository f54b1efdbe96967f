/** Small shared pieces: loading a resource, showing the contract's error, times and status badges. */
import type { ComponentChildren, RefObject } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.ts';

export function useResource<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  // Only the latest load may land: filters changed in quick succession send several requests, and an earlier one
  // answering last would show the list for filters no longer selected.
  const latest = useRef(0);
  const reload = useCallback(() => {
    const generation = ++latest.current;
    setError(undefined);
    load().then(
      (loaded) => generation === latest.current && setData(loaded),
      (failed: unknown) => generation === latest.current && setError(failed),
    );
    // biome-ignore lint/correctness/useExhaustiveDependencies: the caller names what the load depends on
  }, deps);
  useEffect(reload, [reload]);
  return { data, error, reload };
}

/** Runs an action, keeping its error for display; resolves to whether it succeeded. */
export function useAction() {
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const run = async (action: () => Promise<unknown>): Promise<boolean> => {
    setError(undefined);
    setBusy(true);
    try {
      await action();
      return true;
    } catch (caught) {
      setError(caught);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, run, setError };
}

export function ErrorBanner({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof ApiError || error instanceof Error ? error.message : String(error);
  return (
    <p class="error" role="alert" data-test="error">
      {message}
    </p>
  );
}

/** The tab's title for a page, "<page> — Private CA": tabs, history and bookmarks tell the pages apart. */
export function useTitle(page: string) {
  useEffect(() => {
    document.title = `${page} — Private CA`;
  }, [page]);
}

/**
 * An inline panel opened by a button: while it is open, Escape closes it and gives the focus back to that button, as
 * a dialog does, wherever the focus is on the page.
 */
export function useEscapeCloses(open: boolean, close: () => void, opener: RefObject<HTMLElement | null>) {
  const latestClose = useRef(close);
  latestClose.current = close;
  useEffect(() => {
    if (!open) return;
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== 'Escape' || event.defaultPrevented) return;
      latestClose.current();
      opener.current?.focus();
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [open, opener]);
}

export const formatTime = (ms: number | null | undefined) =>
  ms ? `${new Date(ms).toISOString().replace('T', ' ').slice(0, 16)} UTC` : '–';

const DAY_MS = 86_400_000;

/**
 * Expiry, in the warning colour once it is under 30 days away, counted in days as a validity is: a day begun is a
 * day left, so a 30-day certificate has 30 days left on the day it is issued (counted in milliseconds it would be
 * under 30 days from its first one) and 29 the day after.
 */
export function Expiry({ at }: { at: number | null | undefined }) {
  if (!at) return <span>–</span>;
  const days = Math.ceil((at - Date.now()) / DAY_MS);
  return (
    <span class={days < 30 ? 'warn' : ''} title={`${days} ${days === 1 ? 'day' : 'days'} left`} data-test="expiry">
      {formatTime(at)}
    </span>
  );
}

export function Status({ value }: { value: string }) {
  return <span class={`badge status-${value.toLowerCase()}`}>{value}</span>;
}

/**
 * A yearly/monthly CA's paid period: the end date, then "grace period" once it has passed (still issuing) and
 * "frozen" once the API says so (freeze_flag 1: issuing refused until renewed, deleted 15 days later); and whether
 * it renews automatically (prepaid_auto_renew 1).
 */
export function Prepaid({ ca }: { ca: Record<string, any> }) {
  if (ca.charging_mode !== 0 || ca.prepaid_expire_time === null) return null;
  if (ca.freeze_flag === 1)
    return (
      <span class="badge status-frozen" data-test="prepaid" title={`paid period ended ${formatTime(ca.prepaid_expire_time)}`}>
        FROZEN
      </span>
    );
  if (ca.prepaid_expire_time <= Date.now())
    return (
      <span
        class="badge status-grace"
        data-test="prepaid"
        title={`paid period ended ${formatTime(ca.prepaid_expire_time)}; frozen 15 days after`}
      >
        GRACE PERIOD
      </span>
    );
  return (
    <span data-test="prepaid">
      paid until <Expiry at={ca.prepaid_expire_time} />
      {ca.prepaid_auto_renew === 1 && <span title="renewed for the same period 7 days before the end date"> · renews automatically</span>}
    </span>
  );
}

export function Field({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noLabelWithoutControl: the control is the children
    <label class="field">
      <span>{label}</span>
      {children}
    </label>
  );
}

export function Pager({
  offset,
  limit,
  total,
  onPage,
}: {
  offset: number;
  limit: number;
  total: number;
  onPage: (offset: number) => void;
}) {
  return (
    <div class="pager">
      <button type="button" disabled={offset === 0} onClick={() => onPage(Math.max(0, offset - limit))}>
        Previous
      </button>
      <span data-test="page">
        {total === 0 ? 0 : offset + 1}–{Math.min(offset + limit, total)} of {total}
      </span>
      <button type="button" disabled={offset + limit >= total} onClick={() => onPage(offset + limit)}>
        Next
      </button>
    </div>
  );
}

// The contract's charging_mode: 0 yearly/monthly (prepaid), 1 pay-per-use.
export const chargingMode = (mode: number) => (mode === 0 ? 'yearly/monthly' : 'pay-per-use');
