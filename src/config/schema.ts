// The config file's JSON schema (draft-07, checked with ajv). Shape only: what a schema cannot say well
// (IP address syntax, families, cross-references, files) is checked in load.ts and services.ts. "x-expect" is our own
// annotation: the phrase an error message uses for "what is expected" where the keyword alone says too little.
import { clusterSchema } from '../cluster/schema';

const seconds = (min: number, max: number, what = 'seconds'): object => ({
  type: 'number',
  minimum: min,
  maximum: max,
  'x-expect': `a number of ${what} from ${min} to ${max}`,
});
const int = (min: number, max: number): object => ({ type: 'integer', minimum: min, maximum: max });
const port = int(1, 65535);
const address = { type: 'string', minLength: 1, 'x-expect': 'an IPv4 or IPv6 address (no brackets, no prefix)' };

export const healthCheckSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { enum: ['tcp', 'http', 'https', 'command', 'dataplane', 'icmp', 'none'] },
    interval: seconds(0.1, 3600),
    timeout: seconds(0.05, 3600),
    rise: int(1, 100),
    fall: int(1, 100),
    jitter: { type: 'number', minimum: 0, maximum: 0.5, 'x-expect': 'a fraction of the interval from 0 to 0.5' },
    port,
    path: { type: 'string', pattern: '^/', 'x-expect': 'a path starting with "/"' },
    host: { type: 'string', minLength: 1 },
    expect_status: {
      type: 'array',
      minItems: 1,
      items: int(100, 599),
      'x-expect': 'a list of HTTP status codes (100-599)',
    },
    tls_verify: { type: 'boolean' },
    command: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', minLength: 1 },
      'x-expect': 'a command as a list of strings, e.g. ["/usr/local/bin/check", "--quick"] (run without a shell)',
    },
  },
} as const;

/** A slow-start window: seconds, as a number or "30s" (issue 17; src/control/slow-start.ts). */
const slowStartSchema = {
  type: ['integer', 'string'],
  minimum: 1,
  maximum: 3600,
  pattern: '^[1-9][0-9]{0,3}s$',
  'x-expect': 'seconds from 1 to 3600, such as 30 or "30s"',
} as const;

/** New-flow admission (issue 17; native/core/admission.h): the balance mode, its factor, the answer when every backend is full. */
const admissionSchema = {
  balance: { enum: ['maglev', 'bounded'] },
  // The range and the hundredths are checked in services.ts (balanceFactorProblem), with the reason.
  balance_factor: { type: 'number', 'x-expect': 'a number above 1.0 and at most 100, such as 1.25' },
  when_full: { enum: ['drop', 'reject'] },
} as const;

/** Idle timeouts in seconds, global (under "global") and per service. */
const timeoutsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    tcp: int(1, 7 * 86400),
    tcp_syn: int(1, 86400),
    tcp_fin: int(1, 86400),
    tcp_close: int(1, 86400),
    udp: int(1, 86400),
  },
} as const;

export const passiveCheckSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    window: seconds(1, 3600),
    max_unanswered: int(0, 1_000_000),
    max_resets: int(0, 1_000_000),
    hold: seconds(1, 86400),
  },
} as const;

const backendSchema = {
  // Either "ADDR[:PORT][@WEIGHT]" or an object. No oneOf (its errors are unreadable): string keywords
  // apply to strings only, object keywords to objects only.
  type: ['string', 'object'],
  'x-expect': 'a backend: "ADDR[:PORT][@WEIGHT]" or {address, port, weight, max_flows, name}',
  additionalProperties: false,
  required: ['address'],
  properties: {
    address,
    port,
    weight: int(0, 65535),
    max_flows: { type: 'integer', minimum: 1, maximum: 1 << 28, 'x-expect': `a whole number of flows from 1 to ${1 << 28}` },
    name: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$', 'x-expect': '1-64 letters, digits, "_", ".", ":" or "-"' },
  },
} as const;

