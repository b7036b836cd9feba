/**
 * Executed notebooks open read-only: no kernel is started (or offered), the
 * document is marked read-only (the lab refuses to save it) and its cells
 * cannot be edited. Opening one changes nothing on disk and leaves it unmodified.
 */

import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDocumentWidget } from '@jupyterlab/docregistry';

/** Never start a kernel for it, never offer to pick one. */
export const NO_KERNEL = {
  shouldStart: false,
  canStart: false,
  autoStartDefault: false,
  shutdownOnDispose: false
};

export const READ_ONLY_CLASS = 'aiinfra-readonly';

/** Open `path` (below the server root) read-only in the main area; resolves once shown so. */
export async function openReadOnly(docManager: IDocumentManager, path: string): Promise<IDocumentWidget | undefined> {
  const widget = docManager.openOrReveal(path, 'Notebook', undefined, undefined, NO_KERNEL);
  if (!widget) {
    return undefined;
  }
  await widget.context.ready;
  makeReadOnly(widget);
  return widget;
}

/** Mark a document widget read-only (model and, for notebooks, every cell's editor). */
export function makeReadOnly(widget: IDocumentWidget): void {
  widget.context.model.readOnly = true;
  const content = widget.content as any;
  for (const cell of content?.widgets ?? []) {
    // Writing `editable: false` into the cell metadata would modify the document.
    cell.syncEditable = false;
    cell.readOnly = true;
  }
  widget.addClass(READ_ONLY_CLASS);
  widget.title.caption = `${widget.context.path}\nExecuted notebook, read-only (no kernel)`;
}
