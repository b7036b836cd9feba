/**
 * User-facing strings go through JupyterLab's translator, in one domain
 * (`aiinfra`): widgets and commands get the lab's `ITranslator` in their
 * options and load this bundle; pure helpers take the bundle as an argument.
 * Without a translator (jest, a lab without the translation plugin) the
 * strings stay as written, with `%1`-style arguments filled in.
 */

import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';

export type { TranslationBundle };

/** The gettext domain of this extension's strings. */
export const DOMAIN = 'aiinfra';

/** The bundle of this extension's strings from `translator` (untranslated without one). */
export function bundle(translator?: ITranslator | null): TranslationBundle {
  return (translator ?? nullTranslator).load(DOMAIN);
}

/** The untranslated bundle: the default argument of pure helpers. */
export const UNTRANSLATED: TranslationBundle = nullTranslator.load(DOMAIN);