export const configSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  additionalProperties: false,
  required: ['services'],
  properties: {
    global: {
      type: 'object',
      additionalProperties: false,
      properties: {
        queues: int(1, 256),
        tun: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,15}$', 'x-expect': 'an interface name of 1-15 letters, digits, "_", "." or "-"' },
        flow_capacity: int(1024, 1 << 28),
        table: int(1, 0xfffffffe),
        rule_pref: int(1, 32765),
        mtu: int(1280, 65535),
        maglev_size: int(3, 16777213),
        hash_key: { type: 'string', pattern: '^[0-9a-fA-F]{32}$', 'x-expect': '32 hex digits (16 bytes)' },
        hash_key_file: { type: 'string', minLength: 1 },
        flow_file: { type: 'string', minLength: 1 },
        icmp_echo: { type: 'boolean' },
        stats_interval: seconds(0, 86400),
        worker_nice: int(-20, 19),
        log_level: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] },
        shutdown_grace: seconds(0, 86400),
        proxy_neighbors: {
          type: 'array',
          items: { type: 'string', pattern: '^[A-Za-z0-9_.@-]{1,15}$' },
          'x-expect': 'a list of interface names on which to answer ARP/NDP for the VIPs',
        },
        timeouts: timeoutsSchema,
        probe_source: {
          type: 'object',
          additionalProperties: false,
          properties: { ipv4: address, ipv6: address },
          'x-expect': '{ipv4, ipv6}: source addresses of dataplane health probes, routed towards the clients by the backends',
        },
      },
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      properties: {
        listen: address,
        port: int(0, 65535),
        token_file: { type: 'string', minLength: 1 },
        insecure_no_auth: { type: 'boolean' },
        dashboard: {
          type: 'object',
          additionalProperties: false,
          properties: { read_only: { type: 'boolean' } },
          'x-expect': '{read_only}: read_only true hides the dashboard\'s actions and refuses writes from browsers',
        },
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['cert', 'key'],
          properties: {
            cert: { type: 'string', minLength: 1 },
            key: { type: 'string', minLength: 1 },
            client_ca: { type: 'string', minLength: 1 },
          },
        },
      },
    },
    defaults: {
      type: 'object',
      additionalProperties: false,
      properties: {
        health_check: healthCheckSchema,
        passive_check: passiveCheckSchema,
        on_all_down: { enum: ['drop', 'keep-last'] },
        on_down: { enum: ['keep', 'reset'] },
        hash: { enum: ['5tuple', 'src'] },
        slow_start: slowStartSchema,
        ...admissionSchema,
      },
    },
    cluster: clusterSchema,
    services: {
      type: 'array',
      'x-expect': 'a list of services',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'vips', 'ports'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$', 'x-expect': '1-64 letters, digits, "_", "." or "-"' },
          vips: { type: 'array', minItems: 1, items: address, 'x-expect': 'a list of IPv4/IPv6 addresses' },
          ports: {
            type: 'array',
            minItems: 1,
            items: {
              type: ['integer', 'string'],
              minimum: 1,
              maximum: 65535,
              pattern: '^[0-9]{1,5}(/(tcp|udp))?$',
              'x-expect': 'PORT or "PORT/tcp" or "PORT/udp" (1-65535)',
            },
            'x-expect': 'a list of ports such as [80, "53/udp"]',
          },
          hash: { enum: ['5tuple', 'src'] },
          on_all_down: { enum: ['drop', 'keep-last'] },
        on_down: { enum: ['keep', 'reset'] },
          slow_start: slowStartSchema,
          ...admissionSchema,
          health_check: healthCheckSchema,
          passive_check: passiveCheckSchema,
          new_flow_rate: {
            type: 'object',
            additionalProperties: false,
            required: ['rate'],
            properties: { rate: int(1, 4_000_000), burst: int(1, 4_000_000) },
          },
          timeouts: timeoutsSchema,
          allow_sources: { type: 'array', items: { type: 'string', minLength: 1 }, 'x-expect': 'a list of CIDRs such as ["10.0.0.0/8", "2001:db8::/32"]' },
          deny_sources: { type: 'array', items: { type: 'string', minLength: 1 }, 'x-expect': 'a list of CIDRs such as ["192.0.2.0/24"]' },
          backends: { type: 'array', items: backendSchema, 'x-expect': 'a list of backends' },
        },
      },
    },
  },
} as const;
