/**
 * Executed notebooks open read-only, and look it: no kernel is started (or
 * offered), the document is marked read-only (the lab refuses to save it),
 * its cells cannot be edited, the tab names the run, a banner says what the
 * notebook is ("make.ipynb, run 20261206-...: executed output, read-only"),
 * and what cannot act here is disabled: Run, Cut, Paste, Insert, the kernel
 * and cell-type pickers, "Add to pipeline", "Schedule…", the cells' own toolbars and the
 * command-mode keys that would edit or run. Opening one changes nothing on
 * disk and leaves it unmodified.
 */

import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDocumentWidget } from '@jupyterlab/docregistry';
import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { Message, MessageLoop } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { bundle } from './i18n';
import { executedRun } from './runs';

/** Never start a kernel for it, never offer to pick one. */
export const NO_KERNEL = {
  shouldStart: false,
  canStart: false,
  autoStartDefault: false,
  shutdownOnDispose: false
};

export const READ_ONLY_CLASS = 'aiinfra-readonly';

/** Notebook toolbar items (their `data-jp-item-name`) that edit, run or need a kernel. */
export const DISABLED_ITEMS = [
  'save',
  'insert',
  'cut',
  'paste',
  'run',
  'interrupt',
  'restart',
  'restart-and-run',
  'cellType',
  'kernelName',
  'aiinfra-add-to-pipeline',
  'aiinfra-schedule-notebook' // a run's output is not a notebook to schedule
];

export interface IExecuted {
  /** The run the notebook was executed in (from its path when not given). */
  runId?: string;
  /** The source notebook below the server root: the banner offers to open it. */
  source?: string;
  /** Opens a path (the banner's "Open source" button). */
  open?: (path: string) => void;
  translator?: ITranslator;
}

/** Open `path` (below the server root) read-only in the main area; resolves once shown so. */
export async function openReadOnly(
  docManager: IDocumentManager,
  path: string,
  executed: IExecuted = {}
): Promise<IDocumentWidget | undefined> {
  const widget = docManager.openOrReveal(path, 'Notebook', undefined, undefined, NO_KERNEL);
  if (!widget) {
    return undefined;
  }
  await widget.context.ready;
  makeReadOnly(widget, executed);
  return widget;
}

/** Mark a document widget read-only (model, every cell's editor, toolbar, keys, title, banner). */
export function makeReadOnly(widget: IDocumentWidget, executed: IExecuted = {}): void {
  if (widget.hasClass(READ_ONLY_CLASS)) {
    return;
  }
  const trans = bundle(executed.translator);
  widget.context.model.readOnly = true;
  const content = widget.content as any;
  for (const cell of content?.widgets ?? []) {
    // Writing `editable: false` into the cell metadata would modify the document.
    cell.syncEditable = false;
    cell.readOnly = true;
  }
  widget.addClass(READ_ONLY_CLASS);
  const path = widget.context.path;
  const name = path.split('/').pop() ?? path;
  const runId = executed.runId || executedRun(path)?.runId || '';
  const headline = runId
    ? trans.__('%1, run %2: executed output, read-only', name, runId)
    : trans.__('%1: executed output, read-only', name);
  // The tab names the run too. Not through title.label: a document widget renames its
  // file to a label that differs from the file name, so the suffix is drawn by CSS.
  widget.title.className = `${widget.title.className} aiinfra-readonly-tab`.trim();
  widget.title.dataset = {
    ...widget.title.dataset,
    // Set as data-aiinfra-suffix on the tab (Lumino writes the keys as they are).
    'aiinfra-suffix': runId ? trans.__(' · run %1 · read-only', runId.slice(0, 15)) : trans.__(' · read-only')
  };
  widget.title.caption = `${path}\n${headline}\n${trans.__('No kernel: nothing here runs or can be changed.')}`;
  const header = (widget as any).contentHeader as { insertWidget?: (i: number, w: Widget) => void } | undefined;
  header?.insertWidget?.(0, banner(headline, executed, trans));
  disableToolbar(widget, trans);
  installKeyGuard();
}

function banner(headline: string, executed: IExecuted, trans: TranslationBundle): Widget {
  const node = document.createElement('div');
  node.className = 'aiinfra-readonly-banner';
  node.setAttribute('role', 'note');
  const title = document.createElement('b');
  title.textContent = headline;
  node.appendChild(title);
  const more = document.createElement('span');
  more.textContent = executed.source
    ? ` ${trans.__('No kernel runs it and nothing can be changed here. To change it, edit %1 and run the pipeline again.', executed.source)}`
    : ` ${trans.__('No kernel runs it and nothing can be changed here.')}`;
  node.appendChild(more);
  if (executed.source && executed.open) {
    const button = document.createElement('button');
    button.className = 'jp-mod-styled aiinfra-button aiinfra-open-source';
    button.textContent = trans.__('Open %1', executed.source.split('/').pop() ?? executed.source);
    button.title = trans.__('Open the source notebook %1 (editable)', executed.source);
    const { open, source } = executed;
    button.onclick = () => open(source);
    node.appendChild(button);
  }
  return new Banner({ node });
}

