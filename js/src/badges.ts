/**
 * One notebook's badges: the comm to its kernel, what each cell's state is,
 * and the badge elements beside the prompts.
 */
import { Cell, CodeCell } from '@jupyterlab/cells';
import { NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { OutputArea } from '@jupyterlab/outputarea';
import { Kernel, KernelMessage } from '@jupyterlab/services';

import { askWhy, badgeText, forced, ICellState, IOutcome, isCached } from './state';

export const TARGET = 'ipy_lazycache';
const PREDICT_DELAY_MS = 400;
const REQUEST_TIMEOUT_MS = 30000;

type Reply = { [key: string]: any };

export class NotebookBadges {
  constructor(panel: NotebookPanel) {
    this._panel = panel;
    panel.sessionContext.kernelChanged.connect((_s, change) => this._attach(change.newValue), this);
    panel.sessionContext.statusChanged.connect((_s, status) => {
      if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
        this._comm = null; // the kernel's comm went with it; a new one comes with %load_ext
        this._states.forEach(state => (state.prediction = undefined));
        this._renderAll();
      }
    }, this);
    panel.context.ready.then(() => {
      panel.content.model?.contentChanged.connect(() => this._schedulePredict(), this);
    });
    NotebookActions.executed.connect(this._onExecuted, this);
    this._attach(panel.sessionContext.session?.kernel ?? null);
  }

  dispose(): void {
    this._disposed = true;
    NotebookActions.executed.disconnect(this._onExecuted, this);
    window.clearTimeout(this._timer);
  }

  // -- the comm ----------------------------------------------------------------
  private _attach(kernel: Kernel.IKernelConnection | null): void {
    this._comm = null;
    if (!kernel) {
      return;
    }
    kernel.registerCommTarget(TARGET, comm => this._adopt(comm));
    // A page opened on a kernel that already loaded the extension: it opened
    // its comm before this page was there, so this page opens its own.
    kernel
      .requestCommInfo({ target_name: TARGET })
      .then(reply => {
        const content = reply.content as any;
        if (content.status === 'ok' && Object.keys(content.comms || {}).length && !this._comm) {
          const comm = kernel.createComm(TARGET);
          this._adopt(comm);
          comm.open({ type: 'hello' });
        }
      })
      .catch(() => undefined);
  }

  private _adopt(comm: Kernel.IComm): void {
    this._comm = comm;
    comm.onMsg = msg => this._onMessage(msg);
    comm.onClose = () => {
      if (this._comm === comm) {
        this._comm = null;
      }
    };
    this._schedulePredict();
  }

  private _onMessage(msg: KernelMessage.ICommMsgMsg): void {
    const data = msg.content.data as Reply;
    if (data.type === 'outcome') {
      const parent = (msg.parent_header as any)?.msg_id;
      this._onOutcome(data as unknown as IOutcome, data.msg_id || parent);
      return;
    }
    const waiting = this._waiting.get(data.request);
    if (waiting) {
      this._waiting.delete(data.request);
      waiting(data);
    }
  }

  /** Ask the kernel; resolves with its reply (null: no kernel, no answer). */
  request(data: Reply): Promise<Reply | null> {
    const comm = this._comm;
    if (!comm || comm.isDisposed) {
      return Promise.resolve(null);
    }
    const request = ++this._requests;
    return new Promise(resolve => {
      const timer = window.setTimeout(() => {
        this._waiting.delete(request);
        resolve(null);
      }, REQUEST_TIMEOUT_MS);
      this._waiting.set(request, reply => {
        window.clearTimeout(timer);
        resolve(reply);
      });
      try {
        comm.send({ ...data, request });
      } catch {
        this._waiting.delete(request);
        window.clearTimeout(timer);
        resolve(null);
      }
    });
  }

  // -- states --------------------------------------------------------------------
  private _state(cell: Cell): ICellState {
    let state = this._states.get(cell.model.id);
    if (!state) {
      state = {};
      this._states.set(cell.model.id, state);
    }
    return state;
  }

  private _cells(): Cell[] {
    return this._panel.content.widgets as Cell[];
  }

  /** The cell an outcome is about: the one whose run sent the execute request, else by id. */
  private _find(msgId: string | null, cellId: string | null): Cell | undefined {
    const cells = this._cells();
    const byRun = cells.find(
      cell => cell instanceof CodeCell && msgId && cell.outputArea.future?.msg.header.msg_id === msgId
    );
    return byRun ?? cells.find(cell => cellId && cell.model.id === cellId);
  }

  private _onOutcome(outcome: IOutcome, msgId: string | null): void {
    const cell = this._find(msgId, outcome.cell_id);
    if (!cell) {
      return;
    }
    const state = this._state(cell);
    state.outcome = outcome;
    state.prediction = undefined;
    state.note = undefined;
    this._render(cell);
    this._schedulePredict();
  }

  private _onExecuted(_sender: unknown, args: { notebook: unknown }): void {
    if (args.notebook === this._panel.content) {
      this._schedulePredict(); // what the cells read may have changed
    }
  }

  // -- would hit / would miss ----------------------------------------------------
  private _schedulePredict(): void {
    if (this._disposed) {
      return;
    }
    window.clearTimeout(this._timer);
    this._timer = window.setTimeout(() => void this._predict(), PREDICT_DELAY_MS);
  }

  private async _predict(): Promise<void> {
    if (!this._comm) {
      return;
    }
    if (this._predicting) {
      this._again = true;
      return;
    }
    const asked = this._cells()
      .filter(cell => cell.model.type === 'code' && isCached(cell.model.sharedModel.getSource()))
      .map(cell => ({ cell_id: cell.model.id, code: cell.model.sharedModel.getSource() }));
    if (!asked.length) {
      return;
    }
    this._predicting = true;
    try {
      const reply = await this.request({ type: 'predict', cells: asked });
      for (const said of (reply?.cells as Reply[]) ?? []) {
        const cell = this._cells().find(c => c.model.id === said.cell_id);
        const sent = asked.find(a => a.cell_id === said.cell_id);
        if (cell && sent && cell.model.sharedModel.getSource() === sent.code) {
          this._state(cell).prediction = { state: said.state, reason: said.reason, code: sent.code };
        }
      }
    } finally {
      this._predicting = false;
    }
    this._renderAll();
    if (this._again) {
      this._again = false;
      this._schedulePredict();
    }
  }

  // -- the badge -----------------------------------------------------------------
  private _renderAll(): void {
    this._cells().forEach(cell => this._render(cell));
  }

  private _render(cell: Cell): void {
    const area = cell.inputArea?.node;
    let badge = cell.node.querySelector('.jp-LazyCacheBadge') as HTMLButtonElement | null;
    const shown = badgeText(this._states.get(cell.model.id), cell.model.sharedModel.getSource());
    if (!shown || !area) {
      badge?.remove();
      if (shown && !area) {
        void cell.ready.then(() => cell.inputArea && this._render(cell)); // a cell not rendered yet (off screen)
      }
      return;
    }
    if (!badge) {
      badge = document.createElement('button');
      badge.className = 'jp-LazyCacheBadge';
      badge.addEventListener('click', event => {
        event.stopPropagation();
        void this._clicked(cell);
      });
      area.appendChild(badge);
    }
    badge.textContent = shown.text;
    badge.dataset.state = shown.kind;
    badge.title = `${shown.title}\n(click: why, run anyway, forget)`;
  }

  private async _clicked(cell: Cell): Promise<void> {
    const state = this._state(cell);
    const choice = await askWhy(this, cell.model.id, state, badgeText(state, cell.model.sharedModel.getSource()));
    if (choice === 'run') {
      await this.runForced(cell);
    } else if (choice === 'forget') {
      const reply = await this.request({
        type: 'forget',
        cell_id: cell.model.id,
        code: cell.model.sharedModel.getSource()
      });
      state.outcome = undefined;
      state.note = reply?.text;
      this._render(cell);
      this._schedulePredict();
    }
  }

  /** "Run anyway": the cell runs with --force, its saved source unchanged. */
  async runForced(cell: Cell): Promise<void> {
    if (!(cell instanceof CodeCell)) {
      return;
    }
    const source = cell.model.sharedModel.getSource();
    const metadata = { cellId: cell.model.id, deletedCells: [], recordTiming: false };
    const reply = await OutputArea.execute(forced(source), cell.outputArea, this._panel.sessionContext, metadata);
    if (reply && reply.content.status !== 'abort') {
      cell.model.executionCount = reply.content.execution_count;
    }
  }

  private _panel: NotebookPanel;
  private _comm: Kernel.IComm | null = null;
  private _states = new Map<string, ICellState>();
  private _waiting = new Map<number, (reply: Reply) => void>();
  private _requests = 0;
  private _timer = 0;
  private _predicting = false;
  private _again = false;
  private _disposed = false;
}
