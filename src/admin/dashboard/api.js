// The dashboard's calls to the admin API: the REST routes themselves, with the session cookie (sent by the browser)
// and the session's CSRF token in a header on writes. An error is the API's own message, unchanged.
let csrf = null;
let csrfHeader = 'x-l4nat-csrf';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The session's CSRF token and the page's mode (read-only); a page without a session goes back to the login. */
export async function loadSession() {
  const r = await fetch('/dashboard/session', { credentials: 'same-origin' });
  if (r.status === 401) {
    location.assign('/');
    return null;
  }
  const s = await r.json();
  csrf = s.csrf;
  csrfHeader = s.csrfHeader;
  return s;
}

/** One API call; resolves with the JSON answer, or throws an ApiError carrying the API's `error` verbatim. */
export async function call(method, path, body) {
  const headers = {};
  if (csrf) headers[csrfHeader] = csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try {
    data = await r.json();
  } catch {
    data = null;
  }
  if (r.status === 401) location.assign('/');
  if (!r.ok) throw new ApiError(r.status, data && typeof data.error === 'string' ? data.error : `${r.status} ${r.statusText}`);
  return data;
}

const enc = encodeURIComponent;
export const backendPath = (service, backend) => `/v1/services/${enc(service)}/backends/${enc(backend)}`;
export const servicePath = (service) => `/v1/services/${enc(service)}`;

/** What the operator typed as a number, as JSON: a number when it reads as one, else the text (the API says why not). */
export function typedNumber(text) {
  const t = String(text).trim();
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
}