/**
 * The banner in the panel's content header. That header is a box layout, which
 * sizes a child by its minimum height: the banner sets it to what its text
 * needs at the width it is given, so a long line that wraps is shown whole.
 */
class Banner extends Widget {
  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._fit();
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this._fit();
  }

  private _fit(): void {
    const style = this.node.style;
    const before = style.minHeight;
    style.minHeight = '0px';
    const needed = `${this.node.scrollHeight}px`;
    style.minHeight = needed;
    if (needed !== before && this.parent) {
      MessageLoop.postMessage(this.parent, Widget.Msg.FitRequest);
    }
  }
}

/** Toolbar items that cannot act are disabled, and stay so when the toolbar re-renders them. */
function disableToolbar(widget: IDocumentWidget, trans: TranslationBundle): void {
  const toolbar = (widget as any).toolbar as Widget | undefined;
  if (!toolbar) {
    return;
  }
  const why = trans.__('Not in a read-only executed notebook');
  const apply = () => {
    for (const name of DISABLED_ITEMS) {
      for (const item of Array.from(toolbar.node.querySelectorAll<HTMLElement>(`[data-jp-item-name="${name}"]`))) {
        item.classList.add('aiinfra-mod-readonly-disabled');
        if (item.getAttribute('aria-disabled') !== 'true') {
          item.setAttribute('aria-disabled', 'true');
        }
        for (const control of Array.from(item.querySelectorAll<HTMLButtonElement>('button, select, jp-button'))) {
          if (!control.disabled) {
            control.disabled = true; // only when not yet: every write is a mutation seen below
          }
          if (control.getAttribute('aria-disabled') !== 'true') {
            control.setAttribute('aria-disabled', 'true'); // what assistive tools read on jp-button
          }
          if (control.title !== why) {
            control.title = why;
          }
        }
      }
    }
  };
  apply();
  const observer = new MutationObserver(apply);
  observer.observe(toolbar.node, {
    subtree: true,
    childList: true,
    attributes: true,
    attributeFilter: ['disabled', 'aria-disabled', 'title']
  });
  widget.disposed.connect(() => observer.disconnect());
}

/** Command-mode keys that edit or run cells (a, b, x, v, d, z, m, y, r, 0-6, i, Shift/Ctrl/Alt+Enter). */
export function editsOrRuns(event: KeyboardEvent): boolean {
  if (event.key === 'Enter') {
    return event.shiftKey || event.ctrlKey || event.altKey || event.metaKey;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) {
    return event.key === '-' || event.key === '_'; // split cell
  }
  return /^[abxvdzmyri0-6]$/i.test(event.key);
}

let guarded = false;

/**
 * Keys that would edit or run a cell of a read-only notebook stop before the
 * lab's shortcuts see them (those listen on the document, in the capture
 * phase: only the window is earlier), and the banner flashes to say why. The
 * lab's context menu (Cut, Paste, Delete, Run...) is not offered over its
 * cells either: the browser's own (copy) is.
 */
function installKeyGuard(): void {
  if (guarded) {
    return;
  }
  guarded = true;
  const flash = (panel: Element) => {
    const note = panel.querySelector('.aiinfra-readonly-banner');
    if (note) {
      note.classList.remove('aiinfra-mod-flash');
      void (note as HTMLElement).offsetWidth; // restart the animation
      note.classList.add('aiinfra-mod-flash');
    }
  };
  window.addEventListener(
    'keydown',
    event => {
      const target = event.target as HTMLElement | null;
      const panel = target?.closest?.(`.${READ_ONLY_CLASS}`);
      if (!panel || !editsOrRuns(event) || target?.closest('.aiinfra-readonly-banner')) {
        return;
      }
      event.preventDefault();
      event.stopPropagation();
      flash(panel);
    },
    true
  );
  window.addEventListener(
    'contextmenu',
    event => {
      const target = event.target as HTMLElement | null;
      const panel = target?.closest?.(`.${READ_ONLY_CLASS}`);
      if (panel && target?.closest('.jp-Notebook')) {
        event.stopPropagation(); // the lab's menu listens on the document; the browser's shows
        flash(panel);
      }
    },
    true
  );
}
