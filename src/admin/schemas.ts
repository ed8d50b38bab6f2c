// JSON-schema pieces the admin API's routes share (fastify validates bodies and parameters against them; the
// OpenAPI description at /openapi.json shows them).
import { MAX_FLOWS_LIMIT } from '../dataplane/tables';

export const errorResponse = { type: 'object', properties: { error: { type: 'string' } } };
/** A response described in words only: an object whose fields the route's summary and docs/operating.md name. */
export const obj = (description: string): object => ({ description, type: 'object', additionalProperties: true });
/** A backend's weight, as writes and plans take it. */
export const weight = { type: 'integer', minimum: 0, maximum: 65535, description: '0 = out of the ring (flows kept)' };
/** A backend's max_flows, as PATCH and plans take it (null: no limit; POST narrows it to an integer). */
export const maxFlows = {
  type: ['integer', 'null'],
  minimum: 1,
  maximum: MAX_FLOWS_LIMIT,
  description: 'at most this many active flows (new ones go to the next backend; those above a lowered limit go on); null: no limit',
};
