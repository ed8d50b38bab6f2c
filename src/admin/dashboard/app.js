// The dashboard page: its session (CSRF token, read-only), the live stream of frames (dashboard-feed.ts on the
// server, one a second), the services and the data plane, and the actions' confirmations and outcomes.
import { html, render, useEffect, useRef, useState } from './htm-preact.js';
import { call, loadSession } from './api.js';
import { Confirm, reloadAction } from './actions.js';
import { ServiceCard } from './services.js';
import { DataplanePanel } from './dataplane.js';
import { clock } from './format.js';

const HISTORY = 300;

function App() {
  const [session, setSession] = useState(null);
  const [frame, setFrame] = useState(null);
  const [conn, setConn] = useState('connecting');
  const [notice, setNotice] = useState(null);
  const [pending, setPending] = useState(null);
  const points = useRef([]);

  useEffect(() => {
    loadSession().then(setSession);
    const es = new EventSource('/dashboard/events');
    es.addEventListener('history', (e) => {
      points.current = JSON.parse(e.data);
    });
    es.onmessage = (e) => {
      const f = JSON.parse(e.data);
      const h = points.current;
      if (h.length === 0 || h[h.length - 1].t < f.point.t) h.push(f.point);
      if (h.length > HISTORY) h.splice(0, h.length - HISTORY);
      setFrame(f);
      setConn('live');
    };
    es.addEventListener('logout', () => location.assign('/'));
    es.onerror = () => {
      setConn('reconnecting');
      if (es.readyState === EventSource.CLOSED) loadSession(); // refused: back to the login when the session is gone
    };
    return () => es.close();
  }, []);

  const act = async (run) => {
    setNotice({ kind: 'busy', text: 'working…' });
    try {
      setNotice({ kind: 'ok', text: await run() });
    } catch (e) {
      setNotice({ kind: 'error', text: e.message });
    }
  };
  const logout = async () => {
    await call('POST', '/logout').catch(() => undefined);
    location.assign('/');
  };

  if (!frame || !session) return html`<p class="loading">Connecting…</p>`;
  const readOnly = frame.readOnly || session.readOnly;
  // A cluster host refuses backend changes (the config file on every host, then reload): no backend buttons, the reason shown.
  const clusterFile = session.backendWritesRefused;
  const backendReadOnly = readOnly || Boolean(clusterFile);
  const pts = points.current;
  return html`<div>
    <header class="top">
      <h1>l4nat</h1>
      <span class=${`conn ${conn}`}>${conn}</span>
      <span class="muted">updated ${clock(new Date(frame.t).toISOString())}</span>
      ${readOnly ? html`<span class="badge ro">read-only</span>` : null}
      ${!readOnly && clusterFile ? html`<span class="badge ro" data-badge="cluster" title=${clusterFile}>cluster: backends from the config file</span>` : null}
      <span class="spacer"></span>
      ${readOnly ? null : html`<button data-action="reload" onClick=${() => setPending(reloadAction())}>Reload config</button>`}
      ${session.canLogout ? html`<button onClick=${logout}>Log out</button>` : null}
    </header>
    ${notice ? html`<div id="notice" class=${`notice ${notice.kind}`} role=${notice.kind === 'error' ? 'alert' : 'status'}>
      <span>${notice.text}</span><button class="close" aria-label="dismiss" onClick=${() => setNotice(null)}>×</button></div>` : null}
    ${clusterFile ? html`<p class="notice busy" id="cluster-writes">${clusterFile}</p>` : null}
    ${frame.services.map((s) => html`<${ServiceCard} key=${s.id} s=${s} points=${pts} readOnly=${backendReadOnly} ask=${setPending} />`)}
    <${DataplanePanel} dp=${frame.dataplane} points=${pts} reloads=${frame.reloads} />
    ${pending && !readOnly ? html`<${Confirm} pending=${pending} onDone=${() => setPending(null)} act=${act} />` : null}
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
