/**
 * Pure rules of hourly settlement (§8): which seconds of which UTC clock hour a pay-per-use CA is billed for.
 * - BILLABLE stretches count in the hours they cover.
 * - A PENDING_DELETION stretch counts only if it was ended by a restore, and then entirely in the hour of the
 *   restore, whose billed span (usage_start) reaches back to the start of the wait.
 * Times are cut to whole seconds first (billing is per second), so an hour's seconds are integers and the
 * hours of one stretch add up to the stretch.
 */
import { HOUR_MS } from '../../clock.ts';

export interface UsageStretch {
  kind: string;
  startAt: Date;
  endAt: Date | null;
  restoredAt: Date | null;
}

export interface HourUsage {
  /** Start of the UTC clock hour. */
  hour: Date;
  seconds: number;
  /** The billed part of the hour (the first billed instant may lie in an earlier hour after a restore). */
  usageStart: Date;
  usageEnd: Date;
}

export function floorHour(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

function floorSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

interface Span {
  hour: number;
  from: number;
  to: number;
  ms: number;
}

/** The parts of [from, to) in each clock hour. */
function* splitByHour(from: number, to: number): Generator<Span> {
  for (let hour = floorHour(from); hour < to; hour += HOUR_MS) {
    const start = Math.max(from, hour);
    const end = Math.min(to, hour + HOUR_MS);
    if (end > start) yield { hour, from: start, to: end, ms: end - start };
  }
}

/**
 * The billed usage of every settled hour in [windowStart, settledUntil) (both hour boundaries) that has any,
 * ascending. Stretches still open are billed up to settledUntil; hours from settledUntil on are not settled yet.
 */
export function hourlyUsage(stretches: readonly UsageStretch[], windowStart: number, settledUntil: number): HourUsage[] {
  const hours = new Map<number, { ms: number; from: number; to: number }>();
  const add = (span: Span) => {
    const current = hours.get(span.hour);
    hours.set(
      span.hour,
      current
        ? { ms: current.ms + span.ms, from: Math.min(current.from, span.from), to: Math.max(current.to, span.to) }
        : { ms: span.ms, from: span.from, to: span.to },
    );
  };
  for (const stretch of stretches) {
    const start = floorSecond(stretch.startAt.getTime());
    const end = floorSecond(stretch.endAt?.getTime() ?? settledUntil);
    if (stretch.kind === 'BILLABLE') {
      for (const span of splitByHour(Math.max(start, windowStart), Math.min(end, settledUntil))) add(span);
    } else if (stretch.restoredAt && end > start) {
      const restoreHour = floorHour(stretch.restoredAt.getTime());
      if (restoreHour >= windowStart && restoreHour < settledUntil) add({ hour: restoreHour, from: start, to: end, ms: end - start });
    }
  }
  // Every span added above is at least a millisecond long, so every hour listed here has usage.
  return [...hours.entries()]
    .sort(([a], [b]) => a - b)
    .map(([hour, usage]) => ({
      hour: new Date(hour),
      seconds: usage.ms / 1000,
      usageStart: new Date(usage.from),
      usageEnd: new Date(usage.to),
    }));
}

export function caDurationKey(caId: string, hour: Date): string {
  return `CA_DURATION:${caId}:${hour.toISOString()}`;
}
