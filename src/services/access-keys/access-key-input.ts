/**
 * The body of `POST /v1/access-keys` (§10.7): the schema the HTTP layer validates and documents, and through Static<>
 * the access-key service's input type, kept below both so imports point down.
 */
import { Type, type Static } from 'typebox';
import { MAX_DESCRIPTION_LENGTH } from './access-key-rules.ts';

export const CreateAccessKeyBody = Type.Object({
  description: Type.Optional(Type.String({ maxLength: MAX_DESCRIPTION_LENGTH })),
  // Checked against the catalogue and the caller's actions by the service, with a message naming the action.
  actions: Type.Optional(Type.Array(Type.String())),
});

export type NewAccessKey = Static<typeof CreateAccessKeyBody>;
