// The config file's `cluster` section as JSON schema (draft-07, ajv): shape only; options.ts checks meaning.
const int = (min: number, max: number): object => ({ type: 'integer', minimum: min, maximum: max });
const seconds = (min: number, max: number): object => ({ type: 'number', minimum: min, maximum: max, 'x-expect': `a number of seconds from ${min} to ${max}` });

export const clusterSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    listen: { type: 'string', minLength: 1, 'x-expect': 'an IPv4 or IPv6 address (no brackets, no port)' },
    port: int(1, 65535),
    peers: {
      type: 'array',
      items: { type: 'string', minLength: 1, 'x-expect': 'a peer as "ADDR", "ADDR:PORT" or "[IPV6]:PORT"' },
      'x-expect': 'a list of the other l4nat hosts, e.g. ["10.0.0.2", "10.0.0.3:9181"]',
    },
    token_file: { type: 'string', minLength: 1 },
    tls: {
      type: 'object',
      additionalProperties: false,
      required: ['cert', 'key', 'ca'],
      properties: { cert: { type: 'string', minLength: 1 }, key: { type: 'string', minLength: 1 }, ca: { type: 'string', minLength: 1 } },
      'x-expect': '{cert, key, ca}: this host\'s certificate and key, and the CA that signs every host\'s (mutual TLS)',
    },
    health: { enum: ['majority', 'local'] },
    poll_interval: seconds(0.1, 60),
    peer_timeout: seconds(0.2, 600),
    settle: seconds(0, 600),
    disagreement_withdraw_after: seconds(0, 3600),
    sync: {
      type: 'object',
      additionalProperties: false,
      required: ['key_file'],
      properties: {
        port: int(1, 65535),
        key_file: { type: 'string', pattern: '^/', 'x-expect': 'an absolute path (a file only its owner may read, the same key on every host)' },
        max_rate: int(100, 10_000_000),
        max_entries: int(1024, 16_777_216),
        refresh: seconds(1, 3600),
        max_skew: seconds(1, 3600),
      },
      'x-expect': '{port?, key_file, max_rate?, max_entries?, refresh?, max_skew?}: flow-state sync among the peers',
    },
    bgp: {
      type: 'object',
      additionalProperties: false,
      required: ['include_file'],
      properties: {
        include_file: { type: 'string', pattern: '^/', 'x-expect': 'an absolute path (the file bird.conf includes)' },
        birdc: { type: 'string', minLength: 1 },
        socket: { type: 'string', pattern: '^/', 'x-expect': "an absolute path (BIRD's control socket)" },
        return_routes: { type: 'array', items: { type: 'string', minLength: 1 }, 'x-expect': 'a list of prefixes such as ["0.0.0.0/0"]' },
        upstream_protocols: {
          type: 'array',
          items: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$', 'x-expect': 'a BIRD protocol name' },
          'x-expect': 'a list of BIRD protocol names (the BGP sessions to the routers)',
        },
        withdraw_delay: seconds(0, 600),
      },
    },
  },
} as const;
