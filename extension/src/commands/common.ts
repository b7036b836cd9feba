/** What every group of commands shares. */

import { InputDialog, showErrorMessage } from '@jupyterlab/apputils';

import { TranslationBundle, UNTRANSLATED } from '../i18n';
import { PanelModel } from '../model';

/** Run a request; a failure becomes an error dialog with the server's one-line message. */
export async function reportFailure(title: string, action: () => Promise<unknown>): Promise<boolean> {
  try {
    await action();
    return true;
  } catch (error) {
    await showErrorMessage(title, (error as Error).message ?? String(error));
    return false;
  }
}

/** The cluster a command was called for, or one the user picks from the polled list ('' if none). */
export async function clusterName(
  model: PanelModel,
  args: { name?: unknown },
  title: string,
  trans: TranslationBundle = UNTRANSLATED
): Promise<string> {
  const given = String(args.name ?? '');
  if (given) {
    return given;
  }
  const names = (model.clusters.data ?? []).map(c => c.name);
  if (names.length === 0) {
    await showErrorMessage(trans.__('No clusters'), trans.__('No cluster is registered; start one first.'));
    return '';
  }
  const answer = await InputDialog.getItem({ title, items: names });
  return answer.button.accept && answer.value ? answer.value : '';
}
