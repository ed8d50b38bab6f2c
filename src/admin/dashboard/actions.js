// The dashboard's actions, each behind a confirmation: drain, undrain, weight, remove, add a backend, reload. Each
// is one call of the REST API (api.js); the page shows what it answered, its error message verbatim.
import { html, useState } from './htm-preact.js';
import { backendPath, call, servicePath, typedNumber } from './api.js';

/**
 * What an action asks before it runs: `title`, `text`, optional `input` ({label, value}) whose value `run` gets,
 * `run` itself (returns the success notice). `act` is the page's runner (shows the outcome).
 */
export const backendActions = (s, b) => [
  b.drain
    ? { id: 'undrain', label: 'Undrain', title: `Undrain ${b.id}?`, text: `Put ${b.id} back into the ring of ${s.id} (if healthy).`, run: async () => (await call('POST', `${backendPath(s.id, b.id)}/undrain`), `${b.id} undrained`) }
    : { id: 'drain', label: 'Drain', title: `Drain ${b.id}?`, text: `Take ${b.id} out of the ring of ${s.id}: no new flows; its established flows go on until they end.`, run: async () => (await call('POST', `${backendPath(s.id, b.id)}/drain`), `${b.id} draining`) },
  {
    id: 'weight',
    label: 'Weight',
    title: `Weight of ${b.id}`,
    text: `The configured weight (0 to 65535; 0 takes it out of the ring, flows kept). Now ${b.weight}.`,
    input: { label: 'weight', value: String(b.weight) },
    run: async (v) => (await call('PATCH', backendPath(s.id, b.id), { weight: typedNumber(v) }), `weight of ${b.id} set to ${v}`),
  },
  { id: 'remove', label: 'Remove', danger: true, title: `Remove ${b.id}?`, text: `Remove ${b.id} from ${s.id}. Its flows lose their translation: drain it first. A reload restores backends of the config file.`, run: async () => (await call('DELETE', backendPath(s.id, b.id)), `${b.id} removed`) },
];

export const addBackendAction = (s, backend, weight) => ({
  id: 'add',
  title: `Add ${backend} to ${s.id}?`,
  text: `Add backend ${backend} with weight ${weight} (not written to the config file: a reload drops it).`,
  run: async () => (await call('POST', `${servicePath(s.id)}/backends`, { backend, weight: typedNumber(weight) }), `${backend} added to ${s.id}`),
});

export const reloadAction = () => ({
  id: 'reload',
  title: 'Reload the config file?',
  text: 'Re-read the config file and apply all of it, or nothing. Backends added here that the file lacks are dropped.',
  run: async () => {
    const r = await call('POST', '/v1/reload');
    const moved = Object.entries(r.changedSlots || {}).map(([k, n]) => `${k}: ${n} slots`).join(', ');
    return `reloaded: ${r.added.length} added, ${r.removed.length} removed, ${r.changed.length} changed${moved ? ` (${moved})` : ''}`;
  },
});

/** The confirmation dialog of `pending` (an action); `onDone` closes it, `act` runs the action. */
export function Confirm({ pending, onDone, act }) {
  const [value, setValue] = useState(pending.input ? pending.input.value : '');
  const go = (e) => {
    e.preventDefault();
    onDone();
    act(() => pending.run(value));
  };
  return html`<div class="modal-back">
    <form class="modal" role="dialog" aria-label=${pending.title} onSubmit=${go}>
      <h3>${pending.title}</h3>
      <p>${pending.text}</p>
      ${pending.input && html`<label>${pending.input.label} <input name=${pending.input.label} value=${value} onInput=${(e) => setValue(e.target.value)} autofocus /></label>`}
      <div class="buttons">
        <button type="button" onClick=${onDone}>Cancel</button>
        <button type="submit" class=${pending.danger ? 'danger' : 'primary'}>Confirm</button>
      </div>
    </form>
  </div>`;
}

/** A service's form to add a backend (address and weight), confirmed like the others. */
export function AddBackend({ s, ask }) {
  const [addr, setAddr] = useState('');
  const [weight, setWeight] = useState('1');
  const submit = (e) => {
    e.preventDefault();
    if (addr.trim()) ask(addBackendAction(s, addr.trim(), weight));
  };
  return html`<form class="add-backend" onSubmit=${submit}>
    <input placeholder="ADDR[:PORT]" aria-label="new backend address" value=${addr} onInput=${(e) => setAddr(e.target.value)} />
    <input class="narrow" aria-label="new backend weight" value=${weight} onInput=${(e) => setWeight(e.target.value)} />
    <button type="submit">Add backend</button>
  </form>`;
}
