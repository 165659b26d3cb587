/**
 * The cell badge of ipy_lazycache: each cached cell shows its cache state
 * next to its prompt ("restored (saved 2.1 s)", "stored", "ran uncached:
 * <reason>", "would miss"). Clicking it shows what `%lazycache why` says,
 * with "Run anyway" (the cell run with --force) and "Forget this entry".
 *
 * The kernel talks through a comm (target "ipy_lazycache", opened by the
 * kernel when the extension loads): nothing of it lands in the notebook.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { NotebookBadges } from './badges';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'ipy-lazycache:badge',
  description: "Shows each %%lazycache cell's cache state next to its prompt.",
  autoStart: true,
  requires: [INotebookTracker],
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker) => {
    const watch = (panel: NotebookPanel) => {
      const badges = new NotebookBadges(panel);
      panel.disposed.connect(() => badges.dispose());
    };
    tracker.forEach(watch);
    tracker.widgetAdded.connect((_sender, panel) => watch(panel));
  }
};

export default plugin;
