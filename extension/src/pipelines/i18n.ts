/**
 * The translation bundle of the pipeline views: every user-facing string of
 * src/pipelines and commands/pipelines goes through `trans.__` (or `_n`), so a
 * language pack for the `aiinfra` domain translates it. Without a translator
 * (jest, or a lab without the translation service) the strings are English.
 */

import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';

export const DOMAIN = 'aiinfra';

export function bundle(translator?: ITranslator | null): TranslationBundle {
  return (translator ?? nullTranslator).load(DOMAIN);
}
