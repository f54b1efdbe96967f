/** What a CA may sign: the issuance policy document, the matcher and the one evaluator every issuance path calls. */
export * from './evaluator.ts';
export * from './issuance-policy.ts';
export type { NameConstraints, NameLists } from '../../x509/name-constraints.ts';
