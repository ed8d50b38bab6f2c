// JSON-schema pieces the admin API's routes share (fastify validates bodies and parameters against them; the
// OpenAPI description at /openapi.json shows them).
export const errorResponse = { type: 'object', properties: { error: { type: 'string' } } };
/** A response described in words only: an object whose fields the route's summary and docs/operating.md name. */
export const obj = (description: string): object => ({ description, type: 'object', additionalProperties: true });
