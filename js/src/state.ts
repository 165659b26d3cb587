/**
 * What a badge says, and the dialog its click opens.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

/** What the kernel sent after a cached cell ran. */
export interface IOutcome {
  cell_id: string | null;
  cell_state: string; // "restored" | "stored" | "ran uncached"
  summary: string; // "restored (saved 2.1 s)", "stored", "ran uncached: <reason>"
  reason: string;
  seconds: number;
  saved: number;
  /** Auto mode's cell (no %%lazycache line): one it ran uncached shows no badge. */
  auto: boolean;
}

export interface ICellState {
  outcome?: IOutcome;
  /** The kernel's answer for the cell's source `code` as it is now. */
  prediction?: { state: string; reason: string; code: string };
  /** What the last "forget" said. */
  note?: string;
}

export interface IShown {
  text: string;
  kind: string;
  title: string;
}

const MAGIC = /^\s*%%lazycache(\s|$)/;

/** A `%%lazycache` cell (auto mode's cells show their outcomes, but are not predicted). */
export function isCached(source: string): boolean {
  return MAGIC.test(source);
}

/**
 * The badge of a cell whose source is `source` now: "would miss" when the
 * kernel says its entry no longer fits, else what its last run did, else
 * "would hit"; null: no badge.
 */
export function badgeText(state: ICellState | undefined, source: string): IShown | null {
  const prediction = state?.prediction?.code === source ? state.prediction : undefined;
  if (prediction?.state === 'would miss') {
    return { text: 'would miss', kind: 'would-miss', title: prediction.reason };
  }
  if (state?.outcome && !(state.outcome.auto && state.outcome.cell_state === 'ran uncached')) {
    const outcome = state.outcome;
    return { text: outcome.summary, kind: outcome.cell_state.replace(' ', '-'), title: outcome.summary };
  }
  if (prediction?.state === 'would hit') {
    return { text: 'would hit', kind: 'would-hit', title: prediction.reason };
  }
  return null;
}

/** The cell's source with `--force` on its `%%lazycache` line (added when it has none). */
export function forced(source: string): string {
  if (!isCached(source)) {
    return `%%lazycache --force\n${source}`;
  }
  const end = source.indexOf('\n');
  const first = end < 0 ? source : source.slice(0, end);
  if (/(^|\s)--force(\s|$)/.test(first)) {
    return source;
  }
  return `${first} --force${end < 0 ? '' : source.slice(end)}`;
}

interface IAsker {
  request(data: { [key: string]: any }): Promise<{ [key: string]: any } | null>;
}

/** Show what `%lazycache why` says; resolves with "run", "forget" or null. */
export async function askWhy(
  asker: IAsker,
  cellId: string,
  state: ICellState,
  shown: IShown | null
): Promise<'run' | 'forget' | null> {
  const reply = await asker.request({ type: 'why', cell_id: cellId });
  const lines = [reply?.text || shown?.title || 'No answer from the kernel.'];
  if (state.prediction && shown?.kind === 'would-miss') {
    lines.unshift(`Would miss now: ${state.prediction.reason}`);
  }
  if (state.note) {
    lines.push(state.note);
  }
  const body = new Widget();
  const pre = document.createElement('pre');
  pre.className = 'jp-LazyCacheWhy';
  pre.textContent = lines.join('\n\n');
  body.node.appendChild(pre);
  const result = await showDialog({
    title: `lazycache: ${shown?.text ?? 'this cell'}`,
    body,
    buttons: [
      Dialog.cancelButton({ label: 'Close' }),
      Dialog.warnButton({ label: 'Forget this entry' }),
      Dialog.okButton({ label: 'Run anyway' })
    ]
  });
  if (result.button.label === 'Run anyway') {
    return 'run';
  }
  return result.button.label === 'Forget this entry' ? 'forget' : null;
}
