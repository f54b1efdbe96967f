/** Billing records on the wire (§10.6): snake_case, times in ms, amounts as decimal strings (never floats). */
import type { BillingRecord } from '../../db/generated/client.ts';

export interface BillingRecordView {
  record_id: string;
  domain_id: string;
  resource_type: string;
  resource_id: string;
  charging_mode: number;
  usage_type: string;
  usage_start: number;
  usage_end: number;
  usage_amount: number;
  unit_price: string;
  amount: string;
  currency: string;
  create_time: number;
}

/** Plain notation, no exponent, no trailing zeros ("0.0005", "9", "3.7056"). */
export function decimalString(value: { toFixed(): string }): string {
  const plain = value.toFixed();
  return plain.includes('.') ? plain.replace(/\.?0+$/, '') : plain;
}

export function toBillingRecordView(record: BillingRecord): BillingRecordView {
  return {
    record_id: record.id,
    domain_id: record.domainId,
    resource_type: record.resourceType,
    resource_id: record.resourceId,
    charging_mode: record.chargingMode,
    usage_type: record.usageType,
    usage_start: record.usageStart.getTime(),
    usage_end: record.usageEnd.getTime(),
    usage_amount: Number(record.usageAmount),
    unit_price: decimalString(record.unitPrice),
    amount: decimalString(record.amount),
    currency: record.currency,
    create_time: record.createdAt.getTime(),
  };
}

export const CSV_COLUMNS = [
  'record_id',
  'domain_id',
  'resource_type',
  'resource_id',
  'charging_mode',
  'usage_type',
  'usage_start',
  'usage_end',
  'usage_amount',
  'unit_price',
  'amount',
  'currency',
  'create_time',
] as const satisfies readonly (keyof BillingRecordView)[];

/**
 * RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. A text starting like a spreadsheet
 * formula (=, +, -, @, tab, CR) gets a leading ' so that a spreadsheet shows it rather than evaluates it (OWASP's CSV
 * injection advice); no number this service writes starts so.
 */
function csvField(value: string | number): string {
  const text = typeof value === 'string' && /^[=+\-@\t\r]/.test(value) ? `'${value}` : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(values: readonly (string | number)[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}

export function toCsvLine(view: BillingRecordView): string {
  return csvLine(CSV_COLUMNS.map((column) => view[column]));
}
