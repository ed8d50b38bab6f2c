// Throw-away certificates for tests and labs (openssl): a CA, certificates it signs for IP addresses, and
// self-signed ones that no CA vouches for (a forged peer). EC P-256, valid one day. Files go into `dir`.
// Layers: nothing below (runs openssl) → this file → scaleout.ts, tests.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function ssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function names(ips: readonly string[]): string {
  return `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}`;
}

/** A CA (`name`.pem, `name`.key). */
export function makeCa(dir: string, name = 'ca'): CertFiles {
  ssl(dir, ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '1', '-subj', `/CN=l4nat test ${name}`]);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}

/** A certificate for `ips` signed by `ca`, usable by a server and as a client certificate. */
export function issueCert(dir: string, ca: CertFiles, name: string, ips: readonly string[]): CertFiles {
  ssl(dir, ['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  const ext = path.join(dir, `${name}.ext`);
  writeFileSync(ext, `${names(ips)}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  ssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', ext]);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}

/** A self-signed certificate for `ips`: the same names as a real host's, but no CA of ours signed it. */
export function selfSignedCert(dir: string, name: string, ips: readonly string[]): CertFiles {
  ssl(dir, ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '1', '-subj', `/CN=${name}`, '-addext', names(ips)]);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}
