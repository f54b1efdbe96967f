/** The contract's numeric codes for billing (§5.7 charging_mode, §4.2.2 period_type), shared by rules and statements. */
export const CHARGING_MODE = { PREPAID: 0, PAY_PER_USE: 1 } as const;
export const PERIOD_TYPE = { MONTH: 2, YEAR: 3 } as const;
