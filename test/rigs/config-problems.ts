// The issues a config text is refused with (none: accepted), for the config validation tests.
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config/load';

export function configProblems(text: string): string[] {
  try {
    parseConfig(text, 'l4nat.yaml');
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.issues;
  }
  return [];
}
